"""Flavors: list, show, create, delete, and their extra specs (flavor-key)."""

import urllib.parse

from novalite.cli.client import CommandError
from novalite.cli.formatting import Listing, Record

COLUMNS = (('ID', 'id'), ('Name', 'name'), ('Memory_MiB', 'ram'), ('Disk', 'disk'),
           ('Ephemeral', 'OS-FLV-EXT-DATA:ephemeral'), ('Swap', 'swap'), ('VCPUs', 'vcpus'),
           ('RXTX_Factor', 'rxtx_factor'), ('Is_Public', 'os-flavor-access:is_public'),
           ('Description', 'description'))


def do_list(client, args):
    params = {'is_public': 'None'} if args.all else {}
    flavors = client.get('/flavors/detail', params=params)['flavors']
    present = [(h, k) for h, k in COLUMNS if k in ('id', 'name')
               or any(k in f for f in flavors)]
    return Listing([h for h, _ in present],
                   [[f.get(k) for _, k in present] for f in flavors])


def _record(flavor, args):
    fields = {k: v for k, v in flavor.items() if k != 'links'}
    return Record(fields)


def do_show(client, args):
    return _record(client.find_flavor(args.flavor), args)


def _bool(text):
    value = text.strip().lower()
    if value in ('true', '1', 'yes', 'on'):
        return True
    if value in ('false', '0', 'no', 'off'):
        return False
    raise CommandError(f'Invalid boolean {text!r}')


def do_create(client, args):
    flavor = {'name': args.name, 'ram': args.ram, 'disk': args.disk, 'vcpus': args.vcpus,
              'id': None if args.id == 'auto' else args.id,
              'os-flavor-access:is_public': _bool(args.is_public)}
    if args.ephemeral:
        flavor['OS-FLV-EXT-DATA:ephemeral'] = args.ephemeral
    if args.swap:
        flavor['swap'] = args.swap
    if args.rxtx_factor is not None:
        flavor['rxtx_factor'] = args.rxtx_factor
    if args.description is not None:
        client.require('2.55', '--description')
        flavor['description'] = args.description
    return _record(client.post('/flavors', {'flavor': flavor}).body['flavor'], args)


def do_delete(client, args):
    flavor = client.find_flavor(args.flavor)
    client.delete(f"/flavors/{urllib.parse.quote(flavor['id'], safe='')}")
    args.stdout.write(f"Flavor {flavor['name']} ({flavor['id']}) deleted.\n")


def do_key(client, args):
    """nova flavor-key FLAVOR set|unset KEY[=VALUE] ...: the flavor's extra specs after."""
    flavor = client.find_flavor(args.flavor)
    base = f"/flavors/{urllib.parse.quote(flavor['id'], safe='')}/os-extra_specs"
    if args.action == 'set':
        specs = {}
        for item in args.specs:
            key, sep, value = item.partition('=')
            if not sep or not key:
                raise CommandError(f'Expected KEY=VALUE, got {item!r}')
            specs[key] = value
        client.post(base, {'extra_specs': specs})
    else:
        for item in args.specs:
            client.delete(f"{base}/{urllib.parse.quote(item.partition('=')[0], safe='')}")
    return Record(client.get(base)['extra_specs'])


def register(sub, parents):
    p = sub.add_parser('flavor-list', parents=parents, help='List flavors.')
    p.add_argument('--all', action='store_true', help='Private flavors too (admin).')
    p.set_defaults(func=do_list)

    p = sub.add_parser('flavor-show', parents=parents, help='Show a flavor.')
    p.add_argument('flavor', metavar='FLAVOR', help='Name or ID.')
    p.set_defaults(func=do_show)

    p = sub.add_parser('flavor-create', parents=parents, help='Create a flavor (admin).')
    p.add_argument('name', metavar='NAME')
    p.add_argument('id', metavar='ID', help="Flavor ID, or 'auto' for a generated UUID.")
    p.add_argument('ram', metavar='RAM', type=int, help='Memory in MB.')
    p.add_argument('disk', metavar='DISK', type=int, help='Root disk in GB.')
    p.add_argument('vcpus', metavar='VCPUS', type=int)
    p.add_argument('--ephemeral', type=int, default=0, metavar='GB')
    p.add_argument('--swap', type=int, default=0, metavar='MB')
    p.add_argument('--rxtx-factor', type=float, default=None)
    p.add_argument('--is-public', default='true', metavar='{true,false}')
    p.add_argument('--description', default=None)
    p.set_defaults(func=do_create)

    p = sub.add_parser('flavor-key', parents=parents,
                       help='Set or unset extra specs of a flavor (admin).')
    p.add_argument('flavor', metavar='FLAVOR', help='Name or ID.')
    p.add_argument('action', choices=('set', 'unset'))
    p.add_argument('specs', metavar='KEY[=VALUE]', nargs='+',
                   help='KEY=VALUE to set, KEY to unset.')
    p.set_defaults(func=do_key)

    p = sub.add_parser('flavor-delete', parents=parents, help='Delete a flavor (admin).')
    p.add_argument('flavor', metavar='FLAVOR', help='Name or ID.')
    p.set_defaults(func=do_delete)
