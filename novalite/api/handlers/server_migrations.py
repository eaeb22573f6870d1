"""/servers/{id}/migrations: in-progress moves, force-complete and abort.

Nova lists in-progress live migrations here; novalite lists in-progress cold moves
(resize, cold migration) too, with their disk copy's byte counters, so one place shows
every move's progress. Force-complete and abort stay live-migration only.
"""

from novalite import exception
from novalite.api import common, faults, validation
from novalite.api.handlers.servers import RULE, load_server, target
from novalite.api.schemas import server_actions as schemas
from novalite.api.views import migrations as views
from novalite.compute import states
from novalite.db import api as db


def _migration_id(value: str, not_found_code: int = 404):
    number = common.int_id(value)
    if number is not None:
        return number
    if common.is_uuid(value):
        return str(value)
    raise faults.HTTPError(not_found_code, 'Migration %s could not be found.' % value
                           if not_found_code == 404 else
                           'Invalid migration id %s' % value)


def _in_progress(server_id: str) -> list[dict]:
    """The server's live migrations and cold moves under way, newest first."""
    under_way = {states.LIVE_MIGRATION: views.LIVE_IN_PROGRESS,
                 **dict.fromkeys(states.COLD_MOVES, states.COLD_MOVE_IN_PROGRESS)}
    return [m for m in db.migration_get_all(instance_uuid=server_id)
            if m['status'] in under_way.get(m['migration_type'], ())]


def index(req, server_id):
    inst = load_server(req, server_id)
    authz = req.app.authorizer
    authz.authorize(req.context, RULE % 'migrations:index', target(inst))
    show_host = authz.check(req.context, RULE % 'migrations:index:host', target(inst))
    return common.json_response({'migrations': [
        views.server_migration(req, m, show_host) for m in _in_progress(inst['uuid'])]})


def show(req, server_id, migration_id):
    inst = load_server(req, server_id)
    req.app.authorizer.authorize(req.context, RULE % 'migrations:show', target(inst))
    wanted = _migration_id(migration_id)
    for mig in _in_progress(inst['uuid']):
        if wanted in (mig['id'], mig['uuid']):
            return common.json_response({'migration': views.server_migration(req, mig)})
    raise faults.not_found('In-progress live migration %s is not found for server %s.'
                           % (migration_id, server_id))


def action(req, server_id, migration_id):
    body = validation.require_body(req)
    validation.validate(body, schemas.FORCE_COMPLETE)
    inst = load_server(req, server_id)
    req.app.authorizer.authorize(req.context, RULE % 'migrations:force_complete',
                                 target(inst))
    mid = _migration_id(migration_id, not_found_code=400)
    with faults.remap({exception.MigrationNotFound: 400,
                       exception.UnexpectedMigrationStatus: 400}):
        req.app.compute_api.live_migrate_force_complete(req.context, inst, mid)
    return common.empty_response(202)


def delete(req, server_id, migration_id):
    inst = load_server(req, server_id)
    req.app.authorizer.authorize(req.context, RULE % 'migrations:delete', target(inst))
    mid = _migration_id(migration_id)
    with faults.remap({exception.UnexpectedMigrationStatus: 400}):
        req.app.compute_api.live_migrate_abort(req.context, inst, mid,
                                               common.mv_at_least(req, '2.65'))
    return common.empty_response(202)
