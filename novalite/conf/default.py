"""Options of the [DEFAULT] group: identity of this host, the bus, service liveness."""

import os
import socket

from oslo_config import cfg

opts = [
    cfg.StrOpt('host', default=socket.gethostname(), sample_default='<current_hostname>',
               help='Name of this node. Compute services listen on the RPC topic '
                    '"compute" with this name as server, so it must be unique per host.'),
    cfg.StrOpt('state_path', default=os.path.join(os.path.expanduser('~'), '.novalite'),
               sample_default='$HOME/.novalite',
               help='Directory where novalite keeps its state: the embedded SQLite '
                    'database, fake hypervisor state, instance files.'),
    cfg.IntOpt('report_interval', default=10, min=1,
               help='Seconds between service heartbeats written to the services table.'),
    cfg.IntOpt('service_down_time', default=60, min=1,
               help='Seconds since the last heartbeat after which a service is '
                    'considered down.'),
    cfg.IntOpt('periodic_interval', default=10, min=1,
               help='Seconds between runs of the periodic reconcile tasks of a service.'),
    cfg.IntOpt('long_rpc_timeout', default=1800, min=1,
               help='Timeout in seconds for RPC calls that are known to take long, '
                    'such as select_destinations.'),
    cfg.IntOpt('call_attempt_timeout', default=10, min=1,
               help='Seconds a call waits for its answer before it checks on its peer. '
                    'A call to one compute host then pings it: no answer fails the call '
                    'at once, a restarted host gets the call again, a host that is up '
                    'and the same keeps the call waiting. A compute\'s call to the '
                    'conductors is sent again after this long (the conductor steps are '
                    'idempotent). The call\'s own timeout stays the overall deadline.'),
    cfg.IntOpt('liveness_ping_timeout', default=5, min=1,
               help='Seconds a liveness ping waits for its answer. Pings are served by '
                    'a dedicated RPC server of each service, so busy workers never '
                    'delay them.'),
    cfg.IntOpt('graceful_shutdown_timeout', default=60, min=0,
               help='Seconds a service waits on SIGTERM for in-flight work to finish '
                    'before it exits anyway.'),
    cfg.StrOpt('osapi_compute_listen', default='127.0.0.1',
               help='IP address on which the compute API listens.'),
    cfg.PortOpt('osapi_compute_listen_port', default=8774,
                help='Port on which the compute API listens.'),
    cfg.IntOpt('osapi_compute_workers', default=8, min=1,
               help='Number of threads of the API WSGI server.'),
    cfg.StrOpt('default_availability_zone', default='nova',
               help='Availability zone of compute hosts that are not in another zone.'),
    cfg.StrOpt('internal_service_availability_zone', default='internal',
               help='Availability zone shown for non-compute services.'),
    cfg.BoolOpt('use_eventlet', default=False,
                help='Run the daemon under eventlet green threads (monkey patched at '
                     'start) instead of native threads. The environment variable '
                     'NOVALITE_EVENTLET=1 has the same effect and wins over this option.'),
    cfg.BoolOpt('allow_resize_to_same_host', default=False,
                help='Allow the scheduler to pick the current host of a server as the '
                     'destination of a resize.'),
    cfg.IntOpt('resize_confirm_window', default=0, min=0,
               help='Seconds after which a finished resize or cold migration is '
                    'confirmed automatically. 0 disables auto-confirm.'),
    cfg.FloatOpt('cpu_allocation_ratio', min=0.0,
                 help='Virtual CPU to physical CPU allocation ratio. When unset, '
                      'initial_cpu_allocation_ratio is used.'),
    cfg.FloatOpt('ram_allocation_ratio', min=0.0,
                 help='Virtual RAM to physical RAM allocation ratio. When unset, '
                      'initial_ram_allocation_ratio is used.'),
    cfg.FloatOpt('disk_allocation_ratio', min=0.0,
                 help='Virtual disk to physical disk allocation ratio. When unset, '
                      'initial_disk_allocation_ratio is used.'),
    cfg.FloatOpt('initial_cpu_allocation_ratio', default=4.0, min=0.0,
                 help='CPU allocation ratio reported when cpu_allocation_ratio is unset.'),
    cfg.FloatOpt('initial_ram_allocation_ratio', default=1.0, min=0.0,
                 help='RAM allocation ratio reported when ram_allocation_ratio is unset.'),
    cfg.FloatOpt('initial_disk_allocation_ratio', default=1.0, min=0.0,
                 help='Disk allocation ratio reported when disk_allocation_ratio is unset.'),
    cfg.IntOpt('reserved_host_memory_mb', default=512, min=0,
               help='Memory in MB kept back for the host and never given to servers.'),
    cfg.IntOpt('reserved_host_disk_mb', default=0, min=0,
               help='Disk in MB kept back for the host and never given to servers.'),
    cfg.IntOpt('reserved_host_cpus', default=0, min=0,
               help='Physical CPUs kept back for the host.'),
    cfg.IntOpt('max_concurrent_builds', default=10, min=0,
               help='Builds a compute runs at once; 0 means no limit.'),
    cfg.IntOpt('max_concurrent_live_migrations', default=1, min=0,
               help='Outgoing live migrations a compute runs at once; the rest wait '
                    'in status queued. 0 means no limit.'),
    cfg.IntOpt('migrate_max_retries', default=-1, min=-1,
               help='Extra destinations tried by a live migration after the first '
                    'fails its pre-checks. -1 tries until hosts run out, 0 never retries.'),
    cfg.IntOpt('shutdown_timeout', default=60, min=0,
               help='Seconds a clean guest power-off may take before it is forced.'),
]


def register_opts(conf):
    conf.register_opts(opts)


def list_opts():
    return {'DEFAULT': opts}
