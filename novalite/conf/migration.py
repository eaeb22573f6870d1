"""Options of the [migration] group: live-migration policies and admission."""

from oslo_config import cfg

GROUP = 'migration'

opts = [
    cfg.StrOpt('policy_file', default='',
               help='YAML (or JSON) file of named live-migration policies, the default '
                    'policy and a project -> policy mapping; see the README, "Migration '
                    'policies". Empty: only the built-in policy "default", taken from '
                    'the [libvirt] live_migration_* options. Read and checked when a '
                    'conductor starts; a bad file stops the conductor with a message.'),
    cfg.StrOpt('admission_order', default='fifo',
               choices=['fifo', 'drains_first', 'users_first'],
               help='Which waiting live migration takes a slot that frees under the '
                    'outbound, inbound or cluster-wide limits: the oldest (fifo), host '
                    'drains\' moves before users\' (drains_first) or the reverse '
                    '(users_first), oldest first within each.'),
    cfg.FloatOpt('admission_interval', default=1.0, min=0.1,
                 help='Seconds between two checks of a conductor for queued live '
                      'migrations that may start now.'),
]


def register_opts(conf):
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return {GROUP: opts}
