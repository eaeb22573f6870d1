"""novalite-manage: database schema, services, images, broker permissions and the
placement allocation audit."""

import argparse
import sys


def _setup(args):
    from novalite.cmd import common
    conf_args = []
    for f in args.config_file or []:
        conf_args += ['--config-file', f]
    return common.setup(conf_args, 'novalite-manage')


def cmd_db_sync(args):
    from novalite.all_in_one import ensure_seed_data
    from novalite.db import migration, session
    migration.upgrade(session.default_url())
    if args.seed:
        ensure_seed_data(register_image=False)
    print(f'Database at revision {migration.current(session.default_url())}')
    return 0


def cmd_db_version(args):
    from novalite.db import migration, session
    print(migration.current(session.default_url()) or 'none')
    return 0


def cmd_service_list(args):
    import prettytable

    from novalite.conf import CONF
    from novalite.db import api as db
    table = prettytable.PrettyTable(['Id', 'Binary', 'Host', 'Zone', 'Status', 'State',
                                     'Updated At', 'Forced down'])
    for s in db.service_get_all():
        table.add_row([s['id'], s['binary'], s['host'],
                       s['availability_zone'] or CONF.internal_service_availability_zone,
                       'disabled' if s['disabled'] else 'enabled',
                       'up' if db.service_is_up(s, CONF.service_down_time) else 'down',
                       s['last_seen_up'], s['forced_down']])
    print(table)
    return 0


def cmd_image_register(args):
    import os

    from novalite.db import api as db
    size = os.path.getsize(args.path) if os.path.exists(args.path) else 0
    image = db.image_create(args.name, location=os.path.abspath(args.path)
                            if os.path.exists(args.path) else args.path, size=size,
                            disk_format=args.disk_format, min_disk=args.min_disk,
                            min_ram=args.min_ram)
    print(image['uuid'])
    return 0


def cmd_image_list(args):
    import prettytable

    from novalite.db import api as db
    table = prettytable.PrettyTable(['ID', 'Name', 'Format', 'Size', 'Location'])
    for i in db.image_get_all():
        table.add_row([i['uuid'], i['name'], i['disk_format'], i['size'], i['location']])
    print(table)
    return 0


def cmd_broker_compute_user(args):
    import shlex

    from novalite import broker, rpc
    print(f'rabbitmqctl add_user {shlex.quote(args.user)} PASSWORD')
    for cmd in broker.rabbitmqctl_commands(args.host, args.user, args.vhost,
                                           args.exchange or rpc.CONTROL_EXCHANGE):
        print('rabbitmqctl ' + ' '.join(shlex.quote(a) for a in cmd))
    return 0


def cmd_placement_audit(args):
    from novalite.db import audit
    findings = audit.audit(fix=args.fix, grace=args.grace)
    for f in findings:
        print(f.line() if args.verbose else
              f'{f.kind} {f.consumer} {f.provider or "-"} {f.host or "-"} '
              f'{"fixed" if f.fixed else "certain" if f.certain else "uncertain"}')
    fixed = sum(f.fixed for f in findings)
    uncertain = sum(not f.fixed and not f.certain for f in findings)
    certain = len(findings) - fixed - uncertain
    hint = ' (run with --fix)' if certain and not args.fix else ''
    print(f'{len(findings)} findings: {fixed} fixed, {certain} certain left{hint}, '
          f'{uncertain} uncertain')
    if uncertain:
        return 2
    return 1 if certain else 0


def _grace(value):
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f'not a number of seconds: {value!r}')
    if seconds < 0:
        raise argparse.ArgumentTypeError(f'must be zero or more seconds: {value}')
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(prog='novalite-manage')
    parser.add_argument('--config-file', action='append')
    sub = parser.add_subparsers(dest='category', required=True)
    dbp = sub.add_parser('db').add_subparsers(dest='action', required=True)
    p = dbp.add_parser('sync', help='Upgrade the schema to the newest revision.')
    p.add_argument('--no-seed', dest='seed', action='store_false',
                   help='Do not create the default m1.* flavors.')
    p.set_defaults(func=cmd_db_sync)
    dbp.add_parser('version', help='Print the schema revision.').set_defaults(
        func=cmd_db_version)
    svc = sub.add_parser('service').add_subparsers(dest='action', required=True)
    svc.add_parser('list').set_defaults(func=cmd_service_list)
    img = sub.add_parser('image').add_subparsers(dest='action', required=True)
    p = img.add_parser('register', help='Register a local image file.')
    p.add_argument('name')
    p.add_argument('path')
    p.add_argument('--disk-format', default='qcow2')
    p.add_argument('--min-disk', type=int, default=0)
    p.add_argument('--min-ram', type=int, default=0)
    p.set_defaults(func=cmd_image_register)
    img.add_parser('list').set_defaults(func=cmd_image_list)
    brk = sub.add_parser('broker').add_subparsers(dest='action', required=True)
    p = brk.add_parser('compute-user', help="Print the rabbitmqctl commands that confine "
                       "a compute host's own broker user to its own queues.")
    p.add_argument('host')
    p.add_argument('--user', default=None, help='default: compute-HOST')
    p.add_argument('--vhost', default='/')
    p.add_argument('--exchange', default=None, help='the control_exchange (novalite)')
    p.set_defaults(func=cmd_broker_compute_user)
    plc = sub.add_parser('placement').add_subparsers(dest='action', required=True)
    about = ('Check that every allocation belongs to a live instance or an unfinished '
             'migration and every instance holds what its step allows; one line per '
             'finding. Exit 0: nothing left; 1: certain findings left (repairable with '
             '--fix); 2: uncertain findings that need an operator.')
    p = plc.add_parser('audit', help=about, description=about)
    p.add_argument('--fix', action='store_true',
                   help='Repair the certain findings (each in one compare-and-swap '
                        'transaction).')
    p.add_argument('--verbose', action='store_true',
                   help='Print what each finding means and what was or would be done.')
    p.add_argument('--grace', type=_grace, default=None, metavar='SECONDS',
                   help='Leave records changed less than this long ago alone (default '
                        'the audit\'s own, 300 s).')
    p.set_defaults(func=cmd_placement_audit)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if getattr(args, 'func', None) is cmd_placement_audit and args.grace is None:
        from novalite.db import audit
        args.grace = audit.DEFAULT_GRACE
    if getattr(args, 'user', '') is None:
        args.user = f'compute-{args.host}'
    _setup(args)
    return args.func(args)


if __name__ == '__main__':
    sys.exit(main())
