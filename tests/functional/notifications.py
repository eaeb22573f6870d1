"""Consume versioned notifications from the bus during a test."""

import contextlib
import threading

import oslo_messaging as messaging

from novalite import rpc
from novalite.conf import CONF


class _Sink:
    def __init__(self):
        self.items = []
        self.lock = threading.Lock()

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        with self.lock:
            self.items.append({'event_type': event_type, 'payload': payload,
                               'publisher_id': publisher_id})

    error = info

    def types(self):
        with self.lock:
            return [i['event_type'] for i in self.items]

    def by_type(self, event_type):
        with self.lock:
            return [i for i in self.items if i['event_type'] == event_type]


@contextlib.contextmanager
def collect():
    sink = _Sink()
    transport = rpc.get_notification_transport(CONF.all_in_one.transport_url)
    listener = messaging.get_notification_listener(
        transport, [messaging.Target(topic=CONF.notifications.topic)], [sink],
        executor='threading')
    listener.start()
    try:
        yield sink
    finally:
        listener.stop()
        listener.wait()
