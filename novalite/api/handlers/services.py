"""/os-services: list, enable/disable/force-down, delete."""

from novalite import exception
from novalite.api import common, faults, validation
from novalite.api.schemas import types
from novalite.compute import states
from novalite.db import api as db
from novalite.db import listing

RULE = 'os_compute_api:os-services:%s'
COMPUTE_BINARY = 'novalite-compute'
BINARY_ALIASES = {'nova-compute': COMPUTE_BINARY}
_DONE = states.MIGRATION_DONE

UPDATE_V253 = {
    'type': 'object',
    'properties': {
        'status': {'type': 'string', 'enum': ['enabled', 'disabled']},
        'disabled_reason': {'type': 'string', 'minLength': 1, 'maxLength': 255},
        'forced_down': types.BOOLEAN,
    },
    'additionalProperties': False,
}


def _binary(value):
    return BINARY_ALIASES.get(value, value)


def _zone(req, svc):
    conf = req.app.conf
    if svc['binary'] == COMPUTE_BINARY:
        return svc.get('availability_zone') or conf.default_availability_zone
    return conf.internal_service_availability_zone


def _view(req, svc) -> dict:
    out = {
        'id': svc['uuid'] if common.mv_at_least(req, '2.53') else svc['id'],
        'binary': svc['binary'], 'host': svc['host'], 'zone': _zone(req, svc),
        'status': 'disabled' if svc.get('disabled') else 'enabled',
        'state': ('up' if db.service_is_up(svc, req.app.conf.service_down_time)
                  else 'down'),
        'updated_at': common.iso_micro(svc.get('updated_at') or svc.get('last_seen_up')),
        'disabled_reason': svc.get('disabled_reason'),
    }
    if common.mv_at_least(req, '2.11'):
        out['forced_down'] = bool(svc.get('forced_down'))
    return out


def index(req):
    req.app.authorizer.authorize(req.context, RULE % 'list')
    if common.mv_at_least(req, '2.75'):
        common.check_params(req, {'host', 'binary'})
    host = common.single(req, 'host')
    binary = common.single(req, 'binary')
    rows = db.service_get_all(host=host, binary=_binary(binary) if binary else None)
    return common.json_response({'services': [_view(req, s) for s in rows]})


def _find(host, binary) -> dict:
    rows = db.service_get_all(host=host, binary=binary)
    if not rows:
        raise faults.not_found('Service %s on host %s could not be found.' % (binary, host))
    return rows[0]


def _refresh(svc: dict, result) -> dict:
    if isinstance(result, dict) and result.get('uuid') == svc['uuid']:
        return result
    return db.service_get(svc['uuid'])


def _update_legacy(req, action):
    actions = ('enable', 'disable', 'disable-log-reason')
    if common.mv_at_least(req, '2.11'):
        actions += ('force-down',)
    if action not in actions:
        raise faults.not_found('Unknown action')
    body = validation.require_body(req)
    if not isinstance(body.get('host'), str) or not isinstance(body.get('binary'), str):
        raise faults.bad_request('Invalid input: host and binary are required')
    binary = _binary(body['binary'])
    svc = _find(body['host'], binary)
    if binary != COMPUTE_BINARY:
        raise faults.bad_request("Updating a %s service is not supported. Only "
                                 "nova-compute services can be updated." % body['binary'])
    ctx = req.context
    compute = req.app.compute_api
    out = {'host': body['host'], 'binary': body['binary']}
    if action == 'enable':
        svc = _refresh(svc, compute.service_set_enabled(ctx, svc, True, None))
        out['status'] = 'enabled'
    elif action in ('disable', 'disable-log-reason'):
        reason = body.get('disabled_reason')
        if action == 'disable-log-reason':
            if not isinstance(reason, str) or not reason.strip() or len(reason) > 255:
                raise faults.bad_request('Missing disabled reason field')
            out['disabled_reason'] = reason
        else:
            reason = None
        svc = _refresh(svc, compute.service_set_enabled(ctx, svc, False, reason))
        out['status'] = 'disabled'
    else:
        if 'forced_down' not in body:
            raise faults.bad_request('Missing forced_down field')
        try:
            validation.validate(body['forced_down'], types.BOOLEAN)
        except faults.HTTPError:
            raise faults.bad_request('Invalid value for forced_down')
        forced = types.to_bool(body['forced_down'])
        compute.service_force_down(ctx, svc, forced)
        out['forced_down'] = forced
    return common.json_response({'service': out})


def _update_v253(req, service_id):
    if not common.is_uuid(service_id):
        raise faults.bad_request('Invalid uuid %s' % service_id)
    body = validation.require_body(req)
    validation.validate(body, UPDATE_V253)
    try:
        svc = db.service_get(str(service_id))
    except exception.ServiceNotFound:
        raise faults.not_found('Service %s could not be found.' % service_id)
    if svc['binary'] != COMPUTE_BINARY:
        raise faults.bad_request("Updating a %s service is not supported. Only "
                                 "nova-compute services can be updated." % svc['binary'])
    status = body.get('status')
    reason = body.get('disabled_reason')
    if status == 'enabled' and reason:
        raise faults.bad_request("Specifying 'disabled_reason' with status 'enabled' is "
                                 "invalid.")
    if reason and status != 'disabled':
        raise faults.bad_request("'disabled_reason' is only supported when 'status' is "
                                 "'disabled'.")
    if status is None and 'forced_down' not in body:
        raise faults.bad_request("No updates were requested. Fields 'status' or "
                                 "'forced_down' should be specified.")
    ctx = req.context
    compute = req.app.compute_api
    # forced_down first: a refused force-up leaves the status as it was too.
    if 'forced_down' in body:
        compute.service_force_down(ctx, svc, types.to_bool(body['forced_down']))
    if status is not None:
        compute.service_set_enabled(ctx, svc, status == 'enabled',
                                    reason if status == 'disabled' else None)
    return common.json_response({'service': _view(req, db.service_get(svc['uuid']))})


def update(req, service_id):
    req.app.authorizer.authorize(req.context, RULE % 'update')
    if common.mv_at_least(req, '2.53'):
        return _update_v253(req, service_id)
    return _update_legacy(req, service_id)


def delete(req, service_id):
    req.app.authorizer.authorize(req.context, RULE % 'delete')
    if common.mv_at_least(req, '2.53'):
        if not common.is_uuid(service_id):
            raise faults.bad_request('Invalid uuid %s' % service_id)
        key = str(service_id)
    else:
        key = common.int_id(service_id)
        if key is None:
            raise faults.bad_request('Invalid service id %s' % service_id)
    try:
        svc = db.service_get(key)
    except exception.ServiceNotFound:
        raise faults.not_found('Service %s could not be found.' % service_id)
    if svc['binary'] == COMPUTE_BINARY:
        if listing.instance_count_on_host(svc['host']):
            raise faults.conflict('Unable to delete compute service that is hosting '
                                  'instances. Migrate or delete the instances first.')
        busy = [m for m in db.migration_get_all(host=svc['host'])
                if m['status'] not in _DONE]
        if busy:
            raise faults.conflict('Unable to delete compute service that has in-progress '
                                  'migrations. Complete the migrations or delete the '
                                  'instances first.')
    db.service_delete(svc['id'])
    return common.empty_response(204)
