"""Host drains (a novalite extension): start, follow, list, show, cancel."""

import shutil
import time

from novalite.cli import formatting, progress, waiter
from novalite.cli.client import CommandError
from novalite.compute import states

ENDED = states.DRAIN_DONE
LIST_COLUMNS = (('Id', 'id'), ('Host', 'host'), ('Mode', 'mode'), ('Status', 'status'),
                ('Total', 'total'), ('Moved', 'moved'), ('Failed', 'failed'),
                ('Remaining', 'remaining'), ('Created At', 'created_at'))
SERVER_COLUMNS = ('Server', 'State', 'Move', 'Attempts', 'Reason')
POLL_INTERVAL = 1.0


def _record(drain) -> formatting.Record:
    return formatting.Record({k: drain.get(k) for k in (
        'id', 'host', 'mode', 'max_parallel', 'status', 'total', 'moved', 'moving',
        'failed', 'gone', 'cancelled', 'remaining', 'conductor', 'created_at',
        'finished_at')})


def _servers(drain, only_failed=False) -> formatting.Listing:
    rows = [(s['server_id'], s['state'], s['move'], s['attempts'], s['reason'])
            for s in drain.get('servers', [])
            if not only_failed or s['state'] == states.DrainServerState.FAILED]
    return formatting.Listing(SERVER_COLUMNS, rows)


def _follow(client, args, drain):
    """Redraw the drain's progress until it ends; the final drain."""
    stream = args.stderr
    tty = bool(getattr(stream, 'isatty', None) and stream.isatty())
    start = time.monotonic()
    last = None
    while True:
        elapsed = time.monotonic() - start
        if tty:
            width = shutil.get_terminal_size(fallback=(80, 24)).columns
            stream.write('\r' + progress.drain_line(drain, elapsed, width) + '\x1b[K')
        else:
            key = (drain['status'], drain['moved'], drain['failed'], drain['remaining'])
            if key != last:
                stream.write(progress.drain_line(drain, elapsed) + '\n')
                last = key
        stream.flush()
        if drain['status'] in ENDED:
            if tty:
                stream.write('\r\x1b[K' + progress.drain_line(drain, elapsed) + '\n')
            return drain
        if elapsed > args.poll_timeout:
            raise CommandError(f"Drain {drain['id']} still {drain['status']} after "
                               f'{args.poll_timeout:g}s', 'Timeout')
        time.sleep(POLL_INTERVAL)
        drain = client.get(f"/os-host-drains/{drain['id']}")['drain']


def do_drain(client, args):
    """Start draining a host; with --poll follow it and report what could not move."""
    body = {'host': args.host, 'mode': args.mode}
    if args.max_parallel is not None:
        body['max_parallel'] = args.max_parallel
    drain = client.post('/os-host-drains', {'drain': body}).body['drain']
    if not args.poll:
        return _record(drain)
    drain = _follow(client, args, drain)
    if drain['status'] == states.DrainStatus.FAILED:
        formatting.render(_servers(drain, only_failed=True), args.format, args.columns,
                          args.stdout)
        raise CommandError(f"{drain['failed']} of {drain['total']} servers could not be "
                           f"moved off {drain['host']}", 'DrainFailed')
    return _record(drain)


def do_list(client, args):
    params = {k: v for k, v in (('host', args.host), ('status', args.status)) if v}
    drains = client.get('/os-host-drains', params=params)['drains']
    return formatting.Listing([h for h, _ in LIST_COLUMNS],
                              [[d.get(k) for _, k in LIST_COLUMNS] for d in drains])


def do_show(client, args):
    drain = client.get(f'/os-host-drains/{args.drain}')['drain']
    if args.servers:
        return _servers(drain)
    return _record(drain)


def do_cancel(client, args):
    client.delete(f'/os-host-drains/{args.drain}')
    args.stdout.write(f'Request to cancel drain {args.drain} has been accepted.\n')


def register(sub, parents):
    p = sub.add_parser('host-drain', parents=parents,
                       help='Move every server off a host, server-side (admin).')
    p.add_argument('host', metavar='HOST')
    p.add_argument('--mode', choices=('auto', 'live', 'cold'), default='auto',
                   help='live, cold, or auto: live where it can, cold where it must '
                        '(default).')
    p.add_argument('--max-parallel', type=int, default=None, metavar='N',
                   help='Moves at once (default: the server-side default, 2).')
    waiter.add_arguments(p)
    p.set_defaults(func=do_drain)

    p = sub.add_parser('host-drain-list', parents=parents, help='List host drains (admin).')
    p.add_argument('--host', help='Only drains of this host.')
    p.add_argument('--status', help='Only drains in this status.')
    p.set_defaults(func=do_list)

    p = sub.add_parser('host-drain-show', parents=parents, help='Show a host drain (admin).')
    p.add_argument('drain', metavar='DRAIN', help='Drain ID.')
    p.add_argument('--servers', action='store_true',
                   help='One row per server: state, move, attempts and reason.')
    p.set_defaults(func=do_show)

    p = sub.add_parser('host-drain-cancel', parents=parents,
                       help='Cancel a host drain: no new move starts (admin).')
    p.add_argument('drain', metavar='DRAIN', help='Drain ID.')
    p.set_defaults(func=do_cancel)
