"""Options of the [notifications] group."""

from oslo_config import cfg

GROUP = 'notifications'

opts = [
    cfg.BoolOpt('enabled', default=True,
                help='Emit versioned notifications on the bus.'),
    cfg.StrOpt('topic', default='versioned_notifications',
               help='Topic on which versioned notifications are sent.'),
]


def register_opts(conf):
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return {GROUP: opts}
