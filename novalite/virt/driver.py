"""The interface every virt driver implements, its errors, and the choice of driver."""

import abc
import importlib
import json
import logging
import threading

from novalite.virt.migration_tuning import (  # noqa: F401 - part of the interface
    DECISION_ABORT,
    DECISION_PAUSE,
    DECISION_POST_COPY,
    DECISION_STALL,
    DECISION_TIMEOUT,
    POLICY_KEYS,
    STALL_ABORT,
    STALL_PAUSE,
    STALL_POST_COPY,
    StallWatch,
    completion_timeout,
    completion_timeout_for,
    live_migration_settings,
    stall_action,
    utc_iso,
)

LOG = logging.getLogger(__name__)

# Results of LiveMigrationJob.run().
JOB_COMPLETED = 'completed'
JOB_CANCELLED = 'cancelled'
JOB_FAILED = 'failed'

GiB = 1024 ** 3
MiB = 1024 ** 2

# What a hypervisor may hold for one instance uuid (list_guest_uuids, remove_orphans).
GUEST = 'guest'                  # a defined guest, running or not
RESIZE_BACKUP = 'resize_backup'  # the source copy a cold move keeps for a revert
INCOMING = 'incoming'            # a guest prepared for a move to this host
GUEST_KINDS = (GUEST, RESIZE_BACKUP, INCOMING)


def _kinds(uuid, kinds) -> frozenset:
    kinds = frozenset([kinds] if isinstance(kinds, str) else kinds)
    unknown = kinds - set(GUEST_KINDS)
    if unknown:
        raise ValueError('Unknown kind(s) %s for %s; expected some of %s'
                         % (', '.join(sorted(unknown)), uuid, ', '.join(GUEST_KINDS)))
    return kinds


def held_kinds(held) -> dict:
    """``keep``/``among`` of remove_orphans as uuid -> frozenset of kinds: a mapping is
    taken kind by kind, a plain collection of uuids means every kind of each."""
    if held is None:
        return None
    if isinstance(held, str):
        raise ValueError('Expected a set of instance uuids or a mapping uuid -> kinds, '
                         'not the string %r' % held)
    if hasattr(held, 'items'):
        return {str(u): _kinds(u, k) for u, k in held.items()}
    return {str(u): frozenset(GUEST_KINDS) for u in held}


def orphans(held, keep, among=None) -> dict:
    """What of ``held`` (uuid -> kinds) neither ``keep`` names nor lies outside
    ``among``: uuid -> the kinds to remove."""
    if keep is None:
        raise ValueError('keep is required: the uuids (or uuid -> kinds) this host owns')
    keep = held_kinds(keep)
    among = held_kinds(among)
    out = {}
    for uuid, kinds in held.items():
        drop = set(kinds) - keep.get(uuid, frozenset())
        if among is not None:
            drop &= among.get(uuid, frozenset())
        if drop:
            out[uuid] = frozenset(drop)
    return out


class VirtDriverError(Exception):
    """A hypervisor operation failed; the message is safe to show to an operator."""


class DriverNotAvailable(VirtDriverError):
    """The configured virt driver cannot be loaded on this host."""


class InstanceNotFoundOnHost(VirtDriverError):
    """The hypervisor of this host has no guest for the instance."""

    def __init__(self, instance_uuid, host=None):
        self.instance_uuid = instance_uuid
        self.host = host
        where = ' on host %s' % host if host else ''
        super().__init__('Instance %s could not be found%s.' % (instance_uuid, where))


class InstanceExistsOnHost(VirtDriverError):
    """spawn() was asked to create a guest that already exists."""


class ResizeError(VirtDriverError):
    """A cold move cannot be done with the requested flavor (e.g. disk shrink)."""


class InvalidCPUInfo(VirtDriverError):
    """The CPU of the source host is not compatible with this host."""


class MigrationPreCheckError(VirtDriverError):
    """A live-migration pre-check failed (storage, disk space, ...)."""


def check_flavor_disks_can_move(old_flavor, new_flavor):
    """Raise ResizeError when the new flavor would shrink a local disk."""
    if (new_flavor.get('root_gb') or 0) < (old_flavor.get('root_gb') or 0):
        raise ResizeError('Unable to resize disk down.')
    if (new_flavor.get('ephemeral_gb') or 0) < (old_flavor.get('ephemeral_gb') or 0):
        raise ResizeError('Unable to resize disk down.')


def parse_cpu_info(cpu_info) -> dict:
    """The source host's CPU description (a dict or its JSON) with at least ``arch``."""
    info = cpu_info
    if isinstance(info, str):
        try:
            info = json.loads(info)
        except ValueError:
            raise InvalidCPUInfo('Unreadable CPU info: %r' % (cpu_info,))
    if not isinstance(info, dict) or not info.get('arch'):
        raise InvalidCPUInfo('CPU info without an architecture: %r' % (info,))
    return info


def decide_block_migration(requested, shared: bool) -> bool:
    """Whether a live migration copies the disks: 'auto'/None picks by shared storage;
    an explicit choice that contradicts the storage is a pre-check error."""
    if requested is None or requested == 'auto':
        return not shared
    if not requested and not shared:
        raise MigrationPreCheckError(
            'Live migration can not be used without shared storage except a booted '
            'from volume VM which does not have a local disk.')
    if requested and shared:
        raise MigrationPreCheckError('Block migration can not be used with shared storage.')
    return bool(requested)


def empty_progress():
    return dict(memory_total=0, memory_processed=0, memory_remaining=0,
                disk_total=0, disk_processed=0, disk_remaining=0)


class LiveMigrationJob(metaclass=abc.ABCMeta):
    """One live migration of one guest, run synchronously by the thread that owns it.

    run() blocks until the migration ends and returns JOB_COMPLETED, JOB_CANCELLED or
    JOB_FAILED; abort() and force_complete() may be called from any other thread while
    it runs (or before it starts). ``progress`` holds the latest progress dict and
    ``error`` the reason of a failure. An exception escaping run() means the driver
    itself broke, not the migration job; ``status`` is then JOB_FAILED too.
    """

    FINISHED = (JOB_COMPLETED, JOB_CANCELLED, JOB_FAILED)

    def __init__(self, instance_uuid, dest):
        self.instance_uuid = instance_uuid
        self.dest = dest
        self.status = 'new'
        self.error = None
        self.progress = empty_progress()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._abort_requested = False
        self._force_requested = False
        # Why completion was forced, and whether by pausing even with post-copy
        # permitted (a policy's stall action "pause").
        self._force_reason = 'force-complete requested'
        self._force_pause = False
        self._migrate_data = {}
        self._stall = None
        # on_decision(entry) is called with each decision the job takes on its own
        # ({'at', 'decision', 'detail'}); ``decisions`` keeps them all.
        self.on_decision = None
        self.decisions = []

    def run(self, progress_callback=None):
        with self._lock:
            if self.status != 'new':
                raise RuntimeError('live migration job already ran')
            if self._abort_requested:
                self.status = JOB_CANCELLED
                return self.status
            self.status = 'running'
        try:
            result = self._run(progress_callback)
        except VirtDriverError as exc:
            self.error = str(exc)
            result = JOB_FAILED
        except BaseException:
            self.status = JOB_FAILED
            raise
        with self._lock:
            self.status = result
        return result

    def abort(self):
        """Ask the job to stop and roll back; False when it can no longer be aborted."""
        with self._lock:
            if self.status in self.FINISHED or not self._abortable():
                return False
            self._abort_requested = True
        self._wake.set()
        return True

    def force_complete(self):
        """Ask the job to finish now (post-copy or pause); False when it already ended."""
        with self._lock:
            if self.status in self.FINISHED:
                return False
            self._force_requested = True
        self._wake.set()
        return True

    def _abortable(self):
        return True

    def _report(self, progress_callback, **progress):
        self.progress = dict(progress)
        if progress_callback is None:
            return
        try:
            progress_callback(dict(progress))
        except Exception:
            # A broken progress consumer must not break the guest's migration.
            LOG.exception('Live migration progress callback failed for %s',
                          self.instance_uuid)

    def _decide(self, decision, detail):
        entry = {'at': utc_iso(), 'decision': decision, 'detail': detail}
        self.decisions.append(entry)
        LOG.info('Live migration of %s: %s (%s)', self.instance_uuid, decision, detail)
        if self.on_decision is None:
            return
        try:
            self.on_decision(dict(entry))
        except Exception:
            LOG.exception('Live migration decision callback failed for %s',
                          self.instance_uuid)

    def _policy_stalled(self, now, progress=None):
        """Stall detection on ``progress`` (default: the latest reported), called by
        the monitor after each read. A stall takes the policy's action: it asks for
        post-copy, a pause or an abort, which the monitor then carries out."""
        data = self._migrate_data
        if self._stall is None:
            self._stall = StallWatch(data.get('stall_seconds'))
        if not self._stall.update(progress or self.progress, now):
            return
        action = stall_action(data)
        reason = 'no memory copy progress for %ss' % data.get('stall_seconds')
        self._decide(DECISION_STALL, '%s; action: %s' % (reason, action))
        with self._lock:
            if self.status in self.FINISHED:
                return
            if action == STALL_ABORT:
                if not self._abortable():
                    return
                self._abort_requested = True
                self.error = 'Live migration aborted by its policy: %s' % reason
                aborted = True
            else:
                aborted = False
                self._force_requested = True
                self._force_pause = action == STALL_PAUSE
                self._force_reason = 'stall: ' + reason
        if aborted:
            self._decide(DECISION_ABORT, 'stall: ' + reason)
        self._wake.set()

    def _policy_timeout(self, timeout, action):
        """The completion timeout passed: abort, or force completion."""
        self._decide(DECISION_TIMEOUT, 'exceeded %ss; action: %s' % (round(timeout, 1),
                                                                     action))
        with self._lock:
            if action == 'force_complete':
                self._force_requested = True
                self._force_reason = 'completion timeout of %ss' % round(timeout, 1)
                return
            if not self._abortable():
                return
            self._abort_requested = True
        self._decide(DECISION_ABORT, 'completion timeout of %ss' % round(timeout, 1))

    @abc.abstractmethod
    def _run(self, progress_callback):
        """Migrate; return one of the JOB_* results or raise VirtDriverError."""


class ComputeDriver(metaclass=abc.ABCMeta):
    """A hypervisor seen by one compute host.

    Instances are plain dicts from the database (uuid, display_name, flavor, image_ref,
    vm_state, task_state, power_state, host, node, system_metadata); flavors and images
    are plain dicts too. Methods raise VirtDriverError subclasses for expected failures.
    Unless documented otherwise, a method is safe to repeat after a crash.
    """

    capabilities = {
        'supports_same_host_migration': False,
        'supports_live_migration': True,
        'supports_post_copy': False,
    }

    def __init__(self, conf, host):
        self.conf = conf
        self.host = host

    # -- host -----------------------------------------------------------------

    def init_host(self, host):
        """Prepare the hypervisor connection at service start (reload state, ...)."""
        return None

    def cleanup_host(self):
        """Release hypervisor resources at service stop."""
        return None

    @abc.abstractmethod
    def get_available_resource(self, nodename):
        """Inventory and usage of node ``nodename``.

        Returns a dict: vcpus, memory_mb, local_gb, vcpus_used, memory_mb_used,
        local_gb_used, hypervisor_type, hypervisor_version, hypervisor_hostname,
        cpu_info (dict: arch, model, vendor, features), host_ip, running_vms.
        """

    @abc.abstractmethod
    def get_available_nodes(self):
        """Names of the nodes (hypervisors) this host manages."""

    def get_available_resources(self, nodenames=None):
        """nodename -> get_available_resource(nodename), for every node or for
        ``nodenames``. A driver with many nodes answers this in one pass."""
        return {name: self.get_available_resource(name)
                for name in (self.get_available_nodes() if nodenames is None else nodenames)}

    @abc.abstractmethod
    def list_instance_uuids(self):
        """UUIDs of every guest defined on this host, running or not."""

    def instance_exists(self, instance):
        """True when this host has a guest for the instance."""
        return instance['uuid'] in self.list_instance_uuids()

    def list_guest_uuids(self):
        """What the hypervisor holds, by instance uuid: uuid -> set of GUEST,
        RESIZE_BACKUP, INCOMING. A driver that keeps no backups or prepared guests
        lists its defined guests."""
        return {uuid: {GUEST} for uuid in self.list_instance_uuids()}

    def remove_orphans(self, keep, among=None):
        """Remove what this host holds that ``keep`` does not name; returns the uuids
        something was removed of, sorted.

        ``keep`` is a set of uuids (keep everything of each) or a mapping uuid -> kinds
        (keep only those). ``among``, the list_guest_uuids() taken *before* the caller
        read the database to build ``keep``, limits removal to what was there then, so a
        guest a move prepares meanwhile is never taken for an orphan. One orphan that
        cannot be removed is logged and the rest still are.
        """
        removed = []
        for uuid, kinds in sorted(orphans(self.list_guest_uuids(), keep, among).items()):
            try:
                self._remove_orphan(uuid, kinds)
            except Exception:
                LOG.exception('Could not remove %s of orphan %s on %s',
                              ', '.join(sorted(kinds)), uuid, self.host)
                continue
            LOG.info('Removed %s of orphan %s on %s', ', '.join(sorted(kinds)), uuid,
                     self.host)
            removed.append(uuid)
        return removed

    def _remove_orphan(self, uuid, kinds):
        """Remove ``kinds`` of ``uuid`` from this host (the default lists guests only)."""
        if kinds - {GUEST}:
            raise VirtDriverError('%s cannot remove %s'
                                  % (type(self).__name__, ', '.join(sorted(kinds - {GUEST}))))
        self.destroy(None, {'uuid': uuid}, destroy_disks=True)

    @abc.abstractmethod
    def get_info(self, instance):
        """{'state': power_state int, 'vcpus', 'memory_mb'}; InstanceNotFoundOnHost if absent."""

    # -- lifecycle --------------------------------------------------------------

    @abc.abstractmethod
    def spawn(self, context, instance, image, network_info=None, block_device_info=None):
        """Create the guest from the image and instance['flavor'] and start it.

        Raises InstanceExistsOnHost when the guest is already defined here.
        """

    @abc.abstractmethod
    def destroy(self, context, instance, destroy_disks=True):
        """Stop and undefine the guest (and delete its disks). A missing guest is fine.

        Backups kept on this host by a cold move (for revert) are left alone: they go
        with confirm_migration() or finish_revert_migration().
        """

    @abc.abstractmethod
    def power_off(self, instance, timeout=0, retry_interval=0):
        """Stop the guest, cleanly within ``timeout`` seconds when > 0, else at once.

        A guest already off stays off. InstanceNotFoundOnHost if absent.
        """

    @abc.abstractmethod
    def power_on(self, context, instance):
        """Start the guest (RUNNING). A running guest stays running.

        InstanceNotFoundOnHost if absent.
        """

    @abc.abstractmethod
    def reboot(self, context, instance, reboot_type='SOFT'):
        """Restart the guest ('SOFT' or 'HARD'); it ends RUNNING. Not found if absent."""

    def pause(self, instance):
        """Freeze the guest in memory (PAUSED)."""
        raise NotImplementedError()

    def unpause(self, instance):
        """Resume a paused guest (RUNNING)."""
        raise NotImplementedError()

    def suspend(self, context, instance):
        """Save the guest's memory to disk and stop it (SUSPENDED)."""
        raise NotImplementedError()

    def resume(self, context, instance):
        """Restore a suspended guest (RUNNING)."""
        raise NotImplementedError()

    # -- cold move (resize / migrate) --------------------------------------------

    def prepare_for_incoming_move(self, context, instance, flavor):
        """Destination side of a cold move, before anything is copied: check that this
        host can take the guest with ``flavor``. Raise VirtDriverError to refuse."""
        return None

    @abc.abstractmethod
    def migrate_disk_and_power_off(self, context, instance, dest_host, flavor,
                                   progress_callback=None):
        """Source side of a cold move: power off and copy the disks to ``dest_host``.

        instance['flavor'] is the current flavor, ``flavor`` the new one; a smaller
        root or ephemeral disk raises ResizeError('Unable to resize disk down.') before
        anything is touched. The guest is kept aside on this host so that
        finish_revert_migration() can restore it. progress_callback(processed, total)
        is called with bytes as the copy advances. Returns a JSON-safe disk_info dict
        for finish_migration().
        """

    @abc.abstractmethod
    def finish_migration(self, context, migration, instance, disk_info, image,
                         resize_instance, power_on=True):
        """Destination side: define the guest from ``disk_info`` with instance['flavor']
        (already the new flavor), growing disks when ``resize_instance``, and start it
        when ``power_on``. ``migration`` is a dict (uuid, source_compute, dest_compute,
        source_node, dest_node, status).
        """

    @abc.abstractmethod
    def confirm_migration(self, context, migration, instance):
        """Source side of confirm: delete the guest kept aside by the move."""

    @abc.abstractmethod
    def finish_revert_migration(self, context, instance, power_on=True):
        """Source side of revert: restore the guest kept aside (instance['flavor'] is
        the old flavor again) and start it when ``power_on``. The destination guest is
        removed with destroy() on the destination.
        """

    # -- live move -----------------------------------------------------------------

    @abc.abstractmethod
    def compare_cpu(self, cpu_info_src):
        """Raise InvalidCPUInfo if a guest from a host with ``cpu_info_src`` (dict or
        JSON string) cannot run on this host's CPU."""

    @abc.abstractmethod
    def check_can_live_migrate_destination(self, context, instance, src_compute_info,
                                           dst_compute_info, block_migration=None,
                                           disk_over_commit=False):
        """Destination pre-check. Returns dest_check_data (JSON-safe dict) that the
        source reads in check_can_live_migrate_source(); ``block_migration`` may be
        True, False or None/'auto' (decided by the source)."""

    @abc.abstractmethod
    def check_can_live_migrate_source(self, context, instance, dest_check_data):
        """Source pre-check. Decides block_migration when it is None/'auto' (False with
        shared storage, else True), refuses a non-block migration without shared storage
        and returns migrate_data (dict, with a bool 'block_migration')."""

    @abc.abstractmethod
    def pre_live_migration(self, context, instance, migrate_data):
        """Destination: prepare to receive the guest; returns migrate_data."""

    @abc.abstractmethod
    def live_migration(self, context, instance, dest, migrate_data):
        """Source: return a LiveMigrationJob moving the guest to ``dest``; nothing moves
        until job.run(). migrate_data keys honoured: block_migration, permit_post_copy,
        permit_auto_converge, completion_timeout (seconds, 0 none), timeout_action
        ('abort' | 'force_complete'), bandwidth (MiB/s, 0 the [libvirt] option),
        stall_seconds (0 none) and stall_action (STALL_*). On JOB_COMPLETED the guest
        is gone from this host; on JOB_CANCELLED / JOB_FAILED it still runs here as
        before."""

    @abc.abstractmethod
    def post_live_migration(self, context, instance, migrate_data):
        """Source cleanup after a completed live migration."""

    @abc.abstractmethod
    def post_live_migration_at_destination(self, context, instance, migrate_data):
        """Destination: take ownership of the guest after a completed live migration."""

    @abc.abstractmethod
    def rollback_live_migration_at_destination(self, context, instance, migrate_data):
        """Destination cleanup after a failed or cancelled live migration. Idempotent."""


def load_driver(conf, host):
    """The ComputeDriver chosen by [compute]compute_driver, built for ``host``."""
    name = conf.compute.compute_driver
    if name == 'fake':
        from novalite.virt import fake
        return fake.FakeDriver(conf, host)
    if name == 'libvirt':
        try:
            module = importlib.import_module('novalite.virt.libvirt.driver')
        except ImportError as exc:
            raise DriverNotAvailable(
                'The libvirt driver cannot be loaded (%s); install libvirt-python '
                '(the "libvirt" extra) or set [compute]compute_driver = fake.' % exc)
        return module.LibvirtDriver(conf, host)
    raise DriverNotAvailable('Unknown compute driver %r; choose fake or libvirt.' % name)
