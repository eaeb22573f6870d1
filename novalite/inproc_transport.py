"""A wake-on-message in-process oslo.messaging driver (``inproc://``).

oslo.messaging's own ``fake://`` driver polls its queues every 50 ms, so every RPC
call inside one process costs 50 ms. This driver keeps the same in-memory exchanges
but wakes a listener the moment a message is delivered. It is registered under the
``oslo.messaging.drivers`` entry point as ``inproc``.
"""

import threading
import time

from oslo_messaging._drivers import base, impl_fake

# Who waits for which queue: (exchange name, topic) -> the events of the listeners that
# consume it. A delivery wakes only those listeners, not every listener in the process
# (a dozen services share one all-in-one; waking them all for each message costs a
# GIL hand-off each).
_waiters: dict[tuple, set] = {}
_waiters_lock = threading.Lock()


# Messages kept per topic queue nobody consumes (notifications without a listener);
# older ones are dropped so a long-running all-in-one does not grow without bound.
MAX_QUEUED = 10000


def _wake(exchange: str, topic: str) -> None:
    with _waiters_lock:
        events = list(_waiters.get((exchange, topic), ()))
    for event in events:
        event.set()


class _WakingExchange(impl_fake.FakeExchange):
    def deliver_message(self, topic, *args, **kwargs):
        super().deliver_message(topic, *args, **kwargs)
        with self._queues_lock:
            for (t, _pool), queue in self._topic_queues.items():
                if t == topic and len(queue) > MAX_QUEUED:
                    del queue[:len(queue) - MAX_QUEUED]
        _wake(self.name, topic)


class _ExchangeManager(impl_fake.FakeExchangeManager):
    _exchanges_lock = threading.Lock()
    _exchanges: dict = {}

    def get_exchange(self, name):
        if name is None:
            name = self._default_exchange
        with self._exchanges_lock:
            return self._exchanges.setdefault(name, _WakingExchange(name))


class _Listener(impl_fake.FakeListener):
    def __init__(self, exchange_manager, targets, pool=None):
        super().__init__(exchange_manager, targets, pool)
        self._event = threading.Event()
        self._keys = {(exchange_manager.get_exchange(t.exchange).name, t.topic)
                      for t in targets}
        with _waiters_lock:
            for key in self._keys:
                _waiters.setdefault(key, set()).add(self._event)

    @base.batch_poll_helper
    def poll(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._stopped.is_set():
            # Cleared before looking: a message delivered after the look sets it again,
            # so the wait below cannot miss it.
            self._event.clear()
            for target in self._targets:
                exchange = self._exchange_manager.get_exchange(target.exchange)
                ctxt, message, reply_q, requeue = exchange.poll(target, self._pool)
                if message is not None:
                    return impl_fake.FakeIncomingMessage(ctxt, message, reply_q, requeue)
            wait = 1.0 if deadline is None else deadline - time.monotonic()
            if wait <= 0:
                return None
            # The bound keeps stop() responsive; delivery wakes us at once.
            self._event.wait(min(wait, 1.0))
        return None

    def stop(self):
        super().stop()
        with _waiters_lock:
            for key in self._keys:
                waiting = _waiters.get(key)
                if waiting is not None:
                    waiting.discard(self._event)
                    if not waiting:
                        del _waiters[key]
        self._event.set()


class InProcDriver(impl_fake.FakeDriver):
    """In-memory transport for services that share one process."""

    def __init__(self, conf, url, default_exchange=None, allowed_remote_exmods=None):
        super().__init__(conf, url, default_exchange, allowed_remote_exmods)
        self._exchange_manager = _ExchangeManager(default_exchange)

    @staticmethod
    def _check_serialize(message):
        # Messages are built by our JSON-safe serialisers already; skip the extra
        # dumps() the fake driver does on every send.
        return None

    def listen(self, target, batch_size, batch_timeout):
        import oslo_messaging
        exchange = target.exchange or self._default_exchange
        listener = _Listener(self._exchange_manager,
                             [oslo_messaging.Target(topic=target.topic, server=target.server,
                                                    exchange=exchange),
                              oslo_messaging.Target(topic=target.topic, exchange=exchange)])
        return base.PollStyleListenerAdapter(listener, batch_size, batch_timeout)

    def listen_for_notifications(self, targets_and_priorities, pool, batch_size,
                                 batch_timeout):
        import oslo_messaging
        targets = [oslo_messaging.Target(topic=f'{t.topic}.{priority}', exchange=t.exchange)
                   for t, priority in targets_and_priorities]
        listener = _Listener(self._exchange_manager, targets, pool)
        return base.PollStyleListenerAdapter(listener, batch_size, batch_timeout)

    def cleanup(self):
        with self._exchange_manager._exchanges_lock:
            self._exchange_manager._exchanges.clear()
