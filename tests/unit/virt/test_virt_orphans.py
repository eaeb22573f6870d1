"""Orphan guests: what a fake host holds, what it removes, the keep/among arguments."""

import json
import os
import types

import pytest
from virt_helpers import IMAGE, make_instance

from novalite.compute import states
from novalite.compute.manager import ComputeManager
from novalite.virt import driver, fake

G, R, INC = driver.GUEST, driver.RESIZE_BACKUP, driver.INCOMING
MS = states.MS


@pytest.fixture
def held(hosts, booted):
    """host1: a running guest, a resize backup, an incoming guest, and one guest that
    has its backup beside it."""
    src = hosts['host1']
    backed = make_instance()
    src.spawn(None, backed, IMAGE)
    src.migrate_disk_and_power_off(None, backed, 'host2', backed['flavor'])
    incoming = make_instance()
    src.pre_live_migration(None, incoming, {})
    both = make_instance()
    src.spawn(None, both, IMAGE)
    fake.get_hypervisor('host1').resize_backups[both['uuid']] = \
        fake.get_hypervisor('host1').guest(both['uuid'])
    return {'guest': booted['uuid'], 'backup': backed['uuid'],
            'incoming': incoming['uuid'], 'both': both['uuid']}


def test_list_guest_uuids_names_every_kind(hosts, held):
    assert hosts['host1'].list_guest_uuids() == {
        held['guest']: {G}, held['backup']: {R}, held['incoming']: {INC},
        held['both']: {G, R}}
    assert hosts['host2'].list_guest_uuids() == {}


def test_remove_orphans_keeps_what_keep_names(conf, hosts, held):
    drv = hosts['host1']
    removed = drv.remove_orphans({held['guest'], held['both']})
    assert removed == sorted([held['backup'], held['incoming']])
    assert drv.list_guest_uuids() == {held['guest']: {G}, held['both']: {G, R}}
    # Persisted: a restarted host does not find them again.
    with open(os.path.join(conf.state_path, 'fake', 'host1.json')) as f:
        data = json.load(f)
    assert set(data['resize_backups']) == {held['both']} and data['incoming'] == {}
    assert drv.remove_orphans({held['guest'], held['both']}) == []  # nothing left


def test_keep_by_kind_removes_a_stale_backup_beside_a_kept_guest(hosts, held):
    drv = hosts['host1']
    keep = {held['guest']: {G}, held['both']: {G}, held['backup']: {R},
            held['incoming']: [INC]}
    assert drv.remove_orphans(keep) == [held['both']]
    assert drv.list_guest_uuids()[held['both']] == {G}
    assert drv.instance_exists({'uuid': held['both']})


def test_among_protects_what_appeared_after_the_listing(hosts, held):
    drv = hosts['host1']
    listing = drv.list_guest_uuids()
    late = make_instance()
    drv.pre_live_migration(None, late, {})  # a move prepared after the database read
    assert drv.remove_orphans(set(), among=listing) == sorted(listing)
    assert drv.list_guest_uuids() == {late['uuid']: {INC}}


def test_one_failing_removal_does_not_stop_the_rest(hosts, held, monkeypatch):
    drv = hosts['host1']
    real = drv._remove_orphan

    def flaky(uuid, kinds):
        if uuid == held['guest']:
            raise driver.VirtDriverError('busy')
        real(uuid, kinds)
    monkeypatch.setattr(drv, '_remove_orphan', flaky)
    removed = drv.remove_orphans(set())
    assert held['guest'] not in removed and len(removed) == 3
    assert drv.list_guest_uuids() == {held['guest']: {G}}


@pytest.mark.parametrize('keep,message', [
    (None, 'keep is required'),
    ('a-uuid', 'not the string'),
    ({'a-uuid': {'disk'}}, 'Unknown kind'),
])
def test_bad_keep_is_refused(hosts, held, keep, message):
    with pytest.raises(ValueError, match=message):
        hosts['host1'].remove_orphans(keep)
    assert len(hosts['host1'].list_guest_uuids()) == 4


def test_the_default_driver_lists_and_removes_guests_only(hosts, booted):
    class Minimal(fake.FakeDriver):
        list_guest_uuids = driver.ComputeDriver.list_guest_uuids
        _remove_orphan = driver.ComputeDriver._remove_orphan
    drv = Minimal(hosts['host1'].conf, 'host1')
    other = make_instance()
    drv.spawn(None, other, IMAGE)
    assert drv.list_guest_uuids() == {booted['uuid']: {G}, other['uuid']: {G}}
    assert drv.remove_orphans({booted['uuid']}) == [other['uuid']]
    assert drv.list_instance_uuids() == [booted['uuid']]


def test_a_backup_left_by_a_confirm_while_the_source_was_down(hosts):
    """A cold move on two fake hosts, then what owned_uuids makes each host keep."""
    from novalite.compute import states
    from novalite.compute.orphans import owned_uuids

    src, dst = hosts['host1'], hosts['host2']
    inst = make_instance()
    src.spawn(None, inst, IMAGE)
    info = src.migrate_disk_and_power_off(None, inst, 'host2', inst['flavor'])
    dst.finish_migration(None, {}, dict(inst, host='host2'), info, IMAGE, False)
    moved = dict(inst, host='host2', deleted=False, vm_state=states.RESIZED)
    mig = {'instance_uuid': inst['uuid'], 'migration_type': states.RESIZE,
           'source_compute': 'host1', 'dest_compute': 'host2',
           'status': states.MS.FINISHED}
    # While the user may still revert, both hosts keep everything.
    for name, drv in hosts.items():
        listing = drv.list_guest_uuids()
        assert drv.remove_orphans(owned_uuids(name, [moved], [mig]), among=listing) == []
    assert src.list_guest_uuids() == {inst['uuid']: {R}}
    # Confirmed while host1 was down: its backup is nobody's once it is back.
    listing = src.list_guest_uuids()
    assert src.remove_orphans(owned_uuids('host1', [], []), among=listing) == [inst['uuid']]
    assert src.list_guest_uuids() == {}
    assert dst.remove_orphans(owned_uuids('host2', [moved], []),
                              among=dst.list_guest_uuids()) == []
    assert dst.instance_exists(inst)


class _MoveEndsAfterFirstRead:
    """A conductor whose revert of ``inst`` (host2 back to host1) ends right after it
    answers its first read: the earlier answer shows the move unfinished, later ones
    the instance back on host1 and no move."""

    def __init__(self, inst):
        self.reads = 0
        self.before_inst = dict(inst, host='host2', node='host2',
                                task_state=states.RESIZE_REVERTING, deleted=False)
        self.after_inst = dict(inst, host='host1', node='host1', task_state=None,
                               vm_state=states.ACTIVE, deleted=False)
        self.mig = {'uuid': 'm1', 'instance_uuid': inst['uuid'], 'status': MS.REVERTED,
                    'migration_type': states.RESIZE, 'source_compute': 'host1',
                    'dest_compute': 'host2'}

    def _read(self, before, after):
        self.reads += 1
        return before if self.reads == 1 else after

    def host_instances(self):
        return self._read([], [self.after_inst])  # host1's instances

    def host_migrations(self):
        return self._read([self.mig], [])


def test_a_move_ending_between_the_reads_keeps_its_guest(hosts, booted):
    # The source of a revert holds the guest the revert lands on. Whichever read the
    # revert ends after, the periodic orphan removal must not take that guest.
    conductor = _MoveEndsAfterFirstRead(booted)
    mgr = types.SimpleNamespace(host='host1', driver=hosts['host1'], conductor=conductor)
    ComputeManager.remove_orphan_guests(mgr, None)
    assert conductor.reads == 2
    assert hosts['host1'].list_guest_uuids() == {booted['uuid']: {G}}
