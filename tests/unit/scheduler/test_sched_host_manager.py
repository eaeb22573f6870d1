import datetime

import pytest
from sched_helpers import make_conf
from sqlalchemy import create_engine, event
from sqlalchemy.orm import Session

from novalite.db import models
from novalite.scheduler.host_manager import load_host_states


@pytest.fixture
def session():
    engine = create_engine('sqlite://')
    models.Base.metadata.create_all(engine)
    with Session(engine) as s:
        yield s


def ago(seconds):
    return models.utcnow() - datetime.timedelta(seconds=seconds)


def add_node(session, name, *, zone=None, disabled=False, reason=None, forced_down=False,
             seen=5, inventory=True, vcpus=8, memory_mb=16384, disk_gb=200, service=True,
             arch='x86_64'):
    if service:
        svc = models.Service(uuid='svc-' + name, host=name, binary='novalite-compute',
                             topic='compute', disabled=disabled, disabled_reason=reason,
                             forced_down=forced_down, last_seen_up=ago(seen),
                             availability_zone=zone)
        session.add(svc)
    session.add(models.ComputeNode(
        uuid='cn-' + name, host=name, hypervisor_hostname=name + '.example',
        hypervisor_type='fake', hypervisor_version=1002, vcpus=vcpus, memory_mb=memory_mb,
        local_gb=disk_gb, vcpus_used=1, memory_mb_used=100, local_gb_used=3,
        cpu_allocation_ratio=16.0, ram_allocation_ratio=1.5, disk_allocation_ratio=1.0,
        traits=['HW_CPU_X86_AVX2'], cpu_info={'arch': arch}))
    if inventory:
        rp = models.ResourceProvider(uuid='cn-' + name, name=name + '.example')
        session.add(rp)
        session.flush()
        for rc, total, reserved, ratio in (('VCPU', vcpus, 1, 4.0),
                                           ('MEMORY_MB', memory_mb, 512, 1.0),
                                           ('DISK_GB', disk_gb, 10, 1.0)):
            session.add(models.Inventory(resource_provider_id=rp.id, resource_class=rc,
                                         total=total, reserved=reserved, max_unit=total,
                                         allocation_ratio=ratio))
        session.flush()
        return rp


def allocate(session, rp, consumer, vcpu, ram, disk):
    for rc, used in (('VCPU', vcpu), ('MEMORY_MB', ram), ('DISK_GB', disk)):
        session.add(models.Allocation(resource_provider_id=rp.id, consumer_id=consumer,
                                      resource_class=rc, used=used))


def add_instance(session, uuid, host, deleted=False):
    session.add(models.Instance(uuid=uuid, display_name=uuid, project_id='p', user_id='u',
                                flavor={}, vm_state='active', host=host,
                                node=host + '.example', deleted=deleted))


def test_capacity_and_usage_come_from_placement(session):
    rp = add_node(session, 'c1', zone='az1')
    allocate(session, rp, 'i1', 2, 2048, 20)
    allocate(session, rp, 'i2', 1, 1024, 10)
    other = add_node(session, 'c2')
    allocate(session, other, 'i3', 4, 4096, 40)
    session.commit()
    states = {hs.host: hs for hs in load_host_states(session, make_conf())}
    c1 = states['c1']
    assert (c1.uuid, c1.nodename, c1.availability_zone) == ('cn-c1', 'c1.example', 'az1')
    assert (c1.vcpus_total, c1.reserved_vcpus, c1.cpu_allocation_ratio) == (8, 1, 4.0)
    assert (c1.vcpus_used, c1.memory_mb_used, c1.disk_gb_used) == (3, 3072, 30)
    assert c1.free_ram_mb == 16384 - 512 - 3072
    assert c1.free_vcpus == (8 - 1) * 4.0 - 3
    assert (c1.hypervisor_type, c1.hypervisor_version) == ('fake', 1002)
    assert c1.traits == {'HW_CPU_X86_AVX2'} and c1.cpu_arch == 'x86_64'
    assert states['c2'].memory_mb_used == 4096
    assert states['c2'].availability_zone == 'nova'
    assert all(hs.service_up and not hs.service_disabled for hs in states.values())


def test_up_down_disabled_and_missing_service(session):
    add_node(session, 'up', seen=10)
    add_node(session, 'stale', seen=300)
    add_node(session, 'forced', forced_down=True)
    add_node(session, 'off', disabled=True, reason='maintenance')
    add_node(session, 'orphan', service=False)
    session.commit()
    states = {hs.host: hs for hs in load_host_states(session, make_conf())}
    assert states['up'].service_up
    assert not states['stale'].service_up
    assert states['stale'].last_heartbeat is not None
    assert not states['forced'].service_up and states['forced'].forced_down
    assert states['off'].service_up and states['off'].service_disabled
    assert states['off'].disabled_reason == 'maintenance'
    assert not states['orphan'].service_up


def test_service_down_time_is_configurable(session):
    add_node(session, 'c1', seen=100)
    session.commit()
    conf = make_conf()
    assert not load_host_states(session, conf)[0].service_up
    conf.set_override('service_down_time', 120)
    assert load_host_states(session, conf)[0].service_up


def test_node_without_inventory_falls_back_to_compute_node(session):
    add_node(session, 'new', inventory=False, vcpus=4, memory_mb=8192)
    session.commit()
    conf = make_conf()
    hs = load_host_states(session, conf)[0]
    assert (hs.vcpus_total, hs.vcpus_used, hs.cpu_allocation_ratio) == (4, 1, 16.0)
    assert (hs.memory_mb_total, hs.memory_mb_used) == (8192, 100)
    assert hs.reserved_memory_mb == conf.reserved_host_memory_mb


def test_instances_counted_and_uuids_only_on_request(session):
    add_node(session, 'c1')
    add_node(session, 'c2')
    add_instance(session, 'a', 'c1')
    add_instance(session, 'b', 'c1')
    add_instance(session, 'gone', 'c1', deleted=True)
    add_instance(session, 'c', 'c2')
    session.commit()
    states = {hs.host: hs for hs in load_host_states(session, make_conf())}
    assert states['c1'].num_instances == 2 and states['c2'].num_instances == 1
    assert states['c1'].instance_uuids == set()
    states = {hs.host: hs
              for hs in load_host_states(session, make_conf(), with_instances=True)}
    assert states['c1'].instance_uuids == {'a', 'b'}
    assert states['c1'].num_instances == 2
    assert states['c2'].instance_uuids == {'c'}


def test_query_count_does_not_grow_with_hosts(session):
    for i in range(30):
        rp = add_node(session, 'c%d' % i)
        allocate(session, rp, 'i%d' % i, 1, 512, 1)
        add_instance(session, 'u%d' % i, 'c%d' % i)
    session.commit()
    statements = []
    event.listen(session.get_bind(), 'before_cursor_execute',
                 lambda *args: statements.append(args[2]))
    states = load_host_states(session, make_conf(), with_instances=True)
    assert len(states) == 30
    assert len(statements) <= 4
