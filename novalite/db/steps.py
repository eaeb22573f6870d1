"""One move step's whole state change in one transaction, as the state table declares it.

A step names what it expects (the instance task_state, the migration status) and what it
writes; the instance compare-and-swap, the migration compare-and-swap, the allocation
change the table names, the action event and the fault commit together or not at all.
When a compute host asks, the step is also checked against it: the host must be the one
the move names for the step's owner (or, for steps with no migration, the instance's
host).
"""

import logging
import uuid as uuidlib

from sqlalchemy import bindparam, select, update
from sqlalchemy import true as sa_true

from novalite import exception
from novalite.compute import states
from novalite.db import models
from novalite.db.actions import add_action, add_fault, record_events
from novalite.db.common import UNSET, to_dict
from novalite.db.instances import (
    destroy_row,
    instance_cas,
    instance_cas_returning,
    live_instance_row,
    returning_cas_supported,
    save_request_spec,
)
from novalite.db.migration_records import migration_cas, migration_cas_returning
from novalite.db.placement import drop_allocations, hand_over_allocations
from novalite.db.retry import retry_on_transient
from novalite.db.session import reader, writer

LOG = logging.getLogger(__name__)


def _apply_allocations(s, change, instance_uuid, migration):
    if change is None:
        return
    if change == 'drop_instance':
        drop_allocations(s, instance_uuid)
        return
    mig_uuid = migration['uuid']
    if change == 'source_to_migration':
        hand_over_allocations(s, instance_uuid, mig_uuid)
    elif change == 'migration_to_instance':
        hand_over_allocations(s, mig_uuid, instance_uuid)
    elif change == 'drop_migration':
        drop_allocations(s, mig_uuid)
    elif change == 'drop_instance_claim':
        if migration['dest_compute'] != migration['source_compute']:
            drop_allocations(s, instance_uuid)
    else:  # pragma: no cover - the state-table test pins the names
        raise ValueError(change)


def _add_migration(s, step, new_migration: dict) -> models.Migration:
    """The migration a step that starts a move creates, in the step's first status."""
    row = models.Migration(**dict(new_migration, status=step.status_after,
                                  uuid=new_migration.get('uuid') or str(uuidlib.uuid4())))
    s.add(row)
    s.flush()
    return row


def _migration_row(s, migration_uuid, lock=False):
    q = select(models.Migration).where(models.Migration.uuid == migration_uuid)
    row = s.scalars(q.with_for_update() if lock else q).first()
    if row is None:
        raise exception.MigrationNotFound(migration_id=migration_uuid)
    return row


def authorize(s, host: str, instance_uuid: str, migration=None, owner=None,
              instance=None) -> None:
    """Refuse a compute host's request about an instance that is neither on it nor in a
    migration naming it (as the step's owner when ``owner`` is given). ``instance`` is
    the row when the caller has read it already."""
    if migration is not None and migration.instance_uuid == instance_uuid:
        roles = {states.SOURCE: migration.source_compute, states.DEST: migration.dest_compute}
        if owner in roles:
            if roles[owner] == host:
                return
        elif host in roles.values():
            return
    if owner in (None, 'host'):
        instance = instance if instance is not None else live_instance_row(s, instance_uuid)
        if instance is not None and instance.host == host:
            return
        if migration is None and instance is not None:
            # Any unfinished move naming the host lets it see the instance (a reverted
            # one too while the source still owes the instance its finish, and an
            # evacuation away from it that it has not cleaned up after).
            unfinished = models.Migration.status.notin_(states.MIGRATION_DONE) | (
                (models.Migration.migration_type == states.EVACUATION) &
                (models.Migration.status == states.MS.DONE) &
                (models.Migration.source_compute == host))
            if instance.task_state == states.RESIZE_REVERTING:
                unfinished = unfinished | (models.Migration.status == states.MS.REVERTED)
            named = s.scalars(select(models.Migration.id).where(
                models.Migration.instance_uuid == instance_uuid, unfinished,
                (models.Migration.source_compute == host) |
                (models.Migration.dest_compute == host)).limit(1)).first()
            if named is not None:
                return
    LOG.warning('Refused compute host %s acting on instance %s (%s)', host, instance_uuid,
                owner or 'read')
    raise exception.HostNotAuthorized(host=host, instance_uuid=instance_uuid)


@retry_on_transient
def apply_step(step_name: str, instance_uuid: str, migration_uuid: str | None = None, *,
               caller: str | None = None, instance_values: dict | None = None,
               migration_values: dict | None = None, vm_state: str | None = None,
               status: str | None = None, events: list | None = None,
               fault: dict | None = None, host=None, new_migration: dict | None = None,
               action: dict | None = None, request_spec: dict | None = None,
               driver=UNSET, expected_driver=UNSET, log: list | None = None) -> dict:
    """Apply one step of the state table; returns ``{'instance', 'migration'}``.

    ``caller`` is the compute host asking (None for the conductor itself). ``events`` are
    ``{'request_id', 'name', 'started', 'result', 'traceback', 'details', 'start_time'}``
    and ``fault`` ``{'code', 'message', 'details'}``; ``host`` is written on both.
    A step that starts a move creates its migration from ``new_migration``; a step the
    API takes also records the instance ``action`` (``{'action', 'request_id',
    'user_id', 'project_id'}``) and the ``request_spec``. ``log`` entries (``{'at',
    'decision', 'detail'}``) are appended to the migration's policy_log, its row locked
    for the append as ``migration_log_append`` does.

    ``driver`` is the conductor host that goes on working on the task after this step
    (``instances.task_driver``); a step that ends the task clears it, any other leaves it
    unless given; ``expected_driver`` makes the write also a compare-and-swap on it (a
    reconciler taking over work must not race the task still driving it). A compute's
    step that records finished work (not ``step.opens``) and finds the record already
    past it answers with the record unchanged: a re-sent request whose first answer was
    lost gets the same result.
    """
    step = states.step(step_name)
    if vm_state is not None and vm_state not in step.vm_choices:
        raise ValueError(f'{step_name} cannot set vm_state {vm_state}')
    values = dict(instance_values or {})
    values['task_state'] = step.task_after
    if driver is not UNSET or step.task_after is None:
        values['task_driver'] = None if driver is UNSET else driver
    if vm_state is not None:
        values['vm_state'] = vm_state
    if (migration_uuid is None) != (new_migration is None) and not log \
            and not step.migration_only and returning_cas_supported() \
            and (caller is None or (step.owner in _HOST_COLUMN and new_migration is None)) \
            and (status is None or status in (step.status_after, *step.status_choices)):
        try:
            return _move_step_returning(
                step, instance_uuid, migration_uuid, new_migration, caller, values,
                dict(migration_values or {}, status=status or step.status_after),
                events, fault, host, action, request_spec, expected_driver)
        except _NoMatch:
            pass  # nothing written: the whole path below tells why
    with writer() as s:
        if migration_uuid is None and new_migration is None and step.allocations is None \
                and not step.migration_only and returning_cas_supported():
            # A step of the instance alone: the compare-and-swap, with the caller's
            # authorization (the instance is on its host) in the same WHERE, returns the
            # instance, and nothing is read first. When it matches nothing, the whole
            # path below reads the instance to tell why (or finds the step recorded).
            inst = instance_cas_returning(
                s, instance_uuid, values, expected_task_state=list(step.task_before),
                expected_vm_state=list(step.vm_before) if step.vm_before else UNSET,
                expected_host=caller if caller is not None else UNSET,
                expected_driver=expected_driver)
            if inst is not None:
                _record(s, instance_uuid, action, request_spec, fault, events, host)
                return {'instance': inst, 'migration': None}
        mig = None
        if new_migration is not None:
            mig = _add_migration(s, step, new_migration)
            migration_uuid = mig.uuid
        elif migration_uuid is not None:
            mig = _migration_row(s, migration_uuid, lock=bool(log))
        inst = live_instance_row(s, instance_uuid)
        if inst is None:
            raise exception.InstanceNotFound(instance_id=instance_uuid)
        if caller is not None:
            authorize(s, caller, instance_uuid, mig,
                      owner=step.owner if step.owner != states.CONDUCTOR else None,
                      instance=inst)
        if caller is not None and _already_applied(step, inst, mig, status, vm_state):
            LOG.info('Step %s of %s was already recorded', step_name, instance_uuid)
            return {'instance': to_dict(inst),
                    'migration': to_dict(mig) if mig is not None else None}
        out = {'migration': None}
        if new_migration is not None:
            out['migration'] = to_dict(mig)
            _apply_allocations(s, step.allocations, instance_uuid, out['migration'])
        elif mig is not None:
            _check_placement(step, caller, values, mig.source_compute, mig.dest_compute)
            new_status = status or step.status_after
            if status is not None and status != step.status_after and \
                    status not in step.status_choices:
                raise ValueError(f'{step_name} cannot set status {status}')
            mvalues = dict(migration_values or {}, status=new_status)
            if log:
                mvalues['policy_log'] = list(mig.policy_log or []) + list(log)
            out['migration'] = migration_cas(s, migration_uuid, mvalues,
                                             expected_status=list(step.status_before),
                                             row=mig)
            _apply_allocations(s, step.allocations, instance_uuid, out['migration'])
        elif step.allocations == 'drop_instance':
            _apply_allocations(s, step.allocations, instance_uuid, None)
        if step.migration_only:
            out['instance'] = to_dict(inst)
            record_events(s, instance_uuid, events, host)
            return out
        out['instance'] = instance_cas(
            s, instance_uuid, values, expected_task_state=list(step.task_before),
            expected_vm_state=list(step.vm_before) if step.vm_before else UNSET, row=inst,
            expected_driver=expected_driver)
        _record(s, instance_uuid, action, request_spec, fault, events, host)
        return out


# A compute's step of a move is authorized by the move naming it in this column.
_HOST_COLUMN = {states.SOURCE: 'source_compute', states.DEST: 'dest_compute'}


class _NoMatch(Exception):
    """A compare-and-swap of the one-statement path matched nothing."""


def _move_step_returning(step, instance_uuid, migration_uuid, new_migration, caller,
                         values, mvalues, events, fault, host, action, request_spec,
                         expected_driver):
    """A step of a move where UPDATE ... RETURNING exists: the migration's and the
    instance's compare-and-swap (or the new migration's insert, for a step that starts
    a move), the caller's authorization (the move names it as the step's owner) in the
    migration's WHERE, nothing read first. Raises _NoMatch, with the transaction rolled
    back, when either matches nothing: the whole path then reads both to tell why (or
    to find the step recorded already)."""
    with writer() as s:
        if new_migration is not None:
            mig = to_dict(_add_migration(s, step, new_migration))
        else:
            column = _HOST_COLUMN[step.owner] if caller is not None else None
            mig = migration_cas_returning(s, migration_uuid, instance_uuid, mvalues,
                                          list(step.status_before), column, caller)
        if mig is None:
            raise _NoMatch()
        _check_placement(step, caller, values, mig['source_compute'], mig['dest_compute'])
        _apply_allocations(s, step.allocations, instance_uuid, mig)
        inst = instance_cas_returning(
            s, instance_uuid, values, expected_task_state=list(step.task_before),
            expected_vm_state=list(step.vm_before) if step.vm_before else UNSET,
            expected_driver=expected_driver)
        if inst is None:
            raise _NoMatch()
        _record(s, instance_uuid, action, request_spec, fault, events, host)
        return {'instance': inst, 'migration': mig}


def _check_placement(step, caller, values, source, dest) -> None:
    """A compute's step places the instance only on a side of its move."""
    if caller is not None and ('host' in values or 'node' in values) and \
            values.get('host') not in (source, dest):
        raise exception.Invalid(message=f"{step.name} cannot place the instance "
                                        f"on {values.get('host')}")


def _record(s, instance_uuid, action, request_spec, fault, events, host) -> None:
    """What a step writes beside the state: its action, request spec, fault, events."""
    if action:
        add_action(s, instance_uuid, **action)
    if request_spec is not None:
        save_request_spec(s, instance_uuid, request_spec)
    if fault:
        add_fault(s, instance_uuid, fault['code'], fault['message'],
                  fault.get('details'), host)
    record_events(s, instance_uuid, events, host)


def _already_applied(step, inst, mig, status, vm_state) -> bool:
    """The record shows ``step`` done: a real transition whose after-state is recorded."""
    if step.opens:
        return False
    if step.migration_only:
        return mig is not None and mig.status == (status or step.status_after)
    if inst.task_state != step.task_after or (vm_state is not None and
                                                inst.vm_state != vm_state):
        return False
    if mig is None:
        return step.task_after not in step.task_before
    after = status or step.status_after
    if mig.status != after:
        return False
    return after not in step.status_before or step.task_after not in step.task_before


@retry_on_transient
def take_lease(instance_uuids, holder: str, task_states, previous=None,
               unplaced: bool = False) -> list[str]:
    """``holder`` (a conductor host) becomes the driver of the instances' tasks: a
    compare-and-swap on the task_state and on the previous driver (``previous``, or none
    or the holder itself), and with ``unplaced`` on the instance having no host yet (a
    build nobody placed). Returns the uuids it now drives."""
    uuids = list(instance_uuids)
    if not uuids:
        return []
    statement = _LEASE[previous is None, unplaced]
    params = {'holder': holder, 'previous': previous, 'task_states': list(task_states)}
    taken = []
    with writer() as s:
        conn = s.connection()
        for uuid in uuids:
            if conn.execute(statement, dict(params, w_uuid=uuid)).rowcount == 1:
                taken.append(uuid)
    return taken


def _lease_statement(free: bool, unplaced: bool):
    inst = models.Instance.__table__
    c = inst.c
    owners = (c.task_driver.is_(None) | (c.task_driver == bindparam('holder'))) if free \
        else (c.task_driver == bindparam('previous'))
    return update(inst).where(
        c.uuid == bindparam('w_uuid'), c.deleted.is_(False),
        c.task_state.in_(bindparam('task_states', expanding=True)), owners,
        c.host.is_(None) if unplaced else sa_true()).values(task_driver=bindparam('holder'))


# Built once (every build, move and reconciler pass takes a lease): (free, unplaced) ->
# the compare-and-swap; free: the task has no driver or this holder already.
_LEASE = {(free, unplaced): _lease_statement(free, unplaced)
          for free in (True, False) for unplaced in (True, False)}


@retry_on_transient
def events_only(instance_uuid: str, events: list, host: str | None) -> None:
    """Events of steps that change no state (pre-checks, abort, force-complete)."""
    with writer() as s:
        record_events(s, instance_uuid, events, host)


@retry_on_transient
def check_host(caller: str, instance_uuid: str, migration_uuid: str | None = None) -> None:
    """Authorize a compute host's read or non-step write about an instance."""
    with reader() as s:
        mig = _migration_row(s, migration_uuid) if migration_uuid else None
        authorize(s, caller, instance_uuid, mig)


@retry_on_transient
def unfinished_migrations(host: str) -> list[dict]:
    """Migrations naming ``host`` that are not final, reverted ones whose source still
    owes its finish (the instance is still reverting), and finished evacuations away from
    ``host`` it has not cleaned up after: the moves a host reconciles."""
    with reader() as s:
        names = (models.Migration.source_compute == host) | \
            (models.Migration.dest_compute == host)
        rows = list(s.scalars(select(models.Migration).where(
            names, models.Migration.status.notin_(states.MIGRATION_DONE))))
        rows += s.scalars(select(models.Migration).join(
            models.Instance, models.Instance.uuid == models.Migration.instance_uuid).where(
            names, models.Migration.status == states.MS.REVERTED,
            models.Instance.task_state == states.RESIZE_REVERTING,
            models.Instance.deleted.is_(False)))
        # Evacuations away from this host that it has not cleaned up after yet.
        rows += s.scalars(select(models.Migration).where(
            models.Migration.source_compute == host,
            models.Migration.migration_type == states.EVACUATION,
            models.Migration.status == states.MS.DONE))
        return [to_dict(r) for r in sorted(rows, key=lambda r: r.id)]


@retry_on_transient
def destroy_instance(instance_uuid: str, events: list | None, host: str | None) -> dict:
    """The guest is gone: the instance row is marked deleted, its unfinished moves end in
    error and every allocation of the instance and those moves is dropped, together."""
    with writer() as s:
        for mig in s.scalars(select(models.Migration).where(
                models.Migration.instance_uuid == instance_uuid,
                models.Migration.status.notin_(states.MIGRATION_DONE))):
            drop_allocations(s, mig.uuid)
            mig.status = states.MS.ERROR
        for mig in s.scalars(select(models.Migration).where(
                models.Migration.instance_uuid == instance_uuid,
                models.Migration.migration_type == states.EVACUATION,
                models.Migration.status == states.MS.DONE)):
            # The source's claim goes with the instance; the guest it may still hold
            # is an orphan there now.
            drop_allocations(s, mig.uuid)
            mig.status = states.MS.COMPLETED
        record_events(s, instance_uuid, events, host)
        return destroy_row(s, instance_uuid)


@retry_on_transient
def unfinished_work() -> list[tuple[dict, dict | None]]:
    """Every instance with a task or an unfinished move, with its unfinished migration
    (None if it has none): what the reconcilers look at. A reverted migration whose
    instance is still reverting counts as unfinished (its source owes the finish)."""
    Inst, M = models.Instance, models.Migration
    with reader() as s:
        migs = {}
        for m in s.scalars(select(M).join(Inst, Inst.uuid == M.instance_uuid).where(
                Inst.deleted.is_(False), M.hidden.is_(False),
                M.status.notin_(states.MIGRATION_DONE) |
                ((M.status == states.MS.REVERTED) &
                 (Inst.task_state == states.RESIZE_REVERTING))).order_by(M.id)):
            migs[m.instance_uuid] = m  # the newest wins
        rows = list(s.scalars(select(Inst).where(Inst.deleted.is_(False),
                                                 Inst.task_state.isnot(None))))
        seen = {r.uuid for r in rows}
        missing = [u for u in migs if u not in seen]
        if missing:
            rows += s.scalars(select(Inst).where(Inst.deleted.is_(False), Inst.uuid.in_(missing)))
        return [(to_dict(r), to_dict(migs[r.uuid]) if r.uuid in migs else None)
                for r in rows]
