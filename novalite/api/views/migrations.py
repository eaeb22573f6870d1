"""Migration representations for /os-migrations and /servers/{id}/migrations."""

from novalite.api import common
from novalite.compute import states

LIVE_IN_PROGRESS = states.LIVE_MIGRATION_IN_PROGRESS
HOST_FIELDS = ('source_compute', 'source_node', 'dest_compute', 'dest_node', 'dest_host')


def _policy(req, mig: dict) -> dict:
    """novalite's own fields: the live-migration policy applied and its decisions
    ({'at', 'decision', 'detail'}, oldest first), shown once the operator has defined
    policies (``[migration] policy_file``). Without them the body is Nova's exactly:
    clients that validate it strictly (tempest's schemas) refuse unknown keys."""
    if not req.app.conf.migration.policy_file:
        return {}
    return {'policy': mig.get('policy'),
            'policy_log': [dict(e) for e in mig.get('policy_log') or []]}


def server_migration(req, mig: dict, show_host: bool = True) -> dict:
    out = {
        'created_at': common.iso_micro(mig['created_at']),
        'updated_at': common.iso_micro(mig.get('updated_at')),
        'id': mig['id'],
        'server_uuid': mig['instance_uuid'],
        'status': mig['status'],
        'memory_total_bytes': mig.get('memory_total'),
        'memory_processed_bytes': mig.get('memory_processed'),
        'memory_remaining_bytes': mig.get('memory_remaining'),
        'disk_total_bytes': mig.get('disk_total'),
        'disk_processed_bytes': mig.get('disk_processed'),
        'disk_remaining_bytes': mig.get('disk_remaining'),
    }
    out.update(_policy(req, mig))
    for key in HOST_FIELDS:
        out[key] = mig.get(key) if show_host else None
    if common.mv_at_least(req, '2.59'):
        out['uuid'] = mig['uuid']
    if common.mv_at_least(req, '2.80'):
        out['user_id'] = mig.get('user_id')
        out['project_id'] = mig.get('project_id')
    return out


def migration(req, mig: dict, show_host: bool = True) -> dict:
    out = {
        'id': mig['id'],
        'instance_uuid': mig['instance_uuid'],
        'status': mig['status'],
        'old_instance_type_id': mig.get('old_instance_type_id'),
        'new_instance_type_id': mig.get('new_instance_type_id'),
        'created_at': common.iso_micro(mig['created_at']),
        'updated_at': common.iso_micro(mig.get('updated_at')),
    }
    out.update(_policy(req, mig))
    for key in HOST_FIELDS:
        out[key] = mig.get(key) if show_host else None
    if common.mv_at_least(req, '2.23'):
        out['migration_type'] = mig['migration_type']
        if (mig['migration_type'] == 'live-migration'
                and mig['status'] in LIVE_IN_PROGRESS):
            path = 'servers/%s/migrations' % mig['instance_uuid']
            out['links'] = common.links(req, path, mig['id'])
    if common.mv_at_least(req, '2.59'):
        out['uuid'] = mig['uuid']
    if common.mv_at_least(req, '2.80'):
        out['user_id'] = mig.get('user_id')
        out['project_id'] = mig.get('project_id')
    return out
