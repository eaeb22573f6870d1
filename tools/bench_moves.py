#!/usr/bin/env python3
"""Latency of boot, resize, confirm, cold migrate, revert and live migrate through REST.

Runs the operations one server at a time (as the reference measurements of Nova do:
4 hosts, 20 servers, REST call until a GET shows the target state, polling every few
ms) and prints median and p95 per operation, next to Nova 34's figures and to the
floor each hop stands on, measured in the same run: a bare RPC round trip on the same
transport and a bare compare-and-swap commit on the same database.

Beside the latency, per operation (the fewest over three servers, background work left
out): RPC calls, casts, commits, and statements: the other round trips to the database
(SQL statements; with the daemons on PostgreSQL also the BEGIN psycopg2 sends before a
transaction and the ROLLBACK that ends one). The GET polls of an operation count in it.

  python tools/bench_moves.py                      # all-in-one (in-process transport,
                                                   #   SQLite)
  python tools/bench_moves.py --daemons \\
      --db postgresql+psycopg2://novalite:novalite@127.0.0.1/test \\
      --transport rabbit://guest:guest@127.0.0.1:5672/   # separate daemon processes
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid

import oslo_messaging as messaging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from novalite import context, rpc, stats  # noqa: E402
from novalite.conf import CONF  # noqa: E402

POLL_SECONDS = 0.005  # as the Nova benchmark polls
# Nova's fake driver ends a live migration at once (it copies nothing); ours simulates
# the copy of the guest's memory and disks in real time (22 GiB for the flavor the cycle
# live-migrates: 22 ms at the default 10^6 MiB/s). Here the copy takes no time, so both
# benchmarks time the control plane alone.
FAKE_COPY_MB_S = 1e12

NOVA_MS = {  # Nova 34, same machine kind, medians of 20 (low-high of three runs)
    'boot': (502, 531), 'resize': (702, 892), 'confirm': (205, 276),
    'cold_migrate': (607, 802), 'revert': None, 'live_migrate': (668, 739),
}


def pct(values, p):
    values = sorted(values)
    k = max(0, min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1)))))
    return values[k]


class Rest:
    def __init__(self, endpoint):
        import requests
        self.base = endpoint.rstrip('/') + '/v2.1'
        self.http = requests.Session()
        # No proxy lookups in the environment for every request: this client shares the
        # process (and its GIL) with the all-in-one it measures.
        self.http.trust_env = False
        self.http.headers.update({'X-Auth-Token': 'admin:admin',
                                  'OpenStack-API-Version': 'compute 2.80'})

    def call(self, method, path, body=None):
        r = self.http.request(method, self.base + path, json=body, timeout=60)
        if r.status_code >= 400:
            raise RuntimeError(f'{method} {path}: {r.status_code} {r.text[:300]}')
        return r.json() if r.content else None

    def server(self, sid):
        return self.call('GET', f'/servers/{sid}')['server']

    def until(self, sid, status, extra=None, timeout=60):
        deadline = time.perf_counter() + timeout
        while True:
            s = self.server(sid)
            if s['status'] == status and s['OS-EXT-STS:task_state'] is None and (
                    extra is None or extra(s)):
                return s
            if s['status'] == 'ERROR':
                raise RuntimeError(f'ERROR: {s.get("fault")}')
            if time.perf_counter() > deadline:
                raise RuntimeError(f'timeout waiting for {status}')
            time.sleep(POLL_SECONDS)


def run_cycle(rest, image, n, results, measure=None):
    """Boot, resize, confirm, cold migrate, revert, live migrate and delete ``n`` servers
    one at a time; ``measure(op, fn)`` runs each operation (default: time it)."""
    def timed(op, fn):
        t = time.perf_counter()
        fn()
        results[op].append(time.perf_counter() - t)
    measure = measure or timed

    for i in range(n):
        _server_cycle(rest, image, f'bench-{i}', measure)


def _server_cycle(rest, image, name, measure):
    def action(body):
        rest.call('POST', f'/servers/{box["sid"]}/action', body)

    box = {}

    def boot():
        box['sid'] = rest.call('POST', '/servers', {'server': {
            'name': name, 'flavorRef': '1', 'imageRef': image,
            'networks': 'none'}})['server']['id']
        rest.until(box['sid'], 'ACTIVE')
    measure('boot', boot)
    sid = box['sid']
    measure('resize', lambda: (action({'resize': {'flavorRef': '2'}}),
                               rest.until(sid, 'VERIFY_RESIZE')))
    measure('confirm', lambda: (action({'confirmResize': None}), rest.until(sid, 'ACTIVE')))
    measure('cold_migrate', lambda: (action({'migrate': None}),
                                     rest.until(sid, 'VERIFY_RESIZE')))
    measure('revert', lambda: (action({'revertResize': None}), rest.until(sid, 'ACTIVE')))
    host = rest.server(sid)['OS-EXT-SRV-ATTR:host']
    measure('live_migrate', lambda: (
        action({'os-migrateLive': {'host': None, 'block_migration': 'auto'}}),
        rest.until(sid, 'ACTIVE', extra=lambda s: s['OS-EXT-SRV-ATTR:host'] != host)))
    rest.call('DELETE', f'/servers/{sid}')


# Work that is not the operation: heartbeats, periodic tasks, and what the conductor
# serves for them.
BACKGROUND = {'periodic', 'service_heartbeat', 'compute_node_report', 'host_instances',
              'host_migrations'}


def _foreground(snapshot) -> dict[str, int]:
    out = {'call': 0, 'cast': 0, 'commit': 0, 'statement': 0}
    for key, value in snapshot.items():
        kind, _, label = key.partition(':')
        if label not in BACKGROUND and kind in out:
            out[kind] += value
    return out


def count_cycle(rest, image, n, read, settle=0.0):
    """RPC calls, casts, commits and statements of each operation: the fewest over ``n`` servers
    (anything that happened to run beside it only adds)."""
    counts: dict[str, dict] = {}

    def counted(op, fn):
        time.sleep(settle)
        before = _foreground(read())
        fn()
        time.sleep(settle)
        after = _foreground(read())
        delta = {k: after[k] - before[k] for k in after}
        best = counts.get(op)
        if best is None or sum(delta.values()) < sum(best.values()):
            counts[op] = delta
    run_cycle(rest, image, n, {}, measure=counted)
    return counts


def read_stats_dir(where):
    def read():
        total: dict[str, int] = {}
        for name in os.listdir(where):
            if name.endswith('.json'):
                try:
                    with open(os.path.join(where, name)) as f:
                        for k, v in json.load(f).items():
                            total[k] = total.get(k, 0) + v
                except (OSError, ValueError):
                    pass
        return total
    return read


class _Echo:
    target = messaging.Target(version='1.0')
    rpc_methods = ('ping',)

    def ping(self, ctxt):
        return 1


def rpc_floor(url, n=200):
    topic = 'bench-' + uuid.uuid4().hex[:6]
    server = rpc.get_server(messaging.Target(topic=topic, server='h'), [_Echo()], url=url)
    server.start()
    client = rpc.get_client(messaging.Target(topic=topic, version='1.0'), url=url)
    ctx = context.get_admin_context()
    client.prepare(server='h').call(ctx, 'ping')
    times = []
    for _ in range(n):
        t = time.perf_counter()
        client.prepare(server='h').call(ctx, 'ping')
        times.append(time.perf_counter() - t)
    server.stop()
    server.wait()
    return statistics.median(times)


def commit_floor(n=200):
    from novalite.db import api as db
    inst = db.instance_create({'display_name': 'floor', 'project_id': 'p', 'user_id': 'u',
                               'flavor': {'vcpus': 1, 'memory_mb': 1}, 'vm_state': 'active'})
    times = []
    for i in range(n):
        t = time.perf_counter()
        db.instance_update(inst['uuid'], {'progress': i % 100}, expected_task_state=None)
        times.append(time.perf_counter() - t)
    db.instance_destroy(inst['uuid'])
    return statistics.median(times)


def count_statements():
    """Count the SQL statements this process sends (all-in-one only), by the label of
    the thread that sends them, as commits are counted. A server's GET polls count under
    ``request``, so the figure an operation prints includes the polls it made."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, 'before_cursor_execute')
    def _count(*_args):
        stats.count('statement')


def report(title, results, rpc_s, commit_s, counts, nova_ms=None):
    nova_ms = nova_ms or NOVA_MS
    print(f'\n{title}')
    print(f'  floor: RPC call round trip {rpc_s * 1000:.2f} ms, '
          f'compare-and-swap commit {commit_s * 1000:.2f} ms; the fake hypervisor\'s '
          f'live-migration copy takes no time, as in Nova\'s fake driver')
    stmts = any(c.get('statement') for c in counts.values())
    print(f"  {'operation':<14}{'median ms':>10}{'p95 ms':>9}{'Nova 34 ms':>12}"
          f"{'Nova/us':>9}{'median/RPC':>12}{'calls':>7}{'casts':>7}{'commits':>9}" +
          (f"{'statements':>12}" if stmts else ''))
    for op, values in results.items():
        if not values:
            continue
        med = statistics.median(values) * 1000
        p95 = pct(values, 95) * 1000
        nova = nova_ms.get(op)
        nova_s = f'{nova[0]:.0f}-{nova[1]:.0f}' if nova else '-'
        ratio = f'{nova[0] / med:.1f}x' if nova else '-'
        c = counts.get(op, {})
        print(f'  {op:<14}{med:>10.1f}{p95:>9.1f}{nova_s:>12}{ratio:>9}'
              f'{med / (rpc_s * 1000):>11.0f}x{c.get("call", 0):>7}{c.get("cast", 0):>7}'
              f'{c.get("commit", 0):>9}' + (f'{c.get("statement", 0):>12}' if stmts else ''))


def bench_all_in_one(n, hosts, nova_ms=None):
    from novalite import all_in_one
    from novalite.db import api as db
    state = tempfile.mkdtemp(prefix='novalite-bench-')
    rpc.set_defaults()
    CONF([], project='novalite')
    CONF.set_override('state_path', state)
    CONF.set_override('auth_strategy', 'noauth2', group='api')
    CONF.set_override('persist', False, group='fake_driver')
    CONF.set_override('osapi_compute_listen_port', 0)
    CONF.set_override('enabled', False, group='notifications')
    CONF.set_override('live_migration_bandwidth_mb_s', FAKE_COPY_MB_S, group='fake_driver')
    count_statements()
    aio = all_in_one.AllInOne(compute_hosts=hosts, transport_url='inproc://')
    aio.start(with_http=True)
    try:
        rest = Rest(aio.endpoint)
        image = db.image_get_all()[0]['uuid']
        results = {k: [] for k in NOVA_MS}
        run_cycle(rest, image, 2, {k: [] for k in NOVA_MS})  # warm-up
        run_cycle(rest, image, n, results)
        counts = count_cycle(rest, image, 3, stats.snapshot, settle=0.3)
        report(f'all-in-one: {hosts} fake hosts, in-process transport, SQLite '
               f'({n} servers, one at a time)', results, rpc_floor('inproc://'),
               commit_floor(), counts, nova_ms)
    finally:
        aio.stop()


def bench_daemons(n, hosts, db_url, transport_url, nova_ms=None):
    from novalite.cluster import Cluster
    from novalite.db import session
    work = tempfile.mkdtemp(prefix='novalite-bench-')
    stats_dir = os.path.join(work, 'stats')
    os.makedirs(stats_dir)
    cluster = Cluster(work, db_url, transport_url, computes=hosts,
                      extra_conf={'notifications.enabled': 'false',
                                  'fake_driver.live_migration_bandwidth_mb_s':
                                      str(FAKE_COPY_MB_S)})
    cluster.start(env={'NOVALITE_STATS_DIR': stats_dir})
    try:
        rest = Rest(cluster.endpoint)
        image = rest.http.get(cluster.endpoint + '/image/v2/images',
                              timeout=30).json()['images'][0]['id']
        results = {k: [] for k in NOVA_MS}
        run_cycle(rest, image, 2, {k: [] for k in NOVA_MS})
        run_cycle(rest, image, n, results)
        counts = count_cycle(rest, image, 3, read_stats_dir(stats_dir), settle=0.3)
        rpc.set_defaults()
        CONF([], project='novalite')
        CONF.set_override('connection', db_url, group='database')
        session.set_engine(None)
        report(f'separate daemons: {hosts} computes, {transport_url.split(":")[0]}, '
               f'{db_url.split(":")[0]} ({n} servers)', results, rpc_floor(transport_url),
               commit_floor(), counts, nova_ms)
    finally:
        cluster.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('-n', type=int, default=20, help='servers (default 20)')
    p.add_argument('--hosts', type=int, default=4)
    p.add_argument('--daemons', action='store_true')
    p.add_argument('--db', default='postgresql+psycopg2://novalite:novalite@127.0.0.1/test')
    p.add_argument('--transport', default='rabbit://guest:guest@127.0.0.1:5672/')
    p.add_argument('--nova-json', help="a Nova 34 run of the same session (the nova-bench "
                   "tool's --out file): ratios against it instead of the stored figures")
    args = p.parse_args()
    nova_ms = load_nova(args.nova_json) if args.nova_json else None
    if args.daemons:
        bench_daemons(args.n, args.hosts, args.db, args.transport, nova_ms)
    else:
        bench_all_in_one(args.n, args.hosts, nova_ms)


# Our operation -> the Nova benchmark's latency key (confirm follows a resize there too).
NOVA_KEYS = {'boot': 'boot', 'resize': 'resize', 'confirm': 'resize_confirm',
             'cold_migrate': 'cold_migrate', 'live_migrate': 'live_migrate'}


def load_nova(path) -> dict:
    with open(path) as f:
        latency = json.load(f)['latency']
    return {op: (latency[key]['median_ms'],) * 2 for op, key in NOVA_KEYS.items()
            if latency.get(key)}


if __name__ == '__main__':
    main()
