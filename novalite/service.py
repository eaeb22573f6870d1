"""The daemon loop shared by every service: RPC server, heartbeat, periodic reconciles.

A service registers itself in ``services`` (directly, or through the conductor for
compute hosts, which never open the database), heartbeats every ``report_interval``,
runs its manager's periodic tasks as idempotent reconcile functions, and on stop
first stops consuming, then waits up to ``graceful_shutdown_timeout`` for in-flight
requests before it returns.
"""

import logging
import signal
import threading
import time

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

    def __init__(self, host: str, service_name: str):
        self.host = host
        self.service_name = service_name
        self._inflight = 0
        self._inflight_cond = threading.Condition()

    # In-flight accounting lets a graceful stop wait for running handlers.
    def _enter(self):
        with self._inflight_cond:
            self._inflight += 1

    def _leave(self):
        with self._inflight_cond:
            self._inflight -= 1
            self._inflight_cond.notify_all()

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

    def __init__(self, manager):
        self._manager = manager
        self.target = manager.target

    def __getattr__(self, name):
        attr = getattr(self._manager, name)
        if name.startswith('_') or not callable(attr):
            return attr

        def call(*args, **kwargs):
            self._manager._enter()
            start = time.perf_counter()
            try:
                with stats.labelled(name):
                    return attr(*args, **kwargs)
            finally:
                stats.add_time('serve', name, time.perf_counter() - start)
                self._manager._leave()
        return call


class Service:
    """One daemon's RPC server, heartbeat and periodic task threads."""

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
        self._threads: list[threading.Thread] = []
        self._server = None
        self.service_ref = None

    def start(self):
        self.manager.init_host()
        if self._register:
            self.service_ref = self._register(self.host, self.binary, self.topic)
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
        while not self._stop.wait(interval):
            try:
                self._heartbeat(self.host, self.binary)
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

    def stop(self, graceful_timeout: float | None = None, wait_executor: bool = True):
        """Stop consuming, let in-flight requests finish (bounded), then clean up.

        ``wait_executor=False`` skips joining oslo.messaging's idle worker threads (about
        a second each); our own in-flight count has already been waited for. The
        all-in-one uses it, since its process goes on.
        """
        if self._stop.is_set():
            return
        self._stop.set()
        if self._server is not None:
            self._server.stop()
        timeout = CONF.graceful_shutdown_timeout if graceful_timeout is None else graceful_timeout
        if not self.manager.wait_idle(timeout):
            LOG.warning('%s stopped with requests still running', self.binary)
        if self._server is not None:
            if wait_executor:
                self._server.wait()
            else:
                threading.Thread(target=self._server.wait, daemon=True,
                                 name=f'{self.binary}-rpc-wait').start()
        self.manager.cleanup_host()
        for t in self._threads:
            t.join(timeout=2)
        LOG.info('%s on %s stopped', self.binary, self.host)


def wait_for_signal(services: list, on_stop=None) -> None:
    """Block until SIGTERM or SIGINT, then stop every service in reverse order."""
    stop = threading.Event()

    def handler(signum, _frame):
        LOG.info('Caught signal %s, stopping', signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    while not stop.wait(0.5):
        pass
    for svc in reversed(services):
        svc.stop()
    if on_stop:
        on_stop()
