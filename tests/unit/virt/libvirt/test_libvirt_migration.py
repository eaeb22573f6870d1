"""The live-migration job: flags, destination XML and the monitor (progress, abort,
force-complete, completion timeout), driven by a scripted domain since libvirt's test
hypervisor cannot migrate."""

import threading
import time

import pytest
from virt_helpers import make_flavor, make_instance

from novalite.virt import driver
from novalite.virt.libvirt import migration as lvmigration

try:
    import libvirt
except ImportError:  # the autouse libvirt_module fixture skips (or fails) the tests
    libvirt = None


GiB = 1024 ** 3


class ScriptedDomain:
    """A running domain whose migration advances 1/steps of memory per jobStats() call
    and ends when complete or aborted; with never_converges it stalls at the last step
    until switched to post-copy or paused."""

    def __init__(self, xml, fail=None, steps=10, never_converges=False, disk_polls=0):
        self.xml = xml
        self.fail = fail
        self.steps = steps
        self.never_converges = never_converges
        self.calls = []
        self.state_code = libvirt.VIR_DOMAIN_RUNNING
        self.done = threading.Event()
        self.aborted = False
        self.progress = 0
        self.job_started = threading.Event()
        self.post_copy = False
        self.stats_calls = 0
        self.disk_polls = disk_polls
        self.postcopy_attempts = 0

    def XMLDesc(self, flags=0):
        return self.xml

    def state(self):
        return [self.state_code, 0]

    def migrateSetMaxDowntime(self, ms, flags=0):
        self.calls.append(('downtime', ms))

    def migrateToURI3(self, uri, params, flags):
        self.calls.append(('migrate', uri, params, flags))
        self.job_started.set()
        if self.fail:
            raise libvirt.libvirtError(self.fail)
        if not self.done.wait(10):
            raise libvirt.libvirtError('scripted migration never ended')
        if self.aborted:
            raise libvirt.libvirtError("operation aborted: job 'migration out' canceled")

    def jobStats(self, flags=0):
        if not self.job_started.is_set() or self.done.is_set():
            return {'type': libvirt.VIR_DOMAIN_JOB_NONE}
        self.stats_calls += 1
        if self.stats_calls <= self.disk_polls:  # block migration: disks go first
            return {'type': libvirt.VIR_DOMAIN_JOB_UNBOUNDED, 'memory_total': 0,
                    'memory_processed': 0, 'memory_remaining': 0, 'disk_total': GiB,
                    'disk_processed': GiB * self.stats_calls // self.disk_polls,
                    'disk_remaining': GiB - GiB * self.stats_calls // self.disk_polls}
        converging = not self.never_converges or self.post_copy or \
            self.state_code == libvirt.VIR_DOMAIN_PAUSED
        # A migration that never converges stalls just before the end.
        self.progress = min(self.steps if converging else self.steps - 1, self.progress + 1)
        total = 128 * 1024 ** 2
        done = total * self.progress // self.steps
        if self.progress >= self.steps:
            self.done.set()
        return {'type': libvirt.VIR_DOMAIN_JOB_UNBOUNDED, 'memory_total': total,
                'memory_processed': done, 'memory_remaining': total - done,
                'disk_total': 0, 'disk_processed': 0, 'disk_remaining': 0}

    def abortJob(self):
        if not self.job_started.is_set():
            raise libvirt.libvirtError('Requested operation is not valid: no job is active')
        self.calls.append(('abortJob',))
        self.aborted = True
        self.done.set()

    def migrateStartPostCopy(self, flags=0):
        self.postcopy_attempts += 1
        if not self.progress:
            raise libvirt.libvirtError('too early')
        self.calls.append(('postcopy',))
        self.post_copy = True

    def suspend(self):
        self.calls.append(('suspend',))
        self.state_code = libvirt.VIR_DOMAIN_PAUSED

    def resume(self):
        self.calls.append(('resume',))
        self.state_code = libvirt.VIR_DOMAIN_RUNNING


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch):
    monkeypatch.setattr(lvmigration, 'POLL_INTERVAL', 0.02)


@pytest.fixture
def source(hosts, kernel_image, qemu_img):
    a = hosts['hostA']
    inst = make_instance(host='hostA', flavor=make_flavor(memory_mb=128))
    a.spawn(None, inst, kernel_image)
    xml = a.lookup(inst).XMLDesc(0)
    return a, inst, xml


def _job(source, monkeypatch, dom, **data):
    a, inst, _ = source
    monkeypatch.setattr(a, 'lookup', lambda instance: dom)
    base = {'block_migration': True, 'dest_instances_path': '/dest/instances',
            'dest_host_ip': '10.0.0.9', 'completion_timeout': 0, 'timeout_action': 'abort'}
    base.update(data)
    return a.live_migration(None, inst, 'hostB', base)


def test_flags_params_and_progress_of_a_block_migration(source, monkeypatch, lv_conf):
    a, inst, xml = source
    lv_conf.set_override('live_migration_bandwidth', 50, group='libvirt')
    dom = ScriptedDomain(xml)
    job = _job(source, monkeypatch, dom, permit_auto_converge=True)
    assert job.dest_uri == 'qemu+tcp://127.0.0.3/system'  # host_addresses wins
    seen = []
    assert job.run(seen.append) == driver.JOB_COMPLETED
    (_, uri, params, flags), = [c for c in dom.calls if c[0] == 'migrate']
    want = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
            | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
            | libvirt.VIR_MIGRATE_NON_SHARED_DISK | libvirt.VIR_MIGRATE_AUTO_CONVERGE)
    assert flags == want
    assert params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] == ['vda']
    assert params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] == 50
    dest_xml = params[libvirt.VIR_MIGRATE_PARAM_DEST_XML]
    assert '/dest/instances/%s/disk' % inst['uuid'] in dest_xml
    assert a.files(inst).path not in dest_xml
    assert ('downtime', 500) in dom.calls
    processed = [p['memory_processed'] for p in seen]
    assert processed == sorted(processed) and seen[-1]['memory_remaining'] == 0
    assert seen[-1]['memory_processed'] == seen[-1]['memory_total'] > 0


def test_shared_storage_and_post_copy_flags(source, monkeypatch, lv_conf):
    lv_conf.set_override('live_migration_allow_unsafe', True, group='libvirt')
    dom = ScriptedDomain(source[2])
    job = _job(source, monkeypatch, dom, block_migration=False, permit_post_copy=True,
               permit_auto_converge=True, dest_instances_path=source[0].instances_path)
    assert job.run() == driver.JOB_COMPLETED
    (_, _, params, flags), = [c for c in dom.calls if c[0] == 'migrate']
    assert flags & libvirt.VIR_MIGRATE_UNSAFE and flags & libvirt.VIR_MIGRATE_POSTCOPY
    assert not flags & (libvirt.VIR_MIGRATE_NON_SHARED_DISK | libvirt.VIR_MIGRATE_NON_SHARED_INC
                        | libvirt.VIR_MIGRATE_AUTO_CONVERGE)
    assert libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS not in params


def test_abort_cancels_and_the_guest_stays(source, monkeypatch):
    dom = ScriptedDomain(source[2], steps=10 ** 6)
    job = _job(source, monkeypatch, dom)
    result = []
    t = threading.Thread(target=lambda: result.append(job.run()))
    t.start()
    assert dom.job_started.wait(5)
    time.sleep(0.1)
    assert job.abort()
    t.join(10)
    assert result == [driver.JOB_CANCELLED] and job.error is None
    assert ('abortJob',) in dom.calls
    assert not job.abort()  # finished


def test_force_complete_switches_to_post_copy(source, monkeypatch):
    dom = ScriptedDomain(source[2], never_converges=True)
    job = _job(source, monkeypatch, dom, permit_post_copy=True)
    result = []
    t = threading.Thread(target=lambda: result.append(job.run()))
    t.start()
    assert dom.job_started.wait(5)
    time.sleep(0.1)
    assert job.force_complete()
    t.join(10)
    assert result == [driver.JOB_COMPLETED] and ('postcopy',) in dom.calls
    assert job.phase == 'post-copy' and not job.abort()


def test_force_complete_without_post_copy_pauses_the_guest(source, monkeypatch):
    dom = ScriptedDomain(source[2], never_converges=True)
    job = _job(source, monkeypatch, dom)
    job.force_complete()  # before run: applied as soon as the job runs
    assert job.run() == driver.JOB_COMPLETED
    assert ('suspend',) in dom.calls and job.phase == 'paused'


def test_completion_timeout_aborts(source, monkeypatch):
    dom = ScriptedDomain(source[2], never_converges=True)
    job = _job(source, monkeypatch, dom, completion_timeout=0.5, timeout_action='abort')
    assert job.run() == driver.JOB_CANCELLED
    assert 'timed out' in job.error


def test_completion_timeout_force_completes(source, monkeypatch):
    dom = ScriptedDomain(source[2], never_converges=True)
    job = _job(source, monkeypatch, dom, completion_timeout=0.5,
               timeout_action='force_complete')
    assert job.run() == driver.JOB_COMPLETED
    assert ('suspend',) in dom.calls


def test_failed_migration_resumes_a_guest_it_paused(source, monkeypatch):
    dom = ScriptedDomain(source[2], fail='unable to connect to server')
    job = _job(source, monkeypatch, dom)
    job.force_complete()
    assert job.run() == driver.JOB_FAILED
    assert 'unable to connect' in job.error
    assert dom.state_code == libvirt.VIR_DOMAIN_RUNNING


def test_flags_helper_incremental_copy():
    class Conf:
        class libvirt:
            live_migration_allow_unsafe = False
    flags = lvmigration.migration_flags(libvirt, {'block_migration': True}, Conf, ['vda'],
                                        incremental=True)
    assert flags & libvirt.VIR_MIGRATE_NON_SHARED_INC
    assert not flags & libvirt.VIR_MIGRATE_NON_SHARED_DISK


def test_force_complete_during_the_disk_copy_waits_for_memory(source, monkeypatch):
    dom = ScriptedDomain(source[2], never_converges=True, disk_polls=5)
    job = _job(source, monkeypatch, dom, permit_post_copy=True)
    job.force_complete()
    seen = []
    assert job.run(seen.append) == driver.JOB_COMPLETED
    assert dom.postcopy_attempts == 1 and job.phase == 'post-copy'
    assert any(p['disk_processed'] and not p['memory_processed'] for p in seen)
