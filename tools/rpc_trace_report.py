#!/usr/bin/env python3
"""Where each boot's time went across the processes, from the files of tools/rpc_trace.

For every instance whose boot was cast by the API (schedule_and_build_instances), its
RPC events in time order across all processes; then, per event, the time since the
event before it in the same boot (median and p90 over the boots), largest first. A
process is named by what it dispatches (the conductor dispatches
schedule_and_build_instances, the scheduler select_destinations, a compute
build_and_run_instance; the API casts the boot).

  python tools/rpc_trace_report.py DIR
"""

import collections
import glob
import os
import statistics
import sys


def _role(events) -> str:
    seen = {(kind, method) for _, kind, method, _ in events}
    for kind, method, role in (('dispatch>', 'select_destinations', 'scheduler'),
                               ('dispatch>', 'schedule_and_build_instances', 'conductor'),
                               ('dispatch>', 'build_and_run_instance', 'compute'),
                               ('cast>', 'schedule_and_build_instances', 'api')):
        if (kind, method) in seen:
            return role
    return 'other'


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    by_uuid = collections.defaultdict(list)
    for path in glob.glob(os.path.join(sys.argv[1], 'trace-*.log')):
        events = []
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 4 and parts[1] != 'start':
                    events.append((float(parts[0]), parts[1], parts[2], parts[3]))
        role = _role(events)
        for when, kind, method, uuid in events:
            if uuid != '-':
                by_uuid[uuid].append((when, f'{role} {kind} {method}'))
    gaps = collections.defaultdict(list)
    for events in by_uuid.values():
        events.sort()
        if 'api cast> schedule_and_build_instances' not in {name for _, name in events}:
            continue
        for (before, _), (when, name) in zip(events, events[1:], strict=False):
            gaps[name].append((when - before) * 1e3)
        gaps['whole boot, first to last event'].append((events[-1][0] - events[0][0]) * 1e3)
    if not gaps:
        raise SystemExit('no boot found in ' + sys.argv[1])
    rows = sorted(gaps.items(), key=lambda kv: -statistics.median(kv[1]))
    print('%-58s %5s %9s %9s' % ('event (time since the previous one of the boot)', 'n',
                                 'median ms', 'p90 ms'))
    for name, values in rows:
        values.sort()
        print('%-58s %5d %9.1f %9.1f' % (name, len(values), statistics.median(values),
                                         values[int(0.9 * (len(values) - 1))]))


if __name__ == '__main__':
    main()
