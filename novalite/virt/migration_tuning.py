"""Live-migration tuning shared by every driver's job: the completion timeout, the
settings a migration policy hands the source, and stall detection."""

import datetime


def completion_timeout(conf, instance, block_migration):
    """Seconds a live migration of ``instance`` may run before its timeout action.

    [libvirt]live_migration_completion_timeout is per GiB of data: the guest memory
    plus, for a block migration, each local disk, every part counted as at least 2 GiB.
    0 disables the timeout.
    """
    return completion_timeout_for(conf.libvirt.live_migration_completion_timeout,
                                  instance['flavor'], block_migration)


def completion_timeout_for(per_gib, flavor, block_migration):
    """``per_gib`` seconds for each GiB a live migration of ``flavor`` moves (see
    completion_timeout); 0 when ``per_gib`` is 0."""
    if not per_gib:
        return 0
    gib = max(flavor.get('memory_mb', 0) / 1024.0, 2)
    if block_migration:
        for size in (flavor.get('root_gb') or 0, flavor.get('ephemeral_gb') or 0):
            if size:
                gib += max(size, 2)
    return per_gib * gib


def live_migration_settings(conf, instance, block_migration):
    """The migrate_data keys that tune a live migration, taken from [libvirt] options
    (a migration whose conductor chose no policy)."""
    return {
        'permit_post_copy': conf.libvirt.live_migration_permit_post_copy,
        'permit_auto_converge': conf.libvirt.live_migration_permit_auto_converge,
        'completion_timeout': completion_timeout(conf, instance, block_migration),
        'timeout_action': conf.libvirt.live_migration_timeout_action,
    }


# The migrate_data keys a migration policy sets (the conductor resolves the policy).
POLICY_KEYS = ('policy', 'bandwidth', 'permit_post_copy', 'permit_auto_converge',
               'completion_timeout', 'timeout_action', 'stall_seconds', 'stall_action')

# What a stall of the memory copy triggers (a policy's stall_action).
STALL_POST_COPY = 'post_copy'   # switch to post-copy (pause when post-copy is not permitted)
STALL_PAUSE = 'pause'           # pause the guest so the copy converges
STALL_ABORT = 'abort'           # give up: the guest stays on the source

# Decisions a live-migration job takes on its own, reported with their time
# (LiveMigrationJob.on_decision) and kept in the migration's policy_log.
DECISION_STALL = 'stall_detected'
DECISION_TIMEOUT = 'timeout'
DECISION_POST_COPY = 'switched_to_post_copy'
DECISION_PAUSE = 'guest_paused'
DECISION_ABORT = 'aborted'


def utc_iso() -> str:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None).isoformat() + 'Z'


class StallWatch:
    """Stall detection of a live migration's memory copy: ``memory_remaining`` has not
    dropped below its lowest value for ``seconds``. Disk copy time does not count: the
    watch starts with the first memory sent. ``seconds`` 0 never stalls."""

    def __init__(self, seconds):
        self.seconds = float(seconds or 0)
        self.lowest = None
        self.since = None
        self.fired = False

    def update(self, progress: dict, now: float) -> bool:
        """True once, when the copy has just been stalled for ``seconds``."""
        if not self.seconds or self.fired or not progress.get('memory_processed'):
            return False
        remaining = progress.get('memory_remaining') or 0
        if self.lowest is None or remaining < self.lowest:
            self.lowest, self.since = remaining, now
            return False
        if now - self.since >= self.seconds:
            self.fired = True
            return True
        return False


def stall_action(migrate_data: dict) -> str:
    """What a stall does under ``migrate_data``'s policy: post-copy only when permitted
    (else the guest is paused)."""
    action = migrate_data.get('stall_action') or STALL_POST_COPY
    if action == STALL_POST_COPY and not migrate_data.get('permit_post_copy'):
        return STALL_PAUSE
    return action
