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
from novalite.virt.fake_live_migration import FakeLiveMigrationJob

LOG = logging.getLogger(__name__)

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

    @staticmethod
    def disk_mb(guest):
        """Megabytes of all disks of a guest record."""
        return sum(d['size_mb'] for d in guest['disks'])

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


def node_names(host, count):
    """The nodes of a fake host: the host's own name, or HOST-00000 ... for several."""
    if count <= 1:
        return [host]
    return ['%s-%05d' % (host, i) for i in range(count)]


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
        self.nodes = node_names(host, conf.fake_driver.nodes)
        self._node_set = frozenset(self.nodes)
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
        return self.get_available_resources([nodename or self.nodes[0]])[
            nodename or self.nodes[0]]

    def get_available_resources(self, nodenames=None):
        """Inventory and usage of every node (or of ``nodenames``), from one pass over
        the guests: a service with thousands of nodes reports them in time linear in
        nodes plus guests. A guest counts on the node it was placed on; one placed
        before this host had several nodes counts on the first."""
        hv = self.hypervisor
        opts = self.conf.fake_driver
        first = self.nodes[0]
        usage = {}
        with hv.lock:
            for table in (hv.guests, hv.resize_backups, hv.incoming):
                active_table = table is hv.guests
                for g in table.values():
                    node = g.get('node')
                    u = usage.setdefault(node if node in self._node_set else first,
                                         [0, 0, 0, 0])
                    u[2] += hv.disk_mb(g)
                    if active_table and g['power_state'] in _ACTIVE:
                        u[0] += g['vcpus']
                        u[1] += g['memory_mb']
                        u[3] += 1
        cpu_info = self._cpu_info()
        out = {}
        for name in (self.nodes if nodenames is None else nodenames):
            vcpus, mem, disk_mb, running = usage.get(name, (0, 0, 0, 0))
            out[name] = {
                'vcpus': opts.vcpus,
                'memory_mb': opts.memory_mb,
                'local_gb': opts.local_gb,
                'vcpus_used': vcpus,
                'memory_mb_used': mem,
                'local_gb_used': int(math.ceil(disk_mb / 1024.0)),
                'hypervisor_type': opts.hypervisor_type,
                'hypervisor_version': opts.hypervisor_version,
                'hypervisor_hostname': name,
                'cpu_info': cpu_info,
                'host_ip': hv.host_ip,
                'running_vms': running,
            }
        return out

    def _cpu_info(self):
        return {'arch': self.hypervisor.cpu_arch, 'model': 'fake-cpu', 'vendor': 'novalite',
                'features': ['fpu', 'sse2', 'vmx']}

    def get_available_nodes(self):
        return list(self.nodes)

    def _place(self, guest, node):
        """Tag a guest with the node it runs on (the first when ``node`` is not one of
        this host's)."""
        guest['node'] = node if node in self._node_set else self.nodes[0]
        return guest

    def list_instance_uuids(self):
        with self.hypervisor.lock:
            return list(self.hypervisor.guests)

    def instance_exists(self, instance):
        return instance['uuid'] in self.hypervisor.guests

    def _tables(self):
        hv = self.hypervisor
        return ((driver.GUEST, hv.guests), (driver.RESIZE_BACKUP, hv.resize_backups),
                (driver.INCOMING, hv.incoming))

    def list_guest_uuids(self):
        with self.hypervisor.lock:
            out = {}
            for kind, table in self._tables():
                for uuid in table:
                    out.setdefault(uuid, set()).add(kind)
            return out

    def _remove_orphan(self, uuid, kinds):
        with self.hypervisor.lock:
            gone = [table.pop(uuid, None) for kind, table in self._tables() if kind in kinds]
            if any(g is not None for g in gone):
                self._save()

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
            self.hypervisor.guests[instance['uuid']] = self._place(guest, instance.get('node'))
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
        self._copy_disks(hv.disk_mb(guest), progress_callback)
        return disk_info

    def _copy_disks(self, size_mb, progress_callback):
        rate = self.conf.fake_driver.disk_copy_mb_per_s
        step_time = size_mb / rate / 10.0 if rate > 0 else 0
        total = size_mb * driver.MiB
        for step in range(11):
            if step and step_time:
                time.sleep(step_time)
            if progress_callback is not None:
                progress_callback(total * step // 10, total)

    def finish_migration(self, context, migration, instance, disk_info, image,
                         resize_instance, power_on=True):
        self._operation('finish_migration')
        state = power_state.RUNNING if power_on else power_state.SHUTDOWN
        guest = _new_guest(instance, instance['flavor'], state)
        if not resize_instance and disk_info.get('disks'):
            guest['disks'] = copy.deepcopy(disk_info['disks'])
        self._place(guest, (migration or {}).get('dest_node') or instance.get('node'))
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
        res = self.get_available_resource(self.nodes[0])
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
            need_mb = self.hypervisor.disk_mb(self._guest(instance))
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
            self.hypervisor.incoming[instance['uuid']] = self._place(_new_guest(
                instance, instance['flavor'], power_state.NOSTATE),
                (migrate_data or {}).get('dest_node'))
            self._save()
        return dict(migrate_data or {}, dest_prepared=True)

    def live_migration(self, context, instance, dest, migrate_data):
        with self.hypervisor.lock:
            self._guest(instance)
        fail = self.hypervisor.take_failure('live_migration',
                                            self.conf.fake_driver.fail_operations)
        failure = FakeInjectedError(fail) if fail else None
        return FakeLiveMigrationJob(self, instance, dest, dict(migrate_data or {}), failure)

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
            node = instance.get('node')
            self._place(guest, node if node in self._node_set else
                        (migrate_data or {}).get('dest_node'))
            guest['power_state'] = state
            self.hypervisor.guests[instance['uuid']] = guest
            self._save()

    def rollback_live_migration_at_destination(self, context, instance, migrate_data):
        self._operation('rollback_live_migration_at_destination')
        with self.hypervisor.lock:
            if self.hypervisor.incoming.pop(instance['uuid'], None) is not None:
                self._save()
