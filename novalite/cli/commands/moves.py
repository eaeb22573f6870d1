"""Move operations: resize, cold migrate, confirm/revert, live migration and its
force-complete/abort."""

from novalite.cli import formatting, waiter
from novalite.cli.client import UUID_RE, CommandError
from novalite.cli.commands import accepted, wait_for

LAST_FORCE_VERSION = (2, 67)


def do_resize(client, args):
    server = client.find_server(args.server)
    flavor = client.find_flavor(args.flavor)
    resp = client.action(server['id'], {'resize': {'flavorRef': flavor['id']}})
    accepted(args, 'resize', server, resp.request_id)
    wait_for(client, args, server, 'resize', resp.request_id)


def do_resize_confirm(client, args):
    server = client.find_server(args.server)
    resp = client.action(server['id'], {'confirmResize': None})
    accepted(args, 'confirm the resize of', server, resp.request_id)
    wait_for(client, args, server, 'resize-confirm', resp.request_id)


def do_resize_revert(client, args):
    server = client.find_server(args.server)
    resp = client.action(server['id'], {'revertResize': None})
    accepted(args, 'revert the resize of', server, resp.request_id)
    wait_for(client, args, server, 'resize-revert', resp.request_id)


def do_migrate(client, args):
    server = client.find_server(args.server)
    if args.host:
        client.require('2.56', 'migrate --host')
        body = {'migrate': {'host': args.host}}
    else:
        body = {'migrate': None}
    resp = client.action(server['id'], body)
    accepted(args, 'migrate', server, resp.request_id)
    wait_for(client, args, server, 'migrate', resp.request_id)


BLOCK_CHOICES = {'auto': 'auto', 'true': True, 'false': False}


def do_live_migration(client, args):
    server = client.find_server(args.server)
    block = BLOCK_CHOICES[args.block_migrate]
    if block == 'auto':
        client.require('2.25', "--block-migrate auto")
    body = {'host': args.host, 'block_migration': block}
    version = None
    if client.version < (2, 25):
        body['disk_over_commit'] = False
    if args.force:
        if not args.host:
            raise CommandError('--force needs a destination HOST')
        client.require('2.30', '--force')
        body['force'] = True
        # The API dropped "force" after 2.67; ask with the last version that has it.
        version = min(client.version, LAST_FORCE_VERSION)
    known = waiter.migration_ids(client, server['id']) if args.poll else None
    resp = client.action(server['id'], {'os-migrateLive': body}, version=version)
    accepted(args, 'live-migrate', server, resp.request_id)
    wait_for(client, args, server, 'live-migration', resp.request_id, known)


def migration_id(client, server_id, value) -> str:
    """A server migration's integer id from an id or a uuid."""
    if not UUID_RE.match(value):
        return value
    migs = client.get(f'/servers/{server_id}/migrations')['migrations']
    for mig in migs:
        if mig.get('uuid') == value:
            return str(mig['id'])
    raise CommandError(f'No in-progress migration {value} for server {server_id}', 'NotFound')


def do_force_complete(client, args):
    client.require('2.22', 'live-migration-force-complete')
    server = client.find_server(args.server)
    mid = migration_id(client, server['id'], args.migration)
    resp = client.post(f"/servers/{server['id']}/migrations/{mid}/action",
                       {'force_complete': None})
    args.stdout.write(f'Request to force-complete migration {mid} of server '
                      f"{server.get('name') or server['id']} has been accepted. "
                      f'(Request-ID: {resp.request_id})\n')


def do_abort(client, args):
    client.require('2.24', 'live-migration-abort')
    server = client.find_server(args.server)
    mid = migration_id(client, server['id'], args.migration)
    resp = client.delete(f"/servers/{server['id']}/migrations/{mid}")
    args.stdout.write(f'Request to abort migration {mid} of server '
                      f"{server.get('name') or server['id']} has been accepted. "
                      f'(Request-ID: {resp.request_id})\n')


def _evacuate_body(client, dest, password, force) -> tuple[dict, tuple | None]:
    body: dict = {}
    version = None
    if dest:
        body['host'] = dest
    if password:
        body['adminPass'] = password
    if client.version < (2, 14):
        body['onSharedStorage'] = False
    if force:
        if not dest:
            raise CommandError('--force needs a destination HOST')
        client.require('2.29', '--force')
        body['force'] = True
        # The API dropped "force" after 2.67; ask with the last version that has it.
        version = min(client.version, LAST_FORCE_VERSION)
    return body, version


def do_evacuate(client, args):
    server = client.find_server(args.server)
    body, version = _evacuate_body(client, args.host, args.password, args.force)
    resp = client.action(server['id'], {'evacuate': body}, version=version)
    accepted(args, 'evacuate', server, resp.request_id)
    password = resp.body.get('adminPass') if isinstance(resp.body, dict) else None
    if password:
        args.stdout.write(f'Admin password: {password}\n')
    wait_for(client, args, server, 'evacuate', resp.request_id)


EVACUATE_COLUMNS = ('Server UUID', 'Evacuate Accepted', 'Error Message')


def do_host_evacuate(client, args):
    """Evacuate every server of a failed host: one row per server; a non-zero exit if any
    request was refused or (with --poll) any evacuation failed."""
    servers = client.get('/servers/detail', params={'host': args.host,
                                                    'all_tenants': 1})['servers']
    body, version = _evacuate_body(client, args.target, args.password, args.force)
    rows, started = [], []
    for server in sorted(servers, key=lambda s: s.get('name') or s['id']):
        try:
            resp = client.action(server['id'], {'evacuate': dict(body)}, version=version)
        except CommandError as exc:
            rows.append((server['id'], False, str(exc)))
            continue
        rows.append((server['id'], True, ''))
        started.append((server, resp.request_id))
    failed = sum(1 for r in rows if not r[1])
    if args.poll:
        for server, request_id in started:
            try:
                waiter.Waiter(client, server, 'evacuate', request_id=request_id,
                              timeout=args.poll_timeout, stream=args.stderr).wait()
            except CommandError as exc:
                failed += 1
                args.stderr.write(f'{exc}\n')
    listing = formatting.Listing(EVACUATE_COLUMNS, rows)
    if failed:
        formatting.render(listing, args.format, args.columns, args.stdout)
        raise CommandError(f'{failed} of {len(servers)} servers of {args.host} were not '
                           'evacuated', 'EvacuateFailed')
    return listing


def register(sub, parents):
    p = sub.add_parser('resize', parents=parents, help='Resize a server to a new flavor.')
    p.add_argument('server', metavar='SERVER', help='Name or ID.')
    p.add_argument('flavor', metavar='FLAVOR', help='Name or ID of the new flavor.')
    waiter.add_arguments(p)
    p.set_defaults(func=do_resize)

    for name, func, text in (
            ('resize-confirm', do_resize_confirm, 'Confirm a resize or cold migration.'),
            ('resize-revert', do_resize_revert, 'Revert a resize or cold migration.')):
        p = sub.add_parser(name, parents=parents, help=text)
        p.add_argument('server', metavar='SERVER', help='Name or ID.')
        waiter.add_arguments(p)
        p.set_defaults(func=func)

    p = sub.add_parser('migrate', parents=parents, help='Cold migrate a server.')
    p.add_argument('server', metavar='SERVER', help='Name or ID.')
    p.add_argument('--host', help='Destination host (admin; validated by the scheduler).')
    waiter.add_arguments(p)
    p.set_defaults(func=do_migrate)

    p = sub.add_parser('live-migration', parents=parents, help='Live migrate a server.')
    p.add_argument('server', metavar='SERVER', help='Name or ID.')
    p.add_argument('host', metavar='HOST', nargs='?', default=None,
                   help='Destination host (default: the scheduler picks).')
    p.add_argument('--block-migrate', nargs='?', const='true', default='auto',
                   choices=sorted(BLOCK_CHOICES),
                   help='Copy the disks: auto (default), true or false.')
    p.add_argument('--force', action='store_true',
                   help='Skip the scheduler checks of HOST (microversions 2.30-2.67).')
    waiter.add_arguments(p)
    p.set_defaults(func=do_live_migration)

    for name, func, text in (
            ('live-migration-force-complete', do_force_complete,
             'Force an in-progress live migration to complete.'),
            ('live-migration-abort', do_abort, 'Abort an in-progress live migration.')):
        p = sub.add_parser(name, parents=parents, help=text)
        p.add_argument('server', metavar='SERVER', help='Name or ID.')
        p.add_argument('migration', metavar='MIGRATION', help='Migration ID or UUID.')
        p.set_defaults(func=func)

    for name, func, text in (
            ('evacuate', do_evacuate,
             'Rebuild a server of a failed host on another host (admin).'),
            ('host-evacuate', do_host_evacuate,
             'Evacuate every server of a failed host (admin).')):
        p = sub.add_parser(name, parents=parents, help=text)
        if name == 'evacuate':
            p.add_argument('server', metavar='SERVER', help='Name or ID.')
            p.add_argument('host', metavar='HOST', nargs='?', default=None,
                           help='Destination host (default: the scheduler picks).')
        else:
            p.add_argument('host', metavar='HOST', help='The failed host.')
            p.add_argument('--target', dest='target', default=None, metavar='HOST',
                           help='Destination host (default: the scheduler picks).')
        p.add_argument('--password', default=None,
                       help='Admin password of the rebuilt server.')
        p.add_argument('--force', action='store_true',
                       help='Skip the scheduler checks of HOST (microversions 2.29-2.67).')
        waiter.add_arguments(p)
        p.set_defaults(func=func)
