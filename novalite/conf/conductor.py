"""Options of the [conductor] group."""

from oslo_config import cfg

GROUP = 'conductor'

opts = [
    cfg.IntOpt('workers', default=8, min=1,
               help='Threads serving conductor RPC requests.'),
    cfg.IntOpt('stuck_operation_timeout', default=20, min=1,
               help='Seconds after which a conductor step that no conductor ever took '
                    '(the request to a conductor was lost) is rolled back. Steps a '
                    'conductor took are rolled back as soon as that conductor restarts '
                    'or has been down for service_down_time.'),
    cfg.FloatOpt('reconcile_interval', default=5, min=0.5,
                 help='Seconds between two passes of the reconciler, which drives every '
                      'unfinished build and move from its recorded step (also run once '
                      'at start, before the conductor consumes requests).'),
    cfg.IntOpt('audit_interval', default=300, min=10,
               help='Seconds between two allocation audits: allocations that certainly '
                    'belong to no live instance or unfinished move are fixed, the rest is '
                    'logged (see novalite-manage placement audit).'),
    cfg.FloatOpt('drain_interval', default=2, min=0.2,
                 help='Seconds between two passes of the host-drain loop, which checks '
                      'the moves of every running drain and starts the next ones.'),
    cfg.IntOpt('drain_max_attempts', default=3, min=1,
               help='Moves a host drain tries for one server before it reports the server '
                    'as one that could not be moved. In mode auto a failed live migration '
                    'of an active server is followed by a cold migration.'),
]


def register_opts(conf):
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return {GROUP: opts}
