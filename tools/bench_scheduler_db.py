"""Benchmark of select_destinations with its claim over PostgreSQL: one scheduler's
latency, two scheduler processes' throughput, and the memory the host cache takes per
host. Works in a schema of its own, created and dropped by each run.

Run: python tools/bench_scheduler.py --db postgresql+psycopg2://u:p@host/db
     [--hosts 1000,10000] [--requests 200] [--seconds 10]
"""

from __future__ import annotations

import datetime
import logging
import multiprocessing
import os
import random
import statistics
import time
import tracemalloc
import uuid as uuidlib

import sqlalchemy as sa

from novalite.db import models
from novalite.db import session as db_session

ZONES = ('az1', 'az2')
FLAVOR = {'flavorid': '1', 'name': 'm1.tiny', 'vcpus': 1, 'memory_mb': 512, 'root_gb': 1,
          'ephemeral_gb': 0, 'swap': 0, 'extra_specs': {}}


def make_engine(url: str, schema: str | None) -> sa.Engine:
    """The service's engine (db_session.create_engine), inside `schema`."""
    args = ({'options': '-csearch_path=%s' % schema}
            if url.startswith('postgresql') and schema else None)
    return db_session.create_engine(url, connect_args=args)


def create_schema(url: str, schema: str) -> None:
    with sa.create_engine(url).begin() as conn:
        conn.exec_driver_sql('CREATE SCHEMA %s' % schema)
    engine = make_engine(url, schema)
    models.Base.metadata.create_all(engine)
    engine.dispose()


def drop_schema(url: str, schema: str) -> None:
    with sa.create_engine(url).begin() as conn:
        conn.exec_driver_sql('DROP SCHEMA IF EXISTS %s CASCADE' % schema)


def populate(engine: sa.Engine, n: int, per_host: int = 3) -> None:
    """n compute hosts (service, node, provider, inventories), each holding `per_host`
    instances and their allocations, as in a cloud running for a while: everything
    created an hour ago, node reports and heartbeats spread over the last minute. (Rows
    created a moment before the run would all be in every request's change feed for
    its first host_state_change_window seconds.)"""
    now = models.utcnow()
    then = now - datetime.timedelta(hours=1)
    rng = random.Random(7)
    batch = 5000
    with engine.begin() as conn:
        for lo in range(0, n, batch):
            services, nodes, rps, invs, allocs, instances = [], [], [], [], [], []
            for i in range(lo, min(n, lo + batch)):
                name = 'compute%06d' % i
                services.append(dict(id=i + 1, uuid='svc-%d' % i, host=name,
                                     binary='novalite-compute', topic='compute',
                                     disabled=False, forced_down=False,
                                     last_seen_up=now - datetime.timedelta(
                                         seconds=rng.randint(0, 30)),
                                     availability_zone=ZONES[i % 2], created_at=then))
                nodes.append(dict(id=i + 1, uuid='cn-%d' % i, service_id=i + 1, host=name,
                                  hypervisor_hostname=name, hypervisor_type='QEMU',
                                  hypervisor_version=8002000, vcpus=32, memory_mb=131072,
                                  local_gb=2000, cpu_info={'arch': 'x86_64'}, traits=[],
                                  created_at=then, updated_at=now - datetime.timedelta(
                                      seconds=rng.randint(0, 60))))
                rps.append(dict(id=i + 1, uuid='cn-%d' % i, name=name, generation=1,
                                created_at=then))
                for rc, total, reserved, ratio in (('VCPU', 32, 0, 4.0),
                                                   ('MEMORY_MB', 131072, 512, 1.0),
                                                   ('DISK_GB', 2000, 0, 1.0)):
                    invs.append(dict(resource_provider_id=i + 1, resource_class=rc,
                                     total=total, reserved=reserved, max_unit=total,
                                     allocation_ratio=ratio))
                for k in range(per_host):
                    consumer = 'inst-%d-%d' % (i, k)
                    instances.append(dict(uuid=consumer, display_name=consumer,
                                          project_id='p', user_id='u', flavor={},
                                          vm_state='active', host=name, node=name,
                                          deleted=False, created_at=then))
                    for rc, used in (('VCPU', 2), ('MEMORY_MB', 4096), ('DISK_GB', 20)):
                        allocs.append(dict(resource_provider_id=i + 1, consumer_id=consumer,
                                           resource_class=rc, used=used, created_at=then))
            for model, rows in ((models.Service, services), (models.ComputeNode, nodes),
                                (models.ResourceProvider, rps), (models.Inventory, invs),
                                (models.Instance, instances), (models.Allocation, allocs)):
                if rows:
                    conn.execute(sa.insert(model), rows)
        if engine.dialect.name == 'postgresql':
            beat(conn)
            for table in ('services', 'compute_nodes', 'resource_providers', 'inventories',
                          'instances', 'allocations'):
                conn.exec_driver_sql('ANALYZE %s' % table)


def beat(conn) -> None:
    """Every host heartbeats now (clock, not transaction, time), spread over 30 s: a
    load or a phase longer than service_down_time must not leave hosts down."""
    conn.exec_driver_sql(
        "UPDATE services SET last_seen_up = clock_timestamp() AT TIME ZONE 'UTC' "
        "- mod(id, 31) * interval '1 second'")


def _beat(url: str, schema: str) -> None:
    engine = make_engine(url, schema)
    with engine.begin() as conn:
        beat(conn)
    engine.dispose()


def request_spec(uuid: str) -> dict:
    from novalite.scheduler.host_state import RequestSpec
    return RequestSpec(instance_uuid=uuid, project_id='p', user_id='u', flavor=dict(FLAVOR),
                       image={'id': 'img', 'properties': {'hypervisor_type': 'qemu'}},
                       availability_zone=ZONES[0]).to_dict()


class _LostClaims(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record):
        if 'lost' in record.getMessage():
            self.count += 1


def _scheduler(url: str, schema: str):
    from novalite.scheduler.manager import SchedulerManager
    db_session.set_engine(make_engine(url, schema))
    lost = _LostClaims()
    log = logging.getLogger('novalite.scheduler.manager')
    log.addHandler(lost)
    log.setLevel(logging.INFO)
    log.propagate = False
    return SchedulerManager('bench-%d' % os.getpid()), lost


def _boot(mgr) -> float:
    uuid = str(uuidlib.uuid4())
    start = time.perf_counter()
    mgr.select_destinations(None, request_spec(uuid), [uuid], return_alternates=True)
    return time.perf_counter() - start


def latency(url: str, schema: str, requests: int) -> dict:
    mgr, lost = _scheduler(url, schema)
    cold = _boot(mgr)
    times = sorted(_boot(mgr) for _ in range(requests))
    return {'cold_ms': cold * 1000, 'median_ms': statistics.median(times) * 1000,
            'p90_ms': times[int(len(times) * 0.9) - 1] * 1000, 'lost': lost.count,
            'stats': dict(mgr.cache.stats)}


def _worker(url, schema, seconds, barrier, out):
    mgr, lost = _scheduler(url, schema)
    _boot(mgr)                      # the full load, before the clock starts
    barrier.wait()
    end = time.perf_counter() + seconds
    done = 0
    while time.perf_counter() < end:
        _boot(mgr)
        done += 1
    out.put((done, lost.count))


def throughput(url: str, schema: str, seconds: float, processes: int = 2) -> dict:
    ctx = multiprocessing.get_context('spawn')
    barrier, out = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, schema, seconds, barrier, out))
             for _ in range(processes)]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return {'decisions': sum(r[0] for r in results), 'lost': sum(r[1] for r in results),
            'per_s': sum(r[0] for r in results) / seconds}


def memory_per_host(url: str, schema: str, n: int) -> float:
    from novalite.conf import CONF
    from novalite.scheduler.host_cache import HostCache
    db_session.set_engine(make_engine(url, schema))
    with db_session.reader() as s:      # warm SQLAlchemy's caches outside the count
        HostCache(CONF).refresh(s)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    cache = HostCache(CONF)
    with db_session.reader() as s:
        cache.refresh(s)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, 'filename'))
    assert len(cache.states) == n
    return grown / n


def over_committed(url: str, schema: str) -> int:
    """Providers whose allocations exceed capacity (must be 0)."""
    engine = make_engine(url, schema)
    query = sa.text(
        'SELECT COUNT(*) FROM (SELECT a.resource_provider_id, a.resource_class, '
        'SUM(a.used) AS used FROM allocations a GROUP BY a.resource_provider_id, '
        'a.resource_class) u JOIN inventories i ON i.resource_provider_id = '
        'u.resource_provider_id AND i.resource_class = u.resource_class '
        'WHERE u.used > (i.total - i.reserved) * i.allocation_ratio')
    with engine.connect() as conn:
        count = conn.execute(query).scalar()
    engine.dispose()
    return int(count)


def run(url: str, hosts: list[int], requests: int, seconds: float) -> None:
    if not url.startswith('postgresql'):
        raise SystemExit('--db needs a PostgreSQL URL (the run works in its own schema)')
    for n in hosts:
        schema = 'bench_sched_%d_%d' % (os.getpid(), n)
        create_schema(url, schema)
        try:
            engine = make_engine(url, schema)
            start = time.perf_counter()
            # Past 20,000 hosts the hosts start empty: rows enough to schedule over,
            # in a time fit for a benchmark.
            per_host = 3 if n <= 20000 else 0
            populate(engine, n, per_host)
            engine.dispose()
            print('%7d hosts  populated in %.1f s (%d instances and allocations per host)'
                  % (n, time.perf_counter() - start, per_host))
            _beat(url, schema)
            lat = latency(url, schema, requests)
            print('%7d hosts  select_destinations + claim, 1 scheduler: median %.2f ms, '
                  'p90 %.2f ms (%d requests; first request with the full load %.0f ms; '
                  'lost claims %d; cache %s)'
                  % (n, lat['median_ms'], lat['p90_ms'], requests, lat['cold_ms'],
                     lat['lost'], lat['stats']))
            if seconds > 0:
                _beat(url, schema)
                tp = throughput(url, schema, seconds)
                print('%7d hosts  2 scheduler processes: %.0f decisions/s (%d in %.0f s, '
                      'lost claims retried %d)' % (n, tp['per_s'], tp['decisions'],
                                                   seconds, tp['lost']))
            _beat(url, schema)
            print('%7d hosts  host cache memory: %.0f bytes per host (tracemalloc)'
                  % (n, memory_per_host(url, schema, n)))
            print('%7d hosts  providers over-committed after the run: %d'
                  % (n, over_committed(url, schema)))
        finally:
            db_session.set_engine(None)
            drop_schema(url, schema)
