"""Live migration between two fake hosts: pre-checks, convergence, timeouts, abort."""

import threading
import time

import pytest
from virt_helpers import IMAGE, make_flavor, make_instance

from novalite.virt import driver, fake, power_state

MiB = 1024 * 1024
DISKLESS = make_flavor('diskless', memory_mb=256, root_gb=0)


def _boot(hosts, flavor=DISKLESS):
    instance = make_instance(flavor=flavor)
    hosts['host1'].spawn(None, instance, IMAGE)
    instance.update(vm_state='active', power_state=power_state.RUNNING)
    return instance


def _prepare(hosts, instance, block_migration=None, **settings):
    src, dst = hosts['host1'], hosts['host2']
    check = dst.check_can_live_migrate_destination(
        None, instance, src.get_available_resource('host1'),
        dst.get_available_resource('host2'), block_migration, False)
    migrate_data = src.check_can_live_migrate_source(None, instance, check)
    migrate_data = dst.pre_live_migration(None, instance, migrate_data)
    migrate_data.update(settings)
    return src.live_migration(None, instance, 'host2', migrate_data)


def _slow_link(hosts, bandwidth=10000, dirty=20000, downtime_ms=10):
    """256 MB guest, 25 ms rounds, 10 ms downtime: dirt faster than the link never converges."""
    hv = fake.get_hypervisor('host1')
    hosts['host1'].live_migration_bandwidth_mb_s = bandwidth
    hosts['host1'].dirty_rate_mb_s = dirty
    hv.max_downtime_ms = downtime_ms


class Runner:
    def __init__(self, job):
        self.job = job
        self.progress = []
        self.result = None
        self.thread = threading.Thread(target=self._run)
        self.started = time.monotonic()
        self.thread.start()

    def _run(self):
        self.result = self.job.run(self.progress.append)

    def wait(self, timeout=10):
        self.thread.join(timeout)
        assert not self.thread.is_alive()
        self.elapsed = time.monotonic() - self.started
        return self.result


def _finish(hosts, instance, migrate_data=None):
    hosts['host1'].post_live_migration(None, instance, migrate_data or {})
    hosts['host2'].post_live_migration_at_destination(None, instance, migrate_data or {})


def test_converges_with_block_migration(hosts):
    instance = _boot(hosts, make_flavor(memory_mb=512, root_gb=1))
    job = _prepare(hosts, instance)
    assert job.status == 'new'
    progress = []
    assert job.run(progress.append) == driver.JOB_COMPLETED
    assert job.status == driver.JOB_COMPLETED
    first, last = progress[0], progress[-1]
    assert first['memory_total'] == 512 * MiB and first['memory_processed'] == 0
    assert first['disk_total'] == 1024 * MiB
    assert last['memory_remaining'] == 0 and last['disk_remaining'] == 0
    assert last['memory_processed'] == 512 * MiB and last['disk_processed'] == 1024 * MiB
    assert job.progress == last
    # The guest left the source; the destination owns it once told so.
    assert not hosts['host1'].instance_exists(instance)
    assert not hosts['host2'].instance_exists(instance)
    _finish(hosts, instance)
    assert hosts['host2'].get_info(instance)['state'] == power_state.RUNNING
    assert hosts['host2'].get_available_resource('host2')['memory_mb_used'] == 512
    with pytest.raises(RuntimeError):
        job.run()


def test_paused_guest_arrives_paused(hosts):
    instance = _boot(hosts)
    hosts['host1'].pause(instance)
    instance['power_state'] = power_state.PAUSED
    assert _prepare(hosts, instance).run() == driver.JOB_COMPLETED
    _finish(hosts, instance)
    assert hosts['host2'].get_info(instance)['state'] == power_state.PAUSED


def test_moderate_dirty_rate_needs_rounds(hosts):
    _slow_link(hosts, dirty=300)
    instance = _boot(hosts)
    runner = Runner(_prepare(hosts, instance))
    assert runner.wait() == driver.JOB_COMPLETED
    assert runner.progress[-1]['memory_processed'] > 256 * MiB  # dirty pages resent


def test_high_dirty_rate_times_out_and_aborts(hosts):
    _slow_link(hosts)
    instance = _boot(hosts)
    runner = Runner(_prepare(hosts, instance, completion_timeout=0.3, timeout_action='abort'))
    assert runner.wait() == driver.JOB_CANCELLED
    assert runner.elapsed >= 0.3
    assert runner.progress[-1]['memory_remaining'] > 0
    assert hosts['host1'].get_info(instance)['state'] == power_state.RUNNING
    hosts['host2'].rollback_live_migration_at_destination(None, instance, {})
    hosts['host2'].rollback_live_migration_at_destination(None, instance, {})
    assert hosts['host2'].get_available_resource('host2')['memory_mb_used'] == 0


def test_timeout_force_complete_pauses_without_post_copy(hosts):
    _slow_link(hosts)
    instance = _boot(hosts)
    job = _prepare(hosts, instance, completion_timeout=0.2, timeout_action='force_complete')
    runner = Runner(job)
    assert runner.wait() == driver.JOB_COMPLETED
    assert runner.elapsed >= 0.2
    assert job.phase == 'paused'
    _finish(hosts, instance)
    assert hosts['host2'].get_info(instance)['state'] == power_state.RUNNING


def test_timeout_force_complete_uses_post_copy(hosts):
    _slow_link(hosts)
    instance = _boot(hosts)
    job = _prepare(hosts, instance, completion_timeout=0.2, timeout_action='force_complete',
                   permit_post_copy=True)
    assert Runner(job).wait() == driver.JOB_COMPLETED
    assert job.phase == 'post-copy'


def test_no_timeout_never_converges_until_forced(hosts):
    _slow_link(hosts)
    instance = _boot(hosts)
    job = _prepare(hosts, instance, completion_timeout=0)
    runner = Runner(job)
    time.sleep(0.3)
    assert runner.thread.is_alive()
    assert job.force_complete()
    assert runner.wait() == driver.JOB_COMPLETED
    assert job.phase == 'paused'
    assert not job.force_complete()  # already over


def test_force_complete_with_post_copy_cannot_be_aborted(hosts):
    _slow_link(hosts, bandwidth=1000, dirty=2000)  # 256 ms per round
    instance = _boot(hosts)
    job = _prepare(hosts, instance, permit_post_copy=True)
    runner = Runner(job)
    job.force_complete()
    deadline = time.monotonic() + 5
    while job.phase != 'post-copy' and time.monotonic() < deadline:
        time.sleep(0.001)
    assert job.phase == 'post-copy'
    assert not job.abort()
    assert runner.wait() == driver.JOB_COMPLETED


def test_auto_converge(hosts):
    _slow_link(hosts)
    instance = _boot(hosts)
    job = _prepare(hosts, instance, permit_auto_converge=True, completion_timeout=5)
    assert Runner(job).wait() == driver.JOB_COMPLETED
    assert job.phase == 'pre-copy'


def test_abort_from_another_thread(hosts):
    _slow_link(hosts)
    instance = _boot(hosts)
    job = _prepare(hosts, instance)
    runner = Runner(job)
    time.sleep(0.1)
    assert job.abort()
    assert runner.wait() == driver.JOB_CANCELLED
    assert runner.elapsed < 1
    assert hosts['host1'].get_info(instance)['state'] == power_state.RUNNING
    assert not job.abort()


def test_abort_after_pause_resumes_source(hosts):
    _slow_link(hosts, bandwidth=1000, dirty=2000)
    instance = _boot(hosts)
    job = _prepare(hosts, instance)
    runner = Runner(job)
    job.force_complete()
    deadline = time.monotonic() + 5
    while job.phase != 'paused' and time.monotonic() < deadline:
        time.sleep(0.001)
    assert hosts['host1'].get_info(instance)['state'] == power_state.PAUSED
    assert job.abort()
    assert runner.wait() == driver.JOB_CANCELLED
    assert hosts['host1'].get_info(instance)['state'] == power_state.RUNNING


def test_abort_before_run(hosts):
    instance = _boot(hosts)
    job = _prepare(hosts, instance)
    assert job.abort()
    assert job.run() == driver.JOB_CANCELLED
    assert hosts['host1'].instance_exists(instance)


def test_injected_failure(hosts):
    instance = _boot(hosts)
    hosts['host1'].inject_failure('live_migration', 'connection reset')
    job = _prepare(hosts, instance)
    assert job.run() == driver.JOB_FAILED
    assert job.error == 'connection reset'
    assert hosts['host1'].get_info(instance)['state'] == power_state.RUNNING
    # The count was one: the next attempt goes through.
    assert _prepare(hosts, instance).run() == driver.JOB_COMPLETED


def test_injected_precheck_failures(hosts):
    instance = _boot(hosts)
    hosts['host2'].inject_failure('pre_live_migration', 'vif plug failed')
    with pytest.raises(fake.FakeInjectedError):
        _prepare(hosts, instance)


def test_progress_callback_errors_do_not_break_migration(hosts):
    instance = _boot(hosts)
    job = _prepare(hosts, instance)

    def broken(progress):
        raise ValueError('bad consumer')

    assert job.run(broken) == driver.JOB_COMPLETED


def test_missing_guest(hosts):
    instance = make_instance(flavor=DISKLESS)
    with pytest.raises(driver.InstanceNotFoundOnHost):
        hosts['host1'].live_migration(None, instance, 'host2', {})


def test_block_migration_decision(hosts):
    src, dst = hosts['host1'], hosts['host2']
    instance = _boot(hosts)
    for requested in (None, 'auto', True):
        check = dst.check_can_live_migrate_destination(None, instance, {}, {}, requested)
        assert src.check_can_live_migrate_source(None, instance, check)['block_migration']
    check = dst.check_can_live_migrate_destination(None, instance, {}, {}, False)
    with pytest.raises(driver.MigrationPreCheckError, match='shared storage'):
        src.check_can_live_migrate_source(None, instance, check)


def test_destination_disk_too_small(conf, hosts):
    conf.set_override('local_gb', 10, group='fake_driver')
    instance = _boot(hosts, make_flavor(root_gb=20))
    check = hosts['host2'].check_can_live_migrate_destination(None, instance, {}, {}, None)
    with pytest.raises(driver.MigrationPreCheckError, match='too large'):
        hosts['host1'].check_can_live_migrate_source(None, instance, check)
    check['disk_over_commit'] = True
    hosts['host1'].check_can_live_migrate_source(None, instance, check)


def test_cpu_compatibility(hosts):
    src, dst = hosts['host1'], hosts['host2']
    cpu = src.get_available_resource('host1')['cpu_info']
    dst.compare_cpu(cpu)
    dst.compare_cpu('{"arch": "x86_64"}')
    fake.get_hypervisor('host2').cpu_arch = 'aarch64'
    for bad in (cpu, '{"arch": "x86_64"}', 'not json', {}):
        with pytest.raises(driver.InvalidCPUInfo):
            dst.compare_cpu(bad)
    instance = _boot(hosts)
    with pytest.raises(driver.InvalidCPUInfo):
        dst.check_can_live_migrate_destination(
            None, instance, src.get_available_resource('host1'), {}, None)


def test_guest_deleted_during_migration_fails_job(hosts):
    _slow_link(hosts)
    instance = _boot(hosts)
    runner = Runner(_prepare(hosts, instance))
    time.sleep(0.05)
    hosts['host1'].destroy(None, instance)
    assert runner.wait() == driver.JOB_FAILED
    assert 'vanished' in runner.job.error


def test_constructor_knobs_and_bandwidth_cap(conf, hosts):
    drv = fake.FakeDriver(conf, 'host1', live_migration_bandwidth_mb_s=2560,
                          dirty_rate_mb_s=0)
    assert hosts['host1'].live_migration_bandwidth_mb_s == 2560  # one hypervisor per host
    conf.set_override('live_migration_bandwidth', 1280, group='libvirt')
    instance = _boot(hosts)  # 256 MB at 1280 MB/s: 0.2 s
    start = time.monotonic()
    assert _prepare(hosts, instance).run() == driver.JOB_COMPLETED
    assert 0.18 <= time.monotonic() - start < 2
    assert drv.dirty_rate_mb_s == 0
