"""POST/GET /os-host-drains, GET/DELETE /os-host-drains/{id}: server-side host drains.

A novalite extension (no microversion; listed in the version document's links). The
request is recorded and answered at once (202); the conductors' drain loop
(``conductor/drain.py``) does the moving.
"""

from novalite import exception
from novalite.api import common, faults, validation
from novalite.api.schemas import host_drains as schemas
from novalite.compute import states
from novalite.db import api as db

RULE = 'novalite:host-drains:%s'
SS = states.DrainServerState
DEFAULT_MAX_PARALLEL = 2


def _progress(mig: dict | None) -> dict | None:
    if mig is None:
        return None
    return {'migration_status': mig['status'],
            'memory_total_bytes': mig['memory_total'],
            'memory_processed_bytes': mig['memory_processed'],
            'memory_remaining_bytes': mig['memory_remaining'],
            'disk_total_bytes': mig['disk_total'],
            'disk_processed_bytes': mig['disk_processed'],
            'disk_remaining_bytes': mig['disk_remaining']}


def _moves_under_way(drain) -> dict[str, dict]:
    """The newest unfinished migration out of the host of each server the drain is
    moving."""
    moving = [r['instance_uuid'] for r in drain['servers'] if r['state'] == SS.MOVING]
    return db.drain_migrations_under_way(drain['host'], moving)


def view(drain: dict, detail: bool = True) -> dict:
    servers = drain['servers']
    count = dict.fromkeys(states.DRAIN_SERVER_STATES, 0)
    for row in servers:
        count[row['state']] += 1
    out = {
        'id': drain['uuid'], 'host': drain['host'], 'mode': drain['mode'],
        'max_parallel': drain['max_parallel'], 'status': drain['status'],
        'total': len(servers), 'moved': count[SS.MOVED], 'moving': count[SS.MOVING],
        'failed': count[SS.FAILED], 'gone': count[SS.GONE],
        'cancelled': count[SS.CANCELLED],
        'remaining': count[SS.PENDING] + count[SS.MOVING],
        'conductor': drain['driver'],
        'created_at': common.iso_micro(drain['created_at']),
        'updated_at': common.iso_micro(drain['updated_at']),
        'finished_at': common.iso_micro(drain['finished_at']),
    }
    if detail:
        migs = _moves_under_way(drain)
        out['servers'] = [{
            'server_id': r['instance_uuid'], 'state': r['state'], 'move': r['move'],
            'attempts': r['attempts'], 'reason': r['reason'],
            'migration_id': (migs[r['instance_uuid']]['uuid']
                             if r['instance_uuid'] in migs else r['migration_uuid']),
            'progress': _progress(migs.get(r['instance_uuid'])),
            'updated_at': common.iso_micro(r['updated_at']),
        } for r in servers]
    return out


def _authorize(req, action):
    ctx = req.context
    req.app.authorizer.authorize(ctx, RULE % action, {'project_id': ctx.project_id,
                                                      'user_id': ctx.user_id})


def _load(req, drain_id):
    try:
        return db.drain_get(drain_id)
    except exception.HostDrainNotFound as e:
        raise faults.not_found(str(e))


def create(req):
    body = validation.require_body(req)
    validation.validate(body, schemas.CREATE)
    _authorize(req, 'create')
    values = body['drain']
    host = values['host']
    instances = db.instance_get_all_by_host(host)
    ctx = req.context
    with faults.remap({exception.ComputeHostNotFound: 404, exception.HostDrainExists: 409}):
        drain = db.drain_create(host, values.get('mode', 'auto'),
                                values.get('max_parallel', DEFAULT_MAX_PARALLEL),
                                [i['uuid'] for i in instances], user_id=ctx.user_id,
                                project_id=ctx.project_id)
    return common.json_response({'drain': view(drain)}, status=202)


def index(req):
    _authorize(req, 'index')
    common.check_params(req, {'host', 'status'})
    status = common.single(req, 'status')
    if status is not None and status not in states.DRAIN_ACTIVE + states.DRAIN_DONE:
        raise faults.bad_request('Invalid status %r: one of %s' % (
            status, ', '.join(states.DRAIN_ACTIVE + states.DRAIN_DONE)))
    drains = db.drain_get_all(host=common.single(req, 'host'), status=status)
    return common.json_response({'drains': [view(d, detail=False) for d in drains]})


def show(req, drain_id):
    _authorize(req, 'show')
    return common.json_response({'drain': view(_load(req, drain_id))})


def delete(req, drain_id):
    """Cancel: no new move starts; the moves under way finish (status ``cancelling``
    until they have)."""
    _authorize(req, 'delete')
    _load(req, drain_id)
    with faults.remap({exception.HostDrainNotFound: 404, exception.HostDrainFinished: 409}):
        db.drain_cancel(drain_id)
    return common.empty_response(202)
