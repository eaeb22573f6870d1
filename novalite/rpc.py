"""RPC plumbing: transports, clients, servers, liveness-bounded calls, the context
serializer and the notifier."""

import concurrent.futures
import datetime
import logging
import socket
import threading
import time

import oslo_messaging as messaging
from oslo_config import cfg
from oslo_serialization import jsonutils

from novalite import exception, stats
from novalite.conf import CONF
from novalite.context import RequestContext

LOG = logging.getLogger(__name__)

DEFAULT_TRANSPORT_URL = 'rabbit://guest:guest@127.0.0.1:5672/'
CONTROL_EXCHANGE = 'novalite'

_lock = threading.Lock()
_transports: dict[str, messaging.Transport] = {}
_notifier: messaging.Notifier | None = None


def set_defaults() -> None:
    messaging.set_transport_defaults(control_exchange=CONTROL_EXCHANGE)
    CONF.register_opts(messaging.transport._transport_opts)
    CONF.set_default('transport_url', DEFAULT_TRANSPORT_URL)


def transport_url(conf=CONF) -> str:
    return conf.transport_url or DEFAULT_TRANSPORT_URL


def get_transport(url: str | None = None) -> messaging.Transport:
    """One RPC transport per URL per process."""
    url = url or transport_url()
    if url.split(':', 1)[0] in ('rabbit', 'kombu'):
        watch_bus_trouble()
    with _lock:
        if url not in _transports:
            _transports[url] = messaging.get_rpc_transport(
                CONF, url=url, allowed_remote_exmods=exception.REMOTE_ALLOWED)
        return _transports[url]


def get_notification_transport(url: str | None = None) -> messaging.Transport:
    return messaging.get_notification_transport(CONF, url=url or transport_url())


def cleanup() -> None:
    global _notifier
    with _lock:
        for t in _transports.values():
            t.cleanup()
        _transports.clear()
        _notifier = None


_SCALARS = (str, int, float, bool, type(None))
_TIME_FORMAT = '%Y-%m-%dT%H:%M:%S.%f'  # what oslo.serialization writes for a datetime


def primitive(value):
    """``value`` as JSON-safe primitives: a direct walk over the types our payloads hold
    (dicts, lists, scalars, datetimes), oslo.serialization's conversion for the rest."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, dict):
        return {k: primitive(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [primitive(v) for v in value]
    if isinstance(value, datetime.datetime):
        return value.strftime(_TIME_FORMAT)
    return jsonutils.to_primitive(value, convert_instances=True)


class JsonPayloadSerializer(messaging.NoOpSerializer):
    """Entities travel as JSON-safe primitives (datetimes become ISO strings)."""

    def serialize_entity(self, context, entity):
        return primitive(entity)


class RequestContextSerializer(messaging.Serializer):
    """Carries the request context (request id, user, project, roles) with every message."""

    def __init__(self, base=None):
        self._base = base or JsonPayloadSerializer()

    def serialize_entity(self, context, entity):
        return self._base.serialize_entity(context, entity)

    def deserialize_entity(self, context, entity):
        return self._base.deserialize_entity(context, entity)

    def serialize_context(self, context):
        return context.to_dict()

    def deserialize_context(self, context):
        return RequestContext.from_dict(context)


class _CountedClient:
    """An RPC client, or a prepared one, that counts what it sends (``novalite.stats``)."""

    def __init__(self, inner):
        self._inner = inner

    def prepare(self, **kwargs):
        return _CountedClient(self._inner.prepare(**kwargs))

    def call(self, ctxt, method, **kwargs):
        stats.count('call')
        start = time.perf_counter()
        try:
            return self._inner.call(ctxt, method, **kwargs)
        finally:
            stats.add_time('wait', method, time.perf_counter() - start)

    def cast(self, ctxt, method, **kwargs):
        stats.count('cast')
        return self._inner.cast(ctxt, method, **kwargs)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def get_client(target: messaging.Target, version_cap: str | None = None,
               timeout: int | None = None, url: str | None = None):
    return _CountedClient(messaging.get_rpc_client(
        get_transport(url), target, version_cap=version_cap,
        serializer=RequestContextSerializer(), timeout=timeout))


def priority_topic(topic: str) -> str:
    """The topic of a service's second RPC server, which serves only its priority
    methods (ping, and heartbeats on a conductor) from a pool of its own."""
    return f'{topic}_priority'


_NO_ANSWER = (messaging.MessagingTimeout, messaging.MessageUndeliverable)


def is_alive(client, ctxt, topic: str, server: str | None = None,
             timeout: float | None = None) -> bool:
    """Whether a service on ``topic`` (the one named ``server``, or any) answers a
    ``ping`` on its priority server within ``timeout`` seconds."""
    timeout = CONF.liveness_ping_timeout if timeout is None else timeout
    try:
        client.prepare(topic=priority_topic(topic), server=server,
                       timeout=timeout).call(ctxt, 'ping')
    except _NO_ANSWER:
        return False
    return True


def probe(client, ctxt, topic: str, server: str, timeout: float | None = None):
    """What the service named ``server`` on ``topic`` says on its priority server:
    ``{'incarnation': id of this run of the process, 'uptime': seconds}``, or None
    when it does not answer within ``timeout`` seconds."""
    timeout = CONF.liveness_ping_timeout if timeout is None else timeout
    try:
        return client.prepare(topic=priority_topic(topic), server=server,
                              timeout=timeout).call(ctxt, 'ping')
    except _NO_ANSWER:
        return None


def _call_in_thread(client, ctxt, method, kwargs) -> concurrent.futures.Future:
    """The call in a daemon thread of its own, so the caller can watch the peer."""
    future: concurrent.futures.Future = concurrent.futures.Future()
    label = stats.label()

    def run():
        stats.set_label(label)
        try:
            future.set_result(client.call(ctxt, method, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as is
            future.set_exception(exc)

    threading.Thread(target=run, name=f'call-{method}', daemon=True).start()
    return future


def bus_reachable(url: str | None = None, timeout: float = 1.0) -> bool:
    """Whether this process can open a TCP connection to one of the broker's hosts now
    (always True for in-process transports). A peer that does not answer a ping while
    the broker itself is out of reach is not known to be dead."""
    text = url or CONF.transport_url
    if not text:
        return True
    parsed = messaging.TransportURL.parse(CONF, text)
    if parsed.transport not in ('rabbit', 'amqp', 'kombu'):
        return True
    for host in parsed.hosts:
        try:
            socket.create_connection((host.hostname or '127.0.0.1', host.port or 5672),
                                     timeout=timeout).close()
            return True
        except OSError:
            continue
    return False


def reconnect_back_off() -> float:
    """The longest wait between two reconnect attempts of the RabbitMQ driver: how long
    a live service may stay away from the broker after an outage ended."""
    try:
        return float(CONF.oslo_messaging_rabbit.rabbit_interval_max)
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError):
        return 30.0


# When this process last saw the broker fail (the RabbitMQ driver's errors: a connection
# lost or refused, a publish or a consume that failed), whichever of its threads hit it.
_bus_trouble_at: float | None = None


class _BusTroubleWatch(logging.Handler):
    def emit(self, record):
        global _bus_trouble_at
        _bus_trouble_at = time.monotonic()


def watch_bus_trouble() -> None:
    """Remember the RabbitMQ driver's errors in this process (``bus_settled``)."""
    from oslo_messaging._drivers import impl_rabbit
    logger = impl_rabbit.LOG.logger   # (oslo.log names it oslo.messaging._drivers...)
    if not any(isinstance(h, _BusTroubleWatch) for h in logger.handlers):
        logger.addHandler(_BusTroubleWatch(level=logging.ERROR))


def bus_settled(url: str | None = None) -> bool:
    """Whether the broker can be reached now and this process has seen it fail for
    none of the last ``reconnect_back_off()`` seconds. Right after an outage a live peer
    may still be waiting to reconnect: its silence says nothing yet (a thread that
    did not itself wait on the broker, e.g. one blocked in another's send meanwhile,
    would otherwise judge it dead)."""
    at = _bus_trouble_at
    if at is not None and time.monotonic() - at <= reconnect_back_off():
        return False
    return bus_reachable(url)


def call_watching(client, ctxt, method: str, *, timeout: float, probe, on_dead,
                  check_interval: float | None = None, reachable=None, **kwargs):
    """A call to one named peer that waits only while the peer lives.

    The call waits for its answer up to ``timeout`` seconds in all; every
    ``check_interval`` (``call_attempt_timeout``) seconds without one, ``probe()``
    asks the peer's priority server how long it has been up. No answer: the peer is
    dead or cut off, and the call ends at once with ``on_dead(waited)``. A peer that
    restarted since the call went out (a new incarnation, or up for less time than
    the call has waited) may have lost it: it is sent again, the callee steps being
    idempotent. A peer that is up and the same keeps working on it: the call waits on,
    so a slow step (or one that itself calls another host) is never sent twice.

    ``reachable()`` (optional) says whether the broker can be reached: a peer that
    does not answer while the broker is out of reach is not judged; the call waits for
    the broker (within ``timeout``), then sends the request again, since it or its
    answer may have been lost with the connection.
    """
    if timeout <= 0:
        raise ValueError(f'call_watching needs a positive timeout, not {timeout!r}')
    check = check_interval or CONF.call_attempt_timeout
    start = time.monotonic()
    deadline = start + timeout
    attempt = 0
    while True:
        attempt += 1
        sent = time.monotonic()
        future = _call_in_thread(client.prepare(timeout=max(deadline - sent, 0.1)), ctxt,
                                 method, kwargs)
        incarnation = None
        bus_lost = False
        while True:
            try:
                return future.result(timeout=max(min(check, deadline - time.monotonic()),
                                                 0))
            except concurrent.futures.TimeoutError:
                pass
            waited = round(time.monotonic() - start, 1)
            if time.monotonic() >= deadline:
                raise messaging.MessagingTimeout(
                    f'{method} got no answer in {waited} s')
            info = probe()
            if not info:
                if reachable is not None and not reachable():
                    if not bus_lost:
                        LOG.warning('%s: the message broker is out of reach; waiting for '
                                    'it before judging the peer', method)
                    bus_lost = True
                    continue
                raise on_dead(waited)
            restarted = ((incarnation is not None and info.get('incarnation') != incarnation)
                         or info.get('uptime', float('inf')) < time.monotonic() - sent)
            if restarted or bus_lost:
                LOG.warning('%s: %s after the call went out; sending it again (attempt %d)',
                            method, 'its peer restarted' if restarted else
                            'the broker was out of reach', attempt + 1)
                break
            incarnation = info.get('incarnation')


def call_while_alive(client, ctxt, method: str, *, timeout: float, alive,
                     on_dead=None, attempt_timeout: float | None = None, **kwargs):
    """A call that waits no longer than its peer's liveness justifies.

    Each attempt waits at most ``attempt_timeout`` (``call_attempt_timeout``). Without
    an answer, ``alive()`` decides: a live peer gets the call again, since a request
    can be lost (a peer that died after taking it, a restarted one) and every callee
    step is idempotent; a dead one ends the call at once with ``on_dead(waited)`` (an
    exception), or, without ``on_dead``, the call is sent again until the deadline, for
    a pool like the conductors where another member or a restart takes it. Past
    ``timeout`` seconds in all, the last MessagingTimeout propagates.
    """
    if timeout <= 0:
        raise ValueError(f'call_while_alive needs a positive timeout, not {timeout!r}')
    attempt_timeout = attempt_timeout or CONF.call_attempt_timeout
    start = time.monotonic()
    deadline = start + timeout
    attempt = 0
    while True:
        attempt += 1
        wait = min(attempt_timeout, deadline - time.monotonic())
        try:
            return client.prepare(timeout=max(wait, 0.1)).call(ctxt, method, **kwargs)
        except _NO_ANSWER:
            waited = round(time.monotonic() - start, 1)
            if time.monotonic() >= deadline:
                raise
            if not alive():
                if on_dead is not None:
                    raise on_dead(waited) from None
                LOG.warning('%s got no answer in %s s and no peer answers a ping; '
                            'sending it again (attempt %d)', method, waited, attempt + 1)
                # An absent queue fails both at once: do not spin while none is bound.
                time.sleep(max(0.0, min(1.0, deadline - time.monotonic())))
                continue
            LOG.warning('%s got no answer in %s s although its peer is alive; sending it '
                        'again (attempt %d)', method, waited, attempt + 1)


class DeclaredMethodsPolicy(messaging.RPCAccessPolicyBase):
    """Dispatch only the methods an endpoint declares in ``rpc_methods`` (its rpcapi's
    list): a public helper on a manager is never reachable over the bus."""

    def is_allowed(self, endpoint, method):
        return method in getattr(endpoint, 'rpc_methods', ())


def get_server(target: messaging.Target, endpoints: list, url: str | None = None):
    return messaging.get_rpc_server(get_transport(url), target, endpoints,
                                    executor='threading',
                                    serializer=RequestContextSerializer(),
                                    access_policy=DeclaredMethodsPolicy)


def get_notifier(publisher_id: str) -> messaging.Notifier:
    """Versioned notifications on [notifications] topic (driver ``noop`` when disabled)."""
    global _notifier
    with _lock:
        if _notifier is None:
            driver = 'messagingv2' if CONF.notifications.enabled else 'noop'
            _notifier = messaging.Notifier(get_notification_transport(), driver=driver,
                                           topics=[CONF.notifications.topic],
                                           serializer=RequestContextSerializer())
    return _notifier.prepare(publisher_id=publisher_id)
