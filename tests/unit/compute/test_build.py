"""A compute's build: it spawns on the request alone and records the result in one step
(the conductor's write that chose the host put the instance in SPAWNING). A request the
host must not act on (repeated, stale, for a server deleted or built elsewhere since) never
leaves a second guest and never destroys the guest the server runs on."""

import threading
import types

import pytest

from novalite import context as nl_context
from novalite import exception
from novalite.compute import states
from novalite.compute.lifecycle import LifecycleFlow
from novalite.compute.manager import ComputeManager
from novalite.conf import CONF
from novalite.virt import fake

IMAGE = {'uuid': 'img', 'name': 'cirros', 'size': 16 * 1024 * 1024, 'min_disk': 0,
         'min_ram': 0, 'disk_format': 'qcow2', 'location': None, 'properties': {}}
FLAVOR = {'flavorid': '1', 'name': 'm1.tiny', 'vcpus': 1, 'memory_mb': 256, 'root_gb': 1,
          'ephemeral_gb': 0, 'swap': 0, 'extra_specs': {}}


class _Conductor:
    """The host's conductor methods: records the steps asked for; ``refuse`` maps a step
    name to the error the conductor answers with."""

    def __init__(self):
        self.steps, self.released, self.rebuilds = [], [], []
        self.refuse = {}

    def record_step(self, context, name, uuid, **changes):
        self.steps.append(name)
        if name in self.refuse:
            raise self.refuse[name]
        return {'instance': {'uuid': uuid, 'vm_state': changes.get('vm_state'),
                             'host': 'host1', 'node': 'host1', 'flavor': FLAVOR},
                'migration': None}

    def release_claim(self, context, uuid, nodename=None, events=None):
        self.released.append(uuid)

    def build_instances(self, context, uuid, *args, **kwargs):
        self.rebuilds.append((uuid, kwargs.get('failed_host')))


@pytest.fixture
def flow(tmp_path):
    CONF.set_override('state_path', str(tmp_path))
    fake.reset_hypervisors()
    driver = fake.FakeDriver(CONF, 'host1')
    driver.init_host('host1')
    conductor = _Conductor()
    locks = {}
    yield LifecycleFlow('host1', driver, conductor, conductor,
                        lambda uuid: locks.setdefault(uuid, threading.Lock()),
                        lambda inst: 1, lambda *a: None, lambda *a: None)
    CONF.reset()
    fake.reset_hypervisors()


def _request(uuid='i1', updated_at='2026-12-01T01:00:00.000000'):
    """The instance a build request carries: as the conductor's host_selected wrote it."""
    return {'uuid': uuid, 'display_name': 'vm', 'image_ref': 'img', 'flavor': FLAVOR,
            'vm_state': states.BUILDING, 'task_state': states.SPAWNING, 'power_state': 0,
            'host': 'host1', 'node': 'host1', 'system_metadata': {},
            'updated_at': updated_at}


def _build(flow, instance):
    ctx = nl_context.get_admin_context()
    flow._build(ctx, instance, IMAGE, {'num_instances': 1}, [])


def test_a_build_is_a_spawn_and_one_step(flow):
    inst = _request()
    _build(flow, inst)
    assert flow.conductor.steps == ['spawned']
    assert flow.driver.instance_exists(inst)


def test_a_repeated_request_neither_spawns_again_nor_destroys(flow):
    inst = _request()
    _build(flow, inst)
    _build(flow, dict(inst))
    assert flow.conductor.steps == ['spawned']
    assert flow.driver.list_instance_uuids() == ['i1']


@pytest.mark.parametrize('refusal', [
    exception.HostNotAuthorized(host='host1', instance_uuid='i1'),  # built elsewhere since
    exception.InstanceNotFound(instance_id='i1'),                   # deleted meanwhile
])
def test_a_request_the_record_refuses_leaves_no_guest(flow, refusal):
    flow.conductor.refuse['spawned'] = refusal
    _build(flow, _request())
    assert flow.conductor.steps == ['spawned']
    assert flow.driver.list_instance_uuids() == []


def test_deleted_while_spawning_leaves_the_guest_to_the_delete(flow):
    # The instance is DELETING: the delete request queued behind this build destroys it.
    flow.conductor.refuse['spawned'] = exception.UnexpectedTaskStateError(
        instance_uuid='i1', expected=states.SPAWNING, actual=states.DELETING)
    _build(flow, _request())
    assert flow.driver.list_instance_uuids() == ['i1']


def test_a_build_given_back_is_not_built_from_its_old_request(flow):
    # A restart found the build without a guest and gave it back to the conductor; its
    # request then comes from the queue: nothing is built. A newer request (the instance
    # was written since: scheduled here again) is built.
    inst = _request()
    flow.reconcile(nl_context.get_admin_context(), dict(inst))
    assert flow.conductor.steps == ['build_rescheduled']
    assert flow.conductor.released == ['i1'] and flow.conductor.rebuilds == [('i1', 'host1')]
    _build(flow, dict(inst))
    assert flow.conductor.steps == ['build_rescheduled']
    assert flow.driver.list_instance_uuids() == []
    _build(flow, _request(updated_at='2026-12-01T01:00:05.000000'))
    assert flow.conductor.steps == ['build_rescheduled', 'spawned']
    assert flow.driver.list_instance_uuids() == ['i1']


def test_a_failed_spawn_is_rescheduled_without_its_guest(flow, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError('no disk')
    monkeypatch.setattr(flow.driver, 'spawn', broken)
    _build(flow, _request())
    assert flow.conductor.steps == ['build_rescheduled']
    assert flow.conductor.released == ['i1'] and flow.conductor.rebuilds == [('i1', None)]


class _Host(_Conductor):
    """The conductor as a restarted compute sees it: its instances and no moves."""

    def __init__(self, instances):
        super().__init__()
        self.instances = instances

    def host_instances(self):
        return [dict(i) for i in self.instances]

    def host_migrations(self):
        return []


def test_a_restart_leaves_builds_without_a_guest_to_the_queue_a_moment(flow):
    # At start: a build with its guest running is recorded ACTIVE; builds without a guest
    # wait for their requests. Then: the one whose request came (its build holds the
    # instance lock) is left alone, the other is given back; nothing else is touched.
    running, came, lost = _request('running'), _request('came'), _request('lost')
    flow.driver.spawn(None, running, IMAGE)
    host = _Host([running, came, lost])
    flow.conductor = flow.conductor_tasks = host
    mgr = types.SimpleNamespace(
        host='host1', conductor=host, lifecycle=flow, _builds_at_start=set(),
        _locks=flow.lock, live=types.SimpleNamespace(running=lambda uuid: False),
        evacuation=types.SimpleNamespace(clean_up_evacuated=lambda ctx, migs: None))
    for name in ('reconcile_instances', '_reconcile_builds_left', '_reconcile_idle',
                 '_flow'):
        setattr(mgr, name, types.MethodType(getattr(ComputeManager, name), mgr))
    mgr.reconcile_instances(nl_context.get_admin_context())
    assert host.steps == ['build_interrupted']
    assert mgr._builds_at_start == {'came', 'lost'}
    with flow.lock('came'):
        mgr._reconcile_builds_left(mgr._builds_at_start)
    assert host.steps == ['build_interrupted', 'build_rescheduled']
    assert host.rebuilds == [('lost', 'host1')] and host.released == ['lost']
