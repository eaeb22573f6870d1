"""Conductor-side reconcile of work no compute owns: builds still waiting for a host and
cold moves still waiting for a destination after ``stuck_operation_timeout``.

Idempotent: it only touches instances whose state has not changed for longer than the
timeout, and every change is a compare-and-swap on the state it saw.
"""

import logging

from novalite import exception
from novalite.compute import states
from novalite.compute import utils as compute_utils
from novalite.db import api as db
from novalite.db import steps
from novalite.db.models import utcnow

LOG = logging.getLogger(__name__)


def _age(record) -> float:
    when = record.get('updated_at') or record.get('created_at')
    return (utcnow() - when).total_seconds() if when else 0.0


def reconcile_orphans(manager, context, conf) -> int:
    timeout = conf.conductor.stuck_operation_timeout
    fixed = 0
    for inst in db.instance_get_all_filtered(task_state=states.SCHEDULING, host=None):
        if _age(inst) < timeout:
            continue
        exc = exception.BuildAbortException(instance_uuid=inst['uuid'],
                                            reason='scheduling was interrupted')
        try:
            db.instance_update(inst['uuid'], {'vm_state': states.ERROR, 'task_state': None},
                               expected_task_state=states.SCHEDULING, expected_host=None)
        except exception.UnexpectedTaskStateError:
            continue
        db.delete_allocations(inst['uuid'])
        compute_utils.add_fault(db, inst['uuid'], exc, manager.host)
        fixed += 1
    for inst in db.instance_get_all_filtered(task_state=states.RESIZE_PREP):
        if _age(inst) < timeout:
            continue
        migs = [m for m in db.migration_get_all(instance_uuid=inst['uuid'])
                if m['status'] == states.MS.PRE_MIGRATING]
        if migs and migs[0]['dest_compute']:
            continue  # the destination compute owns it and reconciles it on restart
        exc = exception.MigrationError(
            reason='the move was interrupted before a destination was chosen')
        try:
            if migs:
                # One write: source allocation back, migration in error, task cleared.
                steps.apply_step('move_failed', inst['uuid'], migs[0]['uuid'],
                                 vm_state=inst['vm_state'],
                                 fault=compute_utils.fault_record(exc), host=manager.host)
            else:
                db.instance_update(inst['uuid'], {'task_state': None},
                                   expected_task_state=states.RESIZE_PREP)
                compute_utils.add_fault(db, inst['uuid'], exc, manager.host)
        except (exception.UnexpectedTaskStateError, exception.UnexpectedMigrationStatus):
            continue
        fixed += 1
    if fixed:
        LOG.info('Reconciled %d interrupted operations', fixed)
    return fixed
