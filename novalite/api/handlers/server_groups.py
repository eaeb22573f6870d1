"""GET/POST /os-server-groups, GET/DELETE /os-server-groups/{id}."""

from novalite import exception
from novalite.api import common, faults, validation
from novalite.api.schemas import server_groups as schemas
from novalite.db import api as db

RULE = 'os_compute_api:os-server-groups:%s'


def view(req, group: dict) -> dict:
    out = {'id': group['uuid'], 'name': group['name']}
    if common.mv_at_least(req, '2.64'):
        out['policy'] = group['policy']
        out['rules'] = dict(group['rules'])
    else:
        out['policies'] = [group['policy']]
        out['metadata'] = {}
    out['members'] = list(group['members'])
    if common.mv_at_least(req, '2.13'):
        out['project_id'] = group['project_id']
        out['user_id'] = group['user_id']
    return out


def _load(req, group_id: str, action: str) -> dict:
    """The group, 404 when it does not exist or belongs to another project (unless the
    caller is an administrator), as Nova's lookup."""
    ctx = req.context
    try:
        group = db.group_get(group_id)
    except exception.InstanceGroupNotFound as e:
        raise faults.not_found(str(e))
    if not ctx.is_admin and group['project_id'] != ctx.project_id:
        raise faults.not_found(str(exception.InstanceGroupNotFound(group_uuid=group_id)))
    req.app.authorizer.authorize(req.context, RULE % action,
                                 {'project_id': group['project_id'],
                                  'user_id': group['user_id']})
    return group


def index(req):
    ctx = req.context
    req.app.authorizer.authorize(ctx, RULE % 'index', {'project_id': ctx.project_id,
                                                       'user_id': ctx.user_id})
    if common.mv_at_least(req, '2.75'):
        common.check_params(req, {'all_projects', 'limit', 'offset'})
    offset = common.int_param(req, 'offset', minimum=0, default=0)
    limit = common.int_param(req, 'limit', minimum=0)
    max_limit = req.app.conf.api.max_limit
    limit = max_limit if limit is None else min(limit, max_limit)
    # As Nova: all_projects from a non-administrator is no error, it lists their own.
    if 'all_projects' in req.GET and ctx.is_admin:
        req.app.authorizer.authorize(ctx, RULE % 'index:all_projects',
                                     {'project_id': ctx.project_id,
                                      'user_id': ctx.user_id})
        groups = db.group_get_all()
    else:
        groups = db.group_get_all(ctx.project_id)
    page = groups[offset:offset + limit]
    return common.json_response({'server_groups': [view(req, g) for g in page]})


def show(req, group_id):
    return common.json_response({'server_group': view(req, _load(req, group_id, 'show'))})


def create(req):
    ctx = req.context
    body = validation.require_body(req)
    validation.validate(body, schemas.create(req.mv))
    req.app.authorizer.authorize(ctx, RULE % 'create', {'project_id': ctx.project_id,
                                                        'user_id': ctx.user_id})
    values = body['server_group']
    if common.mv_at_least(req, '2.64'):
        policy = values['policy']
        rules = {k: int(v) for k, v in (values.get('rules') or {}).items()}
        if rules and policy != 'anti-affinity':
            raise faults.bad_request('Only anti-affinity policy supports rules.')
    else:
        policy, rules = values['policies'][0], {}
    limit = db.quota_get_all(ctx.project_id).get('server_groups', -1)
    try:
        group = db.group_create(values['name'], ctx.project_id, ctx.user_id, policy,
                                rules, limit=limit)
    except exception.OverQuota:
        raise faults.forbidden('Quota exceeded, too many server groups.')
    return common.json_response({'server_group': view(req, group)})


def delete(req, group_id):
    _load(req, group_id, 'delete')
    with faults.remap({exception.InstanceGroupNotFound: 404}):
        db.group_delete(group_id)
    return common.empty_response(204)
