"""Options of the [libvirt] group: the libvirt driver and live-migration tuning.

The live-migration tuning options (completion timeout, timeout action, post-copy,
auto-converge, bandwidth, monitor interval) are read by every driver, the fake one
included; the rest only matter with ``[compute] compute_driver = libvirt``.
"""

from oslo_config import cfg

GROUP = 'libvirt'

opts = [
    # -- connection and guests -------------------------------------------------------
    cfg.StrOpt('connection_uri', default='',
               help='libvirt connection URI of this host; empty means qemu:///system. '
                    'test:///<abs path to a node XML> runs the driver against libvirt\'s '
                    'built-in test hypervisor.'),
    cfg.StrOpt('virt_type', default='kvm', choices=['kvm', 'qemu'],
               help='Domain type of guests: kvm (hardware virtualisation) or qemu '
                    '(TCG emulation, slow but runs anywhere).'),
    cfg.StrOpt('instance_name_template', default='instance-%(uuid)s',
               help='libvirt domain name of a guest; %(uuid)s is the instance UUID.'),
    cfg.StrOpt('cpu_mode', default='',
               choices=['', 'none', 'host-model', 'host-passthrough', 'custom'],
               help='Guest CPU model mode; empty chooses host-model for kvm and none '
                    '(the emulator default) for qemu.'),
    cfg.StrOpt('cpu_model', default='qemu64',
               help='CPU model name used when cpu_mode is custom.'),
    cfg.StrOpt('machine_type', default='',
               help='Guest machine type (e.g. pc, q35); empty lets libvirt choose.'),
    cfg.StrOpt('disk_cachemode', default='none',
               choices=['none', 'writethrough', 'writeback', 'directsync', 'unsafe'],
               help='Cache mode of guest disks. "none" is what live migration of '
                    'local disks wants; use writeback on filesystems without O_DIRECT '
                    '(tmpfs).'),
    cfg.StrOpt('kernel_cmdline', default='console=ttyS0 panic=-1',
               help='Kernel command line of direct kernel boot images without an '
                    'os_command_line property.'),
    cfg.BoolOpt('sync_power_state_via_events', default=True,
                help='Run libvirt\'s event loop in a thread and record guest '
                     'lifecycle events (start, stop, suspend, migrate).'),
    cfg.StrOpt('host_ip', default='',
               help='Address of this host reported to the scheduler and used by '
                    'other computes to reach it; empty takes it from host_addresses, '
                    'else 127.0.0.1.'),
    cfg.DictOpt('host_addresses', default={},
                help='Compute host name -> address used to reach its libvirtd and '
                     'instances directory, e.g. compute1:10.0.0.11,compute2:10.0.0.12. '
                     'Hosts not listed are reached by their name.'),

    # -- cold moves --------------------------------------------------------------------
    cfg.StrOpt('disk_transfer', default='rsync', choices=['copy', 'rsync', 'shared'],
               help='How a cold move (resize, migrate) moves instance files: copy = '
                    'the destination instances directory is a local path on the source '
                    '(a mount, or two computes on one machine, see '
                    'remote_instances_paths); rsync = rsync over ssh to the destination '
                    'address; shared = instances_path is the same storage on every '
                    'host.'),
    cfg.DictOpt('remote_instances_paths', default={},
                help='Compute host name -> its [compute] instances_path as seen from '
                     'this host, for disk_transfer = copy | rsync. Hosts not listed use '
                     'the local instances_path.'),
    cfg.StrOpt('rsync_command', default='rsync',
               help='rsync binary (plus options, e.g. "rsync -e \'ssh -p 2222\'") for '
                    'disk_transfer = rsync.'),

    # -- live migration ------------------------------------------------------------------
    cfg.StrOpt('live_migration_uri', default='qemu+tcp://%s/system',
               help='libvirt URI of a destination host for peer-to-peer live migration; '
                    '%s is replaced by the destination address (host_addresses, the '
                    'address the destination reports, or its name).'),
    cfg.BoolOpt('live_migration_allow_unsafe', default=False,
                help='Pass VIR_MIGRATE_UNSAFE: live-migrate with shared disks libvirt '
                     'does not recognise as shared (a local directory both hosts see).'),
    cfg.BoolOpt('skip_cpu_compare', default=False,
                help='Skip the destination CPU comparison before a live migration '
                     '(always skipped for virt_type = qemu, which emulates the CPU).'),
    cfg.IntOpt('live_migration_downtime', default=500, min=100,
               help='Maximum guest pause (ms) at the switch-over of a live migration.'),
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
