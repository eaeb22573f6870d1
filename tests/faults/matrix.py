"""The runner of the fault matrix: plays its cells (tests/faults/cells.py) against clusters.

A cell is (operation, daemon, phase, fault): start the operation on a server, poll the
database until the move reaches the recorded phase, inject the fault, then check that the
server settles, that its guest is on exactly the hypervisor the database names, that
allocations exist only where it is, and that a follow-up cold migration and confirm work.
Each cluster runs with its database and its broker behind a ``TcpProxy`` so outages can be
simulated without touching the machine's services.
"""

import json
import os
import signal
import time
import urllib.parse

import sqlalchemy as sa

from novalite import service
from novalite.cluster import Cluster
from novalite.compute import states
from novalite.compute.states import MS
from novalite.db import api as db
from novalite.db import session
from tests.conftest import PG_URLS, RABBIT_URLS, fresh_pg_database, private_vhost
from tests.faults.cells import (  # noqa: F401  (the runner's API names them too)
    CELLS,
    DAEMONS,
    FAST,
    FAULTS,
    OPERATIONS,
    OUTCOMES,
    PHASES,
    Cell,
    Result,
    cell_by_name,
    select,
    summary,
    table,
)
from tests.faults.proxy import TcpProxy
from tests.rest import RestClient

OP_DELAY = 2.0              # seconds each fake hypervisor operation takes
# A live migration's copy then takes a few seconds (m1.small: about 8 s): long enough to
# catch it running, short enough that its own length does not eat the settle limit.
LIVE_BANDWIDTH = 250        # MiB/s
SERVICE_DOWN_TIME = 6
REPORT_INTERVAL = 1
GRACEFUL_TIMEOUT = 5
SETTLE_SECONDS = 30         # after the restart or the restore
DEAD_SETTLE_SECONDS = SERVICE_DOWN_TIME + 30
CATCH_SECONDS = 60          # for the operation to reach the phase
CLEANUP_SECONDS = 15        # for clean-up casts to land once the server has settled
READY_SECONDS = 60          # for every daemon to answer again before the follow-up
POLL = 0.02
# A daemon ends within graceful_shutdown_timeout + STOP_GRACE + 1 s of SIGTERM (its
# watchdog's bound); the harness allows one more second for the exit to be reaped.
STOP_LIMIT = GRACEFUL_TIMEOUT + service.STOP_GRACE + 2


class SlowStop(Exception):
    """A daemon took longer than its bound to exit after SIGTERM."""


# Modules and --host of each daemon that is not a compute.
_CONTROL = {'api': 'api', 'conductor': 'conductor', 'scheduler': 'scheduler'}



# ---------------------------------------------------------------- service URLs

def service_urls():
    """(PostgreSQL, RabbitMQ) URLs from the integration tests' environment variables,
    else the first default candidates of tests/conftest.py."""
    return (os.environ.get('NOVALITE_TEST_PG_URL') or PG_URLS[0],
            os.environ.get('NOVALITE_TEST_RABBIT_URL') or RABBIT_URLS[0])


def _rabbit_via(url, port):
    parts = urllib.parse.urlsplit(url)
    userinfo = parts.netloc.rpartition('@')[0]
    netloc = (userinfo + '@' if userinfo else '') + f'127.0.0.1:{port}'
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, '', ''))


def _rabbit_target(url):
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or '127.0.0.1', parts.port or 5672


# ------------------------------------------------------------------------- the rig

class Rig:
    """A cluster on a fresh PostgreSQL database and a private RabbitMQ vhost, both
    reached through proxies; this process reads the database directly."""

    def __init__(self, workdir, pg_url, rabbit_url, computes=2):
        self.workdir = str(workdir)
        self.pg_url = pg_url
        self.rabbit_url = rabbit_url
        self.computes = computes
        self.cluster: Cluster | None = None
        self.db_proxy: TcpProxy | None = None
        self.mq_proxy: TcpProxy | None = None
        self.direct_db_url = None
        self._gens = []
        self.dead: set[str] = set()
        self.cells_run = 0

    def start(self):
        try:
            db_gen = fresh_pg_database(self.pg_url)
            self.direct_db_url = next(db_gen)
            self._gens.append(db_gen)
            mq_gen = private_vhost(self.rabbit_url)
            vhost_url = next(mq_gen)
            self._gens.append(mq_gen)
            direct = sa.engine.make_url(self.direct_db_url)
            self.db_proxy = TcpProxy(direct.host or '127.0.0.1', direct.port or 5432).start()
            self.mq_proxy = TcpProxy(*_rabbit_target(vhost_url)).start()
            db_url = direct.set(host='127.0.0.1', port=self.db_proxy.port).render_as_string(
                hide_password=False)
            self.cluster = Cluster(
                self.workdir, db_url, _rabbit_via(vhost_url, self.mq_proxy.port),
                computes=self.computes, report_interval=REPORT_INTERVAL,
                service_down_time=SERVICE_DOWN_TIME,
                extra_conf={'fake_driver.operation_delay': OP_DELAY,
                            'fake_driver.live_migration_bandwidth_mb_s': LIVE_BANDWIDTH,
                            'DEFAULT.graceful_shutdown_timeout': GRACEFUL_TIMEOUT,
                            # A rig serves many cells; their servers stay (-1: no limit).
                            'quota.instances': -1, 'quota.cores': -1, 'quota.ram': -1})
            self.cluster.start()
            session.set_engine(session.create_engine(self.direct_db_url))
        except BaseException:
            self.close()
            raise
        return self

    def close(self):
        if self.cluster is not None:
            self.cluster.stop()
        for proxy in (self.db_proxy, self.mq_proxy):
            if proxy is not None:
                proxy.cut()
        session.set_engine(None)
        while self._gens:
            self._gens.pop().close()   # drops the vhost, then the database

    # -------------------------------------------------------------- processes

    def process_of(self, daemon, hosts):
        """The cluster's process name of ``daemon`` given the hosts of the move."""
        if daemon in _CONTROL:
            return daemon
        host = hosts.get(daemon)
        if not host:
            raise LookupError(f'no {daemon} host known for this move yet')
        return host

    def restart(self, name):
        if name in _CONTROL:
            self.cluster.start_process(name, _CONTROL[name], 'ctl')
        else:
            self.cluster.start_process(name, 'compute', name)

    def live_hosts(self):
        return [h for h in self.cluster.compute_hosts if h not in self.dead]

    def exited(self):
        return {n: p.returncode for n, p in self.cluster.procs.items() if p.poll() is not None}

    def guests(self, host):
        """The fake hypervisor's persisted guest tables of ``host``."""
        path = os.path.join(self.workdir, 'fake', f'{host}.json')
        for _ in range(5):
            try:
                with open(path) as f:
                    return json.load(f)
            except FileNotFoundError:  # a host that never held a guest
                return {'guests': {}, 'resize_backups': {}, 'incoming': {}}
            except ValueError:  # caught half written: read it again
                time.sleep(0.05)
        raise RuntimeError(f'{path} is not valid JSON')


# ------------------------------------------------------------------ database reads

def _instance(sid):
    return db.instance_get(sid, read_deleted='yes')


def _migrations(sid):
    return db.migration_get_all(instance_uuid=sid)


def _newest(sid, known=()):
    for m in _migrations(sid):
        if m['uuid'] not in known:
            return m
    return None


def _describe(sid):
    try:
        inst = _instance(sid)
    except Exception as exc:  # the description must never hide the outcome
        return f'cannot read the server: {exc}'
    migs = ', '.join(f"{m['migration_type']}:{m['status']}" for m in _migrations(sid))
    return (f"vm_state={inst['vm_state']} task_state={inst['task_state']} "
            f"host={inst['host']} migrations=[{migs}]")


def _settled(op, sid):
    inst = _instance(sid)
    if op == 'delete':
        return bool(inst['deleted']) or (inst['task_state'] is None and
                                         inst['vm_state'] == states.ERROR)
    if inst['task_state'] is not None or inst['vm_state'] == states.BUILDING:
        return False
    return all(m['status'] in states.MIGRATION_DONE + (MS.FINISHED,) for m in _migrations(sid))


def _finished(op, sid, known):
    """Whether the operation has already run to its end (the phase can no longer come)."""
    if not _settled(op, sid):
        return False
    if op in ('boot', 'delete'):
        return True
    mig = _newest(sid, known)
    if op == 'confirm':
        return mig['status'] != MS.FINISHED
    if op == 'revert':
        return mig['status'] in states.MIGRATION_DONE
    return mig is not None


def _poll(predicate, timeout):
    """``predicate()`` until true or ``timeout``; (value, seconds). Errors count as
    false: the reads go straight to the database server, but a cell must not die of one."""
    start = time.monotonic()
    while True:
        try:
            value = predicate()
        except Exception:
            value = None
        elapsed = time.monotonic() - start
        if value or elapsed > timeout:
            return value, elapsed
        time.sleep(POLL)


# ------------------------------------------------------------------------- checks

def consistency(rig, sid):
    """None when the server's guest, allocations and migrations agree; else
    (outcome, detail)."""
    inst = _instance(sid)
    hosts = rig.live_hosts()
    tables = {h: rig.guests(h) for h in hosts}
    migs = _migrations(sid)
    if inst['deleted']:
        left = [f'{h}:{kind}' for h, t in tables.items() for kind in t if sid in t[kind]]
        if left:
            return 'leaked', f'deleted server still on {left}'
        held = [c for c in [sid] + [m['uuid'] for m in migs] if db.get_allocations(c)]
        if held:
            return 'leaked', f'deleted server still holds allocations ({len(held)} consumers)'
        return None
    host = inst['host']
    holders = [h for h in hosts if sid in tables[h]['guests']]
    dead_note = ''.join(f'; dead {h} lists it' for h in rig.dead
                        if sid in rig.guests(h)['guests'])
    # A server whose host died after the guest reached it (a live migration's
    # switch-over) went down with that host, and the record says exactly that.
    stranded = not holders and _stranded(rig, inst)
    if not holders and not stranded:
        return 'guest-on-0', (f"no live hypervisor runs it; database says {host}, "
                              f"vm_state {inst['vm_state']}{dead_note}")
    if len(holders) > 1:
        return 'guest-on-2', f'on {holders}; database says {host}'
    if holders and holders != [host]:
        return 'guest-on-0', f'on {holders[0]}, database says {host}'
    verify = [m for m in migs if m['status'] == MS.FINISHED]
    for h, t in tables.items():
        if sid in t['incoming']:
            return 'leaked', f'incoming guest left on {h}'
        allowed = {m['source_compute'] for m in verify}
        if sid in t['resize_backups'] and h not in allowed:
            return 'leaked', f'resize backup left on {h}'
    node = db.compute_node_get_by_host_and_node(host)['uuid']
    allocs = set(db.get_allocations(sid))
    if allocs != {node}:
        return 'leaked', f'instance allocations on {sorted(allocs)}, expected only {host}'
    for m in migs:
        held = set(db.get_allocations(m['uuid']))
        if states.source_owes_cleanup(m) and m['source_compute'] in rig.dead:
            # An evacuation keeps its dead source's claim until that host is back.
            src = db.compute_node_get_by_host_and_node(m['source_compute'])['uuid']
            if held != {src}:
                return 'leaked', 'a done evacuation holds allocations off its source'
            continue
        if m['status'] in states.MIGRATION_DONE and held:
            return 'leaked', f"{m['status']} migration still holds allocations"
        if m['status'] == MS.FINISHED:
            src = db.compute_node_get_by_host_and_node(m['source_compute'])['uuid']
            if held - {src}:
                return 'leaked', 'unconfirmed migration holds allocations off its source'
    return None


def _stranded(rig, inst):
    """The server is on a host that never comes back, in ERROR, and that host's
    hypervisor holds its guest: lost with the host, as recorded (evacuation's case)."""
    host = inst['host']
    if host not in rig.dead or inst['vm_state'] != states.ERROR:
        return False
    guests = rig.guests(host)
    return inst['uuid'] in guests['guests'] or inst['uuid'] in guests['incoming']


def _consistent_within(rig, sid, timeout=CLEANUP_SECONDS):
    """Poll ``consistency`` (clean-ups are casts); the last problem, or None."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            problem = consistency(rig, sid)
        except Exception as exc:
            problem = ('harness-error', f'check failed: {type(exc).__name__}: {exc}')
        if problem is None or time.monotonic() > deadline:
            return problem
        time.sleep(0.2)


def follow_up(rig, client, sid):
    """Cold migrate + confirm the server (confirming a pending resize first); None when
    it works and leaves everything consistent, else the detail of what failed."""
    try:
        rig.cluster.wait_ready(READY_SECONDS, computes_up=len(rig.live_hosts()))
        server = client.server(sid)
        if server['status'] == 'VERIFY_RESIZE':
            client.action(sid, {'confirmResize': None}, expect=204)
            client.wait_for_server(sid, 'ACTIVE', timeout=60)
        elif server['status'] != 'ACTIVE':
            return f"server is {server['status']}"
        start_host = server['OS-EXT-SRV-ATTR:host']
        client.action(sid, {'migrate': None})
        server = client.wait_for_server(sid, 'VERIFY_RESIZE', timeout=60)
        if server['OS-EXT-SRV-ATTR:host'] == start_host:
            return 'migrated onto the host it came from'
        client.action(sid, {'confirmResize': None}, expect=204)
        client.wait_for_server(sid, 'ACTIVE', timeout=60)
        client.wait_until(lambda: _migrations(sid)[0]['status'] == MS.CONFIRMED,
                          timeout=60, message='follow-up migration confirmed')
    except Exception as exc:
        return f'{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ""}'[:300]
    problem = _consistent_within(rig, sid)
    return None if problem is None else f'after it: {problem[0]}: {problem[1]}'


# ------------------------------------------------------------------------- a cell

def _boot(client, name):
    return client.boot(name, wait=False)['id']


def _prepare(rig, cell, client):
    """The server the operation acts on (None for a boot), ready for it."""
    if cell.operation == 'boot':
        return None
    sid = _boot(client, 'fault-' + cell.operation)
    client.wait_for_server(sid, 'ACTIVE', timeout=60)
    if cell.operation in ('confirm', 'revert'):
        client.action(sid, {'migrate': None})
        client.wait_for_server(sid, 'VERIFY_RESIZE', timeout=60)
    if cell.operation == 'evacuate':
        # Its host dies for good and is fenced (forced down), as evacuation needs.
        host = client.server(sid)['OS-EXT-SRV-ATTR:host']
        rig.cluster.stop_process(host, sig=signal.SIGKILL)
        rig.dead.add(host)
        client.request('PUT', '/os-services/force-down',
                       {'host': host, 'binary': 'novalite-compute', 'forced_down': True},
                       version='2.11', expect=200)
    return sid


def _start(cell, client, sid):
    """Start the operation; returns the server id."""
    op = cell.operation
    if op == 'boot':
        return _boot(client, 'fault-boot')
    if op == 'resize':
        client.action(sid, {'resize': {'flavorRef': '2'}})
    elif op == 'migrate':
        client.action(sid, {'migrate': None})
    elif op == 'confirm':
        client.action(sid, {'confirmResize': None}, expect=204)
    elif op == 'revert':
        client.action(sid, {'revertResize': None})
    elif op == 'live-migrate':
        client.action(sid, {'os-migrateLive': {'host': None, 'block_migration': 'auto'}})
    elif op == 'delete':
        client.request('DELETE', f'/servers/{sid}', expect=204)
    elif op == 'evacuate':
        client.action(sid, {'evacuate': {}}, expect=200)
    return sid


def _hosts(inst, mig):
    """source/dest/compute host names of the move as recorded now."""
    hosts = {'compute': inst['host']}
    if mig is not None:
        hosts.update(source=mig['source_compute'], dest=mig['dest_compute'])
    return hosts


def _inject(rig, cell, hosts):
    """Apply the fault; returns (settle limit in seconds, detail)."""
    cluster = rig.cluster
    if cell.fault in ('sigkill', 'sigterm'):
        name = rig.process_of(cell.daemon, hosts)
        if cell.fault == 'sigkill':
            cluster.stop_process(name, sig=signal.SIGKILL)
            rig.restart(name)
            return SETTLE_SECONDS, f'killed {name}'
        t0 = time.monotonic()
        rc = cluster.stop_process(name, sig=signal.SIGTERM, timeout=GRACEFUL_TIMEOUT + 15)
        took = time.monotonic() - t0
        rig.restart(name)
        late = '' if rc != -signal.SIGKILL else ' (did not stop: killed)'
        if rc == -signal.SIGKILL or took > STOP_LIMIT:
            raise SlowStop(f'{name} stopped in {took:.1f}s, over its bound of '
                           f'{STOP_LIMIT:.0f}s{late}')
        return SETTLE_SECONDS, f'{name} stopped in {took:.1f}s'
    if cell.fault == 'dest-dead':
        name = rig.process_of('dest', hosts)
        cluster.stop_process(name, sig=signal.SIGKILL)
        rig.dead.add(name)
        return DEAD_SETTLE_SECONDS, f'{name} killed for good'
    proxy = rig.db_proxy if cell.fault.startswith('db-') else rig.mq_proxy
    seconds = int(cell.fault.split('-')[1])
    proxy.cut()
    try:
        time.sleep(seconds)  # the outage itself, not a wait for state
    finally:
        proxy.restore()
    return SETTLE_SECONDS, f"{'database' if cell.fault.startswith('db-') else 'broker'} " \
                           f'cut for {seconds}s'


def run_cell(rig, cell):
    """Play one cell on a running rig; returns its Result."""
    client = RestClient(rig.cluster.endpoint, wait_timeout=60)
    rig.cluster.wait_ready(60, computes_up=len(rig.live_hosts()))
    rig.cells_run += 1
    sid = _prepare(rig, cell, client)
    known = {m['uuid'] for m in _migrations(sid)} if sid else set()
    if cell.operation in ('confirm', 'revert'):
        known = set()  # they act on the migration the preparation made
    sid = _start(cell, client, sid)
    phase = PHASES[cell.operation][cell.phase]
    started = time.monotonic()

    def caught():
        inst = _instance(sid)
        mig = _newest(sid, known)
        if phase(inst, mig):
            return inst, mig
        return None

    state = None
    while time.monotonic() - started < CATCH_SECONDS:
        try:
            state = caught()
        except Exception:  # e.g. not created yet
            state = None
        if state:
            break
        try:
            if _finished(cell.operation, sid, known):
                break
        except Exception:
            pass
        time.sleep(POLL)
    if not state:
        return Result(cell, 'not-caught', None, 'phase passed: ' + _describe(sid))
    try:
        limit, note = _inject(rig, cell, _hosts(*state))
    except SlowStop as exc:
        return Result(cell, 'slow-stop', None, str(exc))
    except LookupError as exc:
        return Result(cell, 'not-caught', None, str(exc))
    _, seconds = _poll(lambda: _settled(cell.operation, sid), limit)
    exited = rig.exited()
    if exited:
        note += f'; exited: {exited}'
    if not _settled(cell.operation, sid):
        return Result(cell, 'stuck', None, f'{note}; {_describe(sid)}')
    problem = _consistent_within(rig, sid)
    if problem is not None:
        return Result(cell, problem[0], seconds, f'{note}; {problem[1]}')
    target = sid
    inst = _instance(sid)
    if inst['deleted'] or _stranded(rig, inst):
        try:
            # The API may just have restarted.
            rig.cluster.wait_ready(READY_SECONDS, computes_up=len(rig.live_hosts()))
            target = _boot(client, 'fault-follow-up')
            client.wait_for_server(target, 'ACTIVE', timeout=60)
        except Exception as exc:
            return Result(cell, 'follow-up-failed', seconds, f'{note}; boot: {exc}'[:300])
    failed = follow_up(rig, client, target)
    if failed:
        return Result(cell, 'follow-up-failed', seconds, f'{note}; {failed}')
    return Result(cell, 'ok', seconds, note)


# ------------------------------------------------------------------------- runner

class RigPool:
    """Hands out a running rig for a cell: the same one while cells come out clean,
    a fresh one after any other outcome, a dead host, or a change in the host count."""

    def __init__(self, workdir, pg_url=None, rabbit_url=None):
        default_pg, default_mq = service_urls()
        self.workdir = str(workdir)
        self.pg_url = pg_url or default_pg
        self.rabbit_url = rabbit_url or default_mq
        self.rig: Rig | None = None
        self.started = 0

    def rig_for(self, cell):
        if self.rig is not None and self.rig.computes != cell.computes:
            self.close()
        if self.rig is None:
            self.started += 1
            self.rig = Rig(os.path.join(self.workdir, f'cluster-{self.started}'),
                           self.pg_url, self.rabbit_url, cell.computes).start()
        return self.rig

    def done(self, result):
        rig = self.rig
        if rig is not None and (result.outcome not in ('ok', 'not-caught') or rig.dead or
                                rig.exited()):
            self.close()

    def close(self):
        if self.rig is not None:
            rig, self.rig = self.rig, None
            rig.close()

    def play(self, cell):
        """Run one cell; harness failures become a 'harness-error' Result."""
        try:
            result = run_cell(self.rig_for(cell), cell)
        except Exception as exc:
            result = Result(cell, 'harness-error', None,
                            f'{type(exc).__name__}: {exc}'.splitlines()[0][:300])
        self.done(result)
        return result


def run(cells, workdir, pg_url=None, rabbit_url=None, report=None):
    """Play ``cells`` (those needing the same number of hosts together) and return the
    Results in matrix order; ``report`` is called with each Result as it comes."""
    pool = RigPool(workdir, pg_url, rabbit_url)
    results = []
    try:
        for cell in sorted(cells, key=lambda c: c.computes):
            results.append(pool.play(cell))
            if report is not None:
                report(results[-1])
    finally:
        pool.close()
    order = {c: i for i, c in enumerate(CELLS)}
    results.sort(key=lambda r: order.get(r.cell, len(order)))
    return results
