"""LibvirtDriver against libvirt's test:/// hypervisor: one node XML per fake host."""

import os
import time

import pytest
from virt_helpers import make_flavor, make_instance

from novalite.virt import driver, power_state
from novalite.virt.libvirt import config as vconfig
from novalite.virt.libvirt import imagebackend


def _dom_summary(drv, inst):
    return vconfig.summary(drv.lookup(inst).XMLDesc(0))


@pytest.fixture
def spawned(hosts, kernel_image, qemu_img):
    inst = make_instance(host='hostA', flavor=make_flavor(vcpus=1, memory_mb=128, root_gb=1))
    hosts['hostA'].spawn(None, inst, kernel_image)
    inst.update(vm_state='active', power_state=power_state.RUNNING)
    return inst


def test_load_driver_builds_the_libvirt_driver(lv_conf, tmp_path):
    from lv_helpers import write_node

    from novalite.virt.libvirt.driver import LibvirtDriver
    lv_conf.set_override('compute_driver', 'libvirt', group='compute')
    lv_conf.set_override('connection_uri', write_node(tmp_path / 'n.xml'), group='libvirt')
    assert isinstance(driver.load_driver(lv_conf, 'h'), LibvirtDriver)


def test_host_resources_come_from_the_connection(hosts):
    res = hosts['hostB'].get_available_resource('hostB')
    assert (res['vcpus'], res['memory_mb']) == (4, 8192)
    assert res['vcpus_used'] == 0 and res['running_vms'] == 0
    assert res['hypervisor_type'] == 'TEST'
    assert res['hypervisor_hostname'] == 'hostB'
    assert res['host_ip'] == '127.0.0.3'
    assert res['local_gb'] > 0 and res['cpu_info']['arch']
    assert hosts['hostA'].get_available_nodes() == ['hostA']


def test_spawn_defines_and_starts_from_the_flavor(hosts, spawned):
    a = hosts['hostA']
    assert a.get_info(spawned) == {'state': power_state.RUNNING, 'vcpus': 1,
                                   'memory_mb': 128}
    assert spawned['uuid'] in a.list_instance_uuids()
    assert a.instance_exists(spawned) and not hosts['hostB'].instance_exists(spawned)
    files = a.files(spawned)
    assert sorted(os.listdir(files.path)) == ['disk', 'kernel', 'novalite.json', 'ramdisk']
    s = _dom_summary(a, spawned)
    assert s['kernel'] == files.file('kernel') and s['console_log'] == files.console_log
    res = a.get_available_resource('hostA')
    assert (res['vcpus_used'], res['memory_mb_used'], res['running_vms']) == (1, 128, 1)
    with pytest.raises(driver.InstanceExistsOnHost):
        a.spawn(None, spawned, None)


def test_failed_spawn_leaves_nothing(hosts, qemu_img):
    inst = make_instance()
    with pytest.raises(driver.VirtDriverError):
        hosts['hostA'].spawn(None, inst, {'uuid': 'x', 'location': '/no/such/image'})
    assert not hosts['hostA'].instance_exists(inst)
    assert not os.path.exists(hosts['hostA'].files(inst).path)


def test_power_operations(hosts, spawned):
    a = hosts['hostA']
    a.power_off(spawned)
    assert a.get_info(spawned)['state'] == power_state.SHUTDOWN
    a.power_off(spawned, timeout=2)  # already off: stays off
    a.power_on(None, spawned)
    assert a.get_info(spawned)['state'] == power_state.RUNNING
    a.power_off(spawned, timeout=2, retry_interval=1)  # clean shutdown
    assert a.get_info(spawned)['state'] == power_state.SHUTDOWN
    a.power_on(None, spawned)
    for kind in ('SOFT', 'HARD'):
        a.reboot(None, spawned, kind)
        assert a.get_info(spawned)['state'] == power_state.RUNNING
    a.pause(spawned)
    assert a.get_info(spawned)['state'] == power_state.PAUSED
    a.unpause(spawned)
    a.suspend(None, spawned)
    assert a.get_info(spawned)['state'] == power_state.SUSPENDED
    a.resume(None, spawned)
    assert a.get_info(spawned)['state'] == power_state.RUNNING


def test_destroy_removes_guest_and_files_and_is_repeatable(hosts, spawned):
    a = hosts['hostA']
    a.destroy(None, spawned)
    assert not a.instance_exists(spawned)
    assert not os.path.exists(a.files(spawned).path)
    a.destroy(None, spawned)
    for call in (lambda: a.get_info(spawned), lambda: a.power_on(None, spawned),
                 lambda: a.power_off(spawned), lambda: a.reboot(None, spawned)):
        with pytest.raises(driver.InstanceNotFoundOnHost):
            call()


def test_lifecycle_events_are_recorded(hosts, spawned):
    a = hosts['hostA']
    seen = []
    a.register_event_listener(lambda uuid, name, state: seen.append((uuid, name)))
    a.power_off(spawned)
    deadline = time.monotonic() + 5
    while (spawned['uuid'], 'stopped') not in seen and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (spawned['uuid'], 'stopped') in seen
    assert any(e[1] == spawned['uuid'] and e[2] == 'started' for e in a.recent_events())


# ------------------------------------------------------------------------- cold move

def _resize(hosts, inst, new_flavor, progress):
    a, b = hosts['hostA'], hosts['hostB']
    b.prepare_for_incoming_move(None, inst, new_flavor)
    disk_info = a.migrate_disk_and_power_off(None, inst, '127.0.0.3', new_flavor,
                                             progress_callback=lambda done, total:
                                             progress.append(done * 100 // total))
    moved = dict(inst, flavor=new_flavor, host='hostB', node='hostB')
    b.finish_migration(None, {'dest_compute': 'hostB', 'source_compute': 'hostA'}, moved,
                       disk_info, None, True)
    return moved


def test_resize_between_two_hosts_then_confirm(hosts, spawned):
    a, b = hosts['hostA'], hosts['hostB']
    new = make_flavor(name='bigger', vcpus=2, memory_mb=256, root_gb=2, ephemeral_gb=1)
    progress = []
    moved = _resize(hosts, spawned, new, progress)
    assert progress[0] == 0 and progress[-1] == 100
    # Source: guest undefined, files kept aside for a revert.
    assert not a.instance_exists(spawned)
    assert os.path.isdir(a.files(spawned).resize_path)
    # Destination: new flavor, grown root disk, new ephemeral disk, running.
    assert b.get_info(moved) == {'state': power_state.RUNNING, 'vcpus': 2,
                                 'memory_mb': 256}
    files = b.files(moved)
    assert imagebackend.image_info(files.file('disk'))['virtual-size'] == 2 * 1024 ** 3
    assert os.path.exists(files.file('disk.eph0'))
    assert [d['dev'] for d in _dom_summary(b, moved)['disks']] == ['vda', 'vdb']
    assert _dom_summary(b, moved)['kernel'] == files.file('kernel')
    a.confirm_migration(None, {'dest_compute': 'hostB'}, spawned)
    assert not os.path.exists(a.files(spawned).resize_path)
    a.confirm_migration(None, {'dest_compute': 'hostB'}, spawned)  # repeatable


def test_cold_migrate_then_revert(hosts, spawned):
    a, b = hosts['hostA'], hosts['hostB']
    moved = _resize(hosts, spawned, spawned['flavor'], [])
    assert b.get_info(moved)['state'] == power_state.RUNNING
    b.destroy(None, moved)
    a.finish_revert_migration(None, spawned, power_on=True)
    assert a.get_info(spawned) == {'state': power_state.RUNNING, 'vcpus': 1,
                                   'memory_mb': 128}
    assert not os.path.exists(a.files(spawned).resize_path)
    assert os.path.exists(a.files(spawned).file('disk'))
    assert not os.path.exists(b.files(spawned).path)
    a.finish_revert_migration(None, spawned, power_on=True)  # repeatable


def test_finish_migration_powered_off_and_retry_of_the_source_step(hosts, spawned):
    a, b = hosts['hostA'], hosts['hostB']
    first = a.migrate_disk_and_power_off(None, spawned, 'hostB', spawned['flavor'])
    # A retry after a crash finds the guest already kept aside and copies again.
    again = a.migrate_disk_and_power_off(None, spawned, 'hostB', spawned['flavor'])
    assert again['meta'] == first['meta']
    assert first['power_state'] == power_state.RUNNING
    b.finish_migration(None, {}, spawned, {}, None, False, power_on=False)
    assert b.get_info(spawned)['state'] == power_state.SHUTDOWN


def test_resize_down_is_refused_before_anything_moves(hosts, spawned):
    a = hosts['hostA']
    with pytest.raises(driver.ResizeError, match='resize disk down'):
        a.migrate_disk_and_power_off(None, spawned, 'hostB', make_flavor(root_gb=0))
    assert a.get_info(spawned)['state'] == power_state.RUNNING
    assert not os.path.exists(a.files(spawned).resize_path)


def test_prepare_for_incoming_move_checks_the_host(hosts, spawned):
    with pytest.raises(driver.VirtDriverError, match='vCPUs'):
        hosts['hostB'].prepare_for_incoming_move(None, spawned, make_flavor(vcpus=16))


def test_shared_transfer_moves_within_one_instances_path(lv_conf, make_host, spawned,
                                                         kernel_image, hosts):
    a = hosts['hostA']
    lv_conf.set_override('disk_transfer', 'shared', group='libvirt')
    info = a.migrate_disk_and_power_off(None, spawned, 'hostB', spawned['flavor'])
    assert info['dest_instances_path'] == a.instances_path
    assert os.path.isdir(a.files(spawned).path)  # the "destination" copy
    assert os.path.isdir(a.files(spawned).resize_path)
    a.finish_revert_migration(None, spawned)
    assert a.get_info(spawned)['state'] == power_state.RUNNING


# ------------------------------------------------------------------------- live move

def test_live_migration_prechecks_and_the_test_driver_error_path(hosts, spawned):
    a, b = hosts['hostA'], hosts['hostB']
    src_info = a.get_available_resource('hostA')
    dest_data = b.check_can_live_migrate_destination(None, spawned, src_info, None, 'auto')
    assert dest_data['dest_instances_path'] == b.instances_path
    data = a.check_can_live_migrate_source(None, spawned, dest_data)
    assert data['block_migration'] is True and data['is_shared_instance_path'] is False
    with pytest.raises(driver.MigrationPreCheckError, match='shared storage'):
        a.check_can_live_migrate_source(None, spawned, dict(dest_data,
                                                            block_migration=False))
    data = b.pre_live_migration(None, spawned, data)
    incoming = b.files(spawned)
    assert os.path.exists(incoming.file('disk')) and os.path.exists(incoming.file('kernel'))
    data.update(permit_post_copy=False, completion_timeout=0)
    job = a.live_migration(None, spawned, 'hostB', data)
    assert job.dest_uri == 'qemu+tcp://127.0.0.3/system'
    progress = []
    # libvirt's test driver cannot migrate: the job fails, the guest stays.
    assert job.run(progress.append) == driver.JOB_FAILED
    assert 'not supported' in job.error or 'unsupported' in job.error
    assert progress and a.get_info(spawned)['state'] == power_state.RUNNING
    b.rollback_live_migration_at_destination(None, spawned, data)
    assert not os.path.exists(incoming.path)
    b.rollback_live_migration_at_destination(None, spawned, data)  # idempotent
    assert os.path.exists(a.files(spawned).file('disk'))


def test_shared_instances_path_means_no_block_migration(make_host, lv_conf, spawned, hosts):
    a = hosts['hostA']
    dest_data = a.check_can_live_migrate_destination(None, spawned, None, None, None)
    data = a.check_can_live_migrate_source(None, spawned, dest_data)
    assert data['is_shared_instance_path'] is True and data['block_migration'] is False
    with pytest.raises(driver.MigrationPreCheckError, match='Block migration'):
        a.check_can_live_migrate_source(None, spawned, dict(dest_data, block_migration=True))


def test_compare_cpu(hosts, lv_conf):
    a = hosts['hostA']
    arch = a.get_available_resource('hostA')['cpu_info']['arch']
    a.compare_cpu({'arch': arch, 'model': 'whatever'})  # TCG: no model check
    a.compare_cpu('{"arch": "%s"}' % arch)
    with pytest.raises(driver.InvalidCPUInfo, match='architecture'):
        a.compare_cpu({'arch': 'aarch64' if arch != 'aarch64' else 'x86_64'})
    with pytest.raises(driver.InvalidCPUInfo):
        a.compare_cpu('not json')
    lv_conf.set_override('virt_type', 'kvm', group='libvirt')
    a.compare_cpu({'arch': arch, 'model': 'Skylake'})  # test driver: unsupported -> ok


def test_console_output(hosts, spawned):
    a = hosts['hostA']
    with open(a.files(spawned).console_log, 'w') as f:
        f.write('hello\n' * 10)
    assert a.get_console_output(spawned, tail_bytes=6) == 'hello\n'
