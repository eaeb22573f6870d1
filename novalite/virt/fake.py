"""An in-memory hypervisor per host with failure injection, for all-in-one mode and tests."""

import copy
import json
import logging
import math
import os
import tempfile
import threading
import time

from novalite.virt import driver, power_state

LOG = logging.getLogger(__name__)

MiB = driver.MiB
# Longest real-time step of the live migration simulation; bounds the reaction time to
# abort/force_complete and the spacing of progress reports.
_SLICE = 0.01
_ACTIVE = (power_state.RUNNING, power_state.PAUSED)


class FakeInjectedError(driver.VirtDriverError):
    """A failure injected by configuration or by FakeHypervisor.inject_failure()."""


class FakeHypervisor:
    """The guests of one fake host and the knobs that shape its behaviour.

    ``guests`` maps uuid -> guest record (power_state, vcpus, memory_mb, root_gb,
    ephemeral_gb, swap_mb, flavor, image_ref, disks); ``resize_backups`` holds guests a
    cold move keeps aside for a revert and ``incoming`` guests announced by
    pre_live_migration. Mutate only under ``lock``.
    """

    def __init__(self, host):
        self.host = host
        self.lock = threading.RLock()
        self.guests = {}
        self.resize_backups = {}
        self.incoming = {}
        self.live_migration_bandwidth_mb_s = 10000.0
        self.dirty_rate_mb_s = 0.0
        self.max_downtime_ms = 500.0
        self.cpu_arch = 'x86_64'
        self.host_ip = '127.0.0.1'
        # Live-migration progress goes to the callback at most this often (plus at the
        # start and the end), so a consumer writing it somewhere is not flooded.
        self.progress_interval_s = 0.05
        self._failures = {}

    # -- failure injection ----------------------------------------------------------

    def inject_failure(self, op, message, count=1):
        """Make the next ``count`` calls of ``op`` fail (count None: until cleared)."""
        with self.lock:
            self._failures[op] = [message, count]

    def clear_failures(self, op=None):
        with self.lock:
            if op is None:
                self._failures.clear()
            else:
                self._failures.pop(op, None)

    def take_failure(self, op, configured):
        """The message of a failure due now for ``op``, or None."""
        with self.lock:
            entry = self._failures.get(op)
            if entry is not None:
                message, count = entry
                if count is not None:
                    entry[1] = count - 1
                    if entry[1] <= 0:
                        del self._failures[op]
                return message
        if configured and op in configured:
            return configured[op] or '%s failed (injected)' % op
        return None

    # -- state --------------------------------------------------------------------

    def guest(self, uuid):
        """A copy of the guest record, or None."""
        with self.lock:
            found = self.guests.get(uuid)
            return copy.deepcopy(found) if found is not None else None

    def state_file(self, conf):
        return os.path.join(conf.state_path, 'fake', '%s.json' % self.host)

    def save(self, conf):
        """Write the guest tables atomically when [fake_driver]persist is set."""
        if not conf.fake_driver.persist:
            return
        with self.lock:
            data = {'guests': self.guests, 'resize_backups': self.resize_backups,
                    'incoming': self.incoming}
            path = self.state_file(conf)
            directory = os.path.dirname(path)
            os.makedirs(directory, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix='.%s.' % self.host, dir=directory)
            try:
                with os.fdopen(fd, 'w') as f:
                    json.dump(data, f, sort_keys=True)
                os.replace(tmp, path)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise

    def load(self, conf):
        """Replace the in-memory tables by the persisted ones, if any."""
        if not conf.fake_driver.persist:
            return
        path = self.state_file(conf)
        with self.lock:
            try:
                with open(path) as f:
                    data = json.load(f)
            except FileNotFoundError:
                return
            except ValueError as exc:
                raise driver.VirtDriverError('Fake hypervisor state %s is corrupt: %s'
                                             % (path, exc))
            self.guests = data.get('guests', {})
            self.resize_backups = data.get('resize_backups', {})
            self.incoming = data.get('incoming', {})


_registry = {}
_registry_lock = threading.Lock()


def get_hypervisor(host):
    """The process-wide fake hypervisor of ``host`` (created empty on first use)."""
    with _registry_lock:
        hv = _registry.get(host)
        if hv is None:
            hv = _registry[host] = FakeHypervisor(host)
        return hv


def reset_hypervisors():
    """Forget every fake host of this process, as a process restart would."""
    with _registry_lock:
        _registry.clear()


def _disks(flavor):
    disks = [{'name': 'disk', 'size_mb': (flavor.get('root_gb') or 0) * 1024}]
    if flavor.get('ephemeral_gb'):
        disks.append({'name': 'disk.eph0', 'size_mb': flavor['ephemeral_gb'] * 1024})
    if flavor.get('swap'):
        disks.append({'name': 'disk.swap', 'size_mb': flavor['swap']})
    return disks


def _new_guest(instance, flavor, state):
    return {
        'uuid': instance['uuid'],
        'name': instance.get('display_name'),
        'power_state': state,
        'vcpus': flavor['vcpus'],
        'memory_mb': flavor['memory_mb'],
        'root_gb': flavor.get('root_gb') or 0,
        'ephemeral_gb': flavor.get('ephemeral_gb') or 0,
        'swap_mb': flavor.get('swap') or 0,
        'flavor': copy.deepcopy(flavor),
        'image_ref': instance.get('image_ref'),
        'disks': _disks(flavor),
    }


def _disk_mb(guest):
    return sum(d['size_mb'] for d in guest['disks'])


class FakeDriver(driver.ComputeDriver):
    """ComputeDriver over the process-wide FakeHypervisor of its host."""

    capabilities = {
        'supports_same_host_migration': True,
        'supports_live_migration': True,
        'supports_post_copy': True,
    }

    def __init__(self, conf, host, live_migration_bandwidth_mb_s=None, dirty_rate_mb_s=None):
        super().__init__(conf, host)
        self.hypervisor = get_hypervisor(host)
        if live_migration_bandwidth_mb_s is None:
            live_migration_bandwidth_mb_s = conf.fake_driver.live_migration_bandwidth_mb_s
        self.live_migration_bandwidth_mb_s = live_migration_bandwidth_mb_s
        if dirty_rate_mb_s is None:
            dirty_rate_mb_s = conf.fake_driver.dirty_rate_mb_s
        self.dirty_rate_mb_s = dirty_rate_mb_s

    @property
    def live_migration_bandwidth_mb_s(self):
        return self.hypervisor.live_migration_bandwidth_mb_s

    @live_migration_bandwidth_mb_s.setter
    def live_migration_bandwidth_mb_s(self, value):
        self.hypervisor.live_migration_bandwidth_mb_s = float(value)

    @property
    def dirty_rate_mb_s(self):
        return self.hypervisor.dirty_rate_mb_s

    @dirty_rate_mb_s.setter
    def dirty_rate_mb_s(self, value):
        self.hypervisor.dirty_rate_mb_s = float(value)

    def inject_failure(self, op, message, count=1):
        self.hypervisor.inject_failure(op, message, count)

    def clear_failures(self, op=None):
        self.hypervisor.clear_failures(op)

    # -- helpers ------------------------------------------------------------------

    def _operation(self, op):
        """Spend the configured operation time, then fail if a failure is due."""
        delay = self.conf.fake_driver.operation_delay
        if delay:
            time.sleep(delay)
        message = self.hypervisor.take_failure(op, self.conf.fake_driver.fail_operations)
        if message is not None:
            LOG.info('Fake host %s: injected failure of %s: %s', self.host, op, message)
            raise FakeInjectedError(message)

    def _save(self):
        self.hypervisor.save(self.conf)

    def _guest(self, instance):
        guest = self.hypervisor.guests.get(instance['uuid'])
        if guest is None:
            raise driver.InstanceNotFoundOnHost(instance['uuid'], self.host)
        return guest

    def _set_power(self, instance, state):
        with self.hypervisor.lock:
            self._guest(instance)['power_state'] = state
            self._save()

    # -- host -----------------------------------------------------------------------

    def init_host(self, host):
        self.hypervisor.load(self.conf)
        LOG.info('Fake host %s has %d guests', self.host, len(self.hypervisor.guests))

    def cleanup_host(self):
        self._save()

    def get_available_resource(self, nodename):
        hv = self.hypervisor
        opts = self.conf.fake_driver
        with hv.lock:
            active = [g for g in hv.guests.values() if g['power_state'] in _ACTIVE]
            placed = list(hv.guests.values()) + list(hv.resize_backups.values()) + \
                list(hv.incoming.values())
            disk_mb = sum(_disk_mb(g) for g in placed)
            return {
                'vcpus': opts.vcpus,
                'memory_mb': opts.memory_mb,
                'local_gb': opts.local_gb,
                'vcpus_used': sum(g['vcpus'] for g in active),
                'memory_mb_used': sum(g['memory_mb'] for g in active),
                'local_gb_used': int(math.ceil(disk_mb / 1024.0)),
                'hypervisor_type': opts.hypervisor_type,
                'hypervisor_version': opts.hypervisor_version,
                'hypervisor_hostname': nodename or self.host,
                'cpu_info': self._cpu_info(),
                'host_ip': hv.host_ip,
                'running_vms': len(active),
            }

    def _cpu_info(self):
        return {'arch': self.hypervisor.cpu_arch, 'model': 'fake-cpu', 'vendor': 'novalite',
                'features': ['fpu', 'sse2', 'vmx']}

    def get_available_nodes(self):
        return [self.host]

    def list_instance_uuids(self):
        with self.hypervisor.lock:
            return list(self.hypervisor.guests)

    def instance_exists(self, instance):
        return instance['uuid'] in self.hypervisor.guests

    def get_info(self, instance):
        with self.hypervisor.lock:
            guest = self._guest(instance)
            return {'state': guest['power_state'], 'vcpus': guest['vcpus'],
                    'memory_mb': guest['memory_mb']}

    # -- lifecycle --------------------------------------------------------------------

    def spawn(self, context, instance, image, network_info=None, block_device_info=None):
        self._operation('spawn')
        with self.hypervisor.lock:
            if instance['uuid'] in self.hypervisor.guests:
                raise driver.InstanceExistsOnHost(
                    'Instance %s already exists on host %s.' % (instance['uuid'], self.host))
            guest = _new_guest(instance, instance['flavor'], power_state.RUNNING)
            self.hypervisor.guests[instance['uuid']] = guest
            self._save()

    def destroy(self, context, instance, destroy_disks=True):
        self._operation('destroy')
        with self.hypervisor.lock:
            found = self.hypervisor.guests.pop(instance['uuid'], None)
            found = self.hypervisor.incoming.pop(instance['uuid'], None) or found
            if found is not None:
                self._save()

    def power_off(self, instance, timeout=0, retry_interval=0):
        self._operation('power_off')
        self._set_power(instance, power_state.SHUTDOWN)

    def power_on(self, context, instance):
        self._operation('power_on')
        self._set_power(instance, power_state.RUNNING)

    def reboot(self, context, instance, reboot_type='SOFT'):
        self._operation('reboot')
        self._set_power(instance, power_state.RUNNING)

    def pause(self, instance):
        self._operation('pause')
        self._set_power(instance, power_state.PAUSED)

    def unpause(self, instance):
        self._operation('unpause')
        self._set_power(instance, power_state.RUNNING)

    def suspend(self, context, instance):
        self._operation('suspend')
        self._set_power(instance, power_state.SUSPENDED)

    def resume(self, context, instance):
        self._operation('resume')
        self._set_power(instance, power_state.RUNNING)

    # -- cold move ----------------------------------------------------------------------

    def prepare_for_incoming_move(self, context, instance, flavor):
        self._operation('prepare_for_incoming_move')

    def migrate_disk_and_power_off(self, context, instance, dest_host, flavor,
                                   progress_callback=None):
        driver.check_flavor_disks_can_move(instance['flavor'], flavor)
        self._operation('migrate_disk_and_power_off')
        uuid = instance['uuid']
        hv = self.hypervisor
        with hv.lock:
            guest = hv.guests.pop(uuid, None)
            if guest is not None:
                guest['power_state_before_move'] = guest['power_state']
                guest['power_state'] = power_state.SHUTDOWN
                hv.resize_backups[uuid] = guest
                self._save()
            else:
                # A retry after a crash finds the guest already kept aside.
                guest = hv.resize_backups.get(uuid)
                if guest is None:
                    raise driver.InstanceNotFoundOnHost(uuid, self.host)
            disk_info = {'source_host': self.host, 'dest_host': dest_host,
                         'disks': copy.deepcopy(guest['disks']),
                         'power_state': guest['power_state_before_move']}
        self._copy_disks(_disk_mb(guest), progress_callback)
        return disk_info

    def _copy_disks(self, size_mb, progress_callback):
        rate = self.conf.fake_driver.disk_copy_mb_per_s
        step_time = size_mb / rate / 10.0 if rate > 0 else 0
        for step in range(11):
            if step and step_time:
                time.sleep(step_time)
            if progress_callback is not None:
                progress_callback(step * 10)

    def finish_migration(self, context, migration, instance, disk_info, image,
                         resize_instance, power_on=True):
        self._operation('finish_migration')
        state = power_state.RUNNING if power_on else power_state.SHUTDOWN
        guest = _new_guest(instance, instance['flavor'], state)
        if not resize_instance and disk_info.get('disks'):
            guest['disks'] = copy.deepcopy(disk_info['disks'])
        with self.hypervisor.lock:
            self.hypervisor.incoming.pop(instance['uuid'], None)
            self.hypervisor.guests[instance['uuid']] = guest
            self._save()

    def confirm_migration(self, context, migration, instance):
        self._operation('confirm_migration')
        with self.hypervisor.lock:
            if self.hypervisor.resize_backups.pop(instance['uuid'], None) is not None:
                self._save()

    def finish_revert_migration(self, context, instance, power_on=True):
        self._operation('finish_revert_migration')
        uuid = instance['uuid']
        hv = self.hypervisor
        with hv.lock:
            guest = hv.resize_backups.pop(uuid, None)
            if guest is None:
                # Already reverted (a retry after a crash) or never moved.
                guest = self._guest(instance)
            guest.pop('power_state_before_move', None)
            guest['power_state'] = power_state.RUNNING if power_on else power_state.SHUTDOWN
            hv.guests[uuid] = guest
            self._save()

    # -- live move --------------------------------------------------------------------

    def compare_cpu(self, cpu_info_src):
        info = driver.parse_cpu_info(cpu_info_src)
        if info['arch'] != self.hypervisor.cpu_arch:
            raise driver.InvalidCPUInfo(
                'CPU architecture %s of the source host is incompatible with %s of host %s.'
                % (info['arch'], self.hypervisor.cpu_arch, self.host))

    def check_can_live_migrate_destination(self, context, instance, src_compute_info,
                                           dst_compute_info, block_migration=None,
                                           disk_over_commit=False):
        self._operation('check_can_live_migrate_destination')
        if src_compute_info and src_compute_info.get('cpu_info'):
            self.compare_cpu(src_compute_info['cpu_info'])
        res = self.get_available_resource(self.host)
        return {
            'dest_host': self.host,
            'block_migration': block_migration,
            'disk_over_commit': bool(disk_over_commit),
            'is_shared_instance_path': False,
            'is_shared_block_storage': False,
            'disk_available_mb': (res['local_gb'] - res['local_gb_used']) * 1024,
        }

    def check_can_live_migrate_source(self, context, instance, dest_check_data):
        self._operation('check_can_live_migrate_source')
        with self.hypervisor.lock:
            need_mb = _disk_mb(self._guest(instance))
        shared = (dest_check_data.get('is_shared_instance_path')
                  or dest_check_data.get('is_shared_block_storage'))
        block = driver.decide_block_migration(dest_check_data.get('block_migration'), shared)
        available = dest_check_data.get('disk_available_mb')
        if (block and not dest_check_data.get('disk_over_commit')
                and available is not None and need_mb > available):
            raise driver.MigrationPreCheckError(
                'Unable to migrate %s: disk of instance is too large (available on '
                'destination host: %s MB < need: %s MB)'
                % (instance['uuid'], available, need_mb))
        return dict(dest_check_data, block_migration=bool(block), source_host=self.host)

    def pre_live_migration(self, context, instance, migrate_data):
        self._operation('pre_live_migration')
        with self.hypervisor.lock:
            self.hypervisor.incoming[instance['uuid']] = _new_guest(
                instance, instance['flavor'], power_state.NOSTATE)
            self._save()
        return dict(migrate_data or {}, dest_prepared=True)

    def live_migration(self, context, instance, dest, migrate_data):
        with self.hypervisor.lock:
            self._guest(instance)
        fail = self.hypervisor.take_failure('live_migration',
                                            self.conf.fake_driver.fail_operations)
        return FakeLiveMigrationJob(self, instance, dest, dict(migrate_data or {}), fail)

    def post_live_migration(self, context, instance, migrate_data):
        self._operation('post_live_migration')
        with self.hypervisor.lock:
            if self.hypervisor.guests.pop(instance['uuid'], None) is not None:
                self._save()

    def post_live_migration_at_destination(self, context, instance, migrate_data):
        self._operation('post_live_migration_at_destination')
        # A guest the user paused arrives paused; any other runs on the destination.
        paused = instance.get('power_state') == power_state.PAUSED
        state = power_state.PAUSED if paused else power_state.RUNNING
        with self.hypervisor.lock:
            guest = self.hypervisor.incoming.pop(instance['uuid'], None)
            if guest is None:
                guest = _new_guest(instance, instance['flavor'], state)
            guest['power_state'] = state
            self.hypervisor.guests[instance['uuid']] = guest
            self._save()

    def rollback_live_migration_at_destination(self, context, instance, migrate_data):
        self._operation('rollback_live_migration_at_destination')
        with self.hypervisor.lock:
            if self.hypervisor.incoming.pop(instance['uuid'], None) is not None:
                self._save()


class _Transfer:
    """Bytes of one live migration: disks first, then memory in pre-copy rounds."""

    def __init__(self, mem_total, disk_total):
        self.mem_total = mem_total
        self.disk_total = disk_total
        self.disk_left = disk_total
        self.round_left = mem_total  # still to send in this round
        self.dirty = 0.0  # dirtied during this round, to resend
        self.mem_sent = 0.0

    def pending(self):
        return self.disk_left + self.round_left

    def send(self, budget, dirty_per_byte):
        """Send up to ``budget`` bytes while the guest dirties memory."""
        sent = min(budget, self.disk_left)
        self.disk_left -= sent
        sent = min(budget - sent, self.round_left)
        self.round_left -= sent
        self.mem_sent += sent
        self.dirty = min(float(self.mem_total), self.dirty + sent * dirty_per_byte)

    def moved(self):
        return bool(self.mem_sent or self.disk_left < self.disk_total)

    def next_round(self):
        self.round_left, self.dirty = self.dirty, 0.0

    def take_dirty(self):
        """Send the dirtied pages in this round (no more dirt comes: post-copy)."""
        self.round_left += self.dirty
        self.dirty = 0.0

    def flush(self):
        """Send the last dirty pages with the guest stopped (or running remotely)."""
        self.mem_sent += self.round_left + self.dirty
        self.round_left = self.dirty = 0.0

    def progress(self):
        return dict(memory_total=self.mem_total, memory_processed=int(self.mem_sent),
                    memory_remaining=int(self.round_left + self.dirty),
                    disk_total=self.disk_total,
                    disk_processed=int(self.disk_total - self.disk_left),
                    disk_remaining=int(self.disk_left))


class FakeLiveMigrationJob(driver.LiveMigrationJob):
    """Pre-copy live migration simulated in real time.

    Disks (block migration) are copied first, then memory in rounds: each round sends
    what is left while the guest dirties pages at the host's dirty rate; once the pages
    left fit in the allowed downtime (max_downtime_ms at the current bandwidth) the
    guest stops and the rest is sent. Post-copy sends the rest without new dirt;
    pausing the guest stops the dirt, so both converge.
    """

    def __init__(self, fake_driver, instance, dest, migrate_data, fail_message=None):
        super().__init__(instance['uuid'], dest)
        self._driver = fake_driver
        self._hv = fake_driver.hypervisor
        self._migrate_data = migrate_data
        self._fail_message = fail_message
        self.phase = 'pre-copy'
        self._paused_by_job = False
        self._reported_at = None

    def _abortable(self):
        # The guest already runs on the destination; there is no way back.
        return self.phase != 'post-copy'

    def _bandwidth(self):
        mb_s = self._hv.live_migration_bandwidth_mb_s
        cap = self._driver.conf.libvirt.live_migration_bandwidth
        if cap:
            mb_s = min(mb_s, cap)
        return max(mb_s, 0.001) * MiB

    def _publish(self, callback, transfer, final=False):
        now = time.monotonic()
        if (not final and self._reported_at is not None
                and now - self._reported_at < self._hv.progress_interval_s):
            return
        self._reported_at = now
        self._report(callback, **transfer.progress())

    def _run(self, progress_callback):
        delay = self._driver.conf.fake_driver.operation_delay
        if delay:
            self._wake.wait(delay)
        data = self._migrate_data
        with self._hv.lock:
            guest = self._hv.guests.get(self.instance_uuid)
            if guest is None:
                raise driver.InstanceNotFoundOnHost(self.instance_uuid, self._hv.host)
            disk = _disk_mb(guest) * MiB if data.get('block_migration') else 0
            transfer = _Transfer(guest['memory_mb'] * MiB, disk)
        timeout = data.get('completion_timeout') or 0
        throttle = 1.0
        started = last = time.monotonic()
        self._publish(progress_callback, transfer, final=True)
        while True:
            if self._abort_requested:
                self._restore_source()
                return driver.JOB_CANCELLED
            if self._fail_message and transfer.moved():
                self._restore_source()
                raise FakeInjectedError(self._fail_message)
            if self.instance_uuid not in self._hv.guests:
                raise driver.VirtDriverError('Guest %s vanished during live migration.'
                                             % self.instance_uuid)
            if timeout and last - started > timeout and not self._force_requested:
                self._on_timeout(timeout, data.get('timeout_action') or 'abort')
                continue
            if self._force_requested and self.phase == 'pre-copy':
                self._switch_to_completion()
                if self.phase == 'post-copy':
                    transfer.take_dirty()

            bandwidth = self._bandwidth()
            self._wake.wait(max(min(_SLICE, transfer.pending() / bandwidth), 0.0005))
            self._wake.clear()
            now = time.monotonic()
            dirty_rate = self._hv.dirty_rate_mb_s * MiB * throttle
            if self.phase != 'pre-copy':
                dirty_rate = 0.0
            transfer.send(bandwidth * (now - last), dirty_rate / bandwidth)
            last = now
            if not transfer.pending():
                if self.phase != 'pre-copy' or transfer.dirty <= bandwidth * self._downtime():
                    break
                transfer.next_round()
                if data.get('permit_auto_converge'):
                    throttle = max(throttle * 0.5, 0.01)
            self._publish(progress_callback, transfer)

        if self._fail_message:
            # A fast transfer finished before the failure could strike mid-way.
            self._restore_source()
            raise FakeInjectedError(self._fail_message)
        # Stop-and-copy: the guest is stopped while the last dirty pages go over.
        if transfer.dirty:
            time.sleep(transfer.dirty / self._bandwidth())
        transfer.flush()
        self._publish(progress_callback, transfer, final=True)
        with self._hv.lock:
            self._hv.guests.pop(self.instance_uuid, None)
            self._driver._save()
        return driver.JOB_COMPLETED

    def _downtime(self):
        return self._hv.max_downtime_ms / 1000.0

    def _on_timeout(self, timeout, action):
        LOG.info('Live migration of %s exceeded %ss: %s', self.instance_uuid, timeout, action)
        with self._lock:
            if action == 'force_complete':
                self._force_requested = True
            else:
                self._abort_requested = True

    def _switch_to_completion(self):
        with self._lock:
            if self._migrate_data.get('permit_post_copy'):
                self.phase = 'post-copy'
                return
        with self._hv.lock:
            guest = self._hv.guests.get(self.instance_uuid)
            if guest is not None and guest['power_state'] == power_state.RUNNING:
                guest['power_state'] = power_state.PAUSED
                self._paused_by_job = True
                self._driver._save()
        self.phase = 'paused'

    def _restore_source(self):
        if not self._paused_by_job:
            return
        with self._hv.lock:
            guest = self._hv.guests.get(self.instance_uuid)
            if guest is not None:
                guest['power_state'] = power_state.RUNNING
                self._driver._save()
        self._paused_by_job = False
