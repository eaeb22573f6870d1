"""The daemon loop shared by every service: RPC server, heartbeat, periodic reconciles.

A service registers itself in ``services`` (directly, or through the conductor for
compute hosts, which never open the database), heartbeats every ``report_interval``,
runs its manager's periodic tasks as idempotent reconcile functions, and on stop
first stops consuming, then waits up to ``graceful_shutdown_timeout`` for in-flight
requests before it returns, whatever those requests do.

Each service runs a second RPC server on ``rpc.priority_topic(topic)`` with a small
pool of its own that dispatches only its manager's ``priority_methods``: pings (which
callers use to tell a slow peer from a dead one) and, on a conductor, heartbeats.
"""

import logging
import os
import signal
import sys
import threading
import time
import uuid

import oslo_messaging as messaging

from novalite import context, rpc, stats
from novalite.conf import CONF

LOG = logging.getLogger(__name__)


def periodic_task(spacing: float | str | None = None, run_immediately: bool = False):
    """Mark a manager method as a periodic reconcile; ``spacing`` seconds or an option name."""

    def deco(fn):
        fn._periodic_spacing = spacing
        fn._periodic_immediate = run_immediately
        return fn

    return deco


class Manager:
    """Base of the service managers: the RPC endpoint plus its periodic tasks."""

    target = messaging.Target(version='1.0')
    rpc_methods: tuple = ('ping',)  # what the RPC server may dispatch; the rpcapi's list
    # What the priority server dispatches (a subset of rpc_methods), never behind the rest.
    priority_methods: tuple = ('ping',)

    def __init__(self, host: str, service_name: str):
        self.host = host
        self.service_name = service_name
        self._inflight = 0
        self._inflight_names: dict[str, int] = {}
        self._inflight_cond = threading.Condition()

    # In-flight accounting lets a graceful stop wait for running handlers, and name
    # those it gives up on.
    def _enter(self, name: str = '?'):
        with self._inflight_cond:
            self._inflight += 1
            self._inflight_names[name] = self._inflight_names.get(name, 0) + 1

    def _leave(self, name: str = '?'):
        with self._inflight_cond:
            self._inflight -= 1
            left = self._inflight_names.get(name, 0) - 1
            if left > 0:
                self._inflight_names[name] = left
            else:
                self._inflight_names.pop(name, None)
            self._inflight_cond.notify_all()

    def running(self) -> dict[str, int]:
        """Handlers running now: method name -> how many."""
        with self._inflight_cond:
            return dict(self._inflight_names)

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._inflight_cond:
            while self._inflight > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._inflight_cond.wait(left)
        return True

    def init_host(self):
        """Called once before the RPC server starts; reconcile leftovers of a crash here."""

    def after_start(self):
        """Called once the RPC server consumes."""

    def cleanup_host(self):
        """Called on stop after the RPC server stopped consuming."""

    def periodic_tasks(self):
        tasks = []
        for name in dir(type(self)):
            fn = getattr(type(self), name, None)
            if callable(fn) and hasattr(fn, '_periodic_spacing'):
                tasks.append((name, getattr(self, name), fn._periodic_spacing,
                              fn._periodic_immediate))
        return tasks


class _TrackingDispatcherEndpoint:
    """Wraps a manager so in-flight RPC requests are counted (for graceful stop)."""

    def __init__(self, manager, rpc_methods=None):
        self._manager = manager
        self.target = manager.target
        if rpc_methods is not None:  # else the manager's, through __getattr__
            self.rpc_methods = rpc_methods

    def __getattr__(self, name):
        attr = getattr(self._manager, name)
        if name.startswith('_') or not callable(attr):
            return attr

        def call(*args, **kwargs):
            self._manager._enter(name)
            start = time.perf_counter()
            try:
                with stats.labelled(name):
                    return attr(*args, **kwargs)
            finally:
                stats.add_time('serve', name, time.perf_counter() - start)
                self._manager._leave(name)
        return call


# Seconds a stop may take past its graceful timeout: stop the executors, clean up the
# host, join our threads. wait_for_signal ends the process one second after that.
STOP_GRACE = 2.0
# Threads of a service's priority server (pings, heartbeats): short handlers only.
PRIORITY_POOL_SIZE = 4


def _join_until(thread: threading.Thread, hard_deadline: float) -> bool:
    thread.join(max(hard_deadline - time.monotonic(), 0.05))
    return not thread.is_alive()


def _run_until(fn, name: str, hard_deadline: float) -> bool:
    """Run ``fn`` in a daemon thread and wait for it until ``hard_deadline``;
    False when it is still running then (it is left behind)."""
    t = threading.Thread(target=fn, name=name, daemon=True)
    t.start()
    return _join_until(t, hard_deadline)


class _PriorityEndpoint(_TrackingDispatcherEndpoint):
    """The priority server's endpoint: the manager's priority methods, and a ``ping``
    that also says which run of the process answers and for how long it has been up
    (a caller that sees a new incarnation knows its call may have been lost)."""

    def __init__(self, manager, incarnation: str, started: float):
        super().__init__(manager, manager.priority_methods)
        self._incarnation = incarnation
        self._started = started

    def ping(self, context):
        return dict(self._manager.ping(context) or {}, incarnation=self._incarnation,
                    uptime=time.monotonic() - self._started)


class Service:
    """One daemon's RPC servers, heartbeat and periodic task threads."""

    def __init__(self, manager: Manager, binary: str, topic: str, host: str,
                 register=None, heartbeat=None, transport_url: str | None = None,
                 report_interval: float | None = None):
        self.manager = manager
        self.binary = binary
        self.topic = topic
        self.host = host
        self._register = register
        self._heartbeat = heartbeat
        self._transport_url = transport_url
        self._report_interval = report_interval
        self._stop = threading.Event()
        # Heartbeats go on until the stop is done: a service finishing its work is alive,
        # and a reconciler must not take its moves for a dead host's.
        self._heartbeats_stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server = None
        self._priority_server = None
        self.service_ref = None

    def start(self):
        self.manager.init_host()
        if self._register:
            self.service_ref = self._register(self.host, self.binary, self.topic)
        # The priority server first: whoever sees this service consume can ping it.
        self._priority_server = rpc.get_server(
            messaging.Target(topic=rpc.priority_topic(self.topic), server=self.host),
            [_PriorityEndpoint(self.manager, uuid.uuid4().hex, time.monotonic())],
            url=self._transport_url)
        self._priority_server.start(override_pool_size=PRIORITY_POOL_SIZE)
        target = messaging.Target(topic=self.topic, server=self.host)
        endpoint = _TrackingDispatcherEndpoint(self.manager)
        self._server = rpc.get_server(target, [endpoint], url=self._transport_url)
        self._server.start()
        if self._heartbeat:
            self._spawn(self._heartbeat_loop, f'{self.binary}-heartbeat')
        for name, fn, spacing, immediate in self.manager.periodic_tasks():
            self._spawn(self._periodic_loop, f'{self.binary}-{name}', fn, spacing, immediate)
        self.manager.after_start()
        LOG.info('%s started on %s (topic %s)', self.binary, self.host, self.topic)

    def _spawn(self, target, name, *args):
        t = threading.Thread(target=target, name=name, args=args, daemon=True)
        t.start()
        self._threads.append(t)

    def _heartbeat_loop(self):
        stats.set_label(stats.BACKGROUND)
        interval = self._report_interval or CONF.report_interval
        # A fixed cadence: a slow or lost heartbeat does not push the next one back.
        next_beat = time.monotonic() + interval
        while not self._heartbeats_stop.wait(max(next_beat - time.monotonic(), 0)):
            next_beat = max(next_beat + interval, time.monotonic())
            try:
                self._heartbeat(self.host, self.binary)
            except messaging.MessagingTimeout:
                # The next one follows at its time; no traceback every second.
                LOG.warning('Heartbeat of %s on %s got no answer', self.binary, self.host)
            except Exception:
                LOG.warning('Heartbeat of %s on %s failed', self.binary, self.host,
                            exc_info=True)

    def _periodic_loop(self, fn, spacing, immediate):
        stats.set_label(stats.BACKGROUND)
        if isinstance(spacing, str):
            group, _, opt = spacing.rpartition('.')
            spacing_fn = (lambda: getattr(getattr(CONF, group), opt)) if group else (
                lambda: getattr(CONF, opt))
        else:
            spacing_fn = (lambda: spacing or CONF.periodic_interval)
        if not immediate and self._stop.wait(max(spacing_fn(), 0.05)):
            return
        while not self._stop.is_set():
            try:
                fn(context.get_admin_context())
            except Exception:
                LOG.exception('Periodic task %s failed', getattr(fn, '__name__', fn))
            if self._stop.wait(max(spacing_fn(), 0.05)):
                return

    def stop(self, graceful_timeout: float | None = None, wait_executor: bool = True) -> bool:
        """Stop consuming, let in-flight requests finish, then clean up: all of it within
        ``graceful_timeout`` (``graceful_shutdown_timeout``) + STOP_GRACE seconds,
        whatever the handlers do. Returns False when it left work behind (handlers
        still running, an executor or clean-up that did not finish in time).

        ``wait_executor=False`` skips joining oslo.messaging's idle worker threads (about
        a second each); our own in-flight count has already been waited for. The
        all-in-one uses it, since its process goes on.
        """
        if self._stop.is_set():
            return True
        self._stop.set()
        timeout = CONF.graceful_shutdown_timeout if graceful_timeout is None else graceful_timeout
        start = time.monotonic()
        hard_deadline = start + max(timeout, 0) + STOP_GRACE
        clean = True
        # Stopping the listener joins its poll thread, which a busy host or a broker
        # reconnect can hold up: it too gets no more than the graceful timeout.
        if self._server is not None and not _run_until(
                self._server.stop, f'{self.binary}-rpc-stop', start + max(timeout, 1)):
            clean = False
            LOG.warning('%s on %s: the RPC listener did not stop in time', self.binary,
                        self.host)
        idle = self.manager.wait_idle(max(start + timeout - time.monotonic(), 0))
        if not idle:
            clean = False
            LOG.warning('%s on %s: requests still running after %.1f s, stopping without '
                        'them: %s', self.binary, self.host, timeout,
                        _describe(self.manager.running()))
        # Heartbeats and pings were served until now: a stopping service is alive.
        if self._priority_server is not None:
            self._priority_server.stop()
        for server in (self._server, self._priority_server):
            if server is None:
                continue
            if wait_executor and idle:
                if not _run_until(server.wait, f'{self.binary}-rpc-wait', hard_deadline):
                    clean = False
                    LOG.warning('%s on %s: RPC executor still busy at the stop deadline',
                                self.binary, self.host)
            else:
                # Handlers are left behind (or the process goes on): nobody waits for
                # them, and the host clean-up keeps its time.
                threading.Thread(target=server.wait, daemon=True,
                                 name=f'{self.binary}-rpc-wait').start()
        if not _run_until(self.manager.cleanup_host, f'{self.binary}-cleanup',
                          hard_deadline):
            clean = False
            LOG.warning('%s on %s: host clean-up did not finish in time', self.binary,
                        self.host)
        self._heartbeats_stop.set()
        for t in self._threads:
            if not _join_until(t, hard_deadline):
                clean = False
                LOG.warning('%s on %s: thread %s did not stop in time', self.binary,
                            self.host, t.name)
        LOG.info('%s on %s stopped%s', self.binary, self.host,
                 '' if clean else ' (work left behind)')
        return clean


def _describe(running: dict) -> str:
    return ', '.join(f'{name} x{n}' for name, n in sorted(running.items())) or 'none'


def _hard_exit(code: int, why: str) -> None:
    LOG.error('%s; exiting now', why)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def wait_for_signal(services: list, on_stop=None) -> None:
    """Block until SIGTERM or SIGINT, then stop every service in reverse order.

    The process ends within ``graceful_shutdown_timeout`` + STOP_GRACE + 1 seconds of
    the signal whatever its handlers do. When a stop left running handlers behind, their
    (non-daemon) executor threads would keep the interpreter from exiting, so it exits
    at once; otherwise it returns, and a watchdog still ends the process at that bound
    should the interpreter's own shutdown hang (joining library threads, closing
    broker connections).
    """
    stop = threading.Event()

    def handler(signum, _frame):
        LOG.info('Caught signal %s, stopping', signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    while not stop.wait(0.5):
        pass
    timeout = CONF.graceful_shutdown_timeout
    stopped = threading.Event()

    def watchdog():
        busy = [t.name for t in threading.enumerate()
                if not t.daemon and t is not threading.main_thread()]
        _hard_exit(0 if stopped.is_set() else 1,
                   f'{"Exit" if stopped.is_set() else "Stop"} did not finish within '
                   f'graceful_shutdown_timeout ({timeout} s) + {STOP_GRACE + 1} s; '
                   f'threads still running: {", ".join(busy) or "none"}')

    timer = threading.Timer(timeout + STOP_GRACE + 1, watchdog)
    timer.daemon = True
    timer.start()
    deadline = time.monotonic() + timeout
    clean = True
    for svc in reversed(services):
        clean = svc.stop(max(deadline - time.monotonic(), 0)) and clean
    if on_stop:
        on_stop()
    stopped.set()
    if not clean:
        _hard_exit(0, 'Stopped with work left behind (see above)')
