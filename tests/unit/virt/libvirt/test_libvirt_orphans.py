"""Orphans of the libvirt driver against libvirt's test:/// hypervisor: domains,
instance directories and ``<uuid>_resize`` backups nobody owns, and shared storage."""

import os

import pytest
from virt_helpers import make_flavor, make_instance

from novalite.virt import driver, power_state

G, R, INC = driver.GUEST, driver.RESIZE_BACKUP, driver.INCOMING


@pytest.fixture
def spawn(hosts, kernel_image, qemu_img):
    def spawn(host='hostA'):
        inst = make_instance(host=host, flavor=make_flavor(vcpus=1, memory_mb=128,
                                                           root_gb=1))
        hosts[host].spawn(None, inst, kernel_image)
        inst.update(vm_state='active', power_state=power_state.RUNNING)
        return inst
    return spawn


def _cold_move(hosts, inst):
    """Copy to hostB and finish there; hostA keeps <uuid>_resize."""
    a, b = hosts['hostA'], hosts['hostB']
    info = a.migrate_disk_and_power_off(None, inst, 'hostB', inst['flavor'])
    moved = dict(inst, host='hostB', node='hostB')
    b.finish_migration(None, {'dest_compute': 'hostB'}, moved, info, None, False)
    return moved


def test_listing_names_guests_backups_and_prepared_files(hosts, spawn):
    a, b = hosts['hostA'], hosts['hostB']
    kept = spawn()
    moved = _cold_move(hosts, spawn())
    assert a.list_guest_uuids() == {kept['uuid']: {G}, moved['uuid']: {R}}
    assert b.list_guest_uuids() == {moved['uuid']: {G}}
    # Files copied to a destination that never defined the guest: incoming.
    prepared = spawn()
    a.migrate_disk_and_power_off(None, prepared, 'hostB', prepared['flavor'])
    assert b.list_guest_uuids()[prepared['uuid']] == {INC}
    # Not ours: other names, files, the base image directory.
    os.makedirs(os.path.join(a.instances_path, 'not-a-uuid'))
    open(os.path.join(a.instances_path, kept['uuid'] + '.txt'), 'w').close()
    assert set(a.list_guest_uuids()) == {kept['uuid'], moved['uuid'], prepared['uuid']}


def test_a_backup_left_by_a_confirm_while_the_source_was_down_is_removed(hosts, spawn):
    a, b = hosts['hostA'], hosts['hostB']
    kept = spawn()
    moved = _cold_move(hosts, spawn())
    backup = a.files(moved).resize_path
    assert os.path.isdir(backup)
    assert a.remove_orphans({kept['uuid']}) == [moved['uuid']]
    assert not os.path.exists(backup)
    assert a.get_info(kept)['state'] == power_state.RUNNING
    assert os.path.isdir(a.files(kept).path)
    assert b.get_info(moved)['state'] == power_state.RUNNING  # the other host untouched


def test_an_orphan_domain_and_its_files_are_removed(hosts, spawn):
    a = hosts['hostA']
    kept, orphan = spawn(), spawn()
    assert a.remove_orphans({kept['uuid']: {G}}) == [orphan['uuid']]
    assert not a.instance_exists(orphan) and not os.path.exists(a.files(orphan).path)
    assert a.instance_exists(kept)


def test_keeping_a_guest_keeps_its_incoming_files_too(hosts, spawn):
    a, b = hosts['hostA'], hosts['hostB']
    prepared = spawn()
    a.migrate_disk_and_power_off(None, prepared, 'hostB', prepared['flavor'])
    # The instance was reverted back to hostA meanwhile: hostB keeps a guest for it only
    # if asked to; asked for GUEST it keeps the shared domain-and-directory.
    assert b.remove_orphans({prepared['uuid']: {G}}) == []
    assert os.path.isdir(b.files(prepared).path)
    assert b.remove_orphans({}) == [prepared['uuid']]
    assert not os.path.exists(b.files(prepared).path)
    # The source keeps what a revert needs when asked for the backup only.
    assert a.remove_orphans({prepared['uuid']: {R}}) == []
    assert os.path.isdir(a.files(prepared).resize_path)


def test_on_shared_storage_only_domains_are_touched(hosts, spawn, lv_conf):
    a = hosts['hostA']
    kept = spawn()
    moved = _cold_move(hosts, spawn())
    orphan = spawn()
    lv_conf.set_override('disk_transfer', 'shared', group='libvirt')
    assert a.list_guest_uuids() == {kept['uuid']: {G}, orphan['uuid']: {G}}
    assert a.remove_orphans({kept['uuid']}) == [orphan['uuid']]
    assert not a.instance_exists(orphan)
    # The files may be another host's: they stay.
    assert os.path.isdir(a.files(orphan).path)
    assert os.path.isdir(a.files(moved).resize_path)


def test_a_second_host_on_the_same_instances_path_means_shared(hosts, spawn):
    a = hosts['hostA']
    orphan = spawn()
    os.makedirs(a.files(orphan).path + '_resize')
    # Another host registers itself in this instances_path.
    from novalite.virt.libvirt import imagebackend
    assert imagebackend.hosts_using(a.instances_path, 'hostC') == {'hostA', 'hostC'}
    assert a.list_guest_uuids() == {orphan['uuid']: {G}}
    assert a.remove_orphans(set()) == [orphan['uuid']]
    assert os.path.isdir(a.files(orphan).path)
    assert os.path.isdir(a.files(orphan).resize_path)
