"""What a compute host may ask of the conductor, each checked against the calling host.

A compute never opens the database. Everything it reads or writes comes through these
functions: reports and heartbeats only under its own name, reads and writes only of
instances on it or in a move that names it, and every move step through the state table
(``db.steps.apply_step``) in one transaction.
"""

import logging

from novalite import exception
from novalite.compute import states
from novalite.db import api as db
from novalite.db import steps

LOG = logging.getLogger(__name__)


# Registration, heartbeats and reports are written under the calling host's own name: a
# compute cannot speak for another.
def service_register(caller, binary, topic, availability_zone=None):
    return db.service_create(caller, binary, topic, availability_zone)


def service_heartbeat(caller, binary):
    return db.service_heartbeat(caller, binary)


def compute_node_report(caller, nodename, resources, allocation_ratios, reserved, traits):
    return db.compute_node_update(caller, nodename, resources, allocation_ratios, reserved,
                                  traits)


_REPORT_KEYS = frozenset({'nodename', 'resources', 'allocation_ratios', 'reserved', 'traits'})
MAX_REPORTS = 1000


def compute_nodes_report(caller, reports):
    """Several nodes of the calling host in one transaction; returns nodename -> the
    compute node's uuid."""
    if not isinstance(reports, list) or not 0 < len(reports) <= MAX_REPORTS or any(
            not isinstance(r, dict) or set(r) != _REPORT_KEYS
            or not isinstance(r['nodename'], str) or not isinstance(r['resources'], dict)
            for r in reports):
        raise exception.Invalid(message=f'compute_nodes_report takes a list of 1 to {MAX_REPORTS} '
                                f'reports, each with exactly {sorted(_REPORT_KEYS)}')
    nodes = db.compute_nodes_update(caller, reports)
    return {cn['hypervisor_hostname']: cn['uuid'] for cn in nodes}


def host_instances(caller):
    return db.instance_get_all_by_host(caller)


def host_migrations(caller):
    return steps.unfinished_migrations(caller)


def instance_get(caller, instance_uuid):
    steps.check_host(caller, instance_uuid)
    return db.instance_get(instance_uuid)


_CHANGE_KEYS = frozenset({'instance_values', 'migration_values', 'vm_state', 'status',
                          'events', 'fault'})
# Columns a compute may write with a step: never the owner, the flavor it was not given
# by the move, or anything that would move the instance somewhere the move does not say.
_INSTANCE_COLUMNS = frozenset({'power_state', 'progress', 'launched_at', 'host', 'node',
                               'flavor', 'old_flavor', 'new_flavor', 'system_metadata'})
_MIGRATION_COLUMNS = frozenset({'dest_host', 'memory_total', 'memory_processed',
                                'memory_remaining', 'disk_total', 'disk_processed',
                                'disk_remaining'})


def _checked(values, allowed, what):
    values = dict(values or {})
    extra = set(values) - allowed
    if extra:
        raise exception.Invalid(message=f'A compute may not write {what} {sorted(extra)}')
    return values


def record_step(caller, step, instance_uuid, migration_uuid, changes):
    extra = set(changes) - _CHANGE_KEYS
    if extra:
        raise exception.Invalid(message=f'Unknown step changes {sorted(extra)}')
    values = _checked(changes.get('instance_values'), _INSTANCE_COLUMNS, 'instance')
    if migration_uuid is None and values.get('host') is not None:
        raise exception.Invalid(message=f'{step} cannot place an instance on a host')
    # A move's instance may only be placed on a side of that move: apply_step checks
    # it against the migration it reads in the step's own transaction.
    return steps.apply_step(
        step, instance_uuid, migration_uuid, caller=caller, instance_values=values,
        migration_values=_checked(changes.get('migration_values'), _MIGRATION_COLUMNS,
                                  'migration'),
        vm_state=changes.get('vm_state'), status=changes.get('status'),
        events=changes.get('events'), fault=changes.get('fault'), host=caller)


_DECISION_KEYS = frozenset({'at', 'decision', 'detail'})


def _decisions(entries):
    out = []
    for entry in entries or []:
        if not isinstance(entry, dict) or set(entry) - _DECISION_KEYS or \
                not entry.get('decision'):
            raise exception.Invalid(message=f'Not a policy decision: {entry!r}')
        out.append({'at': str(entry.get('at') or ''), 'decision': str(entry['decision']),
                    'detail': str(entry.get('detail') or '')})
    return out


def record_progress(caller, instance_uuid, progress=None, migration_uuid=None,
                    migration_values=None, decisions=None):
    steps.check_host(caller, instance_uuid, migration_uuid)
    if migration_uuid and decisions:
        db.migration_log_append(migration_uuid, _decisions(decisions))
    if migration_uuid and migration_values:
        # Progress sent before the move ended may arrive after its final step: a
        # finished record keeps what its final step wrote.
        try:
            db.migration_update(migration_uuid, _checked(
                migration_values, _MIGRATION_COLUMNS, 'migration'),
                expected_status=states.MIGRATION_UNFINISHED)
        except exception.UnexpectedMigrationStatus:
            LOG.debug('Progress of finished migration %s dropped', migration_uuid)
    if progress is not None:
        try:
            db.instance_update(instance_uuid, {'progress': int(progress)})
        except exception.InstanceNotFound:
            pass


def instance_power_synced(caller, instance_uuid, power_state, expected_task_state=None):
    steps.check_host(caller, instance_uuid)
    return db.instance_update(instance_uuid, {'power_state': power_state},
                              expected_task_state=expected_task_state)


def instance_destroyed(caller, instance_uuid, events=None):
    """The guest is gone from the host: mark the instance deleted, fail its unfinished
    moves and drop every allocation they held, in one transaction."""
    steps.check_host(caller, instance_uuid)
    return steps.destroy_instance(instance_uuid, events, caller)


def record_events(caller, instance_uuid, events):
    steps.check_host(caller, instance_uuid)
    steps.events_only(instance_uuid, events, caller)


def release_claim(caller, instance_uuid, nodename=None, events=None):
    steps.check_host(caller, instance_uuid)
    if events:
        steps.events_only(instance_uuid, events, caller)
    rp = None
    if nodename:
        try:
            rp = db.compute_node_get_by_host_and_node(caller, nodename)['uuid']
        except exception.ComputeHostNotFound:
            return 0
    return db.delete_allocations(instance_uuid, rp)


# Read by the RPC contract test: the conductor methods that take a calling host.
HOST_METHODS = ('service_register', 'service_heartbeat', 'compute_node_report',
                'compute_nodes_report',
                'host_instances', 'host_migrations', 'instance_get', 'record_step',
                'record_progress', 'record_events', 'instance_power_synced',
                'instance_destroyed', 'release_claim')
