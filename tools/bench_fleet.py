#!/usr/bin/env python3
"""A fake fleet on one machine: start-up time, idle CPU and memory per host, and boots/s
with concurrent clients, at several fleet sizes.

Each size starts a new control plane of its own, with 4 compute services (fewer for a
smaller fleet) that each manage hosts/4 fake nodes ([fake_driver] nodes, as a
multi-node Nova compute), measures, and stops it.

  python tools/bench_fleet.py                         # all-in-one: one novalite-all
                                                      #   process, SQLite
  python tools/bench_fleet.py --cluster \\
      --db postgresql+psycopg2://novalite:novalite@127.0.0.1/test \\
      --transport rabbit://guest:guest@127.0.0.1:5672/   # separate daemons; a database
                                                         #   of its own per size
  options: --hosts 4,200,1000,10000 --clients 20 --boots 200 --poll 0.2 --json FILE
           --conductors N --schedulers N (--cluster) --executor-threads N

What is measured, per size:
- start-up: from starting the processes until the API lists every node and the
  scheduler has placed a first server (so the scheduler's host cache is loaded);
- idle CPU: the processes' CPU time over --idle seconds after start-up, in % of one core;
- RSS: the processes' resident memory after the boots, total and per host;
- CPU per boot: the services' CPU time during the boots over the boots (the clients'
  own CPU apart), which bounds boots/s on this machine at about 2 cores / that; and
  the same per process (API, conductor, scheduler, the computes together) and for the
  clients;
- boots/s: --clients threads each boot a server (flavor 1) and poll it every --poll
  seconds until ACTIVE, then boot the next, until --boots servers are ACTIVE; the rate is
  boots over the wall time from the first request to the last ACTIVE. The clients run on
  the same 2 cores as the services.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import requests

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

HEADERS = {'X-Auth-Token': 'admin:admin', 'Content-Type': 'application/json',
           'X-OpenStack-Nova-API-Version': '2.80'}
TICK = os.sysconf('SC_CLK_TCK')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def cpu_seconds(pids) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f'/proc/{pid}/stat') as f:
                fields = f.read().rsplit(')', 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / TICK


def rss_mb(pids) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f'/proc/{pid}/status') as f:
                for line in f:
                    if line.startswith('VmRSS:'):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024.0


def split_fleet(hosts: int) -> tuple[int, int]:
    """(compute services, nodes each) for a fleet of ``hosts`` fake hosts."""
    services = min(4, hosts)
    if hosts % services:
        raise SystemExit(f'--hosts {hosts}: not a multiple of {services}')
    return services, hosts // services


FLEET_CONF = {
    'quota.instances': -1, 'quota.cores': -1, 'quota.ram': -1,
    'notifications.enabled': 'false', 'fake_driver.persist': 'false',
    # An operator's intervals for a large fleet: the defaults of a real cloud.
    'compute.resource_update_interval': 60, 'periodic_interval': 60,
}


class AllInOne:
    """One novalite-all process."""

    def __init__(self, work, hosts):
        self.work = work
        services, nodes = split_fleet(hosts)
        self.port = free_port()
        conf = dict(FLEET_CONF, **{
            'state_path': work, 'osapi_compute_listen': '127.0.0.1',
            'osapi_compute_listen_port': self.port, 'all_in_one.compute_hosts': services,
            'fake_driver.nodes': nodes, 'debug': 'false',
            'log_file': os.path.join(work, 'novalite-all.log')})
        self.conf_file = write_conf(work, conf)
        self.proc = None

    @property
    def endpoint(self):
        return f'http://127.0.0.1:{self.port}'

    def start(self):
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'novalite.cmd.all_in_one', '--config-file',
             self.conf_file], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def pids(self):
        return [self.proc.pid]

    def pids_by_role(self):
        return {'all': [self.proc.pid]}

    def check(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f'novalite-all exited with {self.proc.returncode}')

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Daemons:
    """Separate api, conductor, scheduler and compute processes (novalite.cluster)."""

    def __init__(self, work, hosts, db_url, transport_url, conductors=1, schedulers=1):
        from novalite.cluster import Cluster
        services, nodes = split_fleet(hosts)
        conf = dict(FLEET_CONF, **{'fake_driver.nodes': nodes})
        self.cluster = Cluster(work, db_url, transport_url, computes=services,
                               extra_conf=conf, report_interval=10, service_down_time=60)
        self.conductors, self.schedulers = conductors, schedulers

    @property
    def endpoint(self):
        return self.cluster.endpoint

    def start(self):
        c = self.cluster
        c.write_conf()
        c.db_sync()
        for i in range(self.conductors):
            c.start_process('conductor' + (str(i + 1) if i else ''), 'conductor',
                            'ctl%d' % (i + 1) if i else 'ctl')
        for i in range(self.schedulers):
            c.start_process('scheduler' + (str(i + 1) if i else ''), 'scheduler',
                            'ctl%d' % (i + 1) if i else 'ctl')
        for host in c.compute_hosts:
            c.start_process(host, 'compute', host)
        c.start_process('api', 'api', 'ctl')

    def pids(self):
        return [p.pid for p in self.cluster.procs.values()]

    def pids_by_role(self):
        roles: dict[str, list[int]] = {}
        for name, p in self.cluster.procs.items():
            roles.setdefault(name.rstrip('0123456789'), []).append(p.pid)
        return roles

    def check(self):
        for name, p in self.cluster.procs.items():
            if p.poll() is not None:
                raise RuntimeError(f'{name} exited with {p.returncode}:\n'
                                   + self.cluster.log_tail(name))

    def stop(self):
        self.cluster.stop(timeout=60)


def write_conf(work, values) -> str:
    sections: dict[str, dict] = {}
    for key, value in values.items():
        group, _, name = key.rpartition('.')
        sections.setdefault(group or 'DEFAULT', {})[name] = value
    path = os.path.join(work, 'novalite.conf')
    with open(path, 'w') as f:
        for group, opts in sections.items():
            f.write(f'[{group}]\n' + ''.join(f'{k} = {v}\n' for k, v in opts.items()) + '\n')
    return path


class Client:
    def __init__(self, endpoint, poll):
        self.base = endpoint + '/v2.1'
        self.http = requests.Session()
        # No proxy look-up in the environment on every request: client CPU is the
        # services' CPU on this machine.
        self.http.trust_env = False
        self.http.headers.update(HEADERS)
        self.poll = poll

    def hypervisor_count(self) -> int:
        r = self.http.get(self.base + '/os-hypervisors/statistics', timeout=30)
        r.raise_for_status()
        return r.json()['hypervisor_statistics']['count']

    def boot(self, image, name) -> tuple[str, float]:
        """Boot one server and wait for ACTIVE; returns (status, seconds)."""
        t0 = time.monotonic()
        r = self.http.post(self.base + '/servers', timeout=60, json={'server': {
            'name': name, 'imageRef': image, 'flavorRef': '1', 'networks': 'none'}})
        r.raise_for_status()
        sid = r.json()['server']['id']
        while True:
            time.sleep(self.poll)
            s = self.http.get(f'{self.base}/servers/{sid}', timeout=60).json()['server']
            if s['status'] in ('ACTIVE', 'ERROR'):
                return s['status'], time.monotonic() - t0


def first_image(endpoint) -> str:
    r = requests.get(endpoint + '/image/v2/images', headers=HEADERS, timeout=30)
    r.raise_for_status()
    return r.json()['images'][0]['id']


def wait_up(plane, client, hosts, timeout) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        plane.check()
        try:
            if client.hypervisor_count() >= hosts:
                return
        except requests.RequestException:
            pass
        time.sleep(1.0)
    raise RuntimeError(f'{hosts} hypervisors not listed within {timeout} s')


def boot_load(client_factory, image, clients, boots) -> dict:
    """``clients`` threads booting until ``boots`` servers are up."""
    lock = threading.Lock()
    left = [boots]
    latencies, errors = [], []

    def worker(i):
        c = client_factory()
        n = 0
        while True:
            with lock:
                if left[0] <= 0:
                    return
                left[0] -= 1
            try:
                status, seconds = c.boot(image, f'fleet-{i}-{n}')
            except requests.RequestException as e:
                status, seconds = f'request failed: {e}', 0.0
            n += 1
            with lock:
                (latencies if status == 'ACTIVE' else errors).append(
                    seconds if status == 'ACTIVE' else status)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    return {'boots': len(latencies), 'errors': len(errors), 'first_errors': errors[:3],
            'seconds': round(wall, 2), 'boots_per_s': round(len(latencies) / wall, 1),
            'latency_p50_ms': round(1000 * statistics.median(latencies), 1)
            if latencies else None}


def fresh_database(db_url) -> tuple[str, callable]:
    """A new database on ``db_url``'s server, and a function that drops it."""
    import sqlalchemy as sa
    name = 'novalite_fleet_' + uuid.uuid4().hex[:10]
    admin = sa.create_engine(db_url, isolation_level='AUTOCOMMIT',
                             poolclass=sa.pool.NullPool)
    pg = db_url.startswith('postgresql')
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE {name}' + (
            '' if pg else ' CHARACTER SET utf8mb4'))

    def drop():
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS {name}' + (
                ' WITH (FORCE)' if pg else ''))
        admin.dispose()
    return db_url.rsplit('/', 1)[0] + '/' + name, drop


def measure(hosts, args) -> dict:
    if args.executor_threads:
        FLEET_CONF['executor_thread_pool_size'] = args.executor_threads
    work = tempfile.mkdtemp(prefix='novalite-fleet-')
    drop = None
    if args.cluster:
        db_url, drop = fresh_database(args.db)
        plane = Daemons(work, hosts, db_url, args.transport, args.conductors,
                        args.schedulers)
    else:
        plane = AllInOne(work, hosts)
    services, nodes = split_fleet(hosts)
    out = {'hosts': hosts, 'compute_services': services, 'nodes_each': nodes}
    t0 = time.monotonic()
    plane.start()
    try:
        client = Client(plane.endpoint, args.poll)
        wait_up(plane, client, hosts, args.start_timeout)
        listed = time.monotonic() - t0
        image = first_image(plane.endpoint)
        status, _ = client.boot(image, 'fleet-first')
        out['startup_s'] = round(time.monotonic() - t0, 1)
        out['listed_s'] = round(listed, 1)
        if status != 'ACTIVE':
            raise RuntimeError(f'first server went {status}')
        pids = plane.pids()
        time.sleep(2)
        c0, w0 = cpu_seconds(pids), time.monotonic()
        time.sleep(args.idle)
        idle = 100.0 * (cpu_seconds(pids) - c0) / (time.monotonic() - w0)
        out['idle_cpu_pct'] = round(idle, 1)
        out['idle_cpu_pct_per_1000_hosts'] = round(idle * 1000 / hosts, 2)
        out['rss_mb_idle'] = round(rss_mb(pids), 1)
        boot_load(lambda: Client(plane.endpoint, args.poll), image, args.clients,
                  args.clients)  # warm-up: every client's connection and path
        roles = plane.pids_by_role()
        c0, me0 = cpu_seconds(pids), time.process_time()
        r0 = {role: cpu_seconds(p) for role, p in roles.items()}
        out.update(boot_load(lambda: Client(plane.endpoint, args.poll), image,
                             args.clients, args.boots))
        booted = max(out['boots'], 1)
        out['cpu_ms_per_boot'] = round(1000 * (cpu_seconds(pids) - c0) / booted, 1)
        out['cpu_ms_per_boot_by_role'] = {
            role: round(1000 * (cpu_seconds(p) - r0[role]) / booted, 1)
            for role, p in roles.items()}
        out['client_cpu_ms_per_boot'] = round(1000 * (time.process_time() - me0) / booted,
                                              1)
        rss = rss_mb(pids)
        out['rss_mb'] = round(rss, 1)
        out['rss_kb_per_host'] = round(1024 * rss / hosts, 1)
    finally:
        plane.stop()
        if drop is not None:
            drop()
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--cluster', action='store_true', help='separate daemons')
    p.add_argument('--db', default='postgresql+psycopg2://novalite:novalite@127.0.0.1/test')
    p.add_argument('--transport', default='rabbit://guest:guest@127.0.0.1:5672/')
    p.add_argument('--hosts', default='4,200,1000,10000')
    p.add_argument('--conductors', type=int, default=1, help='with --cluster')
    p.add_argument('--schedulers', type=int, default=1, help='with --cluster')
    p.add_argument('--executor-threads', type=int,
                   help="the services' [DEFAULT] executor_thread_pool_size (RPC handler "
                        'threads per process; default 64)')
    p.add_argument('--clients', type=int, default=20)
    p.add_argument('--boots', type=int, default=200)
    p.add_argument('--poll', type=float, default=0.2, help='client poll interval, s')
    p.add_argument('--idle', type=float, default=15.0, help='idle CPU window, s')
    p.add_argument('--start-timeout', type=float, default=600.0)
    p.add_argument('--json', help='write the results here as well')
    args = p.parse_args()
    kind = 'separate daemons, RabbitMQ + PostgreSQL' if args.cluster else \
        'all-in-one, in-process transport, SQLite'
    print(f'# fake fleet, {kind}; {args.clients} clients, poll {args.poll} s, '
          f'{args.boots} boots, executor threads {args.executor_threads or "default"}; '
          f'load before: {os.getloadavg()[0]:.2f}', flush=True)
    print('| hosts | services x nodes | start-up s | idle CPU % (per 1,000 hosts) '
          '| RSS MB (KB/host) | boots/s | boot p50 ms | CPU ms/boot (by process) '
          '| errors |', flush=True)
    print('|---|---|---|---|---|---|---|---|---|', flush=True)
    rows = []
    for hosts in (int(h) for h in args.hosts.split(',')):
        r = measure(hosts, args)
        rows.append(r)
        print(f"| {hosts:,} | {r['compute_services']} x {r['nodes_each']:,} "
              f"| {r['startup_s']} | {r['idle_cpu_pct']} ({r['idle_cpu_pct_per_1000_hosts']}) "
              f"| {r['rss_mb']} ({r['rss_kb_per_host']}) | {r['boots_per_s']} "
              f"| {r['latency_p50_ms']} | {r['cpu_ms_per_boot']} ("
              + ', '.join(f'{k} {v}' for k, v in r['cpu_ms_per_boot_by_role'].items())
              + f"; clients {r['client_cpu_ms_per_boot']}) | {r['errors']} |", flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'kind': kind, 'args': vars(args), 'rows': rows}, f, indent=1)


if __name__ == '__main__':
    main()
