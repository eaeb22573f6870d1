"""Options of the [compute] group: the virt driver and compute-side behaviour."""

from oslo_config import cfg

GROUP = 'compute'

opts = [
    cfg.StrOpt('compute_driver', default='fake', choices=['fake', 'libvirt'],
               help='Virt driver that runs guests on this host.'),
    cfg.StrOpt('instances_path', default='$state_path/instances',
               help='Directory holding guest disks and files on this host.'),
    cfg.IntOpt('resource_update_interval', default=10, min=1,
               help='Seconds between inventory and usage reports of this compute.'),
    cfg.IntOpt('resource_full_report_interval', default=300, min=0,
               help='A report the same as the last one accepted is skipped until this '
                    'many seconds have passed since it (0: send every report). Each '
                    'resource_update_interval the host still compares; a change is '
                    'reported at once.'),
    cfg.IntOpt('resource_report_batch', default=250, min=1, max=1000,
               help='Nodes per report call of a host with several nodes (a multi-node '
                    'fake fleet): each call is one transaction on the conductor.'),
    cfg.IntOpt('build_timeout', default=0, min=0,
               help='Seconds a build may take before the server goes to ERROR; 0 never.'),
    cfg.IntOpt('reconcile_grace', default=20, min=1,
               help='Seconds a step this host owes may stay unchanged in the database '
                    'while no request of this process works on it before the host '
                    'drives it from its recorded state (runs it again, finishes or '
                    'rolls it back); checked every periodic_interval.'),
]


def register_opts(conf):
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return {GROUP: opts}
