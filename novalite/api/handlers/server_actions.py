"""POST /servers/{id}/action: one small function per action key."""

from novalite import exception
from novalite.api import common, faults, validation
from novalite.api.handlers.servers import RULE, load_server, new_password, target
from novalite.api.schemas import server_actions as schemas
from novalite.api.schemas import types


def _authorize(req, rule, inst):
    req.app.authorizer.authorize(req.context, rule, target(inst))


def _accepted():
    return common.empty_response(202)


def start(req, inst, _value):
    _authorize(req, RULE % 'start', inst)
    req.app.compute_api.start(req.context, inst)
    return _accepted()


def stop(req, inst, _value):
    _authorize(req, RULE % 'stop', inst)
    req.app.compute_api.stop(req.context, inst)
    return _accepted()


def reboot(req, inst, value):
    _authorize(req, RULE % 'reboot', inst)
    req.app.compute_api.reboot(req.context, inst, value['type'].upper())
    return _accepted()


def resize(req, inst, value):
    _authorize(req, RULE % 'resize', inst)
    flavor_id = str(value['flavorRef']).rstrip('/').split('/')[-1]
    disk_config = value.get('OS-DCF:diskConfig')
    with faults.remap({exception.FlavorNotFound: 400, exception.ImageNotFound: 400,
                       exception.ComputeHostNotFound: 400}):
        req.app.compute_api.resize(
            req.context, inst, flavor_id=flavor_id,
            auto_disk_config=None if disk_config is None else disk_config == 'AUTO')
    return _accepted()


def confirm_resize(req, inst, _value):
    _authorize(req, RULE % 'confirm_resize', inst)
    try:
        req.app.compute_api.confirm_resize(req.context, inst)
    except exception.MigrationNotFound:
        raise faults.bad_request('Instance has not been resized.')
    return common.empty_response(204)


def revert_resize(req, inst, _value):
    _authorize(req, RULE % 'revert_resize', inst)
    try:
        with faults.remap({exception.FlavorNotFound: 400}):
            req.app.compute_api.revert_resize(req.context, inst)
    except exception.MigrationNotFound:
        raise faults.bad_request('Instance has not been resized.')
    return _accepted()


def migrate(req, inst, value):
    host = None
    if common.mv_at_least(req, '2.56') and isinstance(value, dict):
        host = value.get('host')
    _authorize(req, 'os_compute_api:os-migrate-server:migrate', inst)
    if host:
        _authorize(req, 'os_compute_api:os-migrate-server:migrate:host', inst)
    with faults.remap({exception.ComputeHostNotFound: 400}):
        req.app.compute_api.resize(req.context, inst, flavor_id=None, host=host)
    return _accepted()


def migrate_live(req, inst, value):
    host = value.get('host')
    block = value['block_migration']
    block = 'auto' if block == 'auto' else types.to_bool(block)
    disk_over_commit = (types.to_bool(value['disk_over_commit'])
                        if 'disk_over_commit' in value else None)
    force = None
    if common.mv_at_least(req, '2.30') and not common.mv_at_least(req, '2.68'):
        force = types.to_bool(value.get('force', False))
        if force and not host:
            raise faults.bad_request("Can't force to a non-provided destination")
    if not common.mv_at_least(req, '2.30') and host:
        force = True  # before 2.30 a named host bypasses the scheduler
    _authorize(req, 'os_compute_api:os-migrate-server:migrate_live', inst)
    if host:
        _authorize(req, 'os_compute_api:os-migrate-server:migrate_live:host', inst)
    with faults.remap({exception.ComputeHostNotFound: 400}):
        req.app.compute_api.live_migrate(
            req.context, inst, host, block, disk_over_commit, bool(force),
            common.mv_at_least(req, '2.34'))
    return _accepted()


def evacuate(req, inst, value):
    """Rebuild a server of a failed host on another one (200, as Nova answers). Up to
    2.13 the answer carries an admin password, as Nova's does; like a boot's, it is not
    injected into the guest (no driver here injects passwords). From 2.95 the server
    ends stopped."""
    _authorize(req, 'os_compute_api:os-evacuate', inst)
    host = value.get('host')
    force = False
    if common.mv_at_least(req, '2.29'):
        force = types.to_bool(value.get('force', False))
        if force and not host:
            raise faults.bad_request("Can't force to a non-provided destination")
    if common.mv_at_least(req, '2.14'):
        password = value.get('adminPass') or new_password()
    else:
        shared = types.to_bool(value['onSharedStorage'])
        if shared and 'adminPass' in value:
            raise faults.bad_request("admin password can't be changed on existing disk")
        password = value.get('adminPass') or (None if shared else new_password())
    if host is not None:
        try:
            req.app.compute_api.service_host(req.context, host)
        except exception.ComputeHostNotFound:
            raise faults.not_found('Compute host %s not found.' % host)
    req.app.compute_api.evacuate(req.context, inst, host=host, force=force,
                                 stop=common.mv_at_least(req, '2.95'))
    if not common.mv_at_least(req, '2.14') and req.app.conf.api.enable_instance_password:
        return common.json_response({'adminPass': password})
    return common.empty_response(200)


def lock(req, inst, value):
    _authorize(req, 'os_compute_api:os-lock-server:lock', inst)
    reason = value.get('locked_reason') if isinstance(value, dict) else None
    req.app.compute_api.lock(req.context, inst, reason=reason)
    return _accepted()


def unlock(req, inst, _value):
    _authorize(req, 'os_compute_api:os-lock-server:unlock', inst)
    ctx = req.context
    # A lock taken by an administrator needs the override rule to be lifted.
    if inst.get('locked') and inst.get('locked_by') == 'admin' and not ctx.is_admin:
        _authorize(req, 'os_compute_api:os-lock-server:unlock:unlock_override', inst)
    req.app.compute_api.unlock(ctx, inst)
    return _accepted()


# action key -> (handler, schema or a function of the microversion giving one, min MV)
ACTIONS = {
    'os-start': (start, None, None),
    'os-stop': (stop, None, None),
    'reboot': (reboot, schemas.REBOOT, None),
    'resize': (resize, schemas.RESIZE, None),
    'confirmResize': (confirm_resize, None, None),
    'revertResize': (revert_resize, None, None),
    'migrate': (migrate, lambda mv: schemas.MIGRATE_V256 if mv >= (2, 56) else None, None),
    'os-migrateLive': (migrate_live, schemas.migrate_live, None),
    'lock': (lock, lambda mv: schemas.LOCK_V273 if mv >= (2, 73) else None, None),
    'unlock': (unlock, None, None),
    'evacuate': (evacuate, schemas.evacuate, None),
}


def dispatch(req, server_id):
    body = validation.require_body(req)
    if len(body) != 1:
        raise faults.bad_request('Malformed request body: too many body keys'
                                 if body else 'Malformed request body: no action given')
    (key, value), = body.items()
    if key not in ACTIONS:
        raise faults.bad_request('There is no such action: %s' % key)
    handler, schema, _ = ACTIONS[key]
    if callable(schema):
        schema = schema(req.mv)
    if schema is not None:
        validation.validate(body, schema)
    inst = load_server(req, server_id)
    return handler(req, inst, value)
