"""A compute host may act only on its own work: the conductor refuses, over RPC, any step,
read or write about an instance that is neither on the caller nor in a move naming it."""

import pytest

from novalite import context as nl_context
from novalite import exception
from novalite.conductor import rpcapi as conductor_rpcapi
from novalite.db import api as db


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


def test_progress_arriving_after_the_move_ended_changes_nothing(cloud):
    """A progress report sent just before a live migration's last step may be served
    after it: the finished record keeps what its final step wrote."""
    sid = cloud.boot('late')['id']
    source = cloud.server(sid)['OS-EXT-SRV-ATTR:host']
    cloud.action(sid, {'os-migrateLive': {'host': None, 'block_migration': 'auto'}},
                 version='2.30')
    cloud.wait_for_migration(sid, migration_type='live-migration')
    final = db.migration_get_all(instance_uuid=sid)[-1]
    _as_host(source).record_progress(sid, migration_uuid=final['uuid'],
                                     migration_values={'memory_processed': 1,
                                                       'memory_remaining': 999})
    after = db.migration_get_all(instance_uuid=sid)[-1]
    assert after['status'] == final['status'] == 'completed'
    assert (after['memory_remaining'], after['updated_at']) == \
        (final['memory_remaining'], final['updated_at'])
