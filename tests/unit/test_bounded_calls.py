"""Calls bounded by the peer's liveness, heartbeats that never queue, a bounded stop.

The helper's retry logic runs against a scripted client on a fake clock; the rest runs
real RPC servers over the in-memory ``fake://`` transport.
"""

import socket
import threading
import time
import uuid

import oslo_messaging as messaging
import pytest

from novalite import context, exception, rpc, service
from novalite.compute import rpcapi as compute_rpcapi
from novalite.conductor import rpcapi as conductor_rpcapi
from novalite.conf import CONF

# ------------------------------------------------------------ the helper, scripted


class FakeClock:
    def __init__(self):
        self.now = 1000.0
        self.slept = []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


class ScriptedClient:
    """Answers a call with the next item of ``script``: an exception class is raised
    after the attempt's whole timeout has passed on the clock, an exception instance at
    once (as an absent queue fails), anything else is returned."""

    def __init__(self, clock, script):
        self.clock = clock
        self.script = list(script)
        self.timeouts = []
        self._timeout = None

    def prepare(self, timeout=None, **_kw):
        prepared = ScriptedClient(self.clock, [])
        prepared.script, prepared.timeouts, prepared._timeout = (self.script, self.timeouts,
                                                                 timeout)
        return prepared

    def call(self, ctxt, method, **kwargs):
        self.timeouts.append(self._timeout)
        item = self.script.pop(0) if self.script else messaging.MessagingTimeout
        if isinstance(item, type) and issubclass(item, Exception):
            self.clock.now += self._timeout
            raise item('no answer')
        if isinstance(item, Exception):
            raise item
        return item


@pytest.fixture
def clock(monkeypatch):
    c = FakeClock()
    monkeypatch.setattr(rpc, 'time', c)
    return c


def _dead(waited):
    return exception.PeerUnavailable(service='novalite-compute', host='h1',
                                     method='pre_live_migration', waited=waited)


def test_an_answered_call_asks_nothing_else(clock):
    client = ScriptedClient(clock, [{'ok': 1}])
    pings = []
    out = rpc.call_while_alive(client, None, 'pre_live_migration', timeout=100,
                               attempt_timeout=10, alive=lambda: pings.append(1) or True,
                               on_dead=_dead)
    assert out == {'ok': 1}
    assert client.timeouts == [10]
    assert pings == []


def test_a_live_peer_that_never_answers_gets_the_call_until_the_deadline(clock):
    client = ScriptedClient(clock, [])
    pings = []
    with pytest.raises(messaging.MessagingTimeout):
        rpc.call_while_alive(client, None, 'pre_live_migration', timeout=25,
                             attempt_timeout=10, alive=lambda: pings.append(1) or True,
                             on_dead=_dead)
    # Three attempts fill the 25 s: the last one gets only what is left.
    assert client.timeouts == [10, 10, 5]
    assert len(pings) == 2
    assert clock.now == 1025.0


def test_a_dead_peer_fails_the_call_at_once(clock):
    client = ScriptedClient(clock, [])
    with pytest.raises(exception.PeerUnavailable) as err:
        rpc.call_while_alive(client, None, 'pre_live_migration', timeout=1800,
                             attempt_timeout=10, alive=lambda: False, on_dead=_dead)
    assert client.timeouts == [10]
    assert 'h1' in str(err.value) and 'pre_live_migration' in str(err.value)
    assert isinstance(err.value, exception.ComputeServiceUnavailable)


def test_a_lost_call_is_answered_when_sent_again(clock):
    client = ScriptedClient(clock, [messaging.MessagingTimeout, 'done'])
    out = rpc.call_while_alive(client, None, 'record_step', timeout=60, attempt_timeout=10,
                               alive=lambda: True, on_dead=_dead)
    assert out == 'done'
    assert client.timeouts == [10, 10]


def test_a_pool_with_no_member_alive_is_asked_again_until_the_deadline(clock):
    # No on_dead: a conductor may come back, so the call goes out again (with a pause
    # when nothing answers at all) until the deadline.
    undeliverable = messaging.MessageUndeliverable(Exception('no queue'), 'novalite',
                                                   'conductor', {})
    client = ScriptedClient(clock, [undeliverable, messaging.MessagingTimeout, 'written'])
    out = rpc.call_while_alive(client, None, 'record_step', timeout=60, attempt_timeout=10,
                               alive=lambda: False)
    assert out == 'written'
    assert len(client.timeouts) == 3
    assert clock.slept == [1.0, 1.0]


def test_call_while_alive_refuses_a_deadline_in_the_past(clock):
    with pytest.raises(ValueError, match='positive timeout'):
        rpc.call_while_alive(ScriptedClient(clock, []), None, 'ping', timeout=0,
                             alive=lambda: True)


class BlockingClient:
    """Each call takes the next answer of ``answers``: a value is returned after
    ``delay`` seconds, ``None`` blocks until released (a call nobody answers)."""

    def __init__(self, answers, delay=0.0):
        self.answers = list(answers)
        self.delay = delay
        self.sent = 0
        self.release = threading.Event()

    def prepare(self, **_kw):
        return self

    def call(self, ctxt, method, **kwargs):
        self.sent += 1
        answer = self.answers.pop(0) if self.answers else None
        if answer is None:
            self.release.wait(30)
            raise messaging.MessagingTimeout('released')
        time.sleep(self.delay)
        return answer


@pytest.fixture
def blocking():
    made = []

    def make(answers, delay=0.0):
        made.append(BlockingClient(answers, delay))
        return made[-1]
    yield make
    for c in made:
        c.release.set()


def _probes(*answers):
    """probe() that gives ``answers`` in turn, then repeats the last one."""
    seen = []

    def probe():
        seen.append(answers[min(len(seen), len(answers) - 1)])
        return seen[-1]
    probe.seen = seen
    return probe


UP = {'incarnation': 'a', 'uptime': 1000.0}


def test_a_slow_live_peer_is_waited_for_never_asked_twice(blocking):
    client = blocking(['done'], delay=0.5)
    probe = _probes(UP)
    assert rpc.call_watching(client, None, 'check_can_live_migrate_destination',
                             timeout=30, probe=probe, on_dead=_dead,
                             check_interval=0.05) == 'done'
    assert client.sent == 1
    assert probe.seen  # it was watched while it worked


def test_a_peer_that_dies_during_the_call_fails_it_at_once(blocking):
    client = blocking([None])
    with pytest.raises(exception.PeerUnavailable):
        rpc.call_watching(client, None, 'pre_live_migration', timeout=1800,
                          probe=_probes(UP, None), on_dead=_dead, check_interval=0.05)
    assert client.sent == 1


def test_a_peer_that_restarted_gets_the_call_again(blocking):
    client = blocking([None, 'answered by the new process'])
    probe = _probes(UP, {'incarnation': 'b', 'uptime': 0.01})
    assert rpc.call_watching(client, None, 'post_live_migration_at_destination',
                             timeout=30, probe=probe, on_dead=_dead,
                             check_interval=0.05) == 'answered by the new process'
    assert client.sent == 2


def test_a_peer_up_for_less_than_the_wait_restarted_before_the_first_look(blocking):
    client = blocking([None, 'ok'])
    probe = _probes({'incarnation': 'b', 'uptime': 0.0}, UP)
    assert rpc.call_watching(client, None, 'pre_live_migration', timeout=30, probe=probe,
                             on_dead=_dead, check_interval=0.05) == 'ok'
    assert client.sent == 2


def test_a_live_peer_that_never_answers_times_out_at_the_deadline(blocking):
    client = blocking([None])
    with pytest.raises(messaging.MessagingTimeout, match='no answer'):
        rpc.call_watching(client, None, 'pre_live_migration', timeout=0.5,
                          probe=_probes(UP), on_dead=_dead, check_interval=0.05)
    assert client.sent == 1


# ------------------------------------------------------ real servers over fake://


@pytest.fixture
def url():
    # A transport of its own per test: the fake driver keeps its queues per transport.
    yield f'fake:///{uuid.uuid4().hex}'
    rpc.cleanup()


class Gate:
    """Handlers block on it until the test opens it (at the latest at teardown)."""

    def __init__(self):
        self.event = threading.Event()
        self.calls = []
        self.lock = threading.Lock()

    def hold(self, name):
        with self.lock:
            self.calls.append(name)
        self.event.wait(60)

    def count(self, name):
        with self.lock:
            return self.calls.count(name)


@pytest.fixture
def gate():
    g = Gate()
    yield g
    g.event.set()


class SilentCompute(service.Manager):
    """A compute that answers its ping but sits on every pre-check."""

    target = messaging.Target(version=compute_rpcapi.VERSION)
    rpc_methods = ('ping', 'check_can_live_migrate_source')

    def __init__(self, host, gate):
        super().__init__(host, 'novalite-compute')
        self.gate = gate

    def ping(self, context):
        return {'host': self.host}

    def check_can_live_migrate_source(self, context, instance, dest_check_data):
        self.gate.hold('check_can_live_migrate_source')
        return {}


class BusyConductor(service.Manager):
    """A conductor whose record_progress is slow; heartbeats are quick."""

    target = messaging.Target(version=conductor_rpcapi.VERSION)
    rpc_methods = ('ping', 'service_heartbeat', 'record_progress')
    priority_methods = conductor_rpcapi.PRIORITY_METHODS

    def __init__(self, host, gate):
        super().__init__(host, 'novalite-conductor')
        self.gate = gate
        self.heartbeats = []

    def ping(self, context):
        return {'host': self.host}

    def service_heartbeat(self, context, caller, binary):
        self.heartbeats.append((caller, binary))
        return {'host': caller}

    def record_progress(self, context, caller, instance_uuid, progress=None,
                        migration_uuid=None, migration_values=None):
        self.gate.hold('record_progress')


def _until(predicate, timeout=30, what='condition'):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out waiting for {what}')
        time.sleep(0.02)


@pytest.fixture
def running(url):
    started = []

    def start(manager, topic):
        svc = service.Service(manager, manager.service_name, topic, manager.host,
                              transport_url=url)
        svc.start()
        started.append(svc)
        return svc
    yield start
    for svc in started:
        svc.stop(graceful_timeout=0, wait_executor=False)


def test_a_live_compute_that_never_answers_is_waited_for_until_the_deadline(
        url, gate, running):
    CONF.set_override('call_attempt_timeout', 1)
    running(SilentCompute('c1', gate), compute_rpcapi.TOPIC)
    api = compute_rpcapi.ComputeAPI(url=url)
    ctxt = context.get_admin_context()
    with pytest.raises(messaging.MessagingTimeout):
        api._call(ctxt, 'c1', 'check_can_live_migrate_source', timeout=3, instance={},
                  dest_check_data={})
    # Watched (pinged) all along, but the same live process: never sent twice.
    assert gate.count('check_can_live_migrate_source') == 1
    assert api.is_alive(ctxt, 'c1')


class AnsweringCompute(SilentCompute):
    def check_can_live_migrate_source(self, context, instance, dest_check_data):
        return {'answered_by': 'the restarted compute'}


def test_a_call_lost_with_a_compute_that_restarted_is_sent_again(url, gate, running):
    CONF.set_override('call_attempt_timeout', 1)
    first = running(SilentCompute('c3', gate), compute_rpcapi.TOPIC)
    api = compute_rpcapi.ComputeAPI(url=url)
    result = {}

    def call():
        result['out'] = api.check_can_live_migrate_source(context.get_admin_context(),
                                                          'c3', {}, {})
    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    _until(lambda: gate.count('check_can_live_migrate_source') == 1, what='first call')
    # The process that took the call goes away without answering; a new one starts.
    first.stop(graceful_timeout=0, wait_executor=False)
    running(AnsweringCompute('c3', gate), compute_rpcapi.TOPIC)
    caller.join(30)
    assert result.get('out') == {'answered_by': 'the restarted compute'}


def test_a_dead_compute_fails_the_call_long_before_long_rpc_timeout(url):
    CONF.set_override('call_attempt_timeout', 1)
    CONF.set_override('liveness_ping_timeout', 1)
    api = compute_rpcapi.ComputeAPI(url=url)
    start = time.monotonic()
    with pytest.raises(exception.PeerUnavailable, match='gone-host'):
        api.pre_live_migration(context.get_admin_context(), 'gone-host', {}, {})
    # One attempt and one ping, not CONF.long_rpc_timeout (1800 s).
    assert time.monotonic() - start < CONF.long_rpc_timeout / 10


def test_a_heartbeat_lands_while_every_conductor_worker_is_busy(url, gate, running):
    CONF.set_override('executor_thread_pool_size', 2)
    CONF.set_override('report_interval', 2)
    conductor = BusyConductor('cond1', gate)
    running(conductor, conductor_rpcapi.TOPIC)
    api = conductor_rpcapi.ConductorAPI(url=url)
    host = conductor_rpcapi.HostConductor(api, 'c1', context.get_admin_context)
    for _ in range(4):  # two take the workers, two wait for them
        threading.Thread(target=host._call, args=('record_progress',),
                         kwargs={'instance_uuid': 'x'}, daemon=True).start()
    _until(lambda: conductor.running().get('record_progress') == 2,
           what='both workers busy')
    # The main topic is saturated: even a ping there gets no answer ...
    with pytest.raises(messaging.MessagingTimeout):
        api.ping(context.get_admin_context(), timeout=1)
    # ... while a heartbeat, on the priority server, lands within report_interval.
    assert host.service_heartbeat('novalite-compute') == {'host': 'c1'}
    assert conductor.heartbeats == [('c1', 'novalite-compute')]


def test_stop_is_bounded_whatever_the_handlers_do(url, gate, running):
    svc = running(SilentCompute('c2', gate), compute_rpcapi.TOPIC)
    api = compute_rpcapi.ComputeAPI(url=url)
    threading.Thread(target=api.check_can_live_migrate_source,
                     args=(context.get_admin_context(), 'c2', {}, {}), daemon=True).start()
    _until(lambda: svc.manager.running(), what='a running handler')
    start = time.monotonic()
    assert svc.stop(graceful_timeout=1) is False  # it left the blocked handler behind
    assert time.monotonic() - start < 1 + service.STOP_GRACE + 2
    assert svc.manager.running() == {'check_can_live_migrate_source': 1}


def test_a_silent_peer_while_the_broker_is_out_of_reach_is_not_judged(blocking):
    """The ping fails because the broker is down, not the peer: the call waits for the
    broker, then sends the request again (it or its answer may be lost)."""
    client = blocking([None, 'answered after the outage'])
    probe = _probes(UP, None, None, UP)
    broker = iter([False, False])
    assert rpc.call_watching(client, None, 'post_live_migration_at_destination',
                             timeout=30, probe=probe, on_dead=_dead, check_interval=0.05,
                             reachable=lambda: next(broker, True)) == \
        'answered after the outage'
    assert client.sent == 2


def test_a_silent_peer_with_the_broker_reachable_is_dead(blocking):
    client = blocking([None])
    with pytest.raises(exception.PeerUnavailable):
        rpc.call_watching(client, None, 'pre_live_migration', timeout=30,
                          probe=_probes(UP, None), on_dead=_dead, check_interval=0.05,
                          reachable=lambda: True)
    assert client.sent == 1


def test_bus_reachable():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        s.listen()
        port = s.getsockname()[1]
        assert rpc.bus_reachable(f'rabbit://u:p@127.0.0.1:{port}/')
    # Closed now: nothing listens there.
    assert not rpc.bus_reachable(f'rabbit://u:p@127.0.0.1:{port}/', timeout=0.5)
    assert rpc.bus_reachable(f'rabbit://u:p@127.0.0.1:{port},u:p@127.0.0.1:{port}/') is False
    assert rpc.bus_reachable('fake://') and rpc.bus_reachable('inproc://')


def test_a_broker_error_seen_here_keeps_a_silent_peer_unjudged_for_a_back_off(
        monkeypatch, caplog):
    """After an outage a live peer may take up to the driver's reconnect back-off to come
    back: a process that saw the broker fail does not judge a silent peer dead until
    then, although the broker answers again (``bus_settled``)."""
    monkeypatch.setattr(rpc, '_bus_trouble_at', None)
    monkeypatch.setattr(rpc, 'bus_reachable', lambda url=None: True)
    rpc.watch_bus_trouble()
    rpc.watch_bus_trouble()   # once per process, however often asked
    from oslo_messaging._drivers import impl_rabbit
    driver_log = impl_rabbit.LOG   # what the driver logs through
    assert sum(isinstance(h, rpc._BusTroubleWatch) for h in driver_log.logger.handlers) == 1
    assert rpc.bus_settled()
    driver_log.warning('Queue %s is stuck on unresponsive node', 'q')   # not an outage
    assert rpc.bus_settled()
    driver_log.error('Connection failed: %s (retrying in %s seconds)', 'refused', 1.0)
    assert not rpc.bus_settled()
    monkeypatch.setattr(rpc, 'reconnect_back_off', lambda: 0.0)
    time.sleep(0.01)
    assert rpc.bus_settled()   # the back-off is over: a silent peer is dead again


def test_a_compute_call_judges_its_peer_only_once_the_broker_settled(monkeypatch):
    seen = {}
    monkeypatch.setattr(rpc, 'call_watching',
                        lambda *a, reachable, **kw: seen.setdefault('reachable', reachable))
    monkeypatch.setattr(rpc, 'bus_reachable', lambda url=None: True)
    compute_rpcapi.ComputeAPI('fake://')._call(None, 'h1', 'pre_live_migration')
    monkeypatch.setattr(rpc, '_bus_trouble_at', time.monotonic())
    assert seen['reachable']() is False
    monkeypatch.setattr(rpc, '_bus_trouble_at', None)
    assert seen['reachable']() is True
