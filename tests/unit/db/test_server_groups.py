"""The server group check inside the claim, on a real SQLite file: members counted where
they hold allocations (themselves or through a migration), a member's own move, every
policy, the generation, and check_host for moves that name a host."""

import pytest

from novalite import exception
from novalite.compute import states
from novalite.db import api as db
from novalite.db import models
from novalite.db.session import reader

RESOURCES = {'vcpus': 8, 'memory_mb': 8192, 'local_gb': 80}
FLAVOR = {'vcpus': 1, 'memory_mb': 1024, 'root_gb': 10}
SMALL = {'VCPU': 1, 'MEMORY_MB': 1024, 'DISK_GB': 10}


@pytest.fixture
def nodes(sqlite_db):
    return {h: n['uuid'] for h, n in sqlite_db(RESOURCES, 'h1', 'h2', 'h3').items()}


def _group(policy='anti-affinity', **rules):
    return db.group_create('g', 'p', 'u', policy, rules)['uuid']


def _member(group, host=None):
    inst = db.instance_create({'display_name': 'x', 'project_id': 'p', 'user_id': 'u',
                               'host': host, 'node': host, 'vm_state': states.ACTIVE,
                               'flavor': dict(FLAVOR)})
    db.group_add_members(group, [inst['uuid']])
    return inst['uuid']


def _claim(consumer, rp):
    db.claim_resources(consumer, {rp: dict(SMALL)}, project_id='p', user_id='u',
                       replace=True)


def _generation(group):
    with reader() as s:
        return s.query(models.ServerGroup.generation).filter(
            models.ServerGroup.uuid == group).scalar()


def test_anti_affinity_refuses_a_second_member_and_writes_nothing(nodes):
    group = _group()
    a, b = _member(group), _member(group)
    _claim(a, nodes['h1'])
    with pytest.raises(exception.GroupPolicyViolation) as err:
        _claim(b, nodes['h1'])
    assert err.value.kwargs['reason'] == 'h1 already holds 1 member (max_server_per_host 1)'
    assert err.value.kwargs['group_uuid'] == group
    assert db.get_allocations(b) == {}
    assert db.provider_usages(nodes['h1'])['VCPU'] == 1
    _claim(b, nodes['h2'])
    assert db.get_allocations(b) == {nodes['h2']: SMALL}


def test_a_claim_counts_before_the_host_is_recorded(nodes):
    # Neither member has instance.host set: the allocation alone places it.
    group = _group()
    a, b = _member(group), _member(group)
    _claim(a, nodes['h1'])
    assert db.instance_get(a)['host'] is None
    with pytest.raises(exception.GroupPolicyViolation):
        _claim(b, nodes['h1'])


def test_max_server_per_host(nodes):
    group = _group(max_server_per_host=2)
    a, b, c = _member(group), _member(group), _member(group)
    _claim(a, nodes['h1'])
    _claim(b, nodes['h1'])
    with pytest.raises(exception.GroupPolicyViolation) as err:
        _claim(c, nodes['h1'])
    assert 'already holds 2 members (max_server_per_host 2)' in str(err.value)


def test_affinity_keeps_members_on_one_host(nodes):
    group = _group('affinity')
    a, b = _member(group), _member(group)
    _claim(a, nodes['h2'])
    with pytest.raises(exception.GroupPolicyViolation) as err:
        _claim(b, nodes['h1'])
    assert err.value.kwargs['reason'] == 'its members are on h2'
    _claim(b, nodes['h2'])


@pytest.mark.parametrize('policy', ['soft-affinity', 'soft-anti-affinity'])
def test_soft_policies_are_not_enforced_by_the_claim(nodes, policy):
    group = _group(policy)
    a, b = _member(group), _member(group)
    _claim(a, nodes['h1'])
    _claim(b, nodes['h1'])
    assert _generation(group) == 0


def test_the_generation_moves_once_per_successful_claim(nodes):
    group = _group()
    a, b = _member(group), _member(group)
    _claim(a, nodes['h1'])
    assert _generation(group) == 1
    with pytest.raises(exception.GroupPolicyViolation):
        _claim(b, nodes['h1'])
    assert _generation(group) == 1
    _claim(b, nodes['h2'])
    assert _generation(group) == 2


def test_a_migration_holding_the_source_counts_for_its_member(nodes):
    group = _group()
    a, b = _member(group, 'h1'), _member(group)
    _claim(a, nodes['h1'])
    mig = db.migration_create({'instance_uuid': a, 'status': 'pre-migrating',
                               'migration_type': states.COLD_MIGRATION,
                               'source_compute': 'h1', 'source_node': 'h1'})
    db.move_allocations(a, mig['uuid'])
    # a's move: its migration holds h1, a claims h2.
    _claim(a, nodes['h2'])
    # Until the move ends, a is on both hosts for the others.
    for host in ('h1', 'h2'):
        with pytest.raises(exception.GroupPolicyViolation):
            _claim(b, nodes[host])
    _claim(b, nodes['h3'])


def test_a_member_does_not_count_against_its_own_move(nodes):
    group = _group()
    a = _member(group, 'h1')
    _claim(a, nodes['h1'])
    mig = db.migration_create({'instance_uuid': a, 'status': 'pre-migrating',
                               'migration_type': states.RESIZE,
                               'source_compute': 'h1', 'source_node': 'h1'})
    db.move_allocations(a, mig['uuid'])
    # A resize on the same host: its own migration's allocation there does not count.
    _claim(a, nodes['h1'])
    db.check_host(a, 'h1')
    # And a claim made in the migration's name (a revert) is checked for the member too.
    other = _member(group)
    _claim(other, nodes['h2'])
    with pytest.raises(exception.GroupPolicyViolation):
        _claim(mig['uuid'], nodes['h2'])


def test_deleted_members_and_deleted_groups_stop_counting(nodes):
    group = _group()
    a, b = _member(group), _member(group)
    _claim(a, nodes['h1'])
    db.instance_destroy(a)
    assert db.group_get(group)['members'] == [b]
    _claim(b, nodes['h1'])
    c = _member(group)
    with pytest.raises(exception.GroupPolicyViolation):
        _claim(c, nodes['h1'])
    db.group_delete(group)
    _claim(c, nodes['h1'])


def test_check_host(nodes):
    group = _group()
    a, b = _member(group, 'h1'), _member(group)
    _claim(a, nodes['h1'])
    with pytest.raises(exception.GroupPolicyViolation) as err:
        db.check_host(b, 'h1')
    assert str(err.value) == (
        f'Placing instance {b} on h1 breaks the anti-affinity policy of server group '
        f'{group}: h1 already holds 1 member (max_server_per_host 1)')
    db.check_host(b, 'h2')
    db.check_host(a, 'h1')
    loner = db.instance_create({'display_name': 'x', 'project_id': 'p', 'user_id': 'u',
                                'vm_state': states.ACTIVE, 'flavor': dict(FLAVOR)})
    db.check_host(loner['uuid'], 'h1')


def test_group_quota_and_member_quota(nodes):
    db.group_create('one', 'p', 'u', 'affinity', limit=2)
    db.group_create('two', 'p', 'u', 'affinity', limit=2)
    with pytest.raises(exception.OverQuota):
        db.group_create('three', 'p', 'u', 'affinity', limit=2)
    assert db.group_count('p') == 2
    assert db.quota_usage('p')['server_groups'] == 2
    group = db.group_get_all('p')[0]['uuid']
    db.group_add_members(group, ['i1', 'i2'], limit=3)
    with pytest.raises(exception.OverQuota):
        db.group_add_members(group, ['i3', 'i4'], limit=3)
    assert db.group_get(group)['members'] == ['i1', 'i2']
    with pytest.raises(exception.InstanceGroupNotFound):
        db.group_add_members('no-such-group', ['i5'])
