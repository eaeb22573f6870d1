"""vm_state, task_state and migration status values, and the API status they map to."""

# vm_states
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

# task_states
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

RESIZE_TASKS = (RESIZE_PREP, RESIZE_MIGRATING, RESIZE_MIGRATED, RESIZE_FINISH)
BUILD_TASKS = (SCHEDULING, NETWORKING, BLOCK_DEVICE_MAPPING, SPAWNING)
SOFT_REBOOT_TASKS = (REBOOTING, REBOOT_PENDING, REBOOT_STARTED)
HARD_REBOOT_TASKS = (REBOOTING_HARD, REBOOT_PENDING_HARD, REBOOT_STARTED_HARD)

# Migration statuses: in progress from the point of view of resource tracking.
MIGRATION_DONE = ('confirmed', 'reverted', 'error', 'failed', 'completed', 'cancelled', 'done')
LIVE_MIGRATION_IN_PROGRESS = ('queued', 'preparing', 'running', 'post-migrating')

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
        'updating_password': 'PASSWORD',
        REBUILDING: 'REBUILD', 'rebuild_block_device_mapping': 'REBUILD',
        'rebuild_spawning': 'REBUILD',
        MIGRATING: 'MIGRATING',
        **dict.fromkeys(RESIZE_TASKS, 'RESIZE'),
    },
    STOPPED: {**dict.fromkeys(RESIZE_TASKS, 'RESIZE'), REBUILDING: 'REBUILD',
              'rebuild_block_device_mapping': 'REBUILD', 'rebuild_spawning': 'REBUILD'},
    RESIZED: {RESIZE_REVERTING: 'REVERT_RESIZE'},
    PAUSED: {MIGRATING: 'MIGRATING'},
    ERROR: {REBUILDING: 'REBUILD', 'rebuild_block_device_mapping': 'REBUILD',
            'rebuild_spawning': 'REBUILD'},
}


def status_from_state(vm_state: str | None, task_state: str | None = None) -> str:
    """The API ``status`` of a server from its vm_state and task_state."""
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
