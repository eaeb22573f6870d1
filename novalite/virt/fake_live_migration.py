"""Real-time simulation of a live migration between two fake hosts (the fake driver's job)."""

import logging
import time

from novalite.virt import driver, power_state

LOG = logging.getLogger(__name__)

MiB = driver.MiB
# Longest real-time step of the live migration simulation; bounds the reaction time to
# abort/force_complete and the spacing of progress reports.
_SLICE = 0.01


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

    ``failure`` is the exception an injected live_migration failure raises once some data
    has moved, after the source guest is restored.
    """

    def __init__(self, fake_driver, instance, dest, migrate_data, failure=None):
        super().__init__(instance['uuid'], dest)
        self._driver = fake_driver
        self._hv = fake_driver.hypervisor
        self._migrate_data = migrate_data
        self._failure = failure
        self.phase = 'pre-copy'
        self._paused_by_job = False
        self._reported_at = None

    def _abortable(self):
        # The guest already runs on the destination; there is no way back.
        return self.phase != 'post-copy'

    def _bandwidth(self):
        mb_s = self._hv.live_migration_bandwidth_mb_s
        cap = self._migrate_data.get('bandwidth') or \
            self._driver.conf.libvirt.live_migration_bandwidth
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
            disk = self._hv.disk_mb(guest) * MiB if data.get('block_migration') else 0
            transfer = _Transfer(guest['memory_mb'] * MiB, disk)
        timeout = data.get('completion_timeout') or 0
        throttle = 1.0
        timed_out = False
        started = last = time.monotonic()
        self._publish(progress_callback, transfer, final=True)
        while True:
            if self._abort_requested:
                self._restore_source()
                return driver.JOB_CANCELLED
            if self._failure is not None and transfer.moved():
                self._restore_source()
                raise self._failure
            if self.instance_uuid not in self._hv.guests:
                raise driver.VirtDriverError('Guest %s vanished during live migration.'
                                             % self.instance_uuid)
            if timeout and not timed_out and last - started > timeout and \
                    not self._force_requested:
                timed_out = True
                self._policy_timeout(timeout, data.get('timeout_action') or 'abort')
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
            if self.phase == 'pre-copy':
                self._policy_stalled(now, transfer.progress())

        if self._failure is not None:
            # A fast transfer finished before the failure could strike mid-way.
            self._restore_source()
            raise self._failure
        # Stop-and-copy: the guest is stopped while the last dirty pages go over.
        if transfer.dirty:
            time.sleep(transfer.dirty / self._bandwidth())
        transfer.flush()
        self._publish(progress_callback, transfer, final=True)
        with self._hv.lock:
            self._hv.guests.pop(self.instance_uuid, None)
            self._hv.save(self._driver.conf)
        return driver.JOB_COMPLETED

    def _downtime(self):
        return self._hv.max_downtime_ms / 1000.0

    def _switch_to_completion(self):
        with self._lock:
            if self._migrate_data.get('permit_post_copy') and not self._force_pause:
                self.phase = 'post-copy'
        if self.phase == 'post-copy':
            self._decide(driver.DECISION_POST_COPY, self._force_reason)
            return
        with self._hv.lock:
            guest = self._hv.guests.get(self.instance_uuid)
            if guest is not None and guest['power_state'] == power_state.RUNNING:
                guest['power_state'] = power_state.PAUSED
                self._paused_by_job = True
                self._hv.save(self._driver.conf)
        self.phase = 'paused'
        self._decide(driver.DECISION_PAUSE, self._force_reason)

    def _restore_source(self):
        if not self._paused_by_job:
            return
        with self._hv.lock:
            guest = self._hv.guests.get(self.instance_uuid)
            if guest is not None:
                guest['power_state'] = power_state.RUNNING
                self._hv.save(self._driver.conf)
        self._paused_by_job = False
