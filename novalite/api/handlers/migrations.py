"""GET /os-migrations."""

from novalite import exception
from novalite.api import common, faults
from novalite.api.views import migrations as views
from novalite.db import listing

RULE = 'os_compute_api:os-migrations:%s'


def _allowed(req) -> set[str]:
    allowed = {'hidden', 'host', 'instance_uuid', 'source_compute', 'status',
               'migration_type', 'limit', 'marker', 'changes-since'}
    if common.mv_at_least(req, '2.66'):
        allowed.add('changes-before')
    if common.mv_at_least(req, '2.80'):
        allowed |= {'user_id', 'project_id'}
    return allowed


def index(req):
    ctx = req.context
    authz = req.app.authorizer
    authz.authorize(ctx, RULE % 'index')
    paged = common.mv_at_least(req, '2.59')
    if paged:
        common.check_params(req, _allowed(req))
    project_id = (common.single(req, 'project_id')
                  if common.mv_at_least(req, '2.80') else None)
    if project_id is None or project_id != ctx.project_id:
        authz.authorize(ctx, RULE % 'index:all_projects')
    show_host = authz.check(ctx, RULE % 'index:host')
    kwargs = {key: common.single(req, key) for key in
              ('instance_uuid', 'status', 'migration_type', 'host', 'source_compute')}
    kwargs['project_id'] = project_id
    if common.mv_at_least(req, '2.80'):
        kwargs['user_id'] = common.single(req, 'user_id')
    limit = marker = None
    if paged:
        limit, marker = common.paging(req, req.app.conf)
        if 'changes-since' in req.GET:
            kwargs['changes_since'] = common.parse_time(
                req, 'changes-since', common.single(req, 'changes-since'))
        if common.mv_at_least(req, '2.66') and 'changes-before' in req.GET:
            kwargs['changes_before'] = common.parse_time(
                req, 'changes-before', common.single(req, 'changes-before'))
            since = kwargs.get('changes_since')
            if since and kwargs['changes_before'] < since:
                raise faults.bad_request('The value of changes-since must be less than '
                                         'or equal to changes-before.')
    with faults.remap({exception.Invalid: 400}):
        rows = listing.migrations(limit=limit, marker=marker, **kwargs)
    items = [views.migration(req, m, show_host) for m in rows]
    body = {'migrations': items}
    if paged:
        link = common.next_link(req, 'os-migrations', items, limit, marker_key='uuid')
        if link:
            body['migrations_links'] = link
    return common.json_response(body)
