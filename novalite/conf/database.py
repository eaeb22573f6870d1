"""Options of the [database] group."""

from oslo_config import cfg

GROUP = 'database'

opts = [
    cfg.StrOpt('connection', secret=True,
               help='SQLAlchemy URL of the database, e.g. '
                    'postgresql+psycopg2://nova:pw@db/nova or mysql+pymysql://nova:pw@db/nova. '
                    'Unset: a SQLite file novalite.sqlite under state_path.'),
    cfg.IntOpt('max_pool_size', default=10, min=1,
               help='Connections kept open per process (server databases only).'),
    cfg.IntOpt('max_overflow', default=20, min=0,
               help='Connections allowed above max_pool_size under load.'),
    cfg.IntOpt('pool_timeout', default=30, min=1,
               help='Seconds to wait for a free pooled connection.'),
    cfg.IntOpt('claim_retries', default=10, min=1,
               help='Attempts of a resource claim that lost a generation race before '
                    'it fails with a conflict.'),
    cfg.FloatOpt('max_retry_seconds', default=30.0, min=0,
                 help='Seconds, from its first transient error (lost or refused '
                      'connection, server restart, deadlock, serialization failure), '
                      'during which a database transaction is tried again before the '
                      'operation fails as "database unavailable" (HTTP 503). A '
                      'connection lost during COMMIT itself is never retried. 0 tries '
                      'once.'),
    cfg.FloatOpt('retry_interval', default=0.2, min=0.001,
                 help='Seconds before the first retry of a transaction after a transient '
                      'error; the wait doubles on each retry, plus a random jitter of up '
                      'to this much.'),
    cfg.FloatOpt('max_retry_interval', default=2.0, min=0.001,
                 help='Longest wait in seconds between two retries of a transaction.'),
    cfg.BoolOpt('connection_debug', default=False,
                help='Log every SQL statement.'),
]


def register_opts(conf):
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return {GROUP: opts}
