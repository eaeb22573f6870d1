"""The host-drain loop: every active drain is driven from what the database records.

Each pass (at start, then every ``conductor.drain_interval`` seconds) a conductor takes
the drains nobody drives, or whose conductor is dead, and for each of them:

1. adds the servers found on the host that the drain does not hold yet (a move into the
   host that was under way when the drain started);
2. settles the moves it started: a server off the host is moved (a cold move is
   confirmed first); a server back on the host with no task failed that attempt, and
   after ``conductor.drain_max_attempts`` attempts it is reported with the fault of its
   last move (for NoValidHost, the scheduler's per-filter explanation);
3. starts the next moves while fewer than ``max_parallel`` run and the live-migration
   limits leave room: live where it can, cold where it must (``auto``), or as the mode
   asks;
4. ends the drain once no server is pending or moving: ``completed`` when every server
   left, ``failed`` with the servers that could not; a cancelled drain ends
   ``cancelled`` once its moves under way have ended.

Nothing is held in the process: a conductor killed mid-drain loses nothing. After a
restart it carries on from the records; another conductor takes the drain over once the
first has been dead for ``service_down_time``. Every write is a compare-and-swap on the
state read, and a move starts only from an instance with no task (the API's own step),
so two passes never start two moves of one server.
"""

import logging

from novalite import context as nl_context
from novalite import exception
from novalite.compute import states
from novalite.conf import CONF
from novalite.db import api as db

LOG = logging.getLogger(__name__)
DS = states.DrainStatus
SS = states.DrainServerState
LIVE, COLD, AUTO = 'live', 'cold', 'auto'
# The vm_states each kind of move starts from (the API checks them again).
LIVE_FROM = (states.ACTIVE, states.PAUSED)
COLD_FROM = (states.ACTIVE, states.STOPPED)


def choose_move(mode: str, vm_state: str, last_move: str | None,
                attempts: int) -> tuple[str | None, str | None]:
    """The next move for a server of a drain in ``mode``, or (None, why not)."""
    can_live, can_cold = vm_state in LIVE_FROM, vm_state in COLD_FROM
    if mode == LIVE:
        if can_live:
            return LIVE, None
        return None, f'A server in vm_state {vm_state} cannot be live-migrated.'
    if mode == AUTO and can_live:
        # Live where it can; after a failed live attempt, cold where it can instead.
        live_failed = last_move == LIVE and bool(attempts)
        if not (live_failed and can_cold):
            return LIVE, None
    if can_cold:
        return COLD, None
    return None, f'A server in vm_state {vm_state} can be neither live- nor cold-migrated.'


class Drainer:
    """One conductor's drain loop.

    ``api`` is the API-side compute layer: moves start through the same checks and
    recorded steps as a user's. ``reconciler`` says whether another conductor is dead.
    ``live_slots(host)`` is how many more live migrations out of ``host`` may start now.
    """

    def __init__(self, host, api, reconciler, live_slots=None):
        self.host = host
        self.api = api
        self.reconciler = reconciler
        self.live_slots = live_slots or (lambda host: 1 << 30)

    def run(self, context=None) -> int:
        driven = 0
        for drain in db.drain_get_all(status=states.DRAIN_ACTIVE):
            if not self._lease(drain):
                continue
            try:
                self.drive(drain)
                driven += 1
            except Exception:
                LOG.exception('Could not drive drain %s of host %s', drain['uuid'],
                              drain['host'])
        return driven

    def _lease(self, drain) -> bool:
        driver = drain['driver']
        if driver == self.host:
            return True
        if driver is not None and not self.reconciler.conductor_lost(driver):
            return False
        if not db.drain_take(drain['id'], driver, self.host):
            return False
        LOG.info('Driving drain %s of host %s (was %s)', drain['uuid'], drain['host'],
                 driver or 'not driven')
        return True

    # ------------------------------------------------------------ one pass of one drain

    def drive(self, drain):
        host = drain['host']
        held = {r['instance_uuid'] for r in drain['servers']}
        if drain['status'] == DS.RUNNING:
            new = [i['uuid'] for i in db.instance_get_all_by_host(host)
                   if i['uuid'] not in held]
            if new and db.drain_add_servers(drain['id'], new):
                drain = db.drain_get(drain['id'])
        rows = drain['servers']
        uuids = [r['instance_uuid'] for r in rows]
        instances = {i['uuid']: i for i in db.instance_get_all_filtered(uuid=uuids)} \
            if uuids else {}
        for row in rows:
            if row['state'] == SS.MOVING:
                self._settle(drain, row, instances.get(row['instance_uuid']))
        if drain['status'] == DS.RUNNING:
            self._start(drain, rows, instances)
        self._finish_if_done(drain, rows)

    def _set(self, drain, row, **values) -> bool:
        """Compare-and-swap ``row`` from the state read; the row follows on success."""
        if not db.drain_server_update(drain['id'], row['instance_uuid'], row['state'],
                                      **values):
            return False
        row.update(values)
        return True

    def _settle(self, drain, row, inst):
        """A move the drain started: still under way, off the host, or failed."""
        if inst is None:
            self._set(drain, row, state=SS.GONE, reason='The server was deleted.')
            return
        if inst['task_state'] is not None:
            return
        if inst['host'] != drain['host']:
            if inst['vm_state'] == states.RESIZED:
                self._confirm(drain, inst)
            elif inst['vm_state'] == states.ERROR:
                self._set(drain, row, state=SS.FAILED,
                          reason=f"In ERROR on {inst['host']}: {self._fault(inst, row)}")
            else:
                self._set(drain, row, state=SS.MOVED, reason=None)
            return
        self._attempt_failed(drain, row, inst, self._fault(inst, row))

    def _attempt_failed(self, drain, row, inst, reason):
        move, why_not = choose_move(drain['mode'], inst['vm_state'], row['move'],
                                    row['attempts'])
        if move is None or row['attempts'] >= CONF.conductor.drain_max_attempts:
            self._set(drain, row, state=SS.FAILED, reason=reason if move else
                      f'{reason} {why_not}' if reason else why_not)
        else:
            self._set(drain, row, state=SS.PENDING, reason=reason)

    def _start(self, drain, rows, instances):
        host = drain['host']
        busy = 0
        for row in rows:
            inst = instances.get(row['instance_uuid'])
            # A pending server that is busy on the host may be a move this drain started
            # just before its conductor died: it counts against the limit.
            if row['state'] == SS.MOVING or (row['state'] == SS.PENDING and inst and
                                             inst['task_state'] and inst['host'] == host):
                busy += 1
        free = drain['max_parallel'] - busy
        live_free = None
        for row in rows:
            if free <= 0:
                return
            if row['state'] != SS.PENDING:
                continue
            inst = instances.get(row['instance_uuid'])
            if inst is None:
                self._set(drain, row, state=SS.GONE, reason='The server was deleted.')
                continue
            if inst['task_state'] is not None:
                continue
            if inst['host'] != host:
                self._set(drain, row, state=SS.MOVED, reason=None)
                continue
            move, why_not = choose_move(drain['mode'], inst['vm_state'], row['move'],
                                        row['attempts'])
            if move is None:
                self._set(drain, row, state=SS.FAILED,
                          reason=f"{row['reason']} {why_not}" if row['reason'] else why_not)
                continue
            if move == LIVE:
                if live_free is None:
                    live_free = self.live_slots(host)
                if live_free <= 0:
                    continue
            if self._start_move(drain, row, inst, move):
                free -= 1
                if move == LIVE:
                    live_free -= 1

    def _context(self, drain):
        return nl_context.RequestContext(user_id=drain['user_id'],
                                         project_id=drain['project_id'], roles=['admin'],
                                         is_admin=True)

    def _start_move(self, drain, row, inst, move) -> bool:
        attempts = row['attempts'] + 1
        try:
            if move == LIVE:
                migration_uuid = self.api.live_migrate(
                    self._context(drain), inst, None, 'auto', None, False, async_=True,
                    drain_id=drain['id'])
            else:
                self.api.resize(self._context(drain), inst, flavor_id=None)
                migration_uuid = None
        except exception.NovaliteException as e:
            LOG.info('Drain %s could not start a %s move of %s: %s', drain['uuid'], move,
                     inst['uuid'], e)
            if attempts >= CONF.conductor.drain_max_attempts:
                self._set(drain, row, state=SS.FAILED, move=move, attempts=attempts,
                          reason=str(e))
            else:
                self._set(drain, row, move=move, attempts=attempts, reason=str(e))
            return False
        LOG.info('Drain %s: %s move %d of %s started', drain['uuid'], move, attempts,
                 inst['uuid'])
        # If this write is lost (the conductor dies now), the row stays pending with the
        # server busy: the next pass counts it as running and settles it when it ends.
        self._set(drain, row, state=SS.MOVING, move=move, attempts=attempts,
                  migration_uuid=migration_uuid, reason=None)
        return True

    def _confirm(self, drain, inst):
        try:
            self.api.confirm_resize(self._context(drain), inst)
        except exception.NovaliteException as e:
            LOG.info('Drain %s could not confirm the cold move of %s yet: %s',
                     drain['uuid'], inst['uuid'], e)

    @staticmethod
    def _fault(inst, row) -> str:
        """Why the last move left the server where it is: the newest fault recorded
        since the move started, with the scheduler's explanation when there is one."""
        fault = db.fault_get_latest([inst['uuid']]).get(inst['uuid'])
        started = row.get('updated_at')
        if fault and (started is None or fault['created_at'] >= started):
            text = fault['message']
            if fault.get('details') and fault['details'] not in text:
                text = f"{text}: {fault['details']}"
            return text
        status = None
        if row.get('migration_uuid'):
            try:
                status = db.migration_get(row['migration_uuid'])['status']
            except exception.MigrationNotFound:
                pass
        return ('The move ended with the server still on the host'
                + (f' (migration {status}).' if status else '.'))

    def _finish_if_done(self, drain, rows):
        if any(r['state'] in states.DRAIN_SERVER_OPEN for r in rows):
            return
        if drain['status'] == DS.CANCELLING:
            status = DS.CANCELLED
        elif any(r['state'] == SS.FAILED for r in rows):
            status = DS.FAILED
        else:
            status = DS.COMPLETED
        if db.drain_finish(drain['id'], self.host, status):
            failed = [r for r in rows if r['state'] == SS.FAILED]
            LOG.info('Drain %s of host %s ended %s: %d servers, %d could not be moved',
                     drain['uuid'], drain['host'], status, len(rows), len(failed))
