"""``--poll``: follow a server until its operation settles, show progress, and explain a
failure from the server's fault, the request's instance action and the migration."""

import dataclasses
import time

from novalite.cli import progress
from novalite.cli.client import APIError, CommandError
from novalite.compute import states

FIRST_INTERVAL = 0.05
MAX_INTERVAL = 1.0
BACKOFF = 1.3
DEFAULT_TIMEOUT = 1800.0
FAILED_MIGRATION = (states.MS.ERROR, states.MS.FAILED, states.MS.CANCELLED)


@dataclasses.dataclass(frozen=True)
class Operation:
    """What "done" and "worked" mean for one kind of request."""

    name: str
    success: frozenset
    # Statuses still counted as "not started/finished" even with no task_state.
    leave: frozenset = frozenset()
    gone_ok: bool = False
    live: bool = False
    # The operation succeeds only if the server ends on another host (evacuate).
    moves_host: bool = False
    # A cold move: its disk copy's bytes are in the migration record while it runs.
    copies: bool = False


def _op(name, success, leave=(), **kw):
    return Operation(name, frozenset(success), frozenset(leave), **kw)


OPERATIONS = {
    'boot': _op('boot', {'ACTIVE'}, {'BUILD'}),
    'delete': _op('delete', {'DELETED', 'SOFT_DELETED'}, gone_ok=True),
    'start': _op('start', {'ACTIVE'}),
    'stop': _op('stop', {'SHUTOFF'}),
    'reboot': _op('reboot', {'ACTIVE'}),
    'resize': _op('resize', {'VERIFY_RESIZE'}, copies=True),
    'migrate': _op('migrate', {'VERIFY_RESIZE'}, copies=True),
    'resize-confirm': _op('resize-confirm', {'ACTIVE', 'SHUTOFF'}, {'VERIFY_RESIZE'}),
    'resize-revert': _op('resize-revert', {'ACTIVE', 'SHUTOFF'},
                         {'VERIFY_RESIZE', 'REVERT_RESIZE'}),
    'live-migration': _op('live-migration', {'ACTIVE', 'PAUSED'}, live=True),
    'evacuate': _op('evacuate', {'ACTIVE', 'SHUTOFF'}, moves_host=True),
}


def add_arguments(parser):
    parser.add_argument('--poll', '--wait', action='store_true', dest='poll',
                        help='Follow the operation with a progress display until it ends; '
                             'exit non-zero if it fails.')
    parser.add_argument('--poll-timeout', type=float, default=DEFAULT_TIMEOUT,
                        metavar='SECONDS',
                        help=f'Give up waiting after this long (default {DEFAULT_TIMEOUT:g}).')


def migration_ids(client, server_id) -> set | None:
    """Ids of the server's migrations known now (None when we may not list them)."""
    try:
        migs = client.get('/os-migrations', params={'instance_uuid': server_id})['migrations']
    except APIError:
        return None
    return {m['id'] for m in migs}


class Waiter:
    def __init__(self, client, server: dict, op: str, request_id=None, known_migrations=None,
                 timeout=DEFAULT_TIMEOUT, stream=None, tty=None, label=None):
        self.client = client
        self.server = server
        self.op = OPERATIONS[op]
        self.request_id = request_id
        self.known_migrations = known_migrations
        self.timeout = timeout
        name = server.get('name') or server['id']
        self.reporter = progress.Reporter(label or f'{self.op.name} {name}', stream, tty)
        self.start = time.monotonic()
        self._can_watch_live = True
        # ``progress`` is left over from the previous operation until this one sets it.
        self._stale_progress = server.get('progress')

    # ------------------------------------------------------------ polling

    def _get_server(self):
        try:
            return self.client.get(f"/servers/{self.server['id']}")['server']
        except APIError as exc:
            if exc.status == 404:
                return None
            raise

    def _move_record(self):
        """The in-progress migration record (memory/disk counters), if visible."""
        if not self._can_watch_live or self.client.version < (2, 23):
            return None
        try:
            migs = self.client.get(f"/servers/{self.server['id']}/migrations")['migrations']
        except APIError:
            self._can_watch_live = False
            return None
        return max(migs, key=lambda m: m['id']) if migs else None

    def _action(self):
        if not self.request_id:
            return None
        try:
            return self.client.get(f"/servers/{self.server['id']}/os-instance-actions/"
                                   f"{self.request_id}")['instanceAction']
        except APIError:
            return None

    def _action_failed(self) -> bool:
        action = self._action()
        if not action or action.get('message') != 'Error':
            return False
        events = action.get('events') or []
        return all(e.get('finish_time') for e in events)

    def snapshot(self, server) -> progress.Snapshot:
        migration = None
        if (self.op.live and server.get('status') == 'MIGRATING') or (
                self.op.copies and server.get('status') == 'RESIZE'):
            migration = self._move_record()
        return progress.Snapshot(
            status=server.get('status', '?'), task_state=server.get('OS-EXT-STS:task_state'),
            progress=(None if server.get('progress') == self._stale_progress
                      else server.get('progress')),
            host=server.get('OS-EXT-SRV-ATTR:host'),
            migration=migration, elapsed=time.monotonic() - self.start)

    def wait(self) -> dict | None:
        """Poll until done; return the final server (None once deleted) or raise."""
        interval = FIRST_INTERVAL
        while True:
            server = self._get_server()
            elapsed = time.monotonic() - self.start
            if server is None:
                if self.op.gone_ok:
                    self.reporter.finish(f'{self._name()}: deleted in {elapsed:.2f}s')
                    return None
                self._fail('the server disappeared', None)
            if self._settled(server):
                return self._verdict(server)
            snap = self.snapshot(server)
            self.reporter.update(snap)
            if elapsed > self.timeout:
                self.reporter.finish(f'{self._name()}: still {progress.describe(snap)} '
                                     f'after {elapsed:.1f}s')
                raise CommandError(f'Timed out after {self.timeout:g}s waiting for '
                                   f'{self.op.name} of server {self._name()}; it is '
                                   f'{progress.describe(snap)}. The operation goes on.',
                                   'Timeout')
            time.sleep(interval)
            interval = min(MAX_INTERVAL, interval * BACKOFF)

    def _name(self):
        return self.server.get('name') or self.server['id']

    def _settled(self, server) -> bool:
        status = server.get('status')
        if server.get('OS-EXT-STS:task_state') is not None:
            return False
        if status == 'ERROR':
            return True
        if status in self.op.leave:
            # Nothing moves on the server itself (a failed confirm leaves it as it was):
            # the instance action tells whether the request already ended in error.
            return self._action_failed()
        return True

    # ------------------------------------------------------------ outcome

    def _verdict(self, server):
        elapsed = time.monotonic() - self.start
        status = server.get('status')
        host = server.get('OS-EXT-SRV-ATTR:host')
        where = f' on {host}' if host else ''
        reason = None
        if status not in self.op.success:
            reason = f'the server is {status}{where}'
        elif self.op.moves_host and host == self.server.get('OS-EXT-SRV-ATTR:host'):
            reason = f'the server stayed {status}{where}'
        elif self.op.live:
            reason = self._live_failure()
        if reason:
            self._fail(reason, server)
        self.reporter.finish(f'{self._name()}: {status}{where} '
                             f'({self.op.name} finished in {elapsed:.2f}s)')
        return server

    def _our_migration(self):
        try:
            migs = self.client.get('/os-migrations', params={
                'instance_uuid': self.server['id'],
                'migration_type': 'live-migration'})['migrations']
        except APIError:
            return None
        known = self.known_migrations
        fresh = [m for m in migs if known is None or m['id'] not in known]
        return max(fresh, key=lambda m: m['id']) if fresh else None

    def _live_failure(self):
        migration = self._our_migration()
        if migration is not None:
            if migration.get('status') in FAILED_MIGRATION:
                return (f"live migration {migration['id']} to "
                        f"{migration.get('dest_compute') or 'a new host'} ended "
                        f"'{migration['status']}'; the server stayed "
                        f"{self.server_host_text()}")
            return None
        action = self._action()
        if action and action.get('message') == 'Error':
            return 'the live migration failed'
        return None

    def server_host_text(self):
        server = self._get_server() or {}
        host = server.get('OS-EXT-SRV-ATTR:host')
        return f"{server.get('status', '?')}" + (f' on {host}' if host else '')

    def _fail(self, reason, server):
        elapsed = time.monotonic() - self.start
        self.reporter.finish(f'{self._name()}: {self.op.name} FAILED after {elapsed:.2f}s')
        lines = [f'{self.op.name} of server {self._name()} failed after {elapsed:.2f}s: '
                 f'{reason}.']
        lines.extend(explain(self.client, server, self._action()))
        raise CommandError('\n'.join(lines), 'OperationFailed')


def explain(client, server, action) -> list[str]:
    """Why it failed: the fault (with the scheduler's details when we may see them) and
    the failed events of the request's instance action."""
    lines = []
    seen = set()
    fault = (server or {}).get('fault') or {}
    if fault.get('message'):
        lines.append(f"  Fault: {fault['message']}")
        seen.add(fault['message'])
    if fault.get('details'):
        lines.append(f"  Details: {fault['details']}")
        seen.add(fault['details'])
    for event in (action or {}).get('events') or []:
        if event.get('result') != 'Error':
            continue
        host = f" on {event['host']}" if event.get('host') else ''
        lines.append(f"  Event {event['event']}{host}: Error")
        details = event.get('details')
        if not details and event.get('traceback'):
            # The exception line closes a traceback: enough to say what went wrong.
            details = str(event['traceback']).strip().splitlines()[-1]
        if details and details not in seen:
            lines.append(f'    {details}')
            seen.add(details)
    if action and not lines and action.get('message'):
        lines.append(f"  Instance action {action.get('action')}: {action['message']}")
    if action:
        lines.append(f"  Request-ID: {action.get('request_id')}")
    return lines
