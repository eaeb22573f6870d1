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
    cfg.BoolOpt('connection_debug', default=False,
                help='Log every SQL statement.'),
]


def register_opts(conf):
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return {GROUP: opts}
