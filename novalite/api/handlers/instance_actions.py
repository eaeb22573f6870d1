"""GET /servers/{id}/os-instance-actions[/{request_id}]."""

from novalite import exception
from novalite.api import common, faults
from novalite.api.handlers.servers import load_server, target
from novalite.api.views.servers import host_id
from novalite.db import api as db
from novalite.db import listing

RULE = 'os_compute_api:os-instance-actions:%s'


def _server(req, server_id):
    return load_server(req, server_id, read_deleted=common.mv_at_least(req, '2.21'))


def _action(req, action: dict) -> dict:
    out = {'action': action['action'], 'instance_uuid': action['instance_uuid'],
           'request_id': action['request_id'], 'user_id': action.get('user_id'),
           'project_id': action.get('project_id'),
           'start_time': common.iso_micro(action.get('start_time')),
           'message': action.get('message')}
    if common.mv_at_least(req, '2.58'):
        out['updated_at'] = common.iso_micro(action.get('updated_at')
                                             or action.get('start_time'))
    return out


def index(req, server_id):
    inst = _server(req, server_id)
    req.app.authorizer.authorize(req.context, RULE % 'list', target(inst))
    limit = marker = since = before = None
    paged = common.mv_at_least(req, '2.58')
    if paged:
        allowed = {'limit', 'marker', 'changes-since'}
        if common.mv_at_least(req, '2.66'):
            allowed.add('changes-before')
        common.check_params(req, allowed)
        limit, marker = common.paging(req, req.app.conf)
        if 'changes-since' in req.GET:
            since = common.parse_time(req, 'changes-since',
                                      common.single(req, 'changes-since'))
        if 'changes-before' in req.GET:
            before = common.parse_time(req, 'changes-before',
                                       common.single(req, 'changes-before'))
        if since and before and before < since:
            raise faults.bad_request('The value of changes-since must be less than or '
                                     'equal to changes-before.')
    with faults.remap({exception.Invalid: 400}):
        rows = listing.instance_actions(inst['uuid'], limit=limit, marker=marker,
                                        changes_since=since, changes_before=before)
    items = [_action(req, a) for a in rows]
    body = {'instanceActions': items}
    if paged:
        link = common.next_link(req, 'servers/%s/os-instance-actions' % inst['uuid'],
                                items, limit, marker_key='request_id')
        if link:
            body['links'] = link
    return common.json_response(body)


def _event(req, event: dict, project_id: str, is_admin_view: bool, show_details: bool):
    out = {'event': event['event'], 'start_time': common.iso_micro(event.get('start_time')),
           'finish_time': common.iso_micro(event.get('finish_time')),
           'result': event.get('result')}
    if is_admin_view:
        out['traceback'] = event.get('traceback')
    if common.mv_at_least(req, '2.62'):
        out['hostId'] = host_id(project_id, event.get('host'))
        if is_admin_view:
            out['host'] = event.get('host') or ''
    if common.mv_at_least(req, '2.84') and show_details:
        out['details'] = event.get('details')
    return out


def show(req, server_id, request_id):
    inst = _server(req, server_id)
    authz = req.app.authorizer
    ctx = req.context
    authz.authorize(ctx, RULE % 'show', target(inst))
    try:
        action = db.action_get_by_request_id(inst['uuid'], request_id)
    except exception.ActionNotFound:
        raise faults.not_found('Action %s not found' % request_id)
    out = _action(req, action)
    can_events = authz.check(ctx, RULE % 'events', target(inst))
    if can_events or common.mv_at_least(req, '2.51'):
        details = authz.check(ctx, RULE % 'events:details', target(inst))
        project = action.get('project_id') or inst['project_id']
        out['events'] = [_event(req, e, project, can_events, details)
                         for e in db.action_events_get(action['id'])]
    return common.json_response({'instanceAction': out})
