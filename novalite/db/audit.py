"""Allocation audit: every placement allocation belongs to a live instance or an unfinished
migration, and every instance holds what its recorded step says it may hold.

``audit()`` reads instances, migrations and allocations, returns one ``Finding`` per
problem and, with ``fix=True``, repairs only what is certain. Each repair is one
transaction that locks and re-reads what the audit saw and does nothing when it changed
(a compare-and-swap), so a move that runs meanwhile is never damaged. Anything touched
within the grace period, any instance with a task_state and any instance in an unfinished
move is reported, never repaired: the move's own steps and reconcilers own it.

Legal shapes while a move is unfinished (``db/steps.py: _apply_allocations``): the
migration holds the source provider from the step that starts the move until the step
that ends it; the instance holds nothing or the destination claim while the destination
is being chosen, the destination claim from then on, and nothing (or, for a same-host
resize, the one provider) once ``revert_resize`` dropped the claim and the source still
owes ``finish_revert_resize``.
"""

import dataclasses
import datetime
import logging
from collections.abc import Callable

from sqlalchemy import select

from novalite import exception
from novalite.compute import states
from novalite.db import models
from novalite.db.models import utcnow
from novalite.db.placement import _write_allocations, drop_allocations, hand_over_allocations
from novalite.db.session import reader, writer
from novalite.scheduler.host_state import flavor_resources

LOG = logging.getLogger(__name__)

MS = states.MS

#: Seconds a record must have been left alone before the audit judges (or fixes) it.
DEFAULT_GRACE = 300.0

# Finding kinds.
DELETED_INSTANCE = 'deleted_instance'      # consumer is (the move of) a deleted instance
UNKNOWN_CONSUMER = 'unknown_consumer'      # consumer is no instance and no migration
FINISHED_MIGRATION = 'finished_migration'  # a migration in a final status holds something
WRONG_PROVIDER = 'wrong_provider'          # a settled instance holds off its host
MISSING_ALLOCATION = 'missing_allocation'  # a settled instance on a host holds nothing
NO_HOST = 'no_host'                        # a settled instance with no host holds something
UNKNOWN_HOST = 'unknown_host'              # the instance's host has no resource provider
MOVE_SHAPE = 'move_shape'                  # an instance in a move holds an illegal shape
KINDS = (DELETED_INSTANCE, UNKNOWN_CONSUMER, FINISHED_MIGRATION, WRONG_PROVIDER,
         MISSING_ALLOCATION, NO_HOST, UNKNOWN_HOST, MOVE_SHAPE)

# Unfinished statuses in which the destination is still being chosen or prepared: the
# instance may hold no claim yet, or a claim on a candidate the record does not name yet.
_CHOOSING = (MS.PRE_MIGRATING, MS.ACCEPTED)


@dataclasses.dataclass(frozen=True)
class Finding:
    """One audit result. ``provider`` is a resource provider uuid, ``host`` its host
    (or the instance's host). ``certain`` findings have exactly one right repair;
    ``fixed`` says the repair was made by this run."""
    kind: str
    consumer: str
    provider: str | None
    host: str | None
    detail: str
    certain: bool
    fixed: bool = False

    def line(self) -> str:
        state = 'fixed' if self.fixed else ('certain' if self.certain else 'uncertain')
        return (f'{self.kind} consumer={self.consumer} provider={self.provider or "-"} '
                f'host={self.host or "-"} [{state}] {self.detail}')


@dataclasses.dataclass
class _Snapshot:
    held: dict          # consumer -> {rp id: {rc: used}}
    newest: dict        # consumer -> newest allocation created_at
    providers: dict     # rp id -> (rp uuid, host or None)
    by_node: dict       # (host, node) -> rp id
    by_host: dict       # host -> [rp id]
    instances: dict     # uuid -> instance dict (deleted ones too, when consumers)
    migrations: dict    # uuid -> migration dict
    moves: dict         # instance uuid -> [migration dicts of its unfinished moves]
    final: dict         # instance uuid -> [uuids of its final migrations holding something]


def _row(r, *cols) -> dict:
    return {c: getattr(r, c) for c in cols}


_INST_COLS = ('uuid', 'host', 'node', 'task_state', 'vm_state', 'deleted', 'deleted_at',
              'updated_at', 'created_at', 'flavor', 'project_id', 'user_id')
_MIG_COLS = ('uuid', 'instance_uuid', 'migration_type', 'status', 'source_compute',
             'source_node', 'dest_compute', 'dest_node', 'updated_at', 'created_at')


def _chunks(items, size=500):
    items = sorted(items)
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _read() -> _Snapshot:
    with reader() as s:
        held: dict = {}
        newest: dict = {}
        for a in s.scalars(select(models.Allocation)):
            rcs = held.setdefault(a.consumer_id, {}).setdefault(a.resource_provider_id, {})
            rcs[a.resource_class] = rcs.get(a.resource_class, 0) + a.used
            if a.created_at and (a.consumer_id not in newest or
                                 a.created_at > newest[a.consumer_id]):
                newest[a.consumer_id] = a.created_at
        nodes = {cn.uuid: cn for cn in s.scalars(select(models.ComputeNode))}
        providers, by_node, by_host = {}, {}, {}
        for rp in s.scalars(select(models.ResourceProvider)):
            cn = nodes.get(rp.uuid)
            providers[rp.id] = (rp.uuid, cn.host if cn else None)
            if cn is not None:
                by_node[(cn.host, cn.hypervisor_hostname)] = rp.id
                by_host.setdefault(cn.host, []).append(rp.id)
        instances = {r.uuid: _row(r, *_INST_COLS) for r in s.scalars(
            select(models.Instance).where(models.Instance.deleted.is_(False)))}
        migrations = {r.uuid: _row(r, *_MIG_COLS) for r in s.scalars(
            select(models.Migration).where(
                models.Migration.status.notin_(states.MIGRATION_DONE)))}
        unknown = set(held) - set(instances) - set(migrations)
        for chunk in _chunks(unknown):
            for r in s.scalars(select(models.Instance).where(models.Instance.uuid.in_(chunk))):
                instances[r.uuid] = _row(r, *_INST_COLS)
            for r in s.scalars(select(models.Migration).where(
                    models.Migration.uuid.in_(chunk))):
                migrations[r.uuid] = _row(r, *_MIG_COLS)
    moves: dict = {}
    final: dict = {}
    for m in migrations.values():
        inst = instances.get(m['instance_uuid'])
        if _is_active_move(m, inst):
            moves.setdefault(m['instance_uuid'], []).append(m)
        elif m['uuid'] in held:
            final.setdefault(m['instance_uuid'], []).append(m['uuid'])
    return _Snapshot(held, newest, providers, by_node, by_host, instances, migrations, moves,
                     final)


def _is_active_move(mig: dict, inst: dict | None) -> bool:
    """Unfinished, reverted while the source still owes the instance its finish, or an
    evacuation whose source still owes its clean-up (and holds its allocation until)."""
    if mig['status'] not in states.MIGRATION_DONE or states.source_owes_cleanup(mig):
        return True
    return (mig['status'] == MS.REVERTED and inst is not None and not inst['deleted']
            and inst['task_state'] == states.RESIZE_REVERTING)


def _provider_of(snap: _Snapshot, host: str | None, node: str | None) -> int | None:
    if host is None:
        return None
    rp = snap.by_node.get((host, node))
    if rp is None and len(snap.by_host.get(host, ())) == 1:
        rp = snap.by_host[host][0]
    return rp


def _recent(when: datetime.datetime | None, now: datetime.datetime, grace: float) -> bool:
    return when is not None and (now - when).total_seconds() < grace


def _inst_changed(inst: dict) -> datetime.datetime | None:
    return inst.get('deleted_at') or inst.get('updated_at') or inst.get('created_at')


def _mig_changed(mig: dict) -> datetime.datetime | None:
    return mig.get('updated_at') or mig.get('created_at')


# ------------------------------------------------------------------- the rules

@dataclasses.dataclass
class _Issue:
    """A finding plus, when certain, the compare-and-swap repair: ``check(s)`` re-reads
    under lock and says whether the world is still as seen; ``apply(s)`` repairs."""
    finding: Finding
    check: Callable | None = None
    apply: Callable | None = None


def _audit(snap: _Snapshot, grace: float) -> list[_Issue]:
    now = utcnow()
    issues: list[_Issue] = []
    rp_uuid = {rp: u for rp, (u, _) in snap.providers.items()}
    rp_host = {rp: h for rp, (_, h) in snap.providers.items()}

    def first_rp(consumer):
        rps = sorted(snap.held.get(consumer, {}))
        return (rp_uuid.get(rps[0]), rp_host.get(rps[0])) if rps else (None, None)

    # Consumers that are not a live instance: deleted, unknown, or a migration.
    for consumer in sorted(snap.held):
        inst = snap.instances.get(consumer)
        mig = snap.migrations.get(consumer)
        provider, host = first_rp(consumer)
        if inst is not None and not inst['deleted']:
            continue
        if inst is not None:
            if _recent(_inst_changed(inst), now, grace):
                continue
            issues.append(_Issue(
                Finding(DELETED_INSTANCE, consumer, provider, host,
                        'allocation of a deleted instance: drop it', True),
                _still_gone(consumer, consumer), _drop(consumer)))
            continue
        if mig is None:
            if _recent(snap.newest.get(consumer), now, grace):
                continue
            issues.append(_Issue(
                Finding(UNKNOWN_CONSUMER, consumer, provider, host,
                        'allocation of no instance and no migration: drop it', True),
                _unknown(consumer), _drop(consumer)))
            continue
        if _recent(_mig_changed(mig), now, grace):
            continue
        owner = snap.instances.get(mig['instance_uuid'])
        if owner is None or owner['deleted']:
            issues.append(_Issue(
                Finding(DELETED_INSTANCE, consumer, provider, host,
                        f"allocation of migration {mig['status']} of deleted instance "
                        f"{mig['instance_uuid']}: drop it", True),
                _still_gone(mig['instance_uuid'], consumer), _drop(consumer)))
            continue
        if _is_active_move(mig, owner):
            continue  # judged with its instance below
        issues.append(_finished_migration(snap, mig, owner, provider, host, now, grace))

    # Live instances.
    for inst in sorted((i for i in snap.instances.values() if not i['deleted']),
                       key=lambda i: i['uuid']):
        issue = _judge_instance(snap, inst, now, grace, rp_uuid, rp_host)
        if issue is not None:
            issues.append(issue)
    return issues


def _finished_migration(snap, mig, owner, provider, host, now, grace) -> _Issue:
    held = set(snap.held.get(mig['uuid'], {}))
    home = _provider_of(snap, owner['host'], owner['node'])
    bare = not snap.held.get(owner['uuid'])
    give_back = (owner['task_state'] is None and owner['uuid'] not in snap.moves
                 and bare and home is not None and held == {home}
                 and not _recent(_inst_changed(owner), now, grace))
    about = (f"allocation of a migration in final status {mig['status']} "
             f"(instance {owner['uuid']} on {owner['host'] or 'no host'})")
    if give_back:
        return _Issue(Finding(FINISHED_MIGRATION, mig['uuid'], provider, host,
                              f'{about}: give it back to its instance, which holds nothing '
                              'on its host', True),
                      _migration_final(mig, owner, True), _give_back(mig['uuid'], owner['uuid']))
    if bare and owner['uuid'] not in snap.moves:
        # The only record of what the instance uses, and not where its host is: the guest
        # may well be where this allocation says.
        return _Issue(Finding(FINISHED_MIGRATION, mig['uuid'], provider, host,
                              f'{about}: its instance holds nothing, and this is not on its '
                              "host's provider; check where the guest runs", False))
    return _Issue(Finding(FINISHED_MIGRATION, mig['uuid'], provider, host,
                          f'{about}: drop it', True),
                  _migration_final(mig, owner, False), _drop(mig['uuid']))


def _judge_instance(snap, inst, now, grace, rp_uuid, rp_host) -> _Issue | None:
    uuid = inst['uuid']
    held = snap.held.get(uuid, {})
    rps = set(held)
    home = _provider_of(snap, inst['host'], inst['node'])
    moves = snap.moves.get(uuid, [])
    if _recent(_inst_changed(inst), now, grace) or \
            any(_recent(_mig_changed(m), now, grace) for m in moves):
        return None

    def finding(kind, detail, certain, rp=None):
        rp = rp if rp is not None else (min(rps) if rps else home)
        return Finding(kind, uuid, rp_uuid.get(rp), inst['host'] or rp_host.get(rp), detail,
                       certain)

    if moves:
        reason = _move_shape(snap, inst, moves)
        return None if reason is None else _Issue(finding(MOVE_SHAPE, reason, False))
    if inst['task_state'] is not None:
        if inst['host'] is None and len(rps) <= 1:
            return None  # a build's claim before the host is recorded
        if rps <= ({home} if home is not None else set()):
            return None
        return _Issue(finding(MOVE_SHAPE, f"task {inst['task_state']} without a move holds "
                              f"{_names(rps, rp_uuid)}, expected at most its host's", False))
    if inst['host'] is None:
        if not rps:
            return None
        return _Issue(finding(NO_HOST, 'instance has no host and no task but holds '
                              'allocations: drop them', True),
                      _settled(inst, held), _drop(uuid))
    if home is None:
        return _Issue(finding(UNKNOWN_HOST, f"host {inst['host']} node {inst['node']} has "
                              'no resource provider', False))
    if rps == {home}:
        return None
    if not rps:
        if snap.final.get(uuid):
            return None  # the finding of the migration holding its resources says it all
        return _Issue(finding(MISSING_ALLOCATION, 'instance on a host holds no allocation',
                              False))
    others = sorted(rps - {home})
    if home in rps:
        return _Issue(finding(WRONG_PROVIDER, 'instance also holds ' +
                              _names(others, rp_uuid) + ': drop those', True, others[0]),
                      _settled(inst, held), _drop_others(uuid, [rp_uuid[r] for r in others]))
    return _Issue(finding(WRONG_PROVIDER, 'instance holds ' + _names(others, rp_uuid) +
                          f" instead of its host's {rp_uuid[home]}: move it there", True,
                          others[0]),
                  _settled(inst, held), _move_home(inst, rp_uuid[home]))


def _names(rps, rp_uuid) -> str:
    return ', '.join(rp_uuid.get(r, str(r)) for r in sorted(rps)) or 'nothing'


def _move_shape(snap: _Snapshot, inst: dict, moves: list[dict]) -> str | None:
    """None when what the instance and its migration hold is legal at its recorded step,
    else why not."""
    if len(moves) > 1:
        return 'instance has %d unfinished migrations: %s' % (
            len(moves), ', '.join(m['uuid'] for m in moves))
    mig = moves[0]
    src = _provider_of(snap, mig['source_compute'], mig['source_node'])
    dst = _provider_of(snap, mig['dest_compute'], mig['dest_node'])
    mig_rps = set(snap.held.get(mig['uuid'], {}))
    inst_rps = set(snap.held.get(inst['uuid'], {}))
    names = {rp: u for rp, (u, _) in snap.providers.items()}
    where = f"migration {mig['uuid']} ({mig['migration_type']}, {mig['status']})"
    if src is None or mig_rps != {src}:
        return (f"{where} should hold its source {mig['source_compute']}'s provider, holds "
                + _names(mig_rps, names))
    if mig['status'] in _CHOOSING:
        ok = len(inst_rps) <= 1 and (dst is None or inst_rps <= {dst} or
                                     mig['status'] == MS.PRE_MIGRATING)
        allowed = 'nothing or one destination claim'
    elif mig['status'] == MS.REVERTED:
        ok = not inst_rps or (src == dst and inst_rps == {dst})
        allowed = 'nothing (revert_resize dropped its claim)'
    else:
        ok = dst is not None and inst_rps == {dst}
        allowed = f"exactly its destination {mig['dest_compute']}'s claim"
    if ok:
        return None
    return (f'{where}: the instance holds {_names(inst_rps, names)}; at this step it may '
            f'hold {allowed}')


# -------------------------------------------------------- compare-and-swap repairs

def _lock_instance(s, uuid):
    return s.scalars(select(models.Instance).where(models.Instance.uuid == uuid)
                     .with_for_update()).first()


def _lock_migration(s, uuid):
    return s.scalars(select(models.Migration).where(models.Migration.uuid == uuid)
                     .with_for_update()).first()


def _held_now(s, consumer) -> dict:
    out: dict = {}
    for a in s.scalars(select(models.Allocation).where(
            models.Allocation.consumer_id == consumer).with_for_update()):
        rcs = out.setdefault(a.resource_provider_id, {})
        rcs[a.resource_class] = rcs.get(a.resource_class, 0) + a.used
    return out


def _unfinished_exists(s, instance_uuid) -> bool:
    return s.scalars(select(models.Migration.id).where(
        models.Migration.instance_uuid == instance_uuid,
        models.Migration.status.notin_(states.MIGRATION_DONE)).limit(1)).first() is not None


def _still_gone(instance_uuid, consumer):
    def check(s):
        row = _lock_instance(s, instance_uuid)
        if row is not None and not row.deleted:
            return False
        if consumer != instance_uuid:  # the migration of a deleted instance
            mig = _lock_migration(s, consumer)
            return mig is not None and mig.instance_uuid == instance_uuid
        return True
    return check


def _unknown(consumer):
    def check(s):
        return _lock_instance(s, consumer) is None and _lock_migration(s, consumer) is None
    return check


def _migration_final(mig, owner, give_back):
    def check(s):
        row = _lock_migration(s, mig['uuid'])
        inst = _lock_instance(s, owner['uuid'])
        if row is None or row.status != mig['status'] or row.status not in \
                states.MIGRATION_DONE:
            return False
        if inst is not None and not inst.deleted and \
                inst.task_state == states.RESIZE_REVERTING:
            return False
        if give_back:
            return (inst is not None and not inst.deleted and inst.task_state is None and
                    inst.host == owner['host'] and not _held_now(s, owner['uuid']) and
                    not _unfinished_exists(s, owner['uuid']))
        return True
    return check


def _settled(inst, held):
    def check(s):
        row = _lock_instance(s, inst['uuid'])
        return (row is not None and not row.deleted and row.task_state is None and
                row.host == inst['host'] and row.node == inst['node'] and
                not _unfinished_exists(s, inst['uuid']) and
                _held_now(s, inst['uuid']) == held)
    return check


def _drop(consumer):
    return lambda s: drop_allocations(s, consumer)


def _drop_others(consumer, rp_uuids):
    def apply(s):
        for rp in rp_uuids:
            drop_allocations(s, consumer, rp)
    return apply


def _give_back(mig_uuid, inst_uuid):
    return lambda s: hand_over_allocations(s, mig_uuid, inst_uuid)


def _move_home(inst, home_uuid):
    def apply(s):
        _write_allocations(s, inst['uuid'], {home_uuid: flavor_resources(inst['flavor'])},
                           inst['project_id'], inst['user_id'], replace=True)
    return apply


def _repair(issue: _Issue, retries: int = 5) -> Finding:
    f = issue.finding
    for attempt in range(retries):
        try:
            with writer() as s:
                if not issue.check(s):
                    return dataclasses.replace(
                        f, detail=f.detail + ' (changed while auditing: left for the next run)')
                issue.apply(s)
            return dataclasses.replace(f, fixed=True)
        except exception.ResourceProviderGenerationConflict:
            if attempt == retries - 1:
                raise
        except exception.InsufficientResources as exc:
            return dataclasses.replace(f, certain=False,
                                       detail=f.detail + f'; not done: {exc}')
    return f  # pragma: no cover - the loop returns or raises


# ----------------------------------------------------------------------- public API

def audit(fix: bool = False, grace: float = DEFAULT_GRACE) -> list[Finding]:
    """Audit every allocation and every instance; with ``fix`` repair what is certain.

    Records changed less than ``grace`` seconds ago are left out: a step may be in
    flight. Returns the findings, repaired ones with ``fixed=True``.
    """
    if grace < 0:
        raise ValueError(f'grace must be zero or more seconds, not {grace}')
    issues = _audit(_read(), grace)
    out = []
    for issue in issues:
        if fix and issue.finding.certain and issue.apply is not None:
            out.append(_repair(issue))
        else:
            out.append(issue.finding)
    return out


def summary(findings: list[Finding]) -> dict[str, int]:
    """Counts by kind of the findings not repaired."""
    counts: dict[str, int] = {}
    for f in findings:
        if not f.fixed:
            counts[f.kind] = counts.get(f.kind, 0) + 1
    return counts


def run_periodic(host: str, grace: float = DEFAULT_GRACE) -> list[Finding]:
    """The conductor's periodic audit: repair what is certain, log the rest."""
    findings = audit(fix=True, grace=grace)
    for f in findings:
        if f.fixed:
            LOG.info('Allocation audit on %s fixed: %s', host, f.line())
        else:
            LOG.warning('Allocation audit on %s: %s', host, f.line())
    return findings
