"""The fake hypervisor: guest lifecycle, failure injection, resources, cold moves, restarts."""

import json
import os
import time

import pytest
from virt_helpers import IMAGE, make_flavor, make_instance

from novalite.virt import driver, fake, power_state


def test_lifecycle_power_states(hosts):
    drv = hosts['host1']
    instance = make_instance()
    assert not drv.instance_exists(instance)
    drv.spawn(None, instance, IMAGE)
    assert drv.instance_exists(instance)
    assert drv.list_instance_uuids() == [instance['uuid']]
    assert drv.get_info(instance) == {'state': power_state.RUNNING, 'vcpus': 1,
                                      'memory_mb': 256}
    drv.power_off(instance, timeout=60)
    assert drv.get_info(instance)['state'] == power_state.SHUTDOWN
    drv.power_off(instance)
    assert drv.get_info(instance)['state'] == power_state.SHUTDOWN
    drv.power_on(None, instance)
    assert drv.get_info(instance)['state'] == power_state.RUNNING
    drv.reboot(None, instance, 'HARD')
    assert drv.get_info(instance)['state'] == power_state.RUNNING
    drv.pause(instance)
    assert drv.get_info(instance)['state'] == power_state.PAUSED
    drv.unpause(instance)
    drv.suspend(None, instance)
    assert drv.get_info(instance)['state'] == power_state.SUSPENDED
    drv.resume(None, instance)
    assert drv.get_info(instance)['state'] == power_state.RUNNING
    drv.destroy(None, instance)
    assert not drv.instance_exists(instance)
    drv.destroy(None, instance)  # a missing guest is fine
    with pytest.raises(driver.InstanceNotFoundOnHost):
        drv.get_info(instance)
    with pytest.raises(driver.InstanceNotFoundOnHost):
        drv.power_on(None, instance)
    assert power_state.STATE_MAP[power_state.SHUTDOWN] == 'shutdown'


def test_spawn_twice_refused(hosts, booted):
    with pytest.raises(driver.InstanceExistsOnHost):
        hosts['host1'].spawn(None, booted, IMAGE)


def test_hosts_are_separate_and_registry_shared(hosts, booted):
    assert hosts['host2'].list_instance_uuids() == []
    guest = fake.get_hypervisor('host1').guest(booted['uuid'])
    assert guest['power_state'] == power_state.RUNNING
    assert guest['memory_mb'] == 256


def test_configured_failure(conf, hosts):
    conf.set_override('fail_operations', {'spawn': 'no space left'}, group='fake_driver')
    instance = make_instance()
    for _ in range(2):
        with pytest.raises(fake.FakeInjectedError, match='no space left'):
            hosts['host1'].spawn(None, instance, IMAGE)
    assert not hosts['host1'].instance_exists(instance)
    assert isinstance(fake.FakeInjectedError('x'), driver.VirtDriverError)


def test_runtime_failure_count(hosts, booted):
    drv = hosts['host1']
    drv.inject_failure('reboot', 'guest hung', count=2)
    for _ in range(2):
        with pytest.raises(fake.FakeInjectedError, match='guest hung'):
            drv.reboot(None, booted)
    drv.reboot(None, booted)
    # Injection is per host: host2 is unaffected by host1's failures.
    fake.get_hypervisor('host1').inject_failure('spawn', 'boom', count=None)
    instance = make_instance('host2')
    hosts['host2'].spawn(None, instance, IMAGE)
    for _ in range(3):
        with pytest.raises(fake.FakeInjectedError):
            drv.spawn(None, make_instance(), IMAGE)
    drv.clear_failures()
    drv.spawn(None, make_instance(), IMAGE)


def test_operation_delay(conf, hosts, booted):
    conf.set_override('operation_delay', 0.05, group='fake_driver')
    start = time.monotonic()
    hosts['host1'].power_off(booted)
    assert time.monotonic() - start >= 0.05


def test_operations_wait_only_when_a_delay_is_set(hosts, conf, monkeypatch):
    # What the option does, not how fast this machine is: no sleep without a delay,
    # one sleep of the configured length per operation with one.
    from novalite.virt import fake
    slept = []
    monkeypatch.setattr(fake.time, 'sleep', slept.append)
    drv = hosts['host1']
    for _ in range(5):
        drv.spawn(None, make_instance(), IMAGE)
    assert slept == []
    conf.set_override('operation_delay', 0.5, group='fake_driver')
    drv.spawn(None, make_instance(), IMAGE)
    assert slept == [0.5]


def test_resource_reporting(conf, hosts):
    conf.set_override('vcpus', 8, group='fake_driver')
    drv = hosts['host1']
    flavor = make_flavor(vcpus=2, memory_mb=1024, root_gb=10, ephemeral_gb=5, swap=512)
    a, b = make_instance(flavor=flavor), make_instance(flavor=flavor)
    drv.spawn(None, a, IMAGE)
    drv.spawn(None, b, IMAGE)
    drv.power_off(b)
    res = drv.get_available_resource('host1')
    assert res['vcpus'] == 8
    assert res['memory_mb'] == conf.fake_driver.memory_mb
    assert res['local_gb'] == conf.fake_driver.local_gb
    assert (res['vcpus_used'], res['memory_mb_used'], res['running_vms']) == (2, 1024, 1)
    assert res['local_gb_used'] == 31  # 2 x (10 + 5 + 0.5) GB
    assert res['hypervisor_type'] == 'fake'
    assert res['hypervisor_hostname'] == 'host1'
    assert res['cpu_info']['arch'] == 'x86_64'
    assert isinstance(res['cpu_info']['features'], list)
    assert drv.get_available_nodes() == ['host1']
    json.dumps(res)


def _cold_move(src, dst, instance, new_flavor, migration=None):
    migration = migration or {'uuid': 'm1', 'source_compute': src.host,
                              'dest_compute': dst.host, 'source_node': src.host,
                              'dest_node': dst.host, 'status': 'migrating'}
    copied = []
    disk_info = src.migrate_disk_and_power_off(None, instance, dst.host, new_flavor,
                                               lambda done, total: copied.append((done, total)))
    json.dumps(disk_info)
    total = copied[0][1]
    assert total > 0 and {t for _, t in copied} == {total} and len(copied) > 2
    assert copied[0][0] == 0 and copied[-1][0] == total and copied == sorted(copied)
    old_flavor = instance['flavor']
    instance['flavor'] = new_flavor
    resize = new_flavor != old_flavor
    dst.finish_migration(None, migration, instance, disk_info, IMAGE, resize, power_on=True)
    return migration, old_flavor


def test_cold_migration_and_confirm(hosts, booted):
    src, dst = hosts['host1'], hosts['host2']
    bigger = make_flavor('big', vcpus=4, memory_mb=2048, root_gb=20)
    migration, _ = _cold_move(src, dst, booted, bigger)
    assert not src.instance_exists(booted)
    guest = fake.get_hypervisor('host2').guest(booted['uuid'])
    assert (guest['vcpus'], guest['memory_mb'], guest['root_gb']) == (4, 2048, 20)
    assert guest['power_state'] == power_state.RUNNING
    # The source still holds the disk for a revert until the move is confirmed.
    assert src.get_available_resource('host1')['local_gb_used'] == 1
    src.confirm_migration(None, migration, booted)
    src.confirm_migration(None, migration, booted)
    assert src.get_available_resource('host1')['local_gb_used'] == 0


def test_cold_migration_stopped_guest(hosts, booted):
    src, dst = hosts['host1'], hosts['host2']
    src.power_off(booted)
    disk_info = src.migrate_disk_and_power_off(None, booted, 'host2', booted['flavor'])
    assert disk_info['power_state'] == power_state.SHUTDOWN
    dst.finish_migration(None, {}, booted, disk_info, IMAGE, False, power_on=False)
    assert dst.get_info(booted)['state'] == power_state.SHUTDOWN


def test_resize_down_refused(hosts, booted):
    src = hosts['host1']
    for smaller in (make_flavor(root_gb=0), make_flavor(root_gb=1, ephemeral_gb=0)):
        booted['flavor'] = make_flavor(root_gb=1, ephemeral_gb=1)
        with pytest.raises(driver.ResizeError, match='Unable to resize disk down.'):
            src.migrate_disk_and_power_off(None, booted, 'host2', smaller)
    # Nothing was touched.
    assert src.get_info(booted)['state'] == power_state.RUNNING


def test_revert_restores_source(hosts, booted):
    src, dst = hosts['host1'], hosts['host2']
    _, old_flavor = _cold_move(src, dst, booted, make_flavor('big', vcpus=2, root_gb=2))
    dst.destroy(None, booted)
    booted['flavor'] = old_flavor
    src.finish_revert_migration(None, booted, power_on=True)
    src.finish_revert_migration(None, booted, power_on=True)  # a retry is harmless
    assert not dst.instance_exists(booted)
    assert src.get_info(booted) == {'state': power_state.RUNNING, 'vcpus': 1,
                                    'memory_mb': 256}


def test_same_host_resize_revert_and_confirm(hosts, booted):
    drv = hosts['host1']
    assert drv.capabilities['supports_same_host_migration']
    _, old_flavor = _cold_move(drv, drv, booted, make_flavor('big', vcpus=2, root_gb=2))
    assert drv.get_info(booted)['vcpus'] == 2
    drv.destroy(None, booted)
    booted['flavor'] = old_flavor
    drv.finish_revert_migration(None, booted, power_on=False)
    assert drv.get_info(booted) == {'state': power_state.SHUTDOWN, 'vcpus': 1,
                                    'memory_mb': 256}
    migration, _ = _cold_move(drv, drv, booted, make_flavor('big', vcpus=2, root_gb=2))
    drv.confirm_migration(None, migration, booted)
    assert drv.get_info(booted)['vcpus'] == 2
    assert drv.get_available_resource('host1')['local_gb_used'] == 2


def test_disk_copy_takes_time(conf, hosts, booted):
    conf.set_override('disk_copy_mb_per_s', 1024 / 0.2, group='fake_driver')  # 1 GB: 0.2 s
    start = time.monotonic()
    hosts['host1'].migrate_disk_and_power_off(None, booted, 'host2', booted['flavor'])
    assert 0.15 <= time.monotonic() - start < 2


def test_migrate_disk_retry_after_crash(hosts, booted):
    src = hosts['host1']
    first = src.migrate_disk_and_power_off(None, booted, 'host2', booted['flavor'])
    again = src.migrate_disk_and_power_off(None, booted, 'host2', booted['flavor'])
    assert first == again
    assert first['power_state'] == power_state.RUNNING


def test_injected_cold_move_failure_leaves_guest(hosts, booted):
    src = hosts['host1']
    src.inject_failure('migrate_disk_and_power_off', 'copy failed')
    with pytest.raises(fake.FakeInjectedError):
        src.migrate_disk_and_power_off(None, booted, 'host2', booted['flavor'])
    assert src.get_info(booted)['state'] == power_state.RUNNING


def test_persistence_across_restart(conf, hosts, booted):
    src, dst = hosts['host1'], hosts['host2']
    stopped = make_instance()
    src.spawn(None, stopped, IMAGE)
    src.power_off(stopped)
    moving = make_instance()
    src.spawn(None, moving, IMAGE)
    src.migrate_disk_and_power_off(None, moving, 'host2', moving['flavor'])
    path = os.path.join(conf.state_path, 'fake', 'host1.json')
    assert os.path.exists(path)
    assert not [n for n in os.listdir(os.path.dirname(path)) if n.startswith('.')]

    fake.reset_hypervisors()  # the process dies
    again = fake.FakeDriver(conf, 'host1')
    assert again.list_instance_uuids() == []
    again.init_host('host1')
    assert sorted(again.list_instance_uuids()) == sorted([booted['uuid'], stopped['uuid']])
    assert again.get_info(stopped)['state'] == power_state.SHUTDOWN
    again.finish_revert_migration(None, moving)
    assert again.get_info(moving)['state'] == power_state.RUNNING
    assert dst.list_instance_uuids() == []


def test_no_persistence_when_disabled(conf, hosts):
    conf.set_override('persist', False, group='fake_driver')
    hosts['host1'].spawn(None, make_instance(), IMAGE)
    assert not os.path.exists(os.path.join(conf.state_path, 'fake', 'host1.json'))
    fake.reset_hypervisors()
    again = fake.FakeDriver(conf, 'host1')
    again.init_host('host1')
    assert again.list_instance_uuids() == []
