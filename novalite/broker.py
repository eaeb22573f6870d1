"""The RabbitMQ permissions that confine one compute host to its own queues.

oslo.messaging names a compute's RPC queues ``compute`` and ``compute.<host>``, its
fanout queues ``compute_fanout_<id>``, reply queues and exchanges ``reply_<id>``, and
publishes on the topic exchange ``<control_exchange>`` with the target's topic as
routing key. A compute needs to consume only its own queue, and to publish only to the
conductor, to other computes (the hops of a move) and notifications. Topic permissions
on the control exchange hold it to those routing keys for publishing and binding, so it
cannot bind its queue to another host's key.

RPC replies go through the default exchange (``amq.default``, routing key = the caller's
reply queue), so a compute needs to write it; the default exchange delivers by queue
name, so a confined compute can still publish (never read) to any queue of the vhost it
can name. Reading stays confined to its own queues.

oslo.messaging's notifier declares and binds the notification queues before it publishes
to them, so a compute may configure and write those queues and bind to their keys (never
read them). That binding is the one path left by which a confined compute could copy the
cloud's notifications into its own queue; set ``[notifications] enabled = false`` on
computes where that matters.
"""

import re


def compute_permissions(host: str, exchange: str = 'novalite') -> dict[str, str]:
    """Regular expressions for ``rabbitmqctl set_permissions`` (configure, write, read)
    and ``set_topic_permissions`` (topic_write, topic_read) for compute ``host``."""
    h = re.escape(host)
    # Its RPC queues and those of its priority server (pings, see service.py).
    own = (rf'compute|compute\.{h}|compute_fanout.*|compute_priority|compute_priority\.{h}|'
           rf'compute_priority_fanout.*|reply_.*|{re.escape(exchange)}')
    notifications = r'notifications\..*|versioned_notifications\..*'
    return {
        'configure': f'^({own}|{notifications})$',
        'write': rf'^({own}|{notifications}|amq\.default)$',
        'read': f'^({own})$',
        'topic_write': rf'^(conductor|conductor_priority|compute\.[^.]+|'
                       rf'compute_priority\.[^.]+|{notifications})$',
        'topic_read': rf'^(compute|compute\.{h}|compute_priority|compute_priority\.{h}|'
                      rf'{notifications})$',
    }


def rabbitmqctl_commands(host: str, user: str, vhost: str = '/',
                         exchange: str = 'novalite') -> list[list[str]]:
    """The rabbitmqctl argument lists that give ``user`` exactly those permissions."""
    p = compute_permissions(host, exchange)
    return [['set_permissions', '-p', vhost, user, p['configure'], p['write'], p['read']],
            ['set_topic_permissions', '-p', vhost, user, exchange, p['topic_write'],
             p['topic_read']]]
