"""Benchmark of the FilterScheduler: vectorised select() against a plain Python loop doing
the same filtering and weighing, and load_host_states from a SQLite file database.

Run: python tools/bench_scheduler.py [--runs N]
With --db URL (PostgreSQL), instead: select_destinations with its claim over that
database through the scheduler's host cache (see tools/bench_scheduler_db.py).
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from oslo_config import cfg  # noqa: E402
from sqlalchemy import create_engine, insert  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from novalite.conf import default, scheduler  # noqa: E402
from novalite.db import models  # noqa: E402
from novalite.scheduler.filter_scheduler import FilterScheduler  # noqa: E402
from novalite.scheduler.host_manager import load_host_states  # noqa: E402
from novalite.scheduler.host_state import HostState, HostStateArrays, RequestSpec  # noqa: E402

ZONES = ('az1', 'az2')


def make_conf():
    conf = cfg.ConfigOpts()
    default.register_opts(conf)
    scheduler.register_opts(conf)
    conf([], project='novalite', default_config_files=[], default_config_dirs=[])
    return conf


def synthetic_hosts(n: int, seed: int = 42) -> list[HostState]:
    rng = random.Random(seed)
    hosts = []
    for i in range(n):
        vcpus = rng.choice((16, 32, 64))
        ram = vcpus * 4096
        hosts.append(HostState(
            host='compute%05d' % i, nodename='compute%05d' % i, uuid='uuid-%05d' % i,
            availability_zone=ZONES[i % 2],
            service_disabled=rng.random() < 0.02, service_up=rng.random() > 0.02,
            hypervisor_type='QEMU', hypervisor_version=8002000,
            vcpus_total=vcpus, vcpus_used=rng.randint(0, vcpus * 4),
            memory_mb_total=ram, memory_mb_used=rng.randint(0, ram - 512),
            disk_gb_total=2000, disk_gb_used=rng.randint(0, 2000),
            reserved_vcpus=0, reserved_memory_mb=512, reserved_disk_gb=0,
            cpu_allocation_ratio=4.0, ram_allocation_ratio=1.0, disk_allocation_ratio=1.0,
            num_instances=rng.randint(0, 40), cpu_arch='x86_64'))
    return hosts


def request() -> RequestSpec:
    return RequestSpec(
        instance_uuid='bench', project_id='p', user_id='u',
        flavor={'flavorid': '3', 'name': 'm1.medium', 'vcpus': 4, 'memory_mb': 8192,
                'root_gb': 40, 'ephemeral_gb': 0, 'swap': 0, 'extra_specs': {}},
        image={'id': 'img', 'properties': {'hypervisor_type': 'qemu'}},
        availability_zone='az1')


class NaiveScheduler:
    """The same filters and weighers as plain per-host Python in the usual object shape:
    each filter walks the remaining hosts calling host_passes(), each weigher walks the
    passing hosts, then a sort. This is the reference the vectorised scheduler beats."""

    def __init__(self, conf):
        fs = conf.filter_scheduler
        self.limit = fs.max_instances_per_host
        self.filters = [self.compute, self.availability_zone, self.ram, self.core, self.disk,
                        self.image_properties]
        self.weighers = [('free_ram_mb', fs.ram_weight_multiplier),
                         ('free_vcpus', fs.cpu_weight_multiplier),
                         ('free_disk_gb', fs.disk_weight_multiplier)]

    @staticmethod
    def compute(hs, spec):
        return not hs.service_disabled and hs.service_up

    @staticmethod
    def availability_zone(hs, spec):
        return not spec.availability_zone or hs.availability_zone == spec.availability_zone

    @staticmethod
    def ram(hs, spec):
        return hs.free_ram_mb >= spec.resources()['MEMORY_MB']

    @staticmethod
    def core(hs, spec):
        return hs.free_vcpus >= spec.resources()['VCPU']

    @staticmethod
    def disk(hs, spec):
        return hs.free_disk_gb >= spec.resources()['DISK_GB']

    @staticmethod
    def image_properties(hs, spec):
        wanted = (spec.image.get('properties') or {}).get('hypervisor_type')
        return not wanted or hs.hypervisor_type.lower() == wanted.lower()

    def select(self, spec, hosts, num_alternates):
        for host_passes in self.filters:
            hosts = [hs for hs in hosts if host_passes(hs, spec)]
        weights = [0.0] * len(hosts)
        for attr, mult in self.weighers:
            values = [getattr(hs, attr) for hs in hosts]
            lo, hi = min(values), max(values)
            for k, v in enumerate(values):
                weights[k] += mult * ((v - lo) / (hi - lo) if hi != lo else 0.0)
        order = sorted(range(len(hosts)), key=lambda k: -weights[k])
        return [hosts[k] for k in order[:1 + num_alternates]]


def fused_select(spec: RequestSpec, hosts: list[HostState], conf, num_alternates: int):
    """The best case for plain Python: every filter fused into one short-circuiting loop."""
    res = spec.resources()
    ram, vcpu, disk = res['MEMORY_MB'], res['VCPU'], res['DISK_GB']
    hv_type = spec.image['properties']['hypervisor_type']
    zone = spec.availability_zone
    passing = [hs for hs in hosts
               if not hs.service_disabled and hs.service_up and hs.availability_zone == zone
               and hs.free_ram_mb >= ram and hs.free_vcpus >= vcpu and hs.free_disk_gb >= disk
               and hs.hypervisor_type.lower() == hv_type]
    fs = conf.filter_scheduler
    weights = [0.0] * len(passing)
    for attr, mult in (('free_ram_mb', fs.ram_weight_multiplier),
                       ('free_vcpus', fs.cpu_weight_multiplier),
                       ('free_disk_gb', fs.disk_weight_multiplier)):
        values = [getattr(hs, attr) for hs in passing]
        lo, hi = min(values), max(values)
        for k, v in enumerate(values):
            weights[k] += mult * ((v - lo) / (hi - lo) if hi != lo else 0.0)
    order = sorted(range(len(passing)), key=lambda k: -weights[k])
    return [passing[k] for k in order[:1 + num_alternates]]


def median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def bench_select(n: int, runs: int, conf) -> None:
    hosts = synthetic_hosts(n)
    sched = FilterScheduler(conf)
    naive = NaiveScheduler(conf)
    spec = request()
    expected = [h.host for h in naive.select(spec, hosts, 2)]
    assert [h.host for h in fused_select(spec, hosts, conf, 2)] == expected
    assert [h.host for h in sched.select(spec, synthetic_hosts(n), 2)[0]] == expected, \
        'vectorised and naive selections differ'

    def undo(picked):
        # select() consumed one instance on its pick; undo it so every run sees the same.
        picked.vcpus_used -= 4
        picked.memory_mb_used -= 8192
        picked.disk_gb_used -= 40
        picked.num_instances -= 1

    view = HostStateArrays(hosts)
    position = {id(hs): i for i, hs in enumerate(hosts)}

    def select_on_view():
        picked = sched.select(spec, view, 2)[0][0]
        i = position[id(picked)]
        undo(picked)
        view.vcpus_used[i] -= 4
        view.memory_mb_used[i] -= 8192
        view.disk_gb_used[i] -= 40
        view.num_instances[i] -= 1

    t_select = median_ms(lambda: undo(sched.select(spec, hosts, 2)[0][0]), runs)
    t_view_select = median_ms(select_on_view, runs)
    t_core = median_ms(lambda: sched._filter_and_weigh(view, spec, {}), runs)
    t_view = median_ms(lambda: HostStateArrays(hosts), runs)
    slow_runs = max(3, runs // 4)
    t_naive = median_ms(lambda: naive.select(spec, hosts, 2), slow_runs)
    t_fused = median_ms(lambda: fused_select(spec, hosts, conf, 2), slow_runs)
    multi = RequestSpec.from_dict({**spec.to_dict(), 'num_instances': 10})
    t_build = median_ms(lambda: synthetic_hosts(n), slow_runs)
    t_multi = median_ms(lambda: sched.select(multi, synthetic_hosts(n), 2), slow_runs) - t_build
    label = '%6d hosts' % n
    print('%s  FilterScheduler.select(list of HostState): %8.2f ms' % (label, t_select))
    print('%s    of which columnar view build:            %8.2f ms' % (label, t_view))
    print('%s    of which filters + weighers:             %8.2f ms' % (label, t_core))
    print('%s  FilterScheduler.select(prebuilt view):     %8.2f ms' % (label, t_view_select))
    print('%s  select() of 10 instances (list):           %8.2f ms' % (label, t_multi))
    print('%s  naive per-filter Python loop:              %8.2f ms' % (label, t_naive))
    print('%s  hand-fused Python loop (best case):        %8.2f ms' % (label, t_fused))
    print('%s  ratio naive / select(list):                %8.1fx' % (label, t_naive / t_select))
    print('%s  ratio naive / select(prebuilt view):       %8.1fx'
          % (label, t_naive / t_view_select))
    print('%s  ratio fused / select(list | view):         %8.1fx | %.1fx'
          % (label, t_fused / t_select, t_fused / t_view_select))


def populate(path: str, n: int) -> None:
    engine = create_engine('sqlite:///' + path)
    models.Base.metadata.create_all(engine)
    now = models.utcnow()
    rng = random.Random(7)
    services, nodes, rps, invs, allocs, instances = [], [], [], [], [], []
    for i in range(n):
        name = 'compute%05d' % i
        services.append(dict(id=i + 1, uuid='svc-%d' % i, host=name, binary='novalite-compute',
                             topic='compute', disabled=False, forced_down=False,
                             last_seen_up=now - datetime.timedelta(seconds=rng.randint(0, 90)),
                             availability_zone=ZONES[i % 2], created_at=now))
        nodes.append(dict(id=i + 1, uuid='cn-%d' % i, service_id=i + 1, host=name,
                          hypervisor_hostname=name, hypervisor_type='QEMU',
                          hypervisor_version=8002000, vcpus=32, memory_mb=131072,
                          local_gb=2000, cpu_info={'arch': 'x86_64'}, traits=[],
                          created_at=now))
        rps.append(dict(id=i + 1, uuid='cn-%d' % i, name=name, generation=1, created_at=now))
        for rc, total, reserved, ratio in (('VCPU', 32, 0, 4.0), ('MEMORY_MB', 131072, 512, 1.0),
                                           ('DISK_GB', 2000, 0, 1.0)):
            invs.append(dict(resource_provider_id=i + 1, resource_class=rc, total=total,
                             reserved=reserved, max_unit=total, allocation_ratio=ratio))
        for k in range(3):
            consumer = 'inst-%d-%d' % (i, k)
            instances.append(dict(uuid=consumer, display_name=consumer, project_id='p',
                                  user_id='u', flavor={}, vm_state='active', host=name,
                                  node=name, deleted=False, created_at=now))
            for rc, used in (('VCPU', 2), ('MEMORY_MB', 4096), ('DISK_GB', 20)):
                allocs.append(dict(resource_provider_id=i + 1, consumer_id=consumer,
                                   resource_class=rc, used=used, created_at=now))
    with Session(engine) as session, session.begin():
        for model, rows in ((models.Service, services), (models.ComputeNode, nodes),
                            (models.ResourceProvider, rps), (models.Inventory, invs),
                            (models.Allocation, allocs), (models.Instance, instances)):
            session.execute(insert(model), rows)
    engine.dispose()


def bench_load(n: int, runs: int, conf) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'bench.sqlite')
        populate(path, n)
        engine = create_engine('sqlite:///' + path)
        with Session(engine) as session:
            states = load_host_states(session, conf)
            assert len(states) == n and states[0].memory_mb_used == 3 * 4096
            t_counts = median_ms(lambda: load_host_states(session, conf), runs)
            t_uuids = median_ms(lambda: load_host_states(session, conf, with_instances=True),
                                runs)
        engine.dispose()
    print('%6d hosts  load_host_states (SQLite file):            %8.2f ms (median of %d)'
          % (n, t_counts, runs))
    print('%6d hosts  load_host_states with_instances=True:      %8.2f ms' % (n, t_uuids))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=21, help='runs per timing (median)')
    parser.add_argument('--db', nargs='?', const=os.environ.get('NOVALITE_TEST_PG_URL'),
                        help='PostgreSQL URL (default $NOVALITE_TEST_PG_URL): benchmark '
                             'select_destinations with claim over it')
    parser.add_argument('--hosts', default='1000,10000', help='host counts (--db)')
    parser.add_argument('--requests', type=int, default=200,
                        help='requests timed per host count (--db)')
    parser.add_argument('--seconds', type=float, default=10,
                        help='duration of the two-process throughput run, 0 skips (--db)')
    args = parser.parse_args()
    if args.db:
        import bench_scheduler_db
        bench_scheduler_db.run(args.db, [int(n) for n in args.hosts.split(',')],
                               args.requests, args.seconds)
        return
    conf = make_conf()
    print('novalite FilterScheduler benchmark (numpy %s)' % np.__version__)
    print('filters: %s' % ', '.join(conf.filter_scheduler.enabled_filters))
    for n in (1000, 10000):
        bench_select(n, args.runs, conf)
    bench_load(1000, max(3, args.runs // 3), conf)


if __name__ == '__main__':
    main()
