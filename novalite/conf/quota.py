"""Options of the [quota] group: per-project limits every project starts with."""

from oslo_config import cfg

GROUP = 'quota'

# Nova's defaults; -1 means unlimited.
opts = [
    cfg.IntOpt('instances', default=10, min=-1,
               help='Servers each project may have.'),
    cfg.IntOpt('cores', default=20, min=-1,
               help='Instance cores (vCPUs) each project may use.'),
    cfg.IntOpt('ram', default=51200, min=-1,
               help='Megabytes of instance RAM each project may use.'),
    cfg.IntOpt('metadata_items', default=128, min=-1,
               help='Metadata items each server may carry.'),
    cfg.IntOpt('key_pairs', default=100, min=-1,
               help='Key pairs each user may have (reported only).'),
    cfg.IntOpt('server_groups', default=10, min=-1,
               help='Server groups each project may have.'),
    cfg.IntOpt('server_group_members', default=10, min=-1,
               help='Servers each user may have in one server group.'),
    cfg.IntOpt('injected_files', default=5, min=-1,
               help='Injected files per server (reported only; personality is gone '
                    'from 2.57).'),
    cfg.IntOpt('injected_file_content_bytes', default=10240, min=-1,
               help='Bytes of each injected file (reported only).'),
    cfg.IntOpt('injected_file_path_length', default=255, min=-1,
               help='Length of an injected file path (reported only).'),
    cfg.BoolOpt('recheck_quota', default=True,
                help='Count usage again after the new servers are recorded and remove '
                     'the ones that went over a limit, so concurrent requests cannot '
                     'pass a limit together (as Nova does).'),
]


def register_opts(conf):
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return {GROUP: opts}
