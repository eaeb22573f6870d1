"""Server life cycle: boot, list, show, delete, start, stop, reboot."""

from novalite.cli import formatting, waiter
from novalite.cli.client import CommandError
from novalite.cli.commands import accepted, wait_for
from novalite.cli.formatting import Listing, Record

# Fields shown first by ``show``, in this order; everything else follows sorted.
SHOW_FIRST = ('id', 'name', 'status', 'OS-EXT-STS:task_state', 'OS-EXT-STS:vm_state',
              'OS-EXT-STS:power_state', 'progress', 'OS-EXT-SRV-ATTR:host',
              'OS-EXT-SRV-ATTR:hypervisor_hostname', 'OS-EXT-AZ:availability_zone',
              'flavor', 'image', 'fault', 'tenant_id', 'user_id', 'created', 'updated')


def networks(server) -> str:
    parts = []
    for net, addrs in sorted((server.get('addresses') or {}).items()):
        parts.append(f"{net}=" + ', '.join(a.get('addr', '') for a in addrs))
    return '; '.join(parts)


def flavor_text(flavor) -> str:
    if not isinstance(flavor, dict):
        return str(flavor)
    if 'original_name' in flavor:
        return (f"{flavor['original_name']} ({flavor.get('vcpus')} vCPU, "
                f"{flavor.get('ram')} MB RAM, {flavor.get('disk')} GB disk)")
    return str(flavor.get('id'))


def server_record(server, args, images=None) -> Record:
    table = getattr(args, 'format', 'table') == 'table'
    fields = {}
    for key in SHOW_FIRST + tuple(sorted(k for k in server if k not in SHOW_FIRST)):
        if key not in server or key == 'links':
            continue
        value = server[key]
        if table:
            if key == 'flavor':
                value = flavor_text(value)
            elif key == 'image':
                image_id = value.get('id') if isinstance(value, dict) else value
                name = (images or {}).get(image_id)
                value = f'{name} ({image_id})' if name else (image_id or '')
            elif key == 'OS-EXT-STS:power_state':
                value = formatting.power_state(value)
            elif key == 'addresses':
                value = networks(server)
            elif key == 'security_groups':
                value = ', '.join(g.get('name', '') for g in value or [])
        if table and key == 'fault' and isinstance(value, dict):
            for sub in ('message', 'code', 'created', 'details'):
                if sub in value:
                    fields[f'fault:{sub}'] = value[sub]
            continue
        fields[key] = value
    return Record(fields)


# ------------------------------------------------------------------ commands

def do_boot(client, args):
    flavor = client.find_flavor(args.flavor)
    image = client.find_image(args.image)
    spec = {'name': args.name, 'flavorRef': flavor['id'], 'imageRef': image,
            'min_count': args.min_count, 'max_count': args.max_count or args.min_count}
    if client.version >= (2, 37):
        spec['networks'] = args.nic
    if args.availability_zone:
        spec['availability_zone'] = args.availability_zone
    body = {'server': spec}
    hints = {}
    for item in args.hint:
        key, sep, value = item.partition('=')
        if not sep or not key:
            raise CommandError(f'Invalid hint {item!r}: expected KEY=VALUE')
        if key in hints:
            hints[key] = (hints[key] if isinstance(hints[key], list) else [hints[key]])
            hints[key].append(value)
        else:
            hints[key] = value
    if hints:
        body['os:scheduler_hints'] = hints
    many = spec['max_count'] > 1
    if many:
        spec['return_reservation_id'] = True
    resp = client.post('/servers', body)
    if many:
        servers = client.get('/servers/detail', params={
            'reservation_id': resp.body['reservation_id']})['servers']
    else:
        servers = [client.get(f"/servers/{resp.body['server']['id']}")['server']]
        servers[0]['adminPass'] = resp.body['server'].get('adminPass')
    if args.poll:
        failures = []
        for server in servers:
            try:
                wait_for(client, args, server, 'boot', resp.request_id)
            except CommandError as exc:
                failures.append(exc)
        for exc in failures[:-1]:
            args.stderr.write(exc.render() + '\n')
        if failures:
            raise failures[-1]
        servers = [dict(client.get(f"/servers/{s['id']}")['server'],
                        **({'adminPass': s['adminPass']} if s.get('adminPass') else {}))
                   for s in servers]
    if many:
        return server_listing(servers, client)
    return server_record(servers[0], args, client.image_names())


def server_listing(servers, client) -> Listing:
    columns = ['ID', 'Name', 'Status', 'Task State', 'Power State', 'Networks']
    with_host = any('OS-EXT-SRV-ATTR:host' in s for s in servers) or client.is_admin
    if with_host:
        columns.append('Host')
    rows = []
    for s in servers:
        row = [s['id'], s.get('name'), s.get('status'), s.get('OS-EXT-STS:task_state'),
               formatting.power_state(s.get('OS-EXT-STS:power_state')), networks(s)]
        if with_host:
            row.append(s.get('OS-EXT-SRV-ATTR:host'))
        rows.append(row)
    return Listing(columns, rows)


def do_list(client, args):
    params = {}
    if args.all_tenants:
        params['all_tenants'] = '1'
    if args.status:
        params['status'] = args.status.upper()
    if args.host:
        params['host'] = args.host
    if args.name:
        params['name'] = args.name
    if args.limit is not None:
        params['limit'] = args.limit
    servers = client.get('/servers/detail', params=params)['servers']
    return server_listing(servers, client)


def do_show(client, args):
    server = client.find_server(args.server)
    return server_record(server, args, client.image_names())


def do_delete(client, args):
    found = [client.find_server(name) for name in args.server]
    for server in found:
        resp = client.delete(f"/servers/{server['id']}")
        accepted(args, 'delete', server, resp.request_id)
        wait_for(client, args, server, 'delete', resp.request_id)


def _simple_action(op, body_of):
    def run(client, args):
        server = client.find_server(args.server)
        resp = client.action(server['id'], body_of(args))
        accepted(args, op, server, resp.request_id)
        wait_for(client, args, server, op, resp.request_id)
    return run


do_start = _simple_action('start', lambda a: {'os-start': None})
do_stop = _simple_action('stop', lambda a: {'os-stop': None})
do_reboot = _simple_action('reboot',
                           lambda a: {'reboot': {'type': 'HARD' if a.hard else 'SOFT'}})


def register(sub, parents):
    p = sub.add_parser('boot', parents=parents, help='Boot a new server.')
    p.add_argument('name', metavar='NAME')
    p.add_argument('--flavor', required=True, help='Flavor name or ID.')
    p.add_argument('--image', required=True, help='Image name or ID.')
    p.add_argument('--availability-zone', metavar='AZ',
                   help='Availability zone (admins: AZ:HOST[:NODE]).')
    p.add_argument('--hint', action='append', default=[], metavar='KEY=VALUE',
                   help='Scheduler hint (repeatable).')
    p.add_argument('--min-count', type=int, default=1, metavar='N')
    p.add_argument('--max-count', type=int, default=None, metavar='N')
    p.add_argument('--nic', choices=('none', 'auto'), default='none',
                   help='Network allocation (default: none).')
    waiter.add_arguments(p)
    p.set_defaults(func=do_boot)

    p = sub.add_parser('list', parents=parents, help='List servers.')
    p.add_argument('--all-tenants', '--all-projects', action='store_true',
                   help='Servers of every project (admin).')
    p.add_argument('--status', help='Only servers in this status (ACTIVE, ERROR, ...).')
    p.add_argument('--host', help='Only servers on this compute host (admin).')
    p.add_argument('--name', help='Only servers whose name matches this regex.')
    p.add_argument('--limit', type=int, help='At most this many servers.')
    p.set_defaults(func=do_list)

    p = sub.add_parser('show', parents=parents, help='Show a server.')
    p.add_argument('server', metavar='SERVER', help='Name or ID.')
    p.set_defaults(func=do_show)

    p = sub.add_parser('delete', parents=parents, help='Delete servers.')
    p.add_argument('server', metavar='SERVER', nargs='+', help='Name or ID.')
    waiter.add_arguments(p)
    p.set_defaults(func=do_delete)

    for name, func, text in (('start', do_start, 'Start a stopped server.'),
                             ('stop', do_stop, 'Stop (power off) a server.'),
                             ('reboot', do_reboot, 'Reboot a server.')):
        p = sub.add_parser(name, parents=parents, help=text)
        p.add_argument('server', metavar='SERVER', help='Name or ID.')
        if name == 'reboot':
            p.add_argument('--hard', action='store_true', help='Hard reboot.')
        waiter.add_arguments(p)
        p.set_defaults(func=func)
