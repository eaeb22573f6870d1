"""owned_uuids: what a compute host keeps of each guest, from instances and moves."""

import pytest

from novalite.compute import states
from novalite.compute.orphans import owned_uuids
from novalite.virt.driver import GUEST, INCOMING, RESIZE_BACKUP

MS = states.MS


def inst(uuid, host, **kw):
    return dict(uuid=uuid, host=host, deleted=False, vm_state=states.ACTIVE, **kw)


def mig(uuid, status, src='a', dest='b', mtype=states.RESIZE):
    return {'instance_uuid': uuid, 'status': status, 'source_compute': src,
            'dest_compute': dest, 'migration_type': mtype}


def test_instances_on_the_host_keep_their_guest():
    owned = owned_uuids('a', [inst('i1', 'a'), inst('i2', 'b'),
                              inst('i3', 'a', ) | {'deleted': True},
                              inst('i4', 'a') | {'vm_state': states.DELETED}], [])
    assert owned == {'i1': frozenset({GUEST})}


def test_an_instance_in_error_keeps_a_guest_that_was_still_arriving():
    # A live migration that failed after its copy: the guest is only "incoming" here.
    owned = owned_uuids('b', [inst('l1', 'b') | {'vm_state': states.ERROR}],
                        [mig('l1', MS.ERROR)])
    assert owned == {'l1': frozenset({GUEST, INCOMING})}


def test_cold_move_source_keeps_its_backup_and_destination_what_it_prepares():
    moves = [mig('m1', MS.MIGRATING)]
    assert owned_uuids('a', [inst('m1', 'a')], moves) == {
        'm1': frozenset({GUEST, RESIZE_BACKUP})}
    assert owned_uuids('b', [], moves) == {'m1': frozenset({GUEST, INCOMING})}
    # After disks_moved the instance is on the destination; the source still keeps.
    assert owned_uuids('a', [inst('m1', 'b')], [mig('m1', MS.FINISHED)]) == {
        'm1': frozenset({GUEST, RESIZE_BACKUP})}


def test_a_reverted_move_still_owed_its_finish_keeps_the_backup():
    assert owned_uuids('a', [], [mig('m1', MS.REVERTED)]) == {
        'm1': frozenset({GUEST, RESIZE_BACKUP})}


@pytest.mark.parametrize('status', [MS.CONFIRMED, MS.ERROR, MS.COMPLETED, MS.CANCELLED])
def test_final_moves_own_nothing(status):
    # e.g. the source was down when the resize was confirmed: its backup is an orphan.
    assert owned_uuids('a', [], [mig('m1', status)]) == {}


def test_live_migration_source_has_no_backup_and_same_host_resize_keeps_all():
    live = mig('l1', MS.RUNNING, mtype=states.LIVE_MIGRATION)
    assert owned_uuids('a', [inst('l1', 'a')], [live]) == {'l1': frozenset({GUEST})}
    assert owned_uuids('b', [], [live]) == {'l1': frozenset({GUEST, INCOMING})}
    same = mig('s1', MS.FINISHED, src='a', dest='a')
    assert owned_uuids('a', [inst('s1', 'a')], [same]) == {
        's1': frozenset({GUEST, RESIZE_BACKUP, INCOMING})}


def test_a_migration_not_naming_the_host_gives_nothing():
    assert owned_uuids('c', [], [mig('m1', MS.MIGRATING)]) == {}


def test_host_is_required():
    with pytest.raises(ValueError, match='host'):
        owned_uuids('', [], [])


def test_an_evacuation_source_keeps_its_old_guest_only_while_the_server_is_its_own():
    accepted = [mig('e1', MS.ACCEPTED, mtype=states.EVACUATION)]
    # Accepted: the server is still recorded on the dead source, which keeps it.
    assert owned_uuids('a', [inst('e1', 'a')], accepted) == {'e1': frozenset({GUEST})}
    # Rebuilding or rebuilt elsewhere: the source keeps nothing, the destination its
    # rebuild.
    for status in (MS.PRE_MIGRATING, MS.DONE):
        moves = [mig('e1', status, mtype=states.EVACUATION)]
        assert owned_uuids('a', [], moves) == {}
    assert owned_uuids('b', [inst('e1', 'b')],
                       [mig('e1', MS.PRE_MIGRATING, mtype=states.EVACUATION)]) == {
        'e1': frozenset({GUEST, INCOMING})}
