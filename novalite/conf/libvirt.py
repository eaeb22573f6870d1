"""Options of the [libvirt] group (live-migration tuning shared by all drivers)."""

from oslo_config import cfg

GROUP = 'libvirt'

opts = [
    cfg.StrOpt('connection_uri', default='',
               help='libvirt connection URI; empty chooses from virt_type.'),
    cfg.StrOpt('virt_type', default='kvm', choices=['kvm', 'qemu'],
               help='Domain type of guests.'),
    cfg.IntOpt('live_migration_completion_timeout', default=800, min=0, mutable=True,
               help='Seconds per GiB of data a live migration may take before the '
                    'timeout action is taken. 0 disables the timeout.'),
    cfg.StrOpt('live_migration_timeout_action', default='abort',
               choices=['abort', 'force_complete'], mutable=True,
               help='What happens when a live migration exceeds its completion timeout.'),
    cfg.BoolOpt('live_migration_permit_post_copy', default=False,
                help='Allow switching a live migration to post-copy.'),
    cfg.BoolOpt('live_migration_permit_auto_converge', default=False,
                help='Allow throttling the guest CPU so a live migration converges.'),
    cfg.IntOpt('live_migration_bandwidth', default=0, min=0,
               help='Maximum live migration bandwidth in MiB/s; 0 is unlimited.'),
    cfg.IntOpt('live_migration_monitor_interval', default=5, min=0,
               help='Seconds between progress reads of a running live migration.'),
]


def register_opts(conf):
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return {GROUP: opts}
