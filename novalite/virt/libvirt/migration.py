"""Live migration through libvirt: flags, destination XML and the job monitor.

The job starts virDomainMigrateToURI3 (peer-to-peer: the source libvirtd talks to the
destination libvirtd) in a worker thread and, from the thread that called run(),
watches virDomainGetJobStats, turning the byte counters into progress dicts. abort()
becomes virDomainAbortJob; force_complete() becomes virDomainMigrateStartPostCopy when
post-copy is permitted, else the guest is paused so the copy converges. The completion
timeout and the stall detection of the migration's policy (migrate_data) trigger the
same actions.
"""

import logging
import threading
import time

from novalite.virt import driver
from novalite.virt.libvirt import config as vconfig

LOG = logging.getLogger(__name__)

POLL_INTERVAL = 0.2  # seconds between checks for abort/force/timeout requests


def migration_flags(libvirt, migrate_data, conf, block_devs, incremental):
    """The VIR_MIGRATE_* flags for one live migration."""
    flags = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
             | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)
    if migrate_data.get('block_migration') and block_devs:
        flags |= (libvirt.VIR_MIGRATE_NON_SHARED_INC if incremental
                  else libvirt.VIR_MIGRATE_NON_SHARED_DISK)
    elif conf.libvirt.live_migration_allow_unsafe:
        flags |= libvirt.VIR_MIGRATE_UNSAFE
    if migrate_data.get('permit_post_copy'):
        flags |= libvirt.VIR_MIGRATE_POSTCOPY
    elif migrate_data.get('permit_auto_converge'):
        flags |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
    return flags


def migration_params(libvirt, dom, migrate_data, conf, source_path, dest_path,
                     block_devs):
    """VIR_MIGRATE_PARAM_* dict: destination XML with paths moved to the destination's
    instances directory, the disks to copy and the bandwidth cap."""
    live_xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE | libvirt.VIR_DOMAIN_XML_SECURE)
    persist_xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE
                              | libvirt.VIR_DOMAIN_XML_SECURE
                              | libvirt.VIR_DOMAIN_XML_INACTIVE)
    if dest_path and source_path and dest_path != source_path:
        live_xml = vconfig.relocate(live_xml, source_path, dest_path)
        persist_xml = vconfig.relocate(persist_xml, source_path, dest_path)
    params = {libvirt.VIR_MIGRATE_PARAM_DEST_XML: live_xml,
              libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: persist_xml}
    if migrate_data.get('block_migration') and block_devs:
        params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] = list(block_devs)
    bandwidth = migrate_data.get('bandwidth') or conf.libvirt.live_migration_bandwidth
    if bandwidth:
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = int(bandwidth)
    return params


def progress_from_stats(stats):
    keys = ('memory_total', 'memory_processed', 'memory_remaining',
            'disk_total', 'disk_processed', 'disk_remaining')
    return {k: int(stats.get(k) or 0) for k in keys}


class LibvirtLiveMigrationJob(driver.LiveMigrationJob):
    """One outgoing live migration of a libvirt guest."""

    def __init__(self, lv_driver, instance, dest, dest_uri, migrate_data):
        super().__init__(instance['uuid'], dest)
        self._driver = lv_driver
        self._libvirt = lv_driver.libvirt
        self._instance = instance
        self.dest_uri = dest_uri
        self._migrate_data = dict(migrate_data or {})
        self.phase = 'pre-copy'
        self.flags = None
        self.params = None
        self._paused_by_job = False
        self._migrate_error = None
        self._abort_sent = False
        self._timeout_fired = False
        self._force_waiting = False

    def _abortable(self):
        return self.phase != 'post-copy'

    # -- the migration itself -------------------------------------------------------------

    def _prepare(self, dom):
        lv, data, conf = self._libvirt, self._migrate_data, self._driver.conf
        source_path = self._driver.files(self._instance).path
        dest_path = None
        if data.get('dest_instances_path'):
            dest_path = data['dest_instances_path'].rstrip('/') + '/' + self.instance_uuid
        xml = dom.XMLDesc(0)
        block_devs = vconfig.local_disk_targets(xml, self._driver.instances_path)
        meta = self._driver.files(self._instance).read_meta() or {}
        incremental = any(d.get('base') for d in meta.get('disks', []))
        self.flags = migration_flags(lv, data, conf, block_devs, incremental)
        self.params = migration_params(lv, dom, data, conf, source_path, dest_path,
                                       block_devs)
        try:
            dom.migrateSetMaxDowntime(conf.libvirt.live_migration_downtime, 0)
        except lv.libvirtError as exc:
            LOG.debug('Could not set the max downtime of %s: %s', self.instance_uuid, exc)

    def _migrate(self, dom):
        try:
            dom.migrateToURI3(self.dest_uri, self.params, self.flags)
        except self._libvirt.libvirtError as exc:
            self._migrate_error = exc
        except Exception as exc:  # a bug must still end the monitor
            self._migrate_error = exc
        finally:
            self._wake.set()

    def _run(self, progress_callback):
        dom = self._driver.lookup(self._instance)
        self._prepare(dom)
        LOG.info('Live migrating %s to %s (flags %#x)', self.instance_uuid, self.dest_uri,
                 self.flags)
        worker = threading.Thread(target=self._migrate, args=(dom,), daemon=True,
                                  name='migrate-%s' % self.instance_uuid)
        started = time.monotonic()
        self._report(progress_callback, **driver.empty_progress())
        worker.start()
        timeout = self._migrate_data.get('completion_timeout') or 0
        action = self._migrate_data.get('timeout_action') or 'abort'
        interval = self._driver.conf.libvirt.live_migration_monitor_interval
        last_read = 0.0
        while worker.is_alive():
            self._wake.wait(POLL_INTERVAL)
            self._wake.clear()
            if not worker.is_alive():
                break
            now = time.monotonic()
            if timeout and not self._timeout_fired and now - started > timeout:
                self._timeout_fired = True
                LOG.warning('Live migration of %s exceeded %ss: %s', self.instance_uuid,
                            timeout, action)
                self._policy_timeout(timeout, action)
            forcing = self._force_requested and self.phase == 'pre-copy'
            if now - last_read >= interval or forcing:
                last_read = now
                self._read_stats(dom, progress_callback)
                if self.phase == 'pre-copy':
                    self._policy_stalled(now)
                    forcing = self._force_requested and self.phase == 'pre-copy'
            if self._abort_requested and not self._abort_sent:
                self._try_abort(dom)
            elif forcing:
                self._try_force(dom)
        worker.join()
        error = self._migrate_error
        if error is None:
            final = dict(self.progress)
            for kind in ('memory', 'disk'):
                if final.get(kind + '_total'):
                    final[kind + '_processed'] = max(final[kind + '_processed'],
                                                     final[kind + '_total'])
                final[kind + '_remaining'] = 0
            self._report(progress_callback, **final)
            LOG.info('Live migration of %s to %s completed in %.1fs', self.instance_uuid,
                     self.dest_uri, time.monotonic() - started)
            return driver.JOB_COMPLETED
        self._restore_source(dom)
        if self._abort_requested:
            LOG.info('Live migration of %s cancelled: %s', self.instance_uuid, error)
            if self._timeout_fired:
                self.error = 'Live migration timed out after %ss: %s' % (timeout, error)
            return driver.JOB_CANCELLED
        raise driver.VirtDriverError('Live migration of %s to %s failed: %s'
                                     % (self.instance_uuid, self.dest, error))

    # -- monitor actions ---------------------------------------------------------------------

    def _read_stats(self, dom, progress_callback):
        lv = self._libvirt
        try:
            stats = dom.jobStats(0)
        except lv.libvirtError as exc:
            LOG.debug('jobStats of %s failed: %s', self.instance_uuid, exc)
            return
        if not stats or stats.get('type', 0) == lv.VIR_DOMAIN_JOB_NONE:
            return
        self._report(progress_callback, **progress_from_stats(stats))

    def _try_abort(self, dom):
        lv = self._libvirt
        try:
            dom.abortJob()
            self._abort_sent = True
            LOG.info('Aborted the live migration of %s', self.instance_uuid)
        except lv.libvirtError as exc:
            # No job yet (the migration is starting): try again on the next poll.
            LOG.debug('abortJob of %s: %s', self.instance_uuid, exc)

    def _try_force(self, dom):
        lv = self._libvirt
        if self.flags & lv.VIR_MIGRATE_POSTCOPY and not self._force_pause:
            if not self.progress.get('memory_processed'):
                # Disks are still being copied: QEMU can only switch to post-copy once
                # memory is being sent. The request stands until then.
                if not self._force_waiting:
                    self._force_waiting = True
                    LOG.info('Live migration of %s will switch to post-copy when its '
                             'memory copy starts', self.instance_uuid)
                return
            try:
                dom.migrateStartPostCopy(0)
            except lv.libvirtError as exc:
                LOG.debug('migrateStartPostCopy of %s: %s', self.instance_uuid, exc)
                return
            with self._lock:
                self.phase = 'post-copy'
            self._decide(driver.DECISION_POST_COPY, self._force_reason)
            return
        try:
            state = dom.state()[0]
            if state == lv.VIR_DOMAIN_RUNNING:
                dom.suspend()
                self._paused_by_job = True
        except lv.libvirtError as exc:
            LOG.debug('Pausing %s to force completion: %s', self.instance_uuid, exc)
            return
        self.phase = 'paused'
        self._decide(driver.DECISION_PAUSE, self._force_reason)

    def _restore_source(self, dom):
        if not self._paused_by_job:
            return
        try:
            dom.resume()
        except self._libvirt.libvirtError as exc:
            LOG.warning('Could not resume %s after a failed migration: %s',
                        self.instance_uuid, exc)
        self._paused_by_job = False
