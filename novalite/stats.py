"""Counts of RPC calls, casts and database commits, by what caused them, for benchmarks.

Every thread has a label: the RPC method it serves, ``periodic`` for heartbeats and
periodic tasks, ``request`` otherwise (API requests, build and migration threads). Counts
are kept per (kind, label) so a benchmark can leave out the background work. With
``NOVALITE_STATS_DIR`` set, a daemon writes its counts there as ``<pid>.json`` a few
times a second, so a benchmark can add up every process of a cluster.
"""

import collections
import contextlib
import json
import os
import threading

COUNTS: collections.Counter = collections.Counter()
_lock = threading.Lock()
_local = threading.local()
BACKGROUND = 'periodic'


def label() -> str:
    return getattr(_local, 'label', None) or 'request'


def set_label(name: str) -> None:
    """Label the calling thread for the rest of its life."""
    _local.label = name


@contextlib.contextmanager
def labelled(name: str):
    old = getattr(_local, 'label', None)
    _local.label = name
    try:
        yield
    finally:
        _local.label = old


def count(kind: str) -> None:
    with _lock:
        COUNTS[f'{kind}:{label()}'] += 1


def add_time(kind: str, name: str, seconds: float) -> None:
    """Add to the microseconds spent in ``kind`` (serving, waiting) under ``name``."""
    with _lock:
        COUNTS[f'{kind}_us:{name}'] += int(seconds * 1e6)


def snapshot() -> dict[str, int]:
    with _lock:
        return dict(COUNTS)


def start_dump_from_env() -> None:
    where = os.environ.get('NOVALITE_STATS_DIR')
    if not where:
        return
    path = os.path.join(where, f'{os.getpid()}.json')

    def dump():
        last = None
        while True:
            now = snapshot()
            if now != last:
                tmp = path + '.tmp'
                with open(tmp, 'w') as f:
                    json.dump(now, f)
                os.replace(tmp, path)
                last = now
            threading.Event().wait(0.05)

    threading.Thread(target=dump, name='stats-dump', daemon=True).start()
