"""A compute host may act only on its own work: the conductor refuses, over RPC, any step,
read or write about an instance that is neither on the caller nor in a move naming it."""

import pytest

from novalite import context as nl_context
from novalite import exception
from novalite.conductor import rpcapi as conductor_rpcapi


def _as_host(host):
    return conductor_rpcapi.HostConductor(
        conductor_rpcapi.ConductorAPI(url='inproc://'), host, nl_context.get_admin_context)


def test_conductor_refuses_a_foreign_host(cloud):
    sid = cloud.boot('vm1')['id']
    owner = cloud.server(sid)['OS-EXT-SRV-ATTR:host']
    other = next(h for h in ('compute1', 'compute2', 'compute3') if h != owner)
    ctxt = nl_context.get_admin_context()
    intruder = _as_host(other)
    before = cloud.server(sid)

    with pytest.raises(exception.HostNotAuthorized):
        intruder.instance_get(sid)
    with pytest.raises(exception.HostNotAuthorized):
        intruder.record_step(ctxt, 'power_action_done', sid, vm_state='error')
    with pytest.raises(exception.HostNotAuthorized):
        intruder.instance_destroyed(ctxt, sid)
    with pytest.raises(exception.HostNotAuthorized):
        intruder.record_progress(sid, progress=50)
    with pytest.raises(exception.HostNotAuthorized):
        intruder.release_claim(ctxt, sid)

    # Nothing changed: the server, its host and its allocation are where they were.
    after = cloud.server(sid)
    assert (after['status'], after['OS-EXT-SRV-ATTR:host']) == \
        (before['status'], before['OS-EXT-SRV-ATTR:host']) == ('ACTIVE', owner)
    # The owner itself may read it, and its own instances list holds it.
    assert _as_host(owner).instance_get(sid)['uuid'] == sid
    assert sid in {i['uuid'] for i in _as_host(owner).host_instances()}
    assert sid not in {i['uuid'] for i in intruder.host_instances()}


def test_a_step_may_not_place_an_instance_elsewhere(cloud):
    sid = cloud.boot('vm1')['id']
    owner = cloud.server(sid)['OS-EXT-SRV-ATTR:host']
    with pytest.raises(exception.Invalid):
        _as_host(owner).record_step(nl_context.get_admin_context(), 'power_action_done',
                                    sid, vm_state='active',
                                    instance_values={'host': 'elsewhere'})
    with pytest.raises(exception.Invalid):
        _as_host(owner).record_step(nl_context.get_admin_context(), 'power_action_done',
                                    sid, vm_state='active',
                                    instance_values={'project_id': 'stolen'})
    assert cloud.server(sid)['OS-EXT-SRV-ATTR:host'] == owner
