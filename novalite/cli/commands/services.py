"""Services: list, enable/disable a compute service, force it down."""

from novalite.cli.client import CommandError
from novalite.cli.formatting import Listing, Record

COLUMNS = (('Id', 'id'), ('Binary', 'binary'), ('Host', 'host'), ('Zone', 'zone'),
           ('Status', 'status'), ('State', 'state'), ('Updated At', 'updated_at'),
           ('Disabled Reason', 'disabled_reason'), ('Forced Down', 'forced_down'))


def do_list(client, args):
    params = {k: v for k, v in (('host', args.host), ('binary', args.binary)) if v}
    services = client.get('/os-services', params=params)['services']
    present = [(h, k) for h, k in COLUMNS if any(k in s for s in services)] or list(COLUMNS)
    return Listing([h for h, _ in present],
                   [[s.get(k) for _, k in present] for s in services])


def _find(client, host, binary):
    services = client.get('/os-services', params={'host': host,
                                                   'binary': binary})['services']
    if not services:
        raise CommandError(f'Service {binary} on host {host} not found.', 'NotFound')
    if len(services) > 1:
        raise CommandError(f'More than one service {binary} on host {host}.',
                           'NoUniqueMatch')
    return services[0]


def _update(client, args, changes, legacy_action):
    """PUT /os-services/{uuid} (2.53+), else the older PUT /os-services/{action}."""
    if client.version >= (2, 53):
        service = _find(client, args.host, args.binary)
        body = client.put(f"/os-services/{service['id']}", changes).body['service']
    else:
        legacy = {'host': args.host, 'binary': args.binary}
        legacy.update({k: v for k, v in changes.items() if k != 'status'})
        body = client.put(f'/os-services/{legacy_action}', legacy).body['service']
    return Record({k: body.get(k) for k in ('host', 'binary', 'status', 'disabled_reason',
                                            'forced_down') if k in body})


def do_enable(client, args):
    return _update(client, args, {'status': 'enabled'}, 'enable')


def do_disable(client, args):
    changes = {'status': 'disabled'}
    if args.reason:
        changes['disabled_reason'] = args.reason
    return _update(client, args, changes,
                   'disable-log-reason' if args.reason else 'disable')


def do_force_down(client, args):
    client.require('2.11', 'service-force-down')
    return _update(client, args, {'forced_down': not args.unset}, 'force-down')


def register(sub, parents):
    p = sub.add_parser('service-list', parents=parents, help='List services (admin).')
    p.add_argument('--host', help='Only services on this host.')
    p.add_argument('--binary', help='Only this binary (e.g. nova-compute).')
    p.set_defaults(func=do_list)

    for name, func, text in (
            ('service-enable', do_enable, 'Let the scheduler use a compute service again.'),
            ('service-disable', do_disable, 'Stop scheduling to a compute service.'),
            ('service-force-down', do_force_down,
             'Mark a compute service down now (for evacuation).')):
        p = sub.add_parser(name, parents=parents, help=text)
        p.add_argument('host', metavar='HOST')
        p.add_argument('binary', metavar='BINARY', help='e.g. nova-compute')
        if name == 'service-disable':
            p.add_argument('--reason', help='Why the service is disabled.')
        if name == 'service-force-down':
            p.add_argument('--unset', action='store_true', help='Clear the forced-down flag.')
        p.set_defaults(func=func)
