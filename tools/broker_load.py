#!/usr/bin/env python3
"""Broker load of idle compute hosts: heartbeats, resource reports and periodic reads.

Starts separate daemons (novalite.cluster) with novalite's default intervals on a
throwaway PostgreSQL database and RabbitMQ vhost, boots a few servers, lets the
cluster sit idle, and counts the RPC calls and casts each compute sends (the daemons'
own counters, NOVALITE_STATS_DIR). A call is two messages through the broker (the
request and its reply), a cast one. Prints the rate per host and at ``--hosts``.

  python tools/broker_load.py --seconds 60 --hosts 10000 \\
      --db postgresql+psycopg2://novalite:novalite@127.0.0.1/test \\
      --transport rabbit://guest:guest@127.0.0.1:5672/
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from novalite.cluster import Cluster  # noqa: E402
from tests.conftest import fresh_pg_database, private_vhost  # noqa: E402
from tests.rest import RestClient  # noqa: E402


def process_counts(stats_dir, pid) -> dict[str, int]:
    try:
        with open(os.path.join(stats_dir, f'{pid}.json')) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def sent(counts) -> tuple[int, int]:
    """(calls, casts) in a process's counters, whatever caused them."""
    calls = sum(v for k, v in counts.items() if k.startswith('call:'))
    casts = sum(v for k, v in counts.items() if k.startswith('cast:'))
    return calls, casts


def measure(db_url, transport_url, computes, servers, seconds, extra_conf):
    work = tempfile.mkdtemp(prefix='novalite-load-')
    stats_dir = os.path.join(work, 'stats')
    os.makedirs(stats_dir)
    conf = {'DEFAULT.periodic_interval': 10, 'compute.resource_update_interval': 10,
            **extra_conf}
    cluster = Cluster(work, db_url, transport_url, computes=computes, report_interval=10,
                      service_down_time=60, extra_conf=conf)
    cluster.start(env={'NOVALITE_STATS_DIR': stats_dir}, timeout=120)
    try:
        client = RestClient(cluster.endpoint)
        ids = [client.boot(f'load{i}', wait=False)['id'] for i in range(servers)]
        for sid in ids:
            client.wait_for_server(sid, 'ACTIVE', timeout=120)
        time.sleep(12)  # past the boots' own traffic and one full period
        pids = {h: cluster.procs[h].pid for h in cluster.compute_hosts}
        before = {h: sent(process_counts(stats_dir, p)) for h, p in pids.items()}
        start = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - start
        after = {h: sent(process_counts(stats_dir, p)) for h, p in pids.items()}
    finally:
        # Computes first: without a conductor their stop waits on its answers.
        for name in ['api', *cluster.compute_hosts]:
            cluster.stop_process(name)
        cluster.stop()
    rates = {}
    for h in pids:
        calls = (after[h][0] - before[h][0]) / elapsed
        casts = (after[h][1] - before[h][1]) / elapsed
        rates[h] = (calls, casts, 2 * calls + casts)
    return rates


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--seconds', type=float, default=60)
    p.add_argument('--computes', type=int, default=2)
    p.add_argument('--servers', type=int, default=4)
    p.add_argument('--hosts', type=int, default=10000, help='extrapolate to this many')
    p.add_argument('--db', default='postgresql+psycopg2://novalite:novalite@127.0.0.1/test')
    p.add_argument('--transport', default='rabbit://guest:guest@127.0.0.1:5672/')
    p.add_argument('--set', action='append', default=[], metavar='GROUP.OPT=VALUE',
                   help='extra option for every daemon, e.g. '
                        'compute.resource_full_report_interval=0')
    args = p.parse_args()
    extra = dict(kv.split('=', 1) for kv in args.set)
    db_gen = fresh_pg_database(args.db)
    vhost_gen = private_vhost(args.transport)
    try:
        rates = measure(next(db_gen), next(vhost_gen), args.computes, args.servers,
                        args.seconds, extra)
    finally:
        db_gen.close()
        vhost_gen.close()
    for host, (calls, casts, msgs) in sorted(rates.items()):
        print(f'{host}: {calls:.2f} calls/s, {casts:.2f} casts/s = {msgs:.2f} messages/s')
    mean = sum(r[2] for r in rates.values()) / len(rates)
    print(f'per idle host: {mean:.2f} messages/s; at {args.hosts} hosts: '
          f'{mean * args.hosts:,.0f} messages/s')


if __name__ == '__main__':
    main()
