"""Options of the [fake_driver] group: the in-memory hypervisor."""

from oslo_config import cfg

GROUP = 'fake_driver'

opts = [
    cfg.IntOpt('nodes', default=1, min=1, max=100000,
               help='Fake nodes (hypervisors) one compute service manages, as a '
                    'multi-node Nova compute does. With 1 the node is named after the '
                    'host; with more, HOST-00000, HOST-00001, ... Each node is a '
                    'compute node and resource provider of its own with the sizes '
                    'below; the service, its RPC queue, heartbeat and report loop are '
                    'shared. For simulating a large fleet on one machine.'),
    cfg.IntOpt('vcpus', default=16, min=1, help='Physical CPUs of each fake node.'),
    cfg.IntOpt('memory_mb', default=32768, min=1, help='Memory of each fake node in MB.'),
    cfg.IntOpt('local_gb', default=1024, min=1, help='Local disk of each fake node in GB.'),
    cfg.StrOpt('hypervisor_type', default='fake', help='Hypervisor type reported.'),
    cfg.IntOpt('hypervisor_version', default=1000, help='Hypervisor version reported.'),
    cfg.FloatOpt('operation_delay', default=0.0, min=0.0,
                 help='Seconds every guest operation takes (spawn, power, migrate).'),
    cfg.DictOpt('fail_operations', default={},
                help='Inject failures: operation name -> error message, e.g. '
                     'spawn:boom. Operations: spawn, power_off, power_on, reboot, '
                     'destroy, migrate_disk_and_power_off, finish_migration, '
                     'finish_revert_migration, confirm_migration, '
                     'prepare_for_incoming_move, pause, unpause, suspend, resume, '
                     'check_can_live_migrate_destination, check_can_live_migrate_source, '
                     'pre_live_migration, live_migration, post_live_migration, '
                     'post_live_migration_at_destination, '
                     'rollback_live_migration_at_destination.'),
    cfg.FloatOpt('disk_copy_mb_per_s', default=0.0, min=0.0,
                 help='Simulated disk copy speed during cold migration; 0 copies at once.'),
    cfg.FloatOpt('live_migration_bandwidth_mb_s', default=1000000.0, min=0.001,
                 help='Simulated live-migration bandwidth in MiB/s. The default moves a '
                      'guest almost at once; lower it to watch progress or to make a '
                      'migration that does not converge.'),
    cfg.FloatOpt('dirty_rate_mb_s', default=0.0, min=0.0,
                 help='Simulated rate at which a running guest dirties its memory in '
                      'MiB/s during a live migration.'),
    cfg.BoolOpt('persist', default=True,
                help='Keep the fake host state in a JSON file under state_path so a '
                     'restarted compute finds its guests again.'),
]


def register_opts(conf):
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return {GROUP: opts}
