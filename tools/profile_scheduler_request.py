"""Where one select_destinations (with its claim) spends its time, over PostgreSQL: per
phase (host cache refresh, filtering and weighing, claim) the wall time, the SQL
statements sent and the time spent in them, and the statements themselves.

Run: python tools/profile_scheduler_request.py --db postgresql+psycopg2://u:p@host/db
     [--hosts 1000] [--requests 300] [--cprofile]
Works in a schema of its own (as tools/bench_scheduler_db.py), dropped at the end.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import os
import pstats
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import bench_scheduler_db as bench  # noqa: E402
from sqlalchemy import event  # noqa: E402

from novalite.db import api as db_api  # noqa: E402
from novalite.db import session as db_session  # noqa: E402


class Phases:
    """Wall time, statements and their time, per phase of a request."""

    def __init__(self, engine):
        self.current = 'other'
        self.wall = collections.Counter()
        self.count = collections.Counter()
        self.in_sql = collections.Counter()
        self.commits = collections.Counter()
        self.texts: dict[str, collections.Counter] = collections.defaultdict(
            collections.Counter)
        event.listen(engine, 'before_cursor_execute', self._before)
        event.listen(engine, 'after_cursor_execute', self._after)
        event.listen(engine, 'commit', self._commit)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        conn.info['profile_start'] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        self.count[self.current] += 1
        self.in_sql[self.current] += time.perf_counter() - conn.info['profile_start']
        self.texts[self.current][' '.join(statement.split())[:100]] += 1

    def _commit(self, conn):
        self.commits[self.current] += 1

    def wrap(self, owner, name, label):
        inner = getattr(owner, name)

        def timed(*args, **kwargs):
            outer, self.current = self.current, label
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.wall[label] += time.perf_counter() - start
                self.current = outer
        setattr(owner, name, timed)

    def clear(self):
        for counter in (self.wall, self.count, self.in_sql, self.commits):
            counter.clear()
        self.texts.clear()

    def report(self, requests: int) -> None:
        for label in sorted(set(self.wall) | set(self.count)):
            print('  %-13s %6.2f ms/request  %4.1f statements (%5.2f ms in them)  '
                  '%3.1f commits' % (label, self.wall[label] / requests * 1e3,
                                     self.count[label] / requests,
                                     self.in_sql[label] / requests * 1e3,
                                     self.commits[label] / requests))
        for label, texts in sorted(self.texts.items()):
            print('  statements of %s, per request:' % label)
            for text, n in texts.most_common():
                print('    %4.1f  %s' % (n / requests, text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--db', default=os.environ.get('NOVALITE_TEST_PG_URL'))
    parser.add_argument('--hosts', type=int, default=1000)
    parser.add_argument('--requests', type=int, default=300)
    parser.add_argument('--cprofile', action='store_true',
                        help='also print the 30 functions with the most cumulative time')
    args = parser.parse_args()
    if not args.db or not args.db.startswith('postgresql'):
        raise SystemExit('--db needs a PostgreSQL URL')
    schema = 'profile_sched_%d' % os.getpid()
    bench.create_schema(args.db, schema)
    try:
        engine = bench.make_engine(args.db, schema)
        bench.populate(engine, args.hosts, 3)
        engine.dispose()
        mgr, _lost = bench._scheduler(args.db, schema)
        phases = Phases(db_session.get_engine())
        phases.wrap(mgr.cache, 'refresh', 'refresh')
        phases.wrap(mgr.driver, '_filter_and_weigh', 'filter+weigh')
        phases.wrap(db_api, 'claim_resources', 'claim')
        bench._boot(mgr)                    # the full load
        phases.clear()
        profile = cProfile.Profile() if args.cprofile else None
        if profile:
            profile.enable()
        times = [bench._boot(mgr) for _ in range(args.requests)]
        if profile:
            profile.disable()
        print('%d hosts, %d requests: median %.2f ms, mean %.2f ms' % (
            args.hosts, args.requests, statistics.median(times) * 1e3,
            statistics.mean(times) * 1e3))
        phases.report(args.requests)
        if profile:
            pstats.Stats(profile).sort_stats('cumulative').print_stats(30)
    finally:
        db_session.set_engine(None)
        bench.drop_schema(args.db, schema)


if __name__ == '__main__':
    main()
