"""Compute node reports on change: an unchanged view is not sent again until the
full-report interval has passed; any change is sent at once."""

import pytest

from novalite.compute.resource_tracker import ResourceTracker
from novalite.virt import driver as virt_driver
from novalite.virt.fake import FakeDriver


class Driver:
    capabilities: dict = {}
    get_available_resources = virt_driver.ComputeDriver.get_available_resources

    def __init__(self):
        self.resources = {'vcpus': 8, 'memory_mb': 4096, 'local_gb': 40, 'vcpus_used': 0,
                          'uptime': 1}

    def get_available_nodes(self):
        return ['n1']

    def get_available_resource(self, nodename):
        self.resources['uptime'] += 1  # changes on its own: not a change of the view
        return dict(self.resources)


class Conductor:
    def __init__(self):
        self.sent = []

    def compute_node_report(self, nodename, resources, ratios, reserved, traits):
        self.sent.append(resources)
        return {'uuid': 'u-' + nodename, 'hypervisor_hostname': nodename}

    def compute_nodes_report(self, reports):
        self.sent.append([r['nodename'] for r in reports])
        return {r['nodename']: 'u-' + r['nodename'] for r in reports}


class Clock:
    now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def tracker(conf):
    conf.set_override('resource_full_report_interval', 300, group='compute')
    clock = Clock()
    rt = ResourceTracker('h1', Driver(), Conductor(), clock=clock)
    return rt, clock


def test_unchanged_view_is_sent_once_per_full_interval(tracker):
    rt, clock = tracker
    for _ in range(30):  # five minutes of 10 s periods
        assert rt.update_available_resource() == {'n1': {'uuid': 'u-n1',
                                                         'hypervisor_hostname': 'n1'}}
        clock.now += 10
    assert len(rt.conductor.sent) == 1
    rt.update_available_resource()
    assert len(rt.conductor.sent) == 2


def test_a_change_is_sent_at_once(tracker):
    rt, clock = tracker
    rt.update_available_resource()
    rt.driver.resources['vcpus_used'] = 2
    clock.now += 10
    rt.update_available_resource()
    assert [r['vcpus_used'] for r in rt.conductor.sent] == [0, 2]


def test_force_and_zero_interval_send_every_time(tracker, conf):
    rt, clock = tracker
    rt.update_available_resource()
    rt.update_available_resource(force=True)
    assert len(rt.conductor.sent) == 2
    conf.set_override('resource_full_report_interval', 0, group='compute')
    rt.update_available_resource()
    assert len(rt.conductor.sent) == 3


def test_a_failed_report_is_sent_again(tracker):
    rt, clock = tracker

    def down(*args):
        raise RuntimeError('conductor unreachable')

    rt.conductor.compute_node_report, real = down, rt.conductor.compute_node_report
    with pytest.raises(RuntimeError):
        rt.update_available_resource()
    rt.conductor.compute_node_report = real
    rt.update_available_resource()
    assert len(rt.conductor.sent) == 1


def test_a_multi_node_host_reports_its_changed_nodes_in_batches(conf):
    """A fake host of 7 nodes, batches of 3: the first pass sends every node in three
    calls; after one guest lands on a node, the next pass sends only that node."""
    conf.set_override('nodes', 7, group='fake_driver')
    conf.set_override('persist', False, group='fake_driver')
    conf.set_override('resource_report_batch', 3, group='compute')
    clock = Clock()
    drv = FakeDriver(conf, 'fleet-batch-host')
    rt = ResourceTracker('fleet-batch-host', drv, Conductor(), clock=clock)
    nodes = rt.update_available_resource()
    names = ['fleet-batch-host-%05d' % i for i in range(7)]
    assert rt.conductor.sent == [names[0:3], names[3:6], names[6:7]]
    assert sorted(nodes) == names
    assert nodes[names[4]]['uuid'] == 'u-' + names[4]
    assert rt.node_uuid(names[5]) == 'u-' + names[5]

    flavor = {'vcpus': 2, 'memory_mb': 1024, 'root_gb': 1}
    drv.spawn(None, {'uuid': 'g1', 'node': names[4], 'flavor': flavor}, None)
    clock.now += 10
    rt.update_available_resource()
    assert rt.conductor.sent[3:] == [[names[4]]]
    usage = drv.get_available_resources()
    assert (usage[names[4]]['vcpus_used'], usage[names[4]]['running_vms']) == (2, 1)
    assert all(usage[n]['vcpus_used'] == 0 for n in names if n != names[4])
    # A guest of a node this host does not have counts on its first node.
    drv.spawn(None, {'uuid': 'g2', 'node': 'elsewhere', 'flavor': flavor}, None)
    assert drv.get_available_resource(names[0])['memory_mb_used'] == 1024
