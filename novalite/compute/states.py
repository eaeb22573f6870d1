"""The one home of server and move state: every vm_state, task_state and migration status,
the steps of each move type, the API status they show as, and how each step recovers.

Nothing else spells a status string. The API's allowed-state checks, the conductor's
compare-and-swap step writes (``step()`` below names what each write expects and sets),
the server-status view and the reconcilers all read these tables.
"""

import dataclasses

# ---------------------------------------------------------------- vm_states

ACTIVE = 'active'
BUILDING = 'building'
PAUSED = 'paused'
SUSPENDED = 'suspended'
STOPPED = 'stopped'
RESCUED = 'rescued'
RESIZED = 'resized'
SOFT_DELETED = 'soft-delete'
DELETED = 'deleted'
ERROR = 'error'
SHELVED = 'shelved'
SHELVED_OFFLOADED = 'shelved_offloaded'

VM_STATES = (ACTIVE, BUILDING, PAUSED, SUSPENDED, STOPPED, RESCUED, RESIZED, SOFT_DELETED,
             DELETED, ERROR, SHELVED, SHELVED_OFFLOADED)

# ---------------------------------------------------------------- task_states

SCHEDULING = 'scheduling'
NETWORKING = 'networking'
BLOCK_DEVICE_MAPPING = 'block_device_mapping'
SPAWNING = 'spawning'
REBOOTING = 'rebooting'
REBOOT_PENDING = 'reboot_pending'
REBOOT_STARTED = 'reboot_started'
REBOOTING_HARD = 'rebooting_hard'
REBOOT_PENDING_HARD = 'reboot_pending_hard'
REBOOT_STARTED_HARD = 'reboot_started_hard'
POWERING_OFF = 'powering-off'
POWERING_ON = 'powering-on'
RESIZE_PREP = 'resize_prep'
RESIZE_MIGRATING = 'resize_migrating'
RESIZE_MIGRATED = 'resize_migrated'
RESIZE_FINISH = 'resize_finish'
RESIZE_REVERTING = 'resize_reverting'
RESIZE_CONFIRMING = 'resize_confirming'
MIGRATING = 'migrating'
DELETING = 'deleting'
PAUSING = 'pausing'
UNPAUSING = 'unpausing'
SUSPENDING = 'suspending'
RESUMING = 'resuming'
REBUILDING = 'rebuilding'
REBUILD_BLOCK_DEVICE_MAPPING = 'rebuild_block_device_mapping'
REBUILD_SPAWNING = 'rebuild_spawning'
UPDATING_PASSWORD = 'updating_password'

RESIZE_TASKS = (RESIZE_PREP, RESIZE_MIGRATING, RESIZE_MIGRATED, RESIZE_FINISH)
BUILD_TASKS = (SCHEDULING, NETWORKING, BLOCK_DEVICE_MAPPING, SPAWNING)
SOFT_REBOOT_TASKS = (REBOOTING, REBOOT_PENDING, REBOOT_STARTED)
HARD_REBOOT_TASKS = (REBOOTING_HARD, REBOOT_PENDING_HARD, REBOOT_STARTED_HARD)
REBUILD_TASKS = (REBUILDING, REBUILD_BLOCK_DEVICE_MAPPING, REBUILD_SPAWNING)
POWER_TASKS = (POWERING_OFF, POWERING_ON) + SOFT_REBOOT_TASKS + HARD_REBOOT_TASKS


# ---------------------------------------------------------------- migration statuses

class MigrationStatus:
    """Migration record statuses (Nova's names)."""
    ACCEPTED = 'accepted'
    PRE_MIGRATING = 'pre-migrating'
    MIGRATING = 'migrating'
    POST_MIGRATING = 'post-migrating'
    FINISHED = 'finished'
    CONFIRMING = 'confirming'
    CONFIRMED = 'confirmed'
    REVERTING = 'reverting'
    REVERTED = 'reverted'
    QUEUED = 'queued'
    PREPARING = 'preparing'
    RUNNING = 'running'
    COMPLETED = 'completed'
    CANCELLED = 'cancelled'
    FAILED = 'failed'
    ERROR = 'error'
    DONE = 'done'


MS = MigrationStatus

# Final for the migration record: nothing drives it any more.
MIGRATION_DONE = (MS.CONFIRMED, MS.REVERTED, MS.ERROR, MS.FAILED, MS.COMPLETED, MS.CANCELLED,
                  MS.DONE)
# Everything else: a move some step still drives.
MIGRATION_UNFINISHED = tuple(v for k, v in vars(MigrationStatus).items()
                             if not k.startswith('_') and v not in MIGRATION_DONE)
# A live migration the source is working on (queued on its executor or running), or
# one a conductor holds until a slot frees (queued too, see waiting_for_slot).
LIVE_MIGRATION_IN_PROGRESS = (MS.QUEUED, MS.PREPARING, MS.RUNNING, MS.POST_MIGRATING)
# A cold move (resize or cold migration) on its way to VERIFY_RESIZE: its disk copy's
# progress is in the record.
COLD_MOVE_IN_PROGRESS = (MS.ACCEPTED, MS.PRE_MIGRATING, MS.MIGRATING, MS.POST_MIGRATING)
# Statuses a client may abort or force-complete a live migration from (microversion 2.65
# adds the queued and preparing ones to abort).
LIVE_MIGRATION_FORCEABLE = (MS.RUNNING,)
LIVE_MIGRATION_ABORTABLE = (MS.RUNNING,)
LIVE_MIGRATION_ABORTABLE_IN_QUEUE = (MS.RUNNING, MS.QUEUED, MS.PREPARING)
# Live migrations that hold (or are about to hold) a slot under the policies' limits
# once a conductor handed them to their source (instances.task_driver is None).
LIVE_MIGRATION_SLOT_HOLDING = (MS.ACCEPTED, MS.QUEUED, MS.PREPARING, MS.RUNNING,
                               MS.POST_MIGRATING)

# Migration types (the ``migration_type`` column).
RESIZE = 'resize'
COLD_MIGRATION = 'migration'
LIVE_MIGRATION = 'live-migration'
EVACUATION = 'evacuation'
COLD_MOVES = (RESIZE, COLD_MIGRATION)

# ---------------------------------------------------------------- owners and recovery

CONDUCTOR = 'conductor'
SOURCE = 'source'
DEST = 'dest'
OWNERS = (CONDUCTOR, SOURCE, DEST)

RESEND = 'resend'        # the owner never started it (or can run it again): send it again
FINISH = 'finish'        # the work is done or half done in a way that can only go forward
ROLLBACK = 'rollback'    # nothing irreversible happened yet: undo and put the server back
RECOVERIES = (RESEND, FINISH, ROLLBACK)

@dataclasses.dataclass(frozen=True)
class Step:
    """One recorded transition of a move.

    ``task_before``/``status_before`` are what the compare-and-swap expects (``None`` in
    ``status_before`` means "no migration record yet"); ``task_after``/``status_after``
    what it writes. ``vm_after`` is the vm_state written, when the step sets one (a
    callable choice such as "previous state" is resolved by the caller and checked to be
    in ``vm_choices``). ``recovery`` says what a reconciler does with a move recorded as
    having reached ``status_after``/``task_after`` of the step before and not this one.
    """
    name: str
    owner: str
    task_before: tuple
    task_after: str | None
    status_before: tuple
    status_after: str | None
    recovery: str
    vm_choices: tuple = ()
    allocations: str | None = None   # a named allocation change, see ALLOCATION_CHANGES
    status_choices: tuple = ()       # other final statuses the caller may pick instead
    vm_before: tuple = ()            # vm_states the instance must be in (empty: any)
    # A step that tidies up after the move ended: it checks and writes the migration
    # only, never the instance's task (the instance has moved on and may be busy).
    migration_only: bool = False
    # Hypervisor work follows the write (the owner opens its part with it): a second
    # request for the step is refused. Other steps record work already done, so a
    # repeated request (a lost reply, a re-sent call) answers with the recorded result.
    opens: bool = False

    @property
    def final(self) -> bool:
        return self.task_after is None and (self.status_after is None or
                                            self.status_after in MIGRATION_DONE or
                                            self.status_after == MS.FINISHED)


@dataclasses.dataclass(frozen=True)
class MoveType:
    name: str
    migration_types: tuple
    start_vm_states: tuple
    steps: tuple
    failures: tuple = ()
    recoveries: tuple = ()   # forward steps only a reconciler takes (a host is gone)
    cleanups: tuple = ()     # migration_only steps after the move's final step

    def step(self, name: str) -> Step:
        for s in self.steps + self.failures + self.recoveries + self.cleanups:
            if s.name == name:
                return s
        raise KeyError(f'{self.name} has no step {name}')


# What a step may do to allocations, applied in its transaction:
ALLOCATION_CHANGES = {
    # the instance's (source) allocation becomes the migration's
    'source_to_migration': 'move the instance allocation to the migration',
    # the migration's (source) allocation goes back to the instance, replacing any
    # destination claim the instance holds
    'migration_to_instance': 'give the source allocation back to the instance',
    # the migration's (source) allocation is dropped: the move is kept
    'drop_migration': "drop the migration's source allocation",
    # the instance's destination claim is dropped (revert; the source is restored after)
    'drop_instance_claim': "drop the instance's destination claim",
    # every allocation of the instance is dropped (a build that never got a host)
    'drop_instance': "drop the instance's allocations",
}

_COLD_STEPS = (
    Step('resize_requested', CONDUCTOR, (None,), RESIZE_PREP, (None,), None, ROLLBACK,
         vm_before=(ACTIVE, STOPPED)),
    Step('cold_move_started', CONDUCTOR, (RESIZE_PREP,), RESIZE_PREP, (None,),
         MS.PRE_MIGRATING, ROLLBACK, allocations='source_to_migration'),
    Step('select_destination', CONDUCTOR, (RESIZE_PREP,), RESIZE_PREP, (MS.PRE_MIGRATING,),
         MS.PRE_MIGRATING, ROLLBACK),
    Step('prep_resize', DEST, (RESIZE_PREP,), RESIZE_PREP, (MS.PRE_MIGRATING,),
         MS.PRE_MIGRATING, ROLLBACK),
    Step('resize_instance', SOURCE, (RESIZE_PREP,), RESIZE_MIGRATING, (MS.PRE_MIGRATING,),
         MS.MIGRATING, ROLLBACK, opens=True),
    Step('disks_moved', SOURCE, (RESIZE_MIGRATING,), RESIZE_MIGRATED, (MS.MIGRATING,),
         MS.POST_MIGRATING, FINISH),
    Step('finish_resize', DEST, (RESIZE_MIGRATED, RESIZE_FINISH), None,
         (MS.POST_MIGRATING,), MS.FINISHED, FINISH, vm_choices=(RESIZED,)),
    Step('confirm_requested', CONDUCTOR, (None,), None, (MS.FINISHED,), MS.CONFIRMING, FINISH,
         vm_before=(RESIZED,)),
    Step('confirm_resize', SOURCE, (None,), None, (MS.CONFIRMING, MS.FINISHED),
         MS.CONFIRMED, FINISH, vm_choices=(ACTIVE, STOPPED), allocations='drop_migration'),
    Step('revert_requested', CONDUCTOR, (None,), RESIZE_REVERTING, (MS.FINISHED,),
         MS.REVERTING, FINISH, vm_before=(RESIZED,)),
    Step('revert_resize', DEST, (RESIZE_REVERTING,), RESIZE_REVERTING, (MS.REVERTING,),
         MS.REVERTED, FINISH, allocations='drop_instance_claim'),
    Step('finish_revert_resize', SOURCE, (RESIZE_REVERTING,), None, (MS.REVERTED,),
         MS.REVERTED, FINISH, vm_choices=(ACTIVE, STOPPED),
         allocations='migration_to_instance'),
)

# Steps only a reconciler takes, when a host owing the next step is gone.
_COLD_RECOVERIES = (
    # The destination has been down longer than service_down_time while it owed the
    # finish or the revert: a conductor hands the move back to the source, which still
    # holds the guest's backup and restarts it (finish_revert_resize).
    Step('dest_lost', CONDUCTOR, (RESIZE_MIGRATED, RESIZE_FINISH, RESIZE_REVERTING),
         RESIZE_REVERTING, (MS.POST_MIGRATING, MS.REVERTING), MS.REVERTED, FINISH,
         allocations='drop_instance_claim'),
)

_COLD_FAILURES = (
    # Nothing moved yet (scheduling, prep, or the source failed before the hand-over):
    # the server stays on its source in its previous state with a fault.
    Step('move_failed', CONDUCTOR, (RESIZE_PREP, RESIZE_MIGRATING), None,
         (None, MS.PRE_MIGRATING, MS.MIGRATING), MS.ERROR, ROLLBACK,
         vm_choices=(ACTIVE, STOPPED, ERROR), allocations='migration_to_instance'),
    # The guest is on neither side in a known state (finish failed on the destination).
    Step('finish_failed', DEST, (RESIZE_MIGRATED, RESIZE_FINISH), None,
         (MS.POST_MIGRATING,), MS.ERROR, FINISH, vm_choices=(ERROR,)),
    Step('revert_failed', DEST, (RESIZE_REVERTING,), None, (MS.REVERTING, MS.REVERTED),
         MS.ERROR, FINISH, vm_choices=(ERROR,)),
    Step('confirm_failed', SOURCE, (None,), None, (MS.CONFIRMING,), MS.ERROR, FINISH,
         vm_choices=(ERROR,)),
    # The source has been down longer than service_down_time while it owed the end of a
    # revert: the server is recorded on its source (where its only copy is) in error.
    Step('revert_source_lost', CONDUCTOR, (RESIZE_REVERTING,), None, (MS.REVERTED,),
         MS.ERROR, FINISH, vm_choices=(ERROR,), allocations='migration_to_instance'),
)

RESIZE_MOVE = MoveType('resize', COLD_MOVES, (ACTIVE, STOPPED), _COLD_STEPS, _COLD_FAILURES,
                       _COLD_RECOVERIES)

_LIVE_STEPS = (
    Step('live_migration_requested', CONDUCTOR, (None,), MIGRATING, (None,), MS.ACCEPTED,
         ROLLBACK, allocations='source_to_migration', vm_before=(ACTIVE, PAUSED)),
    # The destination is chosen and checked but the policy's limits (outbound, inbound,
    # cluster-wide) have no free slot: the conductor holds the move, still driving it
    # (instances.task_driver), until one frees.
    Step('live_migration_waiting', CONDUCTOR, (MIGRATING,), MIGRATING, (MS.ACCEPTED,),
         MS.QUEUED, ROLLBACK),
    Step('live_destination_chosen', CONDUCTOR, (MIGRATING,), MIGRATING,
         (MS.ACCEPTED, MS.QUEUED), MS.ACCEPTED, ROLLBACK),
    Step('live_migration_queued', SOURCE, (MIGRATING,), MIGRATING, (MS.ACCEPTED,),
         MS.QUEUED, ROLLBACK, opens=True),
    # A job the source starts at once (a free slot) goes from accepted to preparing.
    Step('live_migration_preparing', SOURCE, (MIGRATING,), MIGRATING,
         (MS.ACCEPTED, MS.QUEUED), MS.PREPARING, ROLLBACK, opens=True),
    Step('live_migration_running', SOURCE, (MIGRATING,), MIGRATING, (MS.PREPARING,),
         MS.RUNNING, ROLLBACK, opens=True),
    # The guest runs on the destination: only forward from here.
    Step('post_live_migration_at_destination', DEST, (MIGRATING,), MIGRATING,
         (MS.RUNNING, MS.POST_MIGRATING), MS.POST_MIGRATING, FINISH),
    Step('live_migration_completed', SOURCE, (MIGRATING,), None,
         (MS.POST_MIGRATING, MS.RUNNING), MS.COMPLETED, FINISH, allocations='drop_migration'),
)

_LIVE_FAILURES = (
    Step('live_migration_rolled_back', SOURCE, (MIGRATING,), None,
         (MS.ACCEPTED, MS.QUEUED, MS.PREPARING, MS.RUNNING), MS.ERROR, ROLLBACK,
         vm_choices=(ACTIVE, PAUSED, ERROR), allocations='migration_to_instance',
         status_choices=(MS.CANCELLED, MS.FAILED)),
    Step('live_migration_failed', CONDUCTOR, (MIGRATING,), None, (MS.ACCEPTED, MS.QUEUED),
         MS.ERROR, ROLLBACK, vm_choices=(ACTIVE, PAUSED, ERROR),
         allocations='migration_to_instance', status_choices=(MS.FAILED, MS.CANCELLED)),
    # The copy finished, so the guest runs on the destination whatever failed after it:
    # the instance is recorded there (in ERROR) and the source's claim is released.
    Step('live_post_failed', SOURCE, (MIGRATING,), None, (MS.RUNNING, MS.POST_MIGRATING),
         MS.ERROR, FINISH, vm_choices=(ERROR,), allocations='drop_migration'),
)

LIVE_MOVE = MoveType('live-migration', (LIVE_MIGRATION,), (ACTIVE, PAUSED), _LIVE_STEPS,
                     _LIVE_FAILURES)

# Evacuation: the source host is dead; the destination rebuilds the guest from its image.
# The source allocation stays with the migration until the source is back and has
# destroyed what is left of the guest there (``evacuation_cleaned``), as Nova keeps it.
_EVACUATE_STEPS = (
    Step('evacuation_requested', CONDUCTOR, (None,), REBUILDING, (None,), MS.ACCEPTED,
         ROLLBACK, allocations='source_to_migration', vm_before=(ACTIVE, STOPPED, ERROR)),
    Step('evacuation_destination_chosen', CONDUCTOR, (REBUILDING,), REBUILDING,
         (MS.ACCEPTED,), MS.ACCEPTED, ROLLBACK),
    # The destination places the instance on itself and starts the rebuild.
    Step('evacuation_rebuilding', DEST, (REBUILDING,), REBUILD_SPAWNING, (MS.ACCEPTED,),
         MS.PRE_MIGRATING, ROLLBACK, opens=True),
    Step('evacuation_done', DEST, (REBUILD_SPAWNING,), None, (MS.PRE_MIGRATING,), MS.DONE,
         FINISH, vm_choices=(ACTIVE, STOPPED)),
)

_EVACUATE_FAILURES = (
    # No destination (scheduling failed, the named host refused): the server stays on its
    # dead source, in ERROR (as Nova leaves it) with a fault; it can be evacuated again.
    Step('evacuation_failed', CONDUCTOR, (REBUILDING,), None, (MS.ACCEPTED,), MS.ERROR,
         ROLLBACK, vm_choices=(ERROR,), allocations='migration_to_instance'),
    # The rebuild failed on the destination (which removed what it had made): the server
    # is recorded back on its source in ERROR, holding its source allocation again; it
    # can be evacuated again.
    Step('evacuation_rebuild_failed', DEST, (REBUILD_SPAWNING,), None, (MS.PRE_MIGRATING,),
         MS.FAILED, ROLLBACK, vm_choices=(ERROR,), allocations='migration_to_instance'),
)

_EVACUATE_CLEANUPS = (
    # The source is back: it destroyed the guest it still held and releases its claim.
    Step('evacuation_cleaned', SOURCE, (None,), None, (MS.DONE,), MS.COMPLETED, FINISH,
         allocations='drop_migration', migration_only=True),
)

EVACUATE_MOVE = MoveType('evacuation', (EVACUATION,), (ACTIVE, STOPPED, ERROR),
                         _EVACUATE_STEPS, _EVACUATE_FAILURES, cleanups=_EVACUATE_CLEANUPS)

MOVES = (RESIZE_MOVE, LIVE_MOVE, EVACUATE_MOVE)


def source_owes_cleanup(migration: dict) -> bool:
    """An evacuation that ended on its destination while its source still holds the
    old guest and its allocation: the source finishes it when it is back."""
    return migration.get('migration_type') == EVACUATION and migration.get('status') == MS.DONE

# Steps of a server's own operations (no migration record): the compute host the
# instance is on owns them.
HOST = 'host'
_SETTLED = (ACTIVE, STOPPED, PAUSED, SUSPENDED, ERROR)
INSTANCE_STEPS = (
    # The chosen host's build starts with the conductor's write: the compute spawns on
    # the build request alone and records the result (a build request for an instance
    # that is not, or no longer, this host's ends in the compute destroying its guest).
    Step('host_selected', CONDUCTOR, (SCHEDULING,), SPAWNING, (None,), None, RESEND),
    Step('scheduling_failed', CONDUCTOR, (SCHEDULING,), None, (None,), None, FINISH,
         vm_choices=(ERROR,), allocations='drop_instance'),
    Step('spawned', HOST, (SPAWNING,), None, (None,), None, FINISH, vm_choices=(ACTIVE,)),
    Step('spawn_failed', HOST, (SPAWNING,), None, (None,), None, FINISH,
         vm_choices=(ERROR,)),
    Step('build_rescheduled', HOST, (SCHEDULING, SPAWNING), SCHEDULING, (None,), None, RESEND),
    Step('build_interrupted', HOST, BUILD_TASKS, None, (None,), None, FINISH,
         vm_choices=(ACTIVE, ERROR)),
    Step('power_action_done', HOST, POWER_TASKS, None, (None,), None, FINISH,
         vm_choices=_SETTLED),
    Step('delete_failed', HOST, (DELETING, None), None, (None,), None, FINISH,
         vm_choices=(ERROR,)),
)

# Operations the API accepts and the states they may start from (vm_state, task_state).
API_ALLOWED = {
    'resize': {'vm_state': RESIZE_MOVE.start_vm_states, 'task_state': (None,)},
    'migrate': {'vm_state': RESIZE_MOVE.start_vm_states, 'task_state': (None,)},
    'confirm_resize': {'vm_state': (RESIZED,), 'task_state': (None,)},
    'revert_resize': {'vm_state': (RESIZED,), 'task_state': (None,)},
    'live_migrate': {'vm_state': LIVE_MOVE.start_vm_states, 'task_state': (None,)},
    'live_migrate_force_complete': {'vm_state': LIVE_MOVE.start_vm_states,
                                    'task_state': (MIGRATING,)},
    'live_migrate_abort': {'vm_state': LIVE_MOVE.start_vm_states,
                           'task_state': (MIGRATING,)},
    'evacuate': {'vm_state': EVACUATE_MOVE.start_vm_states, 'task_state': (None,)},
}


ALL_STEPS = tuple(s for move in MOVES
                  for s in move.steps + move.failures + move.recoveries + move.cleanups) \
    + INSTANCE_STEPS


def move_for(migration_type: str) -> MoveType:
    for move in MOVES:
        if migration_type in move.migration_types:
            return move
    raise KeyError(migration_type)


def step(name: str) -> Step:
    """The step of any move type by name (names are unique across the tables)."""
    for s in ALL_STEPS:
        if s.name == name:
            return s
    raise KeyError(name)


def recorded_step(migration: dict, task_state: str | None) -> Step | None:
    """The step a move last completed, from its recorded status and the task_state; None
    for a finished move."""
    move = move_for(migration['migration_type'])
    status = migration['status']
    if status in MIGRATION_DONE and task_state is None:
        return None
    for s in reversed(move.steps):
        if s.status_after == status and (s.task_after == task_state):
            return s
    return None


def next_steps(migration: dict, task_state: str | None) -> list[Step]:
    """The forward steps a move may take from its recorded status and task_state."""
    move = move_for(migration['migration_type'])
    return [s for s in move.steps if migration['status'] in s.status_before
            and task_state in s.task_before]


def pending_step(migration: dict | None, instance: dict) -> Step | None:
    """The step an unfinished move waits for, from what is recorded: the migration's
    status, the instance's task_state, whether a destination is chosen and whether the
    destination prepared (``new_flavor`` set). None when the move waits for nobody (a
    finished resize waiting for the user) or is over.

    A move with no migration record yet is a cold move the API accepted and no conductor
    recorded (``cold_move_started``).
    """
    task = instance['task_state']
    if migration is None:
        return RESIZE_MOVE.step('cold_move_started') if task == RESIZE_PREP else None
    move = move_for(migration['migration_type'])
    if migration['status'] == MS.FINISHED and task is None:
        return None  # a resize waiting for the user's confirm or revert
    steps = [s for s in next_steps(migration, task) if not s.name.endswith('_requested')]
    if not steps:
        return None
    if migration['status'] in (MS.PRE_MIGRATING, MS.ACCEPTED):
        # The same recorded status before and after choosing and preparing a destination.
        if not migration.get('dest_compute'):
            want = CONDUCTOR
        elif move is EVACUATE_MOVE or (move is RESIZE_MOVE and not instance.get('new_flavor')):
            want = DEST
        else:
            want = SOURCE
        steps = [s for s in steps if s.owner == want]
    elif move is LIVE_MOVE and waiting_for_slot(migration, instance):
        steps = [s for s in steps if s.owner == CONDUCTOR]
    elif move is LIVE_MOVE:
        # The source runs the job and drives the destination's part.
        steps = [s for s in steps if s.owner == SOURCE] or steps
    return steps[0] if steps else None


def waiting_for_slot(migration: dict, instance: dict) -> bool:
    """A live migration a conductor holds until its policy's limits let it start: queued
    while a conductor still drives it (once handed to its source the driver is None)."""
    return migration.get('migration_type') == LIVE_MIGRATION and \
        migration.get('status') == MS.QUEUED and bool(instance.get('task_driver'))


def owner_host(step_: Step, migration: dict | None, instance: dict) -> str | None:
    """The compute host that owes ``step_`` (None for a conductor's step)."""
    if step_.owner == SOURCE:
        return migration['source_compute']
    if step_.owner == DEST:
        return migration['dest_compute']
    if step_.owner == HOST:
        return instance['host']
    return None


# ---------------------------------------------------------------- API status

_STATUS = {
    ACTIVE: 'ACTIVE', BUILDING: 'BUILD', STOPPED: 'SHUTOFF', RESIZED: 'VERIFY_RESIZE',
    PAUSED: 'PAUSED', SUSPENDED: 'SUSPENDED', RESCUED: 'RESCUE', ERROR: 'ERROR',
    DELETED: 'DELETED', SOFT_DELETED: 'SOFT_DELETED', SHELVED: 'SHELVED',
    SHELVED_OFFLOADED: 'SHELVED_OFFLOADED',
}

_TASK_STATUS = {
    ACTIVE: {
        **dict.fromkeys(SOFT_REBOOT_TASKS, 'REBOOT'),
        **dict.fromkeys(HARD_REBOOT_TASKS, 'HARD_REBOOT'),
        UPDATING_PASSWORD: 'PASSWORD',
        **dict.fromkeys(REBUILD_TASKS, 'REBUILD'),
        MIGRATING: 'MIGRATING',
        **dict.fromkeys(RESIZE_TASKS, 'RESIZE'),
    },
    STOPPED: {**dict.fromkeys(RESIZE_TASKS, 'RESIZE'), **dict.fromkeys(REBUILD_TASKS,
                                                                        'REBUILD')},
    RESIZED: {RESIZE_REVERTING: 'REVERT_RESIZE'},
    PAUSED: {MIGRATING: 'MIGRATING'},
    ERROR: dict.fromkeys(REBUILD_TASKS, 'REBUILD'),
}

ALL_STATUSES = (set(_STATUS.values()) | {s for m in _TASK_STATUS.values() for s in m.values()}
                | {'UNKNOWN'})


def status_from_state(vm_state: str | None, task_state: str | None = None) -> str:
    """The API ``status`` of a server from its vm_state and task_state."""
    if vm_state is None:
        return 'UNKNOWN'
    override = _TASK_STATUS.get(vm_state, {}).get(task_state)
    if override:
        return override
    return _STATUS.get(vm_state, 'UNKNOWN')


def states_from_status(status: str) -> dict[str, list] | None:
    """Reverse mapping for the ``status`` list filter: vm_states and task_states."""
    status = status.upper()
    vm_states = [vm for vm, st in _STATUS.items() if st == status]
    tasks = {}
    for vm, mapping in _TASK_STATUS.items():
        for task, st in mapping.items():
            if st == status:
                tasks.setdefault(vm, []).append(task)
    if not vm_states and not tasks:
        return None
    return {'vm_state': vm_states, 'task_overrides': tasks}


# ---------------------------------------------------------------- host drains

class DrainStatus:
    """A host drain's status: running until every server is off the host or has failed
    its attempts (``completed``, ``failed``); an operator's cancel makes it
    ``cancelling`` until the moves under way have ended, then ``cancelled``."""
    RUNNING = 'running'
    CANCELLING = 'cancelling'
    COMPLETED = 'completed'
    FAILED = 'failed'
    CANCELLED = 'cancelled'


DRAIN_ACTIVE = (DrainStatus.RUNNING, DrainStatus.CANCELLING)
DRAIN_DONE = (DrainStatus.COMPLETED, DrainStatus.FAILED, DrainStatus.CANCELLED)


class DrainServerState:
    """Where one server of a drain stands."""
    PENDING = 'pending'      # waiting for a slot (or for its own task to end)
    MOVING = 'moving'        # a move the drain started is under way
    MOVED = 'moved'          # off the host
    FAILED = 'failed'        # could not be moved; ``reason`` says why
    GONE = 'gone'            # deleted while the drain ran
    CANCELLED = 'cancelled'  # the drain was cancelled before it moved


DRAIN_SERVER_STATES = (DrainServerState.PENDING, DrainServerState.MOVING,
                       DrainServerState.MOVED, DrainServerState.FAILED, DrainServerState.GONE,
                       DrainServerState.CANCELLED)
DRAIN_SERVER_OPEN = (DrainServerState.PENDING, DrainServerState.MOVING)
DRAIN_MODES = ('live', 'cold', 'auto')
