"""What a compute host must keep of the guests its hypervisor holds, from the database's
instances and moves: the ``keep`` of ``ComputeDriver.remove_orphans``."""

from novalite.compute import states
from novalite.virt.driver import GUEST, INCOMING, RESIZE_BACKUP

MS = states.MS


def _owes(migration: dict) -> bool:
    """A move this host may still act on. A reverted cold move is passed in only while
    its source still owes the finish (see db.steps.unfinished_migrations); every other
    final status means the move is over."""
    status = migration.get('status')
    return status not in states.MIGRATION_DONE or status == MS.REVERTED


def owned_uuids(host: str, instances, migrations) -> dict[str, frozenset]:
    """uuid -> the kinds (GUEST, RESIZE_BACKUP, INCOMING) ``host`` must keep.

    ``instances``: the instances the database places on ``host`` (deleted ones are
    ignored). ``migrations``: the unfinished migrations naming ``host``, as
    ``unfinished_migrations`` returns them. An instance on the host keeps its guest
    (and, in ERROR, a guest still arriving). The
    source of a move keeps the guest and, for a cold move, the resize backup a revert
    restores; the destination keeps what it prepares and the guest it finishes.

    The order that keeps moves starting or ending meanwhile safe: list the hypervisor
    first (a guest a move prepares after it is not among those removed), then read the
    migrations, then the instances (a move that ends between the two reads is seen
    unfinished in the first, so both its hosts keep what it holds; read the other way
    round, a revert ending in between shows the instance still on the destination and
    the migration already over, and the source's guest looks like an orphan), then
    ``driver.remove_orphans(owned_uuids(...), among=listing)``.
    """
    if not host:
        raise ValueError('owned_uuids needs the host name')
    owned: dict[str, set] = {}
    for inst in instances:
        if inst.get('deleted') or inst.get('vm_state') == states.DELETED:
            continue
        if inst.get('host') != host:
            continue
        kinds = owned.setdefault(inst['uuid'], set())
        kinds.add(GUEST)
        if inst.get('vm_state') == states.ERROR:
            # A live migration whose last step failed after the copy leaves the guest
            # "incoming" to this hypervisor, and the instance here in ERROR: it may be
            # the only copy, so it stays for the operator.
            kinds.add(INCOMING)
    for mig in migrations:
        if not _owes(mig):
            continue
        kinds = owned.setdefault(mig['instance_uuid'], set())
        if mig.get('migration_type') == states.EVACUATION:
            # The source of an evacuation keeps its old guest only while the instance is
            # recorded there (the instance loop above); the destination keeps what it
            # rebuilds.
            if mig.get('dest_compute') == host:
                kinds.update((GUEST, INCOMING))
            if not kinds:
                del owned[mig['instance_uuid']]
            continue
        if mig.get('source_compute') == host:
            kinds.add(GUEST)
            if mig.get('migration_type') in states.COLD_MOVES:
                kinds.add(RESIZE_BACKUP)
        if mig.get('dest_compute') == host:
            kinds.update((GUEST, INCOMING))
        if not kinds:
            del owned[mig['instance_uuid']]
    return {uuid: frozenset(kinds) for uuid, kinds in owned.items()}
