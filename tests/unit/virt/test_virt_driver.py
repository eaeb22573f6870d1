"""The driver interface helpers and the choice of driver."""

import sys
import types

import pytest
from virt_helpers import make_flavor, make_instance

from novalite.virt import driver, fake


def test_load_fake_driver(conf):
    drv = driver.load_driver(conf, 'host9')
    assert isinstance(drv, fake.FakeDriver)
    assert isinstance(drv, driver.ComputeDriver)
    assert drv.host == 'host9'
    assert drv.capabilities['supports_same_host_migration'] is True
    assert drv.capabilities['supports_live_migration'] is True


def test_load_libvirt_driver_unavailable(conf, monkeypatch):
    conf.set_override('compute_driver', 'libvirt', group='compute')
    monkeypatch.setitem(sys.modules, 'novalite.virt.libvirt.driver', None)
    with pytest.raises(driver.DriverNotAvailable, match='libvirt'):
        driver.load_driver(conf, 'host1')


def test_load_unknown_driver():
    conf = types.SimpleNamespace(compute=types.SimpleNamespace(compute_driver='xen'))
    with pytest.raises(driver.DriverNotAvailable, match='xen'):
        driver.load_driver(conf, 'host1')


def test_disk_shrink_check():
    old = make_flavor(root_gb=10, ephemeral_gb=5)
    driver.check_flavor_disks_can_move(old, make_flavor(root_gb=10, ephemeral_gb=5))
    driver.check_flavor_disks_can_move(old, make_flavor(root_gb=20, ephemeral_gb=6))
    for new in (make_flavor(root_gb=9, ephemeral_gb=5), make_flavor(root_gb=10)):
        with pytest.raises(driver.ResizeError, match='Unable to resize disk down.'):
            driver.check_flavor_disks_can_move(old, new)


def test_completion_timeout(conf):
    big = make_instance(flavor=make_flavor(memory_mb=4096, root_gb=20, ephemeral_gb=1))
    assert driver.completion_timeout(conf, big, block_migration=True) == 800 * (4 + 20 + 2)
    assert driver.completion_timeout(conf, big, block_migration=False) == 800 * 4
    small = make_instance(flavor=make_flavor(memory_mb=512, root_gb=0))
    assert driver.completion_timeout(conf, small, block_migration=True) == 800 * 2
    conf.set_override('live_migration_completion_timeout', 0, group='libvirt')
    assert driver.completion_timeout(conf, big, block_migration=True) == 0


def test_live_migration_settings(conf):
    conf.set_override('live_migration_permit_post_copy', True, group='libvirt')
    conf.set_override('live_migration_timeout_action', 'force_complete', group='libvirt')
    settings = driver.live_migration_settings(conf, make_instance(), False)
    assert settings == {'permit_post_copy': True, 'permit_auto_converge': False,
                        'completion_timeout': 1600, 'timeout_action': 'force_complete'}


def test_instance_not_found_message():
    exc = driver.InstanceNotFoundOnHost('abc', 'host1')
    assert str(exc) == 'Instance abc could not be found on host host1.'
    assert exc.instance_uuid == 'abc'
    assert isinstance(exc, driver.VirtDriverError)


class _BrokenJob(driver.LiveMigrationJob):
    def _run(self, progress_callback):
        raise KeyError('bug')


def test_job_driver_bug_propagates():
    job = _BrokenJob('abc', 'host2')
    with pytest.raises(KeyError):
        job.run()
    assert job.status == driver.JOB_FAILED
    assert not job.abort()
