"""Options of the [conductor] group."""

from oslo_config import cfg

GROUP = 'conductor'

opts = [
    cfg.IntOpt('workers', default=8, min=1,
               help='Threads serving conductor RPC requests.'),
    cfg.IntOpt('stuck_operation_timeout', default=600, min=1,
               help='Seconds after which a transitional task_state whose owning service '
                    'is down or no longer working on it is reconciled.'),
]


def register_opts(conf):
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return {GROUP: opts}
