"""Server groups: create, list, show, delete (boot into one with ``boot --hint group=ID``)."""

import urllib.parse

from novalite.cli.client import APIError, CommandError
from novalite.cli.formatting import Listing, Record

POLICIES = ('anti-affinity', 'affinity', 'soft-anti-affinity', 'soft-affinity')


def _policy(group) -> str:
    return group.get('policy') or ', '.join(group.get('policies') or [])


def _rules(group) -> str:
    return ', '.join(f'{k}={v}' for k, v in sorted((group.get('rules') or {}).items()))


def _record(group) -> Record:
    return Record({'id': group['id'], 'name': group['name'], 'policy': _policy(group),
                   'rules': _rules(group), 'members': ', '.join(group.get('members') or []),
                   'project_id': group.get('project_id'), 'user_id': group.get('user_id')})


def find_group(client, name_or_id) -> dict:
    """A group by id, else by exact name among the project's groups."""
    try:
        return client.get(f'/os-server-groups/{urllib.parse.quote(name_or_id, safe="")}')[
            'server_group']
    except APIError as exc:
        if exc.status != 404:
            raise
    matches = [g for g in client.get('/os-server-groups')['server_groups']
               if g['name'] == name_or_id]
    if not matches:
        raise CommandError(f'No server group with a name or ID of {name_or_id!r} exists.')
    if len(matches) > 1:
        raise CommandError(f'More than one server group is named {name_or_id!r}; use its ID.')
    return matches[0]


def _parse_rules(items) -> dict:
    rules = {}
    for item in items:
        key, sep, value = item.partition('=')
        if key != 'max_server_per_host' or not sep:
            raise CommandError(f'Invalid rule {item!r}: expected max_server_per_host=N')
        try:
            rules[key] = int(value)
        except ValueError:
            raise CommandError(f'Invalid rule {item!r}: {value!r} is not a number') from None
    return rules


def do_create(client, args):
    rules = _parse_rules(args.rule)
    if client.version >= (2, 64):
        group = {'name': args.name, 'policy': args.policy}
        if rules:
            group['rules'] = rules
    else:
        if rules:
            client.require('2.64', '--rule')
        if args.policy.startswith('soft-'):
            client.require('2.15', f'--policy {args.policy}')
        group = {'name': args.name, 'policies': [args.policy]}
    return _record(client.post('/os-server-groups', {'server_group': group}).body[
        'server_group'])


def do_list(client, args):
    params = {'all_projects': 'True'} if args.all_projects else {}
    groups = client.get('/os-server-groups', params=params)['server_groups']
    columns = ['ID', 'Name', 'Policy', 'Members']
    if args.all_projects:
        columns.append('Project ID')
    rows = []
    for g in groups:
        row = [g['id'], g['name'], _policy(g), ', '.join(g.get('members') or [])]
        if args.all_projects:
            row.append(g.get('project_id'))
        rows.append(row)
    return Listing(columns, rows)


def do_show(client, args):
    return _record(find_group(client, args.group))


def do_delete(client, args):
    group = find_group(client, args.group)
    client.delete(f"/os-server-groups/{group['id']}")
    args.stdout.write(f"Server group {group['name']} ({group['id']}) deleted.\n")


def register(sub, parents):
    p = sub.add_parser('server-group-create', parents=parents, help='Create a server group.')
    p.add_argument('name', metavar='NAME')
    p.add_argument('--policy', required=True, choices=POLICIES)
    p.add_argument('--rule', action='append', default=[], metavar='max_server_per_host=N',
                   help='A rule of an anti-affinity group (microversion 2.64 or later).')
    p.set_defaults(func=do_create)

    p = sub.add_parser('server-group-list', parents=parents, help='List server groups.')
    p.add_argument('--all-projects', action='store_true',
                   help='The groups of every project (admin).')
    p.set_defaults(func=do_list)

    p = sub.add_parser('server-group-show', parents=parents, help='Show a server group.')
    p.add_argument('group', metavar='GROUP', help='Name or ID.')
    p.set_defaults(func=do_show)

    p = sub.add_parser('server-group-delete', parents=parents,
                       help='Delete a server group (its servers stay).')
    p.add_argument('group', metavar='GROUP', help='Name or ID.')
    p.set_defaults(func=do_delete)
