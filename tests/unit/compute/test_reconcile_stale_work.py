"""ComputeManager.reconcile_stale_work and a live migration queued on the source: the
host's own executor drives it (no re-drive, no log line each pass); a request that
never reached the executor (lost) is driven from its recorded state."""

import datetime
import logging
import threading
import types

import pytest

from novalite.compute import states
from novalite.compute.manager import ComputeManager
from novalite.conf import CONF
from novalite.db.models import utcnow

MS = states.MS
OLD = utcnow() - datetime.timedelta(hours=1)


class _Conductor:
    def __init__(self, inst, mig):
        self.inst, self.mig = inst, mig

    def host_instances(self):
        return [self.inst]

    def host_migrations(self):
        return [self.mig]

    def instance_get(self, uuid):
        assert uuid == self.inst['uuid']
        return self.inst


@pytest.fixture
def source():
    """A compute 'src' owning a queued live migration to 'dst' that nothing changed
    for an hour; ``running`` says whether its executor holds the job."""
    inst = {'uuid': 'i1', 'host': 'src', 'task_state': states.MIGRATING,
            'task_driver': None, 'vm_state': states.ACTIVE, 'updated_at': OLD}
    mig = {'uuid': 'm1', 'instance_uuid': 'i1', 'migration_type': states.LIVE_MIGRATION,
           'status': MS.QUEUED, 'source_compute': 'src', 'dest_compute': 'dst',
           'updated_at': OLD}
    driven = []
    live = types.SimpleNamespace(running=lambda uuid: uuid in live.jobs, jobs=set(),
                                 reconcile=lambda ctx, m: driven.append(m['uuid']))
    locks = {}
    mgr = types.SimpleNamespace(
        host='src', conductor=_Conductor(inst, mig), live=live,
        evacuation=types.SimpleNamespace(clean_up_evacuated=lambda ctx, migs: None),
        _locks=lambda uuid: locks.setdefault(uuid, threading.Lock()))
    mgr._flow = types.MethodType(ComputeManager._flow, mgr)
    mgr._reconcile_idle = types.MethodType(ComputeManager._reconcile_idle, mgr)
    mgr.reconcile = lambda: ComputeManager.reconcile_stale_work(mgr, None)
    mgr.driven = driven
    assert states.owner_host(states.pending_step(mig, inst), mig, inst) == 'src'
    CONF.set_override('reconcile_grace', 30, group='compute')
    yield mgr
    CONF.clear_override('reconcile_grace', group='compute')


def test_a_live_migration_queued_on_this_host_is_left_to_its_job(source, caplog):
    source.live.jobs.add('i1')
    with caplog.at_level(logging.INFO, logger='novalite.compute.manager'):
        source.reconcile()
        source.reconcile()
    assert source.driven == []
    assert 'Driving' not in caplog.text


def test_a_lost_live_migration_request_is_driven(source, caplog):
    with caplog.at_level(logging.INFO, logger='novalite.compute.manager'):
        source.reconcile()
    assert source.driven == ['m1']
    assert 'Driving live_migration_preparing of i1' in caplog.text
