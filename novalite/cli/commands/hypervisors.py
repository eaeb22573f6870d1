"""Hypervisors (compute nodes): list and show."""

from novalite.cli.client import UUID_RE, CommandError
from novalite.cli.formatting import Listing, Record


def do_list(client, args):
    params = {}
    if args.matching:
        params['hypervisor_hostname_pattern'] = args.matching
    hyps = client.get('/os-hypervisors', params=params)['hypervisors']
    return Listing(['ID', 'Hypervisor hostname', 'State', 'Status'],
                   [(h.get('id'), h.get('hypervisor_hostname'), h.get('state'),
                     h.get('status')) for h in hyps])


def do_show(client, args):
    if UUID_RE.match(args.hypervisor) or args.hypervisor.isdigit():
        hyp = client.get(f'/os-hypervisors/{args.hypervisor}')['hypervisor']
    else:
        hyps = client.get('/os-hypervisors/detail')['hypervisors']
        found = [h for h in hyps if h.get('hypervisor_hostname') == args.hypervisor]
        if not found:
            raise CommandError(f'No hypervisor named {args.hypervisor!r}', 'NotFound')
        hyp = found[0]
    fields = {}
    for key, value in hyp.items():
        if args.format == 'table' and isinstance(value, dict):
            for sub, inner in value.items():
                fields[f'{key}_{sub}'] = inner
        else:
            fields[key] = value
    return Record(fields)


def register(sub, parents):
    p = sub.add_parser('hypervisor-list', parents=parents, help='List hypervisors (admin).')
    p.add_argument('--matching', metavar='HOSTNAME',
                   help='Only hypervisors whose hostname contains this.')
    p.set_defaults(func=do_list)

    p = sub.add_parser('hypervisor-show', parents=parents, help='Show a hypervisor (admin).')
    p.add_argument('hypervisor', metavar='HYPERVISOR', help='Hostname or ID.')
    p.set_defaults(func=do_show)
