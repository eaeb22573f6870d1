"""Shared builders for the scheduler unit tests."""

import datetime

from oslo_config import cfg

from novalite.conf import default, scheduler
from novalite.scheduler.host_state import HostState, RequestSpec


def make_conf(**filter_overrides):
    conf = cfg.ConfigOpts()
    default.register_opts(conf)
    scheduler.register_opts(conf)
    conf([], project='novalite', default_config_files=[], default_config_dirs=[])
    for name, value in filter_overrides.items():
        conf.set_override(name, value, group='filter_scheduler')
    return conf


def host(name, **kw):
    values = dict(host=name, nodename=name, uuid='uuid-' + name, vcpus_total=16,
                  memory_mb_total=32768, disk_gb_total=500, cpu_allocation_ratio=1.0,
                  ram_allocation_ratio=1.0, disk_allocation_ratio=1.0,
                  hypervisor_type='QEMU', cpu_arch='x86_64',
                  last_heartbeat=datetime.datetime.now(datetime.UTC).replace(tzinfo=None))
    values.update(kw)
    return HostState(**values)


def spec(vcpus=1, memory_mb=1024, root_gb=10, ephemeral_gb=0, swap=0, **kw):
    flavor = dict(flavorid='f1', name='m1', vcpus=vcpus, memory_mb=memory_mb,
                  root_gb=root_gb, ephemeral_gb=ephemeral_gb, swap=swap, extra_specs={})
    return RequestSpec(instance_uuid='inst-1', project_id='p', user_id='u', flavor=flavor,
                       **kw)
