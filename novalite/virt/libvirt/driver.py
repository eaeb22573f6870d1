"""ComputeDriver over libvirt (libvirt-python): QEMU/KVM guests on this host.

One connection per driver, held by a host.Host and opened from ``[libvirt] connection_uri``
(qemu:///system by default; ``test:///<node.xml>`` gives libvirt's own test hypervisor,
which the unit tests use). Guests are named by ``[libvirt] instance_name_template`` and
found by their UUID (the instance UUID). Disks are qcow2 files under
``[compute] instances_path`` (see imagebackend); the domain XML is built by
config.build_domain.
"""

import logging
import os
import shutil
import time

from novalite.virt import driver, power_state
from novalite.virt.libvirt import config as vconfig
from novalite.virt.libvirt import imagebackend
from novalite.virt.libvirt import migration as lvmigration

# host refuses to import without a working libvirt-python: load_driver reports that.
from novalite.virt.libvirt.host import Host, libvirt

LOG = logging.getLogger(__name__)

_STATE_MAP = {
    libvirt.VIR_DOMAIN_NOSTATE: power_state.NOSTATE,
    libvirt.VIR_DOMAIN_RUNNING: power_state.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: power_state.RUNNING,
    libvirt.VIR_DOMAIN_PAUSED: power_state.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: power_state.SHUTDOWN,
    libvirt.VIR_DOMAIN_SHUTOFF: power_state.SHUTDOWN,
    libvirt.VIR_DOMAIN_CRASHED: power_state.CRASHED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: power_state.SUSPENDED,
}

_EVENT_NAMES = {
    libvirt.VIR_DOMAIN_EVENT_DEFINED: 'defined',
    libvirt.VIR_DOMAIN_EVENT_UNDEFINED: 'undefined',
    libvirt.VIR_DOMAIN_EVENT_STARTED: 'started',
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: 'suspended',
    libvirt.VIR_DOMAIN_EVENT_RESUMED: 'resumed',
    libvirt.VIR_DOMAIN_EVENT_STOPPED: 'stopped',
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: 'shutdown',
    libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED: 'pmsuspended',
    libvirt.VIR_DOMAIN_EVENT_CRASHED: 'crashed',
}


def map_power_state(state, has_managed_save=False):
    """novalite power state of a libvirt domain state."""
    if state == libvirt.VIR_DOMAIN_SHUTOFF and has_managed_save:
        return power_state.SUSPENDED
    return _STATE_MAP.get(state, power_state.NOSTATE)


class LibvirtDriver(driver.ComputeDriver):
    """Guests of one libvirt host."""

    capabilities = {
        'supports_same_host_migration': False,
        'supports_live_migration': True,
        'supports_post_copy': True,
    }

    libvirt = libvirt

    def __init__(self, conf, host):
        super().__init__(conf, host)
        self.instances_path = conf.compute.instances_path
        self._event_listeners = []
        self._events = []  # (time, uuid, event name, power state), the latest last
        events = conf.libvirt.sync_power_state_via_events
        self._host = Host(conf.libvirt.connection_uri or 'qemu:///system',
                          lifecycle_event_handler=self._lifecycle_event if events else None)

    # ------------------------------------------------------------------ connection

    def files(self, instance, instances_path=None):
        uuid = instance if isinstance(instance, str) else instance['uuid']
        return imagebackend.InstanceFiles(instances_path or self.instances_path, uuid)

    @property
    def conn(self):
        return self._host.get_connection()

    def init_host(self, host):
        os.makedirs(self.instances_path, exist_ok=True)
        imagebackend.storage_id(self.instances_path)
        imagebackend.hosts_using(self.instances_path, self.host)
        conn = self.conn
        LOG.info('libvirt host %s: %s %s, %d guests', self.host, conn.getType(),
                 conn.getVersion(), len(conn.listAllDomains()))

    def cleanup_host(self):
        self._host.close()

    # ------------------------------------------------------------------ events

    def register_event_listener(self, callback):
        """callback(instance_uuid, event_name, power_state) on every lifecycle event."""
        self._event_listeners.append(callback)

    def recent_events(self):
        return list(self._events)

    def _lifecycle_event(self, conn, dom, event, detail, opaque):
        try:
            uuid = dom.UUIDString()
            name = _EVENT_NAMES.get(event, str(event))
            try:
                state = map_power_state(dom.state()[0])
            except libvirt.libvirtError:
                state = power_state.NOSTATE
            self._events.append((time.time(), uuid, name, state))
            del self._events[:-200]
            LOG.debug('libvirt event %s (%s) of %s: power state %s', name, detail, uuid,
                      state)
            for callback in list(self._event_listeners):
                callback(uuid, name, state)
        except Exception:  # never let an exception into libvirt's event loop
            LOG.exception('Handling a libvirt lifecycle event failed')

    # ------------------------------------------------------------------ lookups

    def lookup(self, instance):
        uuid = instance if isinstance(instance, str) else instance['uuid']
        try:
            return self.conn.lookupByUUIDString(uuid)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise driver.InstanceNotFoundOnHost(uuid, self.host)
            raise driver.VirtDriverError('libvirt lookup of %s failed: %s' % (uuid, exc))

    def _find(self, instance):
        try:
            return self.lookup(instance)
        except driver.InstanceNotFoundOnHost:
            return None

    def _call(self, what, fn, *args):
        try:
            return fn(*args)
        except libvirt.libvirtError as exc:
            raise driver.VirtDriverError('%s failed: %s' % (what, exc))

    # ------------------------------------------------------------------ host

    def host_ip(self):
        lv = self.conf.libvirt
        return lv.host_ip or lv.host_addresses.get(self.host) or '127.0.0.1'

    def address_of(self, host, fallback=None):
        """Address of compute ``host`` (host_addresses, then ``fallback``, then the name)."""
        return self.conf.libvirt.host_addresses.get(host) or fallback or host

    def host_name_of(self, address):
        """Compute host name of an address or name (reverse of host_addresses)."""
        for name, addr in self.conf.libvirt.host_addresses.items():
            if addr == address:
                return name
        return address

    def get_available_resource(self, nodename):
        conn = self.conn
        info = conn.getInfo()  # [model, memory MiB, cpus, mhz, nodes, sockets, cores, threads]
        vcpus_used = memory_used = running = 0
        for dom in conn.listAllDomains():
            try:
                state, max_kib, _, nr_vcpus, _ = dom.info()
            except libvirt.libvirtError:
                continue  # vanished meanwhile
            if state in (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_CRASHED):
                continue
            running += 1
            vcpus_used += nr_vcpus
            memory_used += max_kib // 1024
        free, total = imagebackend.free_bytes(self.instances_path)
        try:
            cpu_info = vconfig.host_cpu_info(conn.getCapabilities())
        except libvirt.libvirtError:
            cpu_info = {}
        cpu_info.setdefault('topology', {})
        if not cpu_info.get('arch'):
            cpu_info['arch'] = info[0]
        try:
            version = conn.getVersion()
        except libvirt.libvirtError:
            version = 0
        return {
            'vcpus': int(info[2]),
            'memory_mb': int(info[1]),
            'local_gb': int(total // driver.GiB),
            'vcpus_used': vcpus_used,
            'memory_mb_used': memory_used,
            'local_gb_used': int((total - free) // driver.GiB),
            'hypervisor_type': conn.getType(),
            'hypervisor_version': version,
            'hypervisor_hostname': nodename or self.host,
            'cpu_info': cpu_info,
            'host_ip': self.host_ip(),
            'running_vms': running,
        }

    def get_available_nodes(self):
        return [self.host]

    def list_instance_uuids(self):
        return [d.UUIDString() for d in self.conn.listAllDomains()]

    # ------------------------------------------------------------------ orphans

    def _shared_storage(self):
        """Hosts other than this one keep instances in instances_path (or the operator
        says it is shared): files there are not this host's alone to judge."""
        if self.conf.libvirt.disk_transfer == 'shared':
            return True
        return imagebackend.hosts_using(self.instances_path, self.host) - {self.host} != set()

    def list_guest_uuids(self):
        """Domains, instance directories (``<uuid>/``: a guest's, or an incoming one's
        when no domain is defined or the incoming marker is there) and ``<uuid>_resize/``
        backups. On shared storage only the domains: the files may be another host's."""
        out = {}
        for uuid in self.list_instance_uuids():
            out.setdefault(uuid, set()).add(driver.GUEST)
        if self._shared_storage():
            return out
        for uuid, what in imagebackend.instance_dirs(self.instances_path).items():
            kinds = out.setdefault(uuid, set())
            if 'resize' in what:
                kinds.add(driver.RESIZE_BACKUP)
            if 'incoming' in what or ('files' in what and driver.GUEST not in kinds):
                kinds.add(driver.INCOMING)
        return out

    def remove_orphans(self, keep, among=None):
        # A guest and an incoming guest share one domain and one directory here: keeping
        # either keeps both.
        keep = driver.held_kinds(keep) if keep is not None else None
        if keep is not None:
            keep = {uuid: kinds | {driver.GUEST, driver.INCOMING}
                    if kinds & {driver.GUEST, driver.INCOMING} else kinds
                    for uuid, kinds in keep.items()}
        return super().remove_orphans(keep, among)

    def _remove_orphan(self, uuid, kinds):
        shared = self._shared_storage()
        files = self.files(uuid)
        if kinds & {driver.GUEST, driver.INCOMING}:
            dom = self._find(uuid)
            if dom is not None:
                self._undefine(dom)
            if not shared:
                files.remove()
        if driver.RESIZE_BACKUP in kinds and not shared:
            files.remove_resize()

    def instance_exists(self, instance):
        return self._find(instance) is not None

    def get_info(self, instance):
        dom = self.lookup(instance)
        state, max_kib, _, nr_vcpus, _ = self._call('domain info', dom.info)
        managed = False
        if state == libvirt.VIR_DOMAIN_SHUTOFF:
            try:
                managed = bool(dom.hasManagedSaveImage(0))
            except libvirt.libvirtError:
                managed = False
        return {'state': map_power_state(state, managed), 'vcpus': nr_vcpus,
                'memory_mb': max_kib // 1024}

    def get_console_output(self, instance, tail_bytes=64 * 1024):
        """The end of the guest's serial console log on this host."""
        path = self.files(instance).console_log
        try:
            with open(path, 'rb') as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - tail_bytes))
                return f.read().decode('utf-8', 'replace')
        except FileNotFoundError:
            return ''

    # ------------------------------------------------------------------ lifecycle

    def _define(self, xml):
        return self._call('defineXML', self.conn.defineXML, xml)

    def _start(self, dom):
        if not dom.isActive():
            self._call('starting the guest', dom.create)

    def spawn(self, context, instance, image, network_info=None, block_device_info=None):
        if self._find(instance) is not None:
            raise driver.InstanceExistsOnHost('Instance %s already exists on host %s.'
                                              % (instance['uuid'], self.host))
        files = self.files(instance)
        created_dir = not files.exists()
        try:
            meta = files.create(instance, image, self.conf)
            dom = self._define(vconfig.domain_xml(self.conf, instance, files, meta))
            self._start(dom)
        except BaseException:
            dom = self._find(instance)
            if dom is not None:
                self._undefine(dom)
            if created_dir:
                files.remove()
            raise
        LOG.info('Spawned %s on %s', instance['uuid'], self.host)

    def _undefine(self, dom):
        try:
            if dom.isActive():
                dom.destroy()
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                raise driver.VirtDriverError('destroy failed: %s' % exc)
        flags = (libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                 | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
        try:
            try:
                dom.undefineFlags(flags)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    return
                dom.undefine()
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                raise driver.VirtDriverError('undefine failed: %s' % exc)

    def destroy(self, context, instance, destroy_disks=True):
        dom = self._find(instance)
        if dom is not None:
            self._undefine(dom)
        if destroy_disks:
            self.files(instance).remove()

    def _wait_for_shutoff(self, dom, timeout, retry_interval=0):
        deadline = time.monotonic() + timeout
        next_retry = time.monotonic() + retry_interval if retry_interval else None
        while time.monotonic() < deadline:
            if not dom.isActive():
                return True
            if next_retry is not None and time.monotonic() >= next_retry:
                try:
                    dom.shutdown()
                except libvirt.libvirtError:
                    pass
                next_retry = time.monotonic() + retry_interval
            time.sleep(0.1)
        return not dom.isActive()

    def _power_off_dom(self, dom, timeout, retry_interval=0):
        if not dom.isActive():
            return
        if timeout > 0:
            try:
                dom.shutdown()
                if self._wait_for_shutoff(dom, timeout, retry_interval):
                    return
                LOG.info('%s did not shut down within %ss; destroying it', dom.name(),
                         timeout)
            except libvirt.libvirtError as exc:
                LOG.info('Clean shutdown of %s failed (%s); destroying it', dom.name(), exc)
        try:
            dom.destroy()
        except libvirt.libvirtError as exc:
            if dom.isActive():
                raise driver.VirtDriverError('destroy of %s failed: %s' % (dom.name(), exc))

    def power_off(self, instance, timeout=0, retry_interval=0):
        dom = self.lookup(instance)
        self._power_off_dom(dom, timeout, retry_interval)

    def power_on(self, context, instance):
        dom = self.lookup(instance)
        if dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED:
            self._call('resume', dom.resume)
            return
        self._start(dom)

    def reboot(self, context, instance, reboot_type='SOFT'):
        dom = self.lookup(instance)
        if reboot_type != 'HARD' and dom.isActive() and \
                dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING:
            try:
                dom.shutdown()
                if self._wait_for_shutoff(dom, self.conf.shutdown_timeout):
                    self._start(dom)
                    return
            except libvirt.libvirtError as exc:
                LOG.info('Soft reboot of %s failed (%s); hard rebooting', instance['uuid'],
                         exc)
        if dom.isActive():
            self._call('destroy', dom.destroy)
        self._start(dom)

    def pause(self, instance):
        dom = self.lookup(instance)
        if dom.state()[0] != libvirt.VIR_DOMAIN_PAUSED:
            self._call('pause', dom.suspend)

    def unpause(self, instance):
        dom = self.lookup(instance)
        if dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED:
            self._call('unpause', dom.resume)

    def suspend(self, context, instance):
        dom = self.lookup(instance)
        if dom.isActive():
            self._call('managed save', dom.managedSave, 0)

    def resume(self, context, instance):
        dom = self.lookup(instance)
        self._start(dom)

    # ------------------------------------------------------------------ cold move

    def prepare_for_incoming_move(self, context, instance, flavor):
        info = self.conn.getInfo()
        if int(flavor['vcpus']) > int(info[2]):
            raise driver.VirtDriverError('Flavor %s needs %s vCPUs; host %s has %s.'
                                         % (flavor.get('name'), flavor['vcpus'], self.host,
                                            info[2]))
        free, _ = imagebackend.free_bytes(self.instances_path)
        need = ((flavor.get('root_gb') or 0) + (flavor.get('ephemeral_gb') or 0)) \
            * driver.GiB
        # Disks are sparse qcow2 files: only refuse when even the metadata cannot fit.
        if free < min(need, driver.GiB) // 16:
            raise driver.VirtDriverError('Not enough free space in %s on host %s.'
                                         % (self.instances_path, self.host))

    def _dest_instances_path(self, dest_host):
        lv = self.conf.libvirt
        if lv.disk_transfer == 'shared':
            return self.instances_path
        name = self.host_name_of(dest_host)
        return lv.remote_instances_paths.get(name) or \
            lv.remote_instances_paths.get(dest_host) or self.instances_path

    def migrate_disk_and_power_off(self, context, instance, dest_host, flavor,
                                   progress_callback=None):
        driver.check_flavor_disks_can_move(instance['flavor'], flavor)
        files = self.files(instance)
        dom = self._find(instance)
        power_before = None
        if dom is not None:
            power_before = map_power_state(dom.state()[0])
            self._power_off_dom(dom, self.conf.shutdown_timeout)
            # Keep the definition with the files: finish_revert_migration restores it.
            xml = self._call('XMLDesc', dom.XMLDesc, libvirt.VIR_DOMAIN_XML_INACTIVE)
            if files.exists():
                with open(files.file(imagebackend.DOMAIN_XML_FILE), 'w') as f:
                    f.write(xml)
                meta = files.read_meta() or {}
                meta['power_state_before_move'] = power_before
                files.write_meta(meta)
            if os.path.isdir(files.resize_path) and files.exists():
                shutil.rmtree(files.resize_path)  # a stale copy of an older move
            if files.exists():
                os.rename(files.path, files.resize_path)
            self._undefine(dom)
        elif files.exists() and not os.path.isdir(files.resize_path):
            # Defined nowhere but files here (a crash between undefine and rename).
            os.rename(files.path, files.resize_path)
        if not os.path.isdir(files.resize_path):
            raise driver.InstanceNotFoundOnHost(instance['uuid'], self.host)
        meta = files.read_meta(files.resize_path) or {}
        if power_before is None:
            power_before = meta.get('power_state_before_move', power_state.RUNNING)

        lv = self.conf.libvirt
        dest_path = self._dest_instances_path(dest_host)
        dest_dir = os.path.join(dest_path, instance['uuid'])
        exclude = (imagebackend.CONSOLE_LOG, imagebackend.DOMAIN_XML_FILE,
                   imagebackend.INCOMING_MARKER)
        started = time.monotonic()
        if lv.disk_transfer == 'rsync':
            address = self.address_of(self.host_name_of(dest_host), dest_host)
            imagebackend.rsync_tree(lv.rsync_command, files.resize_path, address, dest_dir,
                                    progress_callback, exclude)
        else:
            if os.path.realpath(dest_dir) == os.path.realpath(files.resize_path):
                raise driver.ResizeError('Source and destination instance directories '
                                         'are the same: %s' % dest_dir)
            shutil.rmtree(dest_dir, ignore_errors=True)
            imagebackend.copy_tree(files.resize_path, dest_dir, progress_callback, exclude)
        LOG.info('Copied the files of %s to %s:%s in %.2fs', instance['uuid'], dest_host,
                 dest_dir, time.monotonic() - started)
        return {'source_host': self.host, 'dest_host': dest_host,
                'dest_instances_path': dest_path, 'meta': meta,
                'power_state': power_before}

    def finish_migration(self, context, migration, instance, disk_info, image,
                         resize_instance, power_on=True):
        files = self.files(instance)
        if not files.exists():
            raise driver.VirtDriverError('The files of instance %s did not arrive in %s.'
                                         % (instance['uuid'], files.path))
        meta = files.read_meta() or (disk_info or {}).get('meta')
        if not meta:
            raise driver.VirtDriverError('Instance %s has no metadata in %s.'
                                         % (instance['uuid'], files.path))
        meta.pop('power_state_before_move', None)
        files.ensure_backing(meta)
        if resize_instance:
            grown = files.resize_disks(meta, instance['flavor'])
            if grown:
                LOG.info('Grew disks %s of %s', grown, instance['uuid'])
        files.write_meta(meta)
        dom = self._find(instance)
        if dom is not None:
            self._undefine(dom)
        dom = self._define(vconfig.domain_xml(self.conf, instance, files, meta))
        if power_on:
            self._start(dom)

    def confirm_migration(self, context, migration, instance):
        files = self.files(instance)
        dest = migration.get('dest_compute') if migration else None
        if dest and dest != self.host:
            dom = self._find(instance)
            if dom is not None:
                self._undefine(dom)
        files.remove_resize()

    def finish_revert_migration(self, context, instance, power_on=True):
        files = self.files(instance)
        dom = self._find(instance)
        if os.path.isdir(files.resize_path):
            if dom is not None:
                self._undefine(dom)
                dom = None
            if files.exists():
                shutil.rmtree(files.path)  # shared storage: the destination's copy
            os.rename(files.resize_path, files.path)
        if dom is None:
            if not files.exists():
                raise driver.InstanceNotFoundOnHost(instance['uuid'], self.host)
            meta = files.read_meta() or {}
            meta.pop('power_state_before_move', None)
            files.write_meta(meta)
            saved = files.file(imagebackend.DOMAIN_XML_FILE)
            if os.path.exists(saved):
                with open(saved) as f:
                    xml = f.read()
                os.unlink(saved)
            else:
                xml = vconfig.domain_xml(self.conf, instance, files, meta)
            dom = self._define(xml)
        if power_on:
            self._start(dom)
        elif dom.isActive():
            self._power_off_dom(dom, 0)

    # ------------------------------------------------------------------ live move

    def compare_cpu(self, cpu_info_src):
        info = driver.parse_cpu_info(cpu_info_src)
        own = self.get_available_resource(self.host)['cpu_info']
        if own.get('arch') and info['arch'] != own['arch']:
            raise driver.InvalidCPUInfo(
                'CPU architecture %s of the source host is incompatible with %s of host %s.'
                % (info['arch'], own['arch'], self.host))
        if self.conf.libvirt.virt_type == 'qemu' or self.conf.libvirt.skip_cpu_compare:
            return  # TCG emulates the guest CPU: any host runs it
        if not info.get('model'):
            return
        try:
            result = self.conn.compareCPU(vconfig.cpu_xml(info), 0)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT:
                return
            raise driver.InvalidCPUInfo('CPU comparison failed on host %s: %s'
                                        % (self.host, exc))
        if result == libvirt.VIR_CPU_COMPARE_INCOMPATIBLE:
            raise driver.InvalidCPUInfo('The CPU of the source host (%s %s) is not '
                                        'compatible with host %s.'
                                        % (info.get('vendor'), info.get('model'), self.host))

    def check_can_live_migrate_destination(self, context, instance, src_compute_info,
                                           dst_compute_info, block_migration=None,
                                           disk_over_commit=False):
        if src_compute_info and src_compute_info.get('cpu_info'):
            self.compare_cpu(src_compute_info['cpu_info'])
        free, _ = imagebackend.free_bytes(self.instances_path)
        return {
            'dest_host': self.host,
            'block_migration': block_migration,
            'disk_over_commit': bool(disk_over_commit),
            'dest_storage_id': imagebackend.storage_id(self.instances_path),
            'dest_instances_path': self.instances_path,
            'is_shared_block_storage': False,
            'disk_available_mb': int(free // driver.MiB),
        }

    def check_can_live_migrate_source(self, context, instance, dest_check_data):
        self.lookup(instance)
        files = self.files(instance)
        shared = dest_check_data.get('dest_storage_id') == \
            imagebackend.storage_id(self.instances_path)
        block = driver.decide_block_migration(dest_check_data.get('block_migration'), shared)
        meta = files.read_meta() or {}
        need = 0
        sizes = {}
        if block and meta:
            for disk in meta.get('disks', []):
                path = files.file(disk['name'])
                info = imagebackend.image_info(path)
                sizes[disk['name']] = info['virtual-size']
                need += os.path.getsize(path)
        available = dest_check_data.get('disk_available_mb')
        if (block and not dest_check_data.get('disk_over_commit')
                and available is not None and need // driver.MiB > available):
            raise driver.MigrationPreCheckError(
                'Unable to migrate %s: disk of instance is too large (available on '
                'destination host: %s MB < need: %s MB)'
                % (instance['uuid'], available, need // driver.MiB))
        return dict(dest_check_data, block_migration=bool(block), source_host=self.host,
                    is_shared_instance_path=shared, source_instances_path=self.instances_path,
                    instance_meta=meta, disk_sizes=sizes)

    def pre_live_migration(self, context, instance, migrate_data):
        data = dict(migrate_data or {})
        files = self.files(instance)
        if not data.get('is_shared_instance_path'):
            meta = data.get('instance_meta')
            if not meta:
                raise driver.MigrationPreCheckError('No description of the disks of %s '
                                                    'reached host %s.'
                                                    % (instance['uuid'], self.host))
            if self._find(instance) is not None:
                raise driver.MigrationPreCheckError('Instance %s is already defined on '
                                                    'host %s.' % (instance['uuid'],
                                                                  self.host))
            files.create_incoming(meta, data.get('disk_sizes') or {})
        data.update(dest_instances_path=self.instances_path, dest_prepared=True)
        return data

    def live_migration(self, context, instance, dest, migrate_data):
        self.lookup(instance)
        data = dict(migrate_data or {})
        address = self.address_of(dest, data.get('dest_host_ip'))
        uri = self.conf.libvirt.live_migration_uri
        dest_uri = uri % address if '%s' in uri else uri
        return lvmigration.LibvirtLiveMigrationJob(self, instance, dest, dest_uri, data)

    def post_live_migration(self, context, instance, migrate_data):
        dom = self._find(instance)
        if dom is not None:  # UNDEFINE_SOURCE normally did it
            self._undefine(dom)
        # Without migrate_data (a restart) storage may be shared: keep the files.
        if (migrate_data or {}).get('is_shared_instance_path') is False:
            self.files(instance).remove()

    def post_live_migration_at_destination(self, context, instance, migrate_data):
        dom = self.lookup(instance)
        files = self.files(instance)
        try:
            os.unlink(files.file(imagebackend.INCOMING_MARKER))
        except FileNotFoundError:
            pass
        if not dom.isPersistent():
            self._define(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        # A guest paused to force completion runs again; one the user paused stays so.
        if dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED and \
                instance.get('power_state') != power_state.PAUSED:
            self._call('resume', dom.resume)

    def rollback_live_migration_at_destination(self, context, instance, migrate_data):
        files = self.files(instance)
        incoming = os.path.exists(files.file(imagebackend.INCOMING_MARKER))
        dom = self._find(instance)
        if dom is not None and (incoming or not dom.isActive()):
            self._undefine(dom)
        if incoming:
            files.remove()
