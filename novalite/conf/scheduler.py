"""Options of the [scheduler] and [filter_scheduler] groups."""

from oslo_config import cfg

SCHEDULER = 'scheduler'
FILTER = 'filter_scheduler'

scheduler_opts = [
    cfg.IntOpt('max_attempts', default=3, min=1,
               help='Hosts tried for one build or cold move: the selected host plus '
                    'alternates returned by the scheduler.'),
    cfg.IntOpt('workers', default=1, min=1,
               help='Scheduler worker threads consuming select_destinations calls.'),
    cfg.FloatOpt('host_state_refresh_interval', default=1.0, min=0.0,
                 help='Seconds between two reads of the compute services\' heartbeats, '
                      'of the compute nodes\' reports (traits, hypervisor version) and of '
                      'the number of compute nodes (one added or deleted) by each '
                      'scheduler, in a task of its own, not in a request (a request reads '
                      'them itself only when that task is three intervals late). 0 reads '
                      'them on every request. Resource usage and '
                      'inventory, and services enabled, disabled or forced down are read '
                      'on every request whatever this says. A host deleted since the '
                      'last read fails its claim and is left out of that request.'),
    cfg.FloatOpt('host_state_change_window', default=2.0, min=0.0,
                 help='Seconds each read of what changed reaches back before the previous '
                      'one, to see writes that committed late or were stamped by a host '
                      'whose clock is behind. More costs rows read again, never '
                      'correctness of claims.'),
    cfg.FloatOpt('host_state_full_reload_interval', default=600.0, min=1.0,
                 help='Seconds after which the scheduler reads every host again instead of '
                      'only what changed. A compute node added or deleted triggers a full '
                      'read at once.'),
]

filter_opts = [
    cfg.ListOpt('enabled_filters',
                default=['ComputeFilter', 'AvailabilityZoneFilter', 'RamFilter',
                         'CoreFilter', 'DiskFilter', 'SameHostFilter',
                         'DifferentHostFilter', 'ImagePropertiesFilter',
                         'ServerGroupAntiAffinityFilter', 'ServerGroupAffinityFilter'],
                help='Filters run in this order; each removes hosts that cannot take '
                     'the request. Known filters: ComputeFilter, AvailabilityZoneFilter, '
                     'RamFilter, CoreFilter, DiskFilter, SameHostFilter, '
                     'DifferentHostFilter, ImagePropertiesFilter, NumInstancesFilter, '
                     'ServerGroupAntiAffinityFilter, ServerGroupAffinityFilter. The claim '
                     'enforces the hard server group policies even when their filters are '
                     'not enabled.'),
    cfg.ListOpt('weight_classes', default=['RAMWeigher', 'CPUWeigher', 'DiskWeigher',
                                           'ServerGroupSoftAffinityWeigher',
                                           'ServerGroupSoftAntiAffinityWeigher'],
                help='Weighers combined to rank the hosts that passed the filters. Known '
                     'weighers: RAMWeigher, CPUWeigher, DiskWeigher, '
                     'ServerGroupSoftAffinityWeigher, ServerGroupSoftAntiAffinityWeigher.'),
    cfg.FloatOpt('ram_weight_multiplier', default=1.0,
                 help='Multiplier of free RAM; positive spreads, negative stacks.'),
    cfg.FloatOpt('cpu_weight_multiplier', default=1.0,
                 help='Multiplier of free vCPUs; positive spreads, negative stacks.'),
    cfg.FloatOpt('disk_weight_multiplier', default=1.0,
                 help='Multiplier of free disk; positive spreads, negative stacks.'),
    cfg.FloatOpt('soft_affinity_weight_multiplier', default=1.0, min=0.0,
                 help='Multiplier of the members of a soft-affinity server group a host '
                      'holds: more members, more weight.'),
    cfg.FloatOpt('soft_anti_affinity_weight_multiplier', default=1.0, min=0.0,
                 help='Multiplier of the members of a soft-anti-affinity server group a '
                      'host holds: more members, less weight.'),
    cfg.IntOpt('host_subset_size', default=1, min=1,
               help='Pick at random among this many best weighed hosts, to lower the '
                    'chance of concurrent schedulers racing for one host.'),
    cfg.BoolOpt('shuffle_best_same_weighed_hosts', default=False,
                help='Shuffle hosts of equal best weight before choosing.'),
    cfg.IntOpt('max_instances_per_host', default=50, min=1,
               help='Instances one host may hold (NumInstancesFilter).'),
]


def register_opts(conf):
    conf.register_opts(scheduler_opts, group=SCHEDULER)
    conf.register_opts(filter_opts, group=FILTER)


def list_opts():
    return {SCHEDULER: scheduler_opts, FILTER: filter_opts}
