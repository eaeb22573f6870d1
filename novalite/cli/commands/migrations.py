"""Migration records: every migration (os-migrations) and a server's live ones."""

from novalite.cli.client import UUID_RE, CommandError
from novalite.cli.formatting import Listing, Record, human_bytes

MIGRATION_COLUMNS = (
    ('Id', 'id'), ('UUID', 'uuid'), ('Source Node', 'source_node'),
    ('Dest Node', 'dest_node'), ('Source Compute', 'source_compute'),
    ('Dest Compute', 'dest_compute'), ('Dest Host', 'dest_host'), ('Status', 'status'),
    ('Instance UUID', 'instance_uuid'), ('Old Flavor', 'old_instance_type_id'),
    ('New Flavor', 'new_instance_type_id'), ('Type', 'migration_type'),
    ('Created At', 'created_at'), ('Updated At', 'updated_at'), ('Policy', 'policy'),
    ('Policy Log', 'policy_log'))

SERVER_MIGRATION_COLUMNS = (
    ('Id', 'id'), ('UUID', 'uuid'), ('Status', 'status'),
    ('Source Compute', 'source_compute'), ('Dest Compute', 'dest_compute'),
    ('Dest Host', 'dest_host'), ('Memory Total', 'memory_total_bytes'),
    ('Memory Processed', 'memory_processed_bytes'),
    ('Memory Remaining', 'memory_remaining_bytes'), ('Disk Total', 'disk_total_bytes'),
    ('Disk Processed', 'disk_processed_bytes'), ('Disk Remaining', 'disk_remaining_bytes'),
    ('Created At', 'created_at'), ('Updated At', 'updated_at'))


def _listing(items, spec, table):
    present = [(head, key) for head, key in spec if any(key in m for m in items)] \
        or list(spec)
    rows = []
    for item in items:
        row = []
        for _, key in present:
            value = item.get(key)
            if table and key.endswith('_bytes'):
                value = human_bytes(value)
            elif key == 'policy_log' and value is not None:
                value = policy_log_text(value) if table else value
            row.append(value)
        rows.append(row)
    return Listing([head for head, _ in present], rows)


def do_migration_list(client, args):
    params = {}
    for option, name in (('host', 'host'), ('status', 'status'),
                         ('migration_type', 'migration_type'),
                         ('changes_since', 'changes-since'),
                         ('changes_before', 'changes-before'),
                         ('limit', 'limit'), ('marker', 'marker'),
                         ('project_id', 'project_id'), ('user_id', 'user_id')):
        value = getattr(args, option, None)
        if value is not None:
            params[name] = value
    if args.instance_uuid:
        params['instance_uuid'] = (args.instance_uuid if UUID_RE.match(args.instance_uuid)
                                   else client.find_server(args.instance_uuid)['id'])
    if {'changes-since', 'limit', 'marker'} & set(params):
        client.require('2.59', '--changes-since/--limit/--marker')
    if 'changes-before' in params:
        client.require('2.66', '--changes-before')
    migs = client.get('/os-migrations', params=params)['migrations']
    return _listing(migs, MIGRATION_COLUMNS, args.format == 'table')


def do_server_migration_list(client, args):
    client.require('2.23', 'server-migration-list')
    server = client.find_server(args.server)
    migs = client.get(f"/servers/{server['id']}/migrations")['migrations']
    return _listing(migs, SERVER_MIGRATION_COLUMNS, args.format == 'table')


def do_server_migration_show(client, args):
    client.require('2.23', 'server-migration-show')
    server = client.find_server(args.server)
    mid = args.migration
    if UUID_RE.match(mid):
        migs = client.get(f"/servers/{server['id']}/migrations")['migrations']
        found = [m for m in migs if m.get('uuid') == mid]
        if not found:
            raise CommandError(f'No in-progress migration {mid} for server '
                               f"{server['id']}", 'NotFound')
        mid = str(found[0]['id'])
    mig = client.get(f"/servers/{server['id']}/migrations/{mid}")['migration']
    if args.format == 'table':
        mig = {k: (human_bytes(v) if k.endswith('_bytes') else v) for k, v in mig.items()}
        if 'policy_log' in mig:
            mig['policy_log'] = policy_log_text(mig['policy_log'])
    return Record(mig)


def policy_log_text(entries) -> str:
    """A migration's policy decisions, one a line: time, decision, detail."""
    return '\n'.join(f"{e.get('at', '')} {e.get('decision', '')}: {e.get('detail', '')}"
                     for e in entries or [])


def register(sub, parents):
    p = sub.add_parser('migration-list', parents=parents,
                       help='List migrations (resize, cold and live).')
    p.add_argument('--host', help='Migrations from or to this host.')
    p.add_argument('--status', help='Only migrations in this status.')
    p.add_argument('--instance-uuid', metavar='SERVER', help='Only this server (ID or name).')
    p.add_argument('--migration-type', choices=('migration', 'resize', 'live-migration',
                                                'evacuation'))
    p.add_argument('--changes-since', metavar='TIME',
                   help='Updated at or after this ISO 8601 time (2.59).')
    p.add_argument('--changes-before', metavar='TIME',
                   help='Updated at or before this ISO 8601 time (2.66).')
    p.add_argument('--limit', type=int, help='At most this many (2.59).')
    p.add_argument('--marker', help='Start after this migration UUID (2.59).')
    p.add_argument('--project-id', help='Only this project (2.80).')
    p.add_argument('--user-id', help='Only this user (2.80).')
    p.set_defaults(func=do_migration_list)

    p = sub.add_parser('server-migration-list', parents=parents,
                       help="A server's in-progress live migrations.")
    p.add_argument('server', metavar='SERVER', help='Name or ID.')
    p.set_defaults(func=do_server_migration_list)

    p = sub.add_parser('server-migration-show', parents=parents,
                       help='One in-progress live migration of a server.')
    p.add_argument('server', metavar='SERVER', help='Name or ID.')
    p.add_argument('migration', metavar='MIGRATION', help='Migration ID or UUID.')
    p.set_defaults(func=do_server_migration_show)
