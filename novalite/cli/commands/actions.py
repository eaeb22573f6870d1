"""Instance actions: the record of every request made on a server, with its events."""

from novalite.cli.client import UUID_RE
from novalite.cli.formatting import Listing, Record


def _server_id(client, value):
    # An id is used as is so the actions of a deleted server stay reachable.
    return value if UUID_RE.match(value) else client.find_server(value)['id']


def do_list(client, args):
    server_id = _server_id(client, args.server)
    params = {}
    if args.limit is not None:
        params['limit'] = args.limit
    if args.marker:
        params['marker'] = args.marker
    if args.changes_since:
        params['changes-since'] = args.changes_since
    if params:
        client.require('2.58', '--limit/--marker/--changes-since')
    actions = client.get(f'/servers/{server_id}/os-instance-actions',
                         params=params)['instanceActions']
    columns = ['Action', 'Request ID', 'Message', 'Start Time', 'Updated At']
    rows = [(a.get('action'), a.get('request_id'), a.get('message'), a.get('start_time'),
             a.get('updated_at')) for a in actions]
    return Listing(columns, rows)


def event_lines(events) -> str:
    lines = []
    for e in events:
        host = f" on {e['host']}" if e.get('host') else ''
        lines.append(f"{e.get('event')}: {e.get('result') or 'running'}{host} "
                     f"({e.get('start_time')} -> {e.get('finish_time') or '...'})")
        if e.get('details'):
            lines.append(f"    {e['details']}")
        if e.get('traceback'):
            lines.extend('    ' + t for t in str(e['traceback']).splitlines())
    return '\n'.join(lines)


def do_show(client, args):
    server_id = _server_id(client, args.server)
    action = client.get(f'/servers/{server_id}/os-instance-actions/'
                        f'{args.request_id}')['instanceAction']
    if args.format == 'table' and 'events' in action:
        action = dict(action, events=event_lines(action['events']))
    return Record(action)


def register(sub, parents):
    p = sub.add_parser('instance-action-list', parents=parents,
                       help='The requests made on a server.')
    p.add_argument('server', metavar='SERVER', help='Name or ID (ID for deleted servers).')
    p.add_argument('--limit', type=int, help='At most this many (2.58).')
    p.add_argument('--marker', help='Start after this request ID (2.58).')
    p.add_argument('--changes-since', metavar='TIME', help='Updated since (2.58).')
    p.set_defaults(func=do_list)

    for name in ('instance-action-show', 'instance-action'):
        p = sub.add_parser(name, parents=parents,
                           help='One request made on a server, with its events.')
        p.add_argument('server', metavar='SERVER', help='Name or ID.')
        p.add_argument('request_id', metavar='REQUEST_ID')
        p.set_defaults(func=do_show)
