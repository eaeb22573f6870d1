"""Run the fault matrix (tests/faults/matrix.py) and print its table and summary line.

    python tools/fault_matrix.py                 # every cell, one cluster at a time
    python tools/fault_matrix.py --fast          # the CI subset
    python tools/fault_matrix.py --cells 'migrate/*/conductor/*' --jobs 2
    python tools/fault_matrix.py --list          # the cells, without running them

Needs PostgreSQL and RabbitMQ as the integration tests do (NOVALITE_TEST_PG_URL,
NOVALITE_TEST_RABBIT_URL). Exits 1 when a cell that ran is neither ok nor not-caught.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.faults import matrix  # noqa: E402

GOOD = ('ok', 'not-caught')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--cells', metavar='PATTERN',
                   help='fnmatch pattern(s) of cell names, comma-separated '
                        '(operation/phase/daemon/fault)')
    p.add_argument('--fast', action='store_true', help='only the CI subset')
    p.add_argument('--list', action='store_true', help='list the cells and exit')
    p.add_argument('--json', action='store_true', help='print the results as JSON')
    p.add_argument('--jobs', type=int, default=1, metavar='N',
                   help='clusters run at once, each in its own process (default 1)')
    p.add_argument('--workdir', help='where the clusters live (default: a temporary '
                                     'directory, kept when a cell fails)')
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error('--jobs must be 1 or more')
    return args


def _report(result):
    secs = '-' if result.seconds is None else f'{result.seconds:.1f}s'
    print(f'{result.cell.name}: {result.outcome} {secs} {result.detail}', file=sys.stderr,
          flush=True)


def _run_parallel(cells, jobs, workdir):
    """Split the cells over ``jobs`` child processes of this tool; their Results."""
    shares = [cells[i::jobs] for i in range(jobs)]
    children = []
    for i, share in enumerate(s for s in shares if s):
        out = open(os.path.join(workdir, f'job-{i}.json'), 'w+')
        cmd = [sys.executable, os.path.abspath(__file__), '--json',
               '--cells', ','.join(c.name for c in share),
               '--workdir', os.path.join(workdir, f'job-{i}')]
        children.append((subprocess.Popen(cmd, stdout=out), out))
    results = []
    for proc, out in children:
        proc.wait()
        out.seek(0)
        text = out.read()
        out.close()
        try:
            rows = json.loads(text)['cells']
        except (ValueError, KeyError):
            raise SystemExit(f'a job exited with {proc.returncode} and no results')
        for row in rows:
            results.append(matrix.Result(matrix.cell_by_name(row['cell']), row['outcome'],
                                         row['seconds'], row['detail']))
    order = {c: i for i, c in enumerate(matrix.CELLS)}
    results.sort(key=lambda r: order[r.cell])
    return results


def main(argv=None):
    args = parse_args(argv)
    cells = matrix.select(args.cells, args.fast)
    if not cells:
        print(f'no cell matches {args.cells!r} (see --list)', file=sys.stderr)
        return 2
    if args.list:
        for c in cells:
            print(c.name)
        print(f'{len(cells)} cells', file=sys.stderr)
        return 0
    workdir = args.workdir or tempfile.mkdtemp(prefix='fault-matrix-')
    os.makedirs(workdir, exist_ok=True)
    started = time.monotonic()
    if args.jobs > 1 and len(cells) > 1:
        results = _run_parallel(cells, min(args.jobs, len(cells)), workdir)
    else:
        from novalite.conf import CONF
        CONF([], project='novalite', default_config_files=[], default_config_dirs=[])
        results = matrix.run(cells, workdir, report=_report)
    wall = time.monotonic() - started
    if args.json:
        print(json.dumps({'cells': [r.as_dict() for r in results],
                          'summary': matrix.summary(results),
                          'wall_seconds': round(wall, 1)}, indent=1))
    else:
        print(matrix.table(results))
        print(matrix.summary(results) + f' in {wall:.0f}s')
    bad = [r for r in results if r.outcome not in GOOD]
    if bad:
        print(f'cluster logs kept under {workdir}', file=sys.stderr)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
