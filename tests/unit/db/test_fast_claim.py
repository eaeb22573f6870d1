"""The claim that reads nothing back (claim_resources with the generations the caller
saw), on a real SQLite file: it claims when the generation is the one given and there
is room, and otherwise falls back to the reading claim, which keeps the errors
(InsufficientResources, GroupPolicyViolation) and never over-commits."""

import pytest
from sqlalchemy import event, select

from novalite import exception
from novalite.compute import states
from novalite.db import api as db
from novalite.db import models, session
from novalite.db.session import reader

RESOURCES = {'vcpus': 2, 'memory_mb': 4096, 'local_gb': 40}
SMALL = {'VCPU': 1, 'MEMORY_MB': 1024, 'DISK_GB': 10}


@pytest.fixture
def nodes(sqlite_db):
    return {h: n['uuid'] for h, n in sqlite_db(RESOURCES, 'h1', 'h2').items()}


def _generation(rp_uuid):
    with reader() as s:
        return s.scalar(select(models.ResourceProvider.generation)
                        .where(models.ResourceProvider.uuid == rp_uuid))


@pytest.fixture
def statements():
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(' '.join(statement.split()))

    engine = session.get_engine()
    event.listen(engine, 'before_cursor_execute', record)
    yield seen
    event.remove(engine, 'before_cursor_execute', record)


def _claim(consumer, rp, generation, replace=True, resources=SMALL):
    db.claim_resources(consumer, {rp: dict(resources)}, project_id='p', user_id='u',
                       replace=replace, generations={rp: generation})


def test_the_generation_seen_claims_without_reading_back(nodes, statements):
    rp = nodes['h1']
    gen = _generation(rp)
    statements.clear()
    _claim('c1', rp, gen)
    assert not [s for s in statements if s.startswith('SELECT')], statements
    assert db.get_allocations('c1') == {rp: SMALL}
    assert db.get_allocations_full('c1')['project_id'] == 'p'
    assert _generation(rp) == gen + 1


def test_a_moved_generation_falls_back_and_still_claims(nodes):
    rp = nodes['h1']
    gen = _generation(rp)
    db.claim_resources('other', {rp: dict(SMALL)})          # moves it
    _claim('c1', rp, gen)
    assert db.get_allocations('c1') == {rp: SMALL}
    assert db.provider_usages(rp)['VCPU'] == 2
    assert _generation(rp) == gen + 2


def test_no_room_raises_and_writes_nothing(nodes):
    rp = nodes['h1']
    _claim('c1', rp, _generation(rp))
    _claim('c2', rp, _generation(rp))
    gen = _generation(rp)
    with pytest.raises(exception.InsufficientResources):
        _claim('c3', rp, gen)
    with pytest.raises(exception.InsufficientResources):
        _claim('c4', rp, gen, resources={'VCPU': 1, 'MEMORY_MB': 8192, 'DISK_GB': 1})
    assert db.get_allocations('c3') == {} and db.get_allocations('c4') == {}
    assert db.provider_usages(rp) == {'VCPU': 2, 'MEMORY_MB': 2048, 'DISK_GB': 20}
    assert _generation(rp) == gen


def test_replace_moves_the_claim_and_counts_it_out_of_the_old_room(nodes):
    h1, h2 = nodes['h1'], nodes['h2']
    _claim('c1', h1, _generation(h1), resources={'VCPU': 2})
    # On the same provider: the consumer's own old allocation is replaced, not added.
    _claim('c1', h1, _generation(h1), resources={'VCPU': 2})
    assert db.provider_usages(h1)['VCPU'] == 2
    _claim('c1', h2, _generation(h2), resources={'VCPU': 2})
    assert db.get_allocations('c1') == {h2: {'VCPU': 2}}
    assert db.provider_usages(h1).get('VCPU', 0) == 0
    # Without replace, the allocations add up.
    _claim('c1', h1, _generation(h1), replace=False, resources={'VCPU': 1})
    assert db.get_allocations('c1') == {h1: {'VCPU': 1}, h2: {'VCPU': 2}}


def test_an_unknown_provider_is_not_found(nodes):
    with pytest.raises(exception.ResourceProviderNotFound):
        _claim('c1', 'no-such-provider', 0)


def test_a_hard_group_member_is_checked_by_its_group(nodes):
    rp = nodes['h1']
    group = db.group_create('g', 'p', 'u', 'anti-affinity', {})['uuid']
    members = []
    for _ in range(2):
        inst = db.instance_create({'display_name': 'x', 'project_id': 'p', 'user_id': 'u',
                                   'vm_state': states.BUILDING,
                                   'flavor': {'vcpus': 1, 'memory_mb': 1024}})
        db.group_add_members(group, [inst['uuid']])
        members.append(inst['uuid'])
    _claim(members[0], rp, _generation(rp))
    with pytest.raises(exception.GroupPolicyViolation):
        _claim(members[1], rp, _generation(rp))
    assert db.get_allocations(members[1]) == {}
    assert db.provider_usages(rp)['VCPU'] == 1


def test_dropping_allocations_reads_nothing_and_bumps_only_the_providers_touched(
        nodes, statements):
    one, two = nodes['h1'], nodes['h2']
    _claim('c1', one, _generation(one))
    _claim('c1', two, _generation(two), replace=False)
    before = {rp: _generation(rp) for rp in (one, two)}
    statements.clear()
    assert db.delete_allocations('c1', rp_uuid=two) == 3
    assert db.get_allocations('c1') == {one: SMALL}
    assert _generation(two) == before[two] + 1 and _generation(one) == before[one]
    statements.clear()
    assert db.delete_allocations('c1') == 3
    assert not [s for s in statements if s.startswith('SELECT')], statements
    assert [s.split()[0] for s in statements if s.split()[0] in ('DELETE', 'UPDATE')] == \
        ['DELETE', 'UPDATE']
    assert db.get_allocations('c1') == {}
    assert _generation(one) == before[one] + 1
    assert db.delete_allocations('c1') == 0 and _generation(one) == before[one] + 1
