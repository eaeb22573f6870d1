"""The cells of the fault matrix: (operation, daemon, phase, fault), the phases as
predicates over the recorded state, the CI subset, and how results are summed up."""

import dataclasses
import fnmatch

from novalite.compute import states
from novalite.compute.states import MS

OPERATIONS = ('boot', 'resize', 'migrate', 'confirm', 'revert', 'live-migrate', 'delete',
              'evacuate')
DAEMONS = ('api', 'conductor', 'scheduler', 'source', 'dest', 'compute', 'all')
FAULTS = ('sigkill', 'sigterm', 'db-10', 'db-60', 'mq-10', 'mq-60', 'dest-dead')
OUTCOMES = ('ok', 'stuck', 'leaked', 'guest-on-0', 'guest-on-2', 'follow-up-failed',
            'slow-stop', 'not-caught', 'harness-error')


# ------------------------------------------------------------------------ the cells

@dataclasses.dataclass(frozen=True)
class Cell:
    operation: str
    daemon: str
    phase: str
    fault: str

    def __post_init__(self):
        if self.operation not in OPERATIONS:
            raise ValueError(f'unknown operation {self.operation!r}; one of {OPERATIONS}')
        if self.daemon not in DAEMONS:
            raise ValueError(f'unknown daemon {self.daemon!r}; one of {DAEMONS}')
        if self.phase not in PHASES[self.operation]:
            raise ValueError(f'{self.operation} has no phase {self.phase!r}; one of '
                             f'{tuple(PHASES[self.operation])}')
        if self.fault not in FAULTS:
            raise ValueError(f'unknown fault {self.fault!r}; one of {FAULTS}')

    @property
    def name(self):
        return f'{self.operation}/{self.phase}/{self.daemon}/{self.fault}'

    @property
    def computes(self):
        # A destination that never comes back still leaves a host for the follow-up move;
        # so does the dead source of an evacuation.
        return (3 if self.fault == 'dest-dead' else 2) + (self.operation == 'evacuate')


@dataclasses.dataclass
class Result:
    cell: Cell
    outcome: str
    seconds: float | None = None    # to settle, from the restart or restore
    detail: str = ''

    def as_dict(self):
        return {'cell': self.cell.name, **dataclasses.asdict(self.cell),
                'outcome': self.outcome,
                'seconds': None if self.seconds is None else round(self.seconds, 1),
                'detail': self.detail}


def _task(*tasks):
    return lambda inst, mig: inst['task_state'] in tasks


def _status(*statuses, task=...):
    def match(inst, mig):
        return (mig is not None and mig['status'] in statuses and
                (task is ... or inst['task_state'] == task))
    return match


def _prep(dest_chosen):
    def match(inst, mig):
        return (inst['task_state'] == states.RESIZE_PREP and mig is not None and
                mig['status'] == MS.PRE_MIGRATING and bool(mig['dest_compute']) == dest_chosen)
    return match


_COLD_PHASES = {
    'prep': _prep(False),                 # the conductor waits for the scheduler
    'prep-dest': _prep(True),             # the destination prepares
    'migrating': _task(states.RESIZE_MIGRATING),   # the source moves the disks
    'migrated': _task(states.RESIZE_MIGRATED),     # the destination finishes
}

# Operation -> phase -> predicate over the instance and its newest migration (database rows).
PHASES = {
    'boot': {'scheduling': _task(states.SCHEDULING), 'spawning': _task(states.SPAWNING)},
    'resize': _COLD_PHASES,
    'migrate': _COLD_PHASES,
    'confirm': {'confirming': _status(MS.CONFIRMING)},
    'revert': {'reverting': _status(MS.REVERTING),
               'reverted': _status(MS.REVERTED, task=states.RESIZE_REVERTING)},
    'live-migrate': {'accepted': _status(MS.ACCEPTED),
                     'preparing': _status(MS.QUEUED, MS.PREPARING),
                     'running': _status(MS.RUNNING),
                     'post-migrating': _status(MS.POST_MIGRATING)},
    'delete': {'deleting': _task(states.DELETING)},
    # The source is dead before the evacuation starts (the preparation kills it).
    'evacuate': {'accepted': _status(MS.ACCEPTED),       # the conductor schedules
                 'rebuilding': _status(MS.PRE_MIGRATING)},  # the destination rebuilds
}


def _cells():
    out = []

    def add(operation, phase, daemons, fault='sigkill'):
        out.extend(Cell(operation, d, phase, fault) for d in daemons)

    # SIGKILL and restart of every daemon taking part, at every phase we can catch.
    add('boot', 'scheduling', ('api', 'conductor', 'scheduler'))
    add('boot', 'spawning', ('compute', 'conductor', 'api'))
    add('migrate', 'prep', ('conductor', 'scheduler'))
    add('migrate', 'prep-dest', ('conductor', 'dest', 'source'))
    add('migrate', 'migrating', ('source', 'dest', 'conductor', 'api'))
    add('migrate', 'migrated', ('dest', 'source', 'conductor'))
    add('resize', 'prep-dest', ('dest', 'conductor'))
    add('resize', 'migrating', ('source',))
    add('resize', 'migrated', ('dest', 'conductor'))
    add('confirm', 'confirming', ('source', 'dest', 'conductor', 'api'))
    add('revert', 'reverting', ('dest', 'source', 'conductor'))
    add('revert', 'reverted', ('source', 'conductor'))
    add('live-migrate', 'accepted', ('conductor', 'scheduler'))
    add('live-migrate', 'preparing', ('source', 'dest', 'conductor'))
    add('live-migrate', 'running', ('source', 'dest', 'conductor'))
    add('live-migrate', 'post-migrating', ('source', 'dest', 'conductor'))
    add('delete', 'deleting', ('compute', 'conductor', 'api'))
    add('evacuate', 'accepted', ('conductor', 'scheduler', 'api'))
    add('evacuate', 'rebuilding', ('dest', 'conductor'))
    # SIGTERM (graceful stop) and restart of each kind of daemon mid-move.
    add('boot', 'scheduling', ('scheduler',), 'sigterm')
    add('boot', 'spawning', ('compute',), 'sigterm')
    add('migrate', 'prep-dest', ('conductor',), 'sigterm')
    add('migrate', 'migrating', ('source', 'api'), 'sigterm')
    add('migrate', 'migrated', ('dest',), 'sigterm')
    add('live-migrate', 'preparing', ('conductor',), 'sigterm')
    add('live-migrate', 'running', ('source', 'dest'), 'sigterm')
    add('evacuate', 'rebuilding', ('dest',), 'sigterm')
    # Database and broker outages mid-move.
    for fault in ('db-10', 'db-60'):
        for op, phase in (('boot', 'spawning'), ('migrate', 'migrating'),
                          ('migrate', 'migrated'), ('confirm', 'confirming'),
                          ('revert', 'reverting'), ('live-migrate', 'running'),
                          ('evacuate', 'rebuilding')):
            add(op, phase, ('all',), fault)
    for fault in ('mq-10', 'mq-60'):
        for op, phase in (('boot', 'spawning'), ('migrate', 'migrating'),
                          ('confirm', 'confirming'), ('live-migrate', 'running'),
                          ('evacuate', 'rebuilding')):
            add(op, phase, ('all',), fault)
    # A destination that dies and never comes back.
    for op, phase in (('migrate', 'prep-dest'), ('migrate', 'migrating'),
                      ('migrate', 'migrated'), ('resize', 'migrated'),
                      ('revert', 'reverting'), ('live-migrate', 'preparing'),
                      ('live-migrate', 'running'), ('evacuate', 'rebuilding')):
        add(op, phase, ('dest',), 'dest-dead')
    return tuple(out)


CELLS = _cells()

# The CI subset: one cell per kind of fault and per move, chosen among those that the
# recovery already handles on the branch where the harness landed (`tox -e faults` runs the rest).
FAST = (
    'migrate/migrating/source/sigkill',
    'resize/migrated/conductor/sigkill',
    'boot/spawning/compute/sigkill',
    'confirm/confirming/source/sigkill',
    'live-migrate/running/source/sigkill',
    'migrate/migrating/all/db-10',
    'migrate/migrating/all/mq-10',
    'migrate/migrated/dest/dest-dead',
    'evacuate/rebuilding/dest/sigkill',
)


def select(pattern=None, fast=False):
    """The cells whose name matches the fnmatch ``pattern`` (comma-separated patterns
    are alternatives), in matrix order; ``fast`` keeps only the CI subset."""
    cells = [c for c in CELLS if not fast or c.name in FAST]
    if pattern:
        pats = [p.strip() for p in pattern.split(',') if p.strip()]
        cells = [c for c in cells if any(fnmatch.fnmatchcase(c.name, p) for p in pats)]
    return cells


def cell_by_name(name):
    for c in CELLS:
        if c.name == name:
            return c
    raise KeyError(f'no cell {name!r} in the matrix')


def summary(results):
    counts = {o: sum(r.outcome == o for r in results) for o in OUTCOMES}
    return (f"{len(results)} cells, {counts['ok']} ok, {counts['stuck']} stuck, "
            f"{counts['leaked']} leaked, "
            f"{counts['guest-on-0'] + counts['guest-on-2']} guest-on-0-or-2, "
            f"{counts['follow-up-failed']} follow-up-failed, "
            f"{counts['slow-stop']} slow-stop, {counts['not-caught']} not-caught, "
            f"{counts['harness-error']} harness-error")


def table(results):
    width = max([len(r.cell.name) for r in results] + [4])
    lines = [f"{'cell':<{width}}  {'outcome':<16} {'settle':>7}  detail"]
    for r in results:
        secs = '-' if r.seconds is None else f'{r.seconds:.1f}s'
        lines.append(f'{r.cell.name:<{width}}  {r.outcome:<16} {secs:>7}  {r.detail}')
    return '\n'.join(lines)
