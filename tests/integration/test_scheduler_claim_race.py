"""Two scheduler processes race their selections and claims over the same few hosts,
on PostgreSQL and on MariaDB (READ COMMITTED): each claims with the generation its own
host cache is at, so most claims of the loser of a race find a generation moved or no
room left and fall back to the reading claim. Every slot gets filled, none twice: no
provider is ever allocated beyond its capacity."""

import multiprocessing
import uuid as uuidlib

import oslo_messaging as messaging
import pytest
import sqlalchemy as sa

from novalite import exception
from novalite.db import api as db
from novalite.db import models, session

pytestmark = pytest.mark.integration

HOSTS = 4
VCPUS = 4                      # per host, allocation ratio 1.0: 16 slots of one vCPU
REQUESTS = 14                  # per scheduler: 28 requests for 16 slots
FLAVOR = {'flavorid': '1', 'name': 'one', 'vcpus': 1, 'memory_mb': 256, 'root_gb': 1,
          'ephemeral_gb': 0, 'swap': 0, 'extra_specs': {}}
RATIOS = {'VCPU': 1.0, 'MEMORY_MB': 1.0, 'DISK_GB': 1.0}
RESERVED = {'VCPU': 0, 'MEMORY_MB': 0, 'DISK_GB': 0}


@pytest.fixture(params=['postgresql', 'mysql'])
def url(request):
    url = request.getfixturevalue({'postgresql': 'pg_fresh_url',
                                   'mysql': 'mysql_fresh_url'}[request.param])
    engine = session.create_engine(url)
    models.Base.metadata.create_all(engine)
    session.set_engine(engine)
    now = models.utcnow()
    with engine.begin() as conn:
        conn.execute(sa.insert(models.Service), [
            dict(uuid=str(uuidlib.uuid4()), host='h%d' % i, binary='novalite-compute',
                 topic='compute', disabled=False, forced_down=False, last_seen_up=now,
                 created_at=now) for i in range(HOSTS)])
    for i in range(HOSTS):
        db.compute_node_update('h%d' % i, 'h%d' % i,
                               {'vcpus': VCPUS, 'memory_mb': 8192, 'local_gb': 100},
                               RATIOS, RESERVED)
    yield url
    session.set_engine(None)


def _scheduler_process(url, barrier, out):
    try:
        out.put(_schedule(url, barrier))
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        out.put(repr(exc))
        raise


def _schedule(url, barrier):
    from novalite.scheduler.host_state import RequestSpec
    from novalite.scheduler.manager import SchedulerManager
    session.set_engine(session.create_engine(url))
    mgr = SchedulerManager('sched-%d' % multiprocessing.current_process().pid)
    placed, refused = [], 0
    barrier.wait()
    for _ in range(REQUESTS):
        uuid = str(uuidlib.uuid4())
        spec = RequestSpec(instance_uuid=uuid, project_id='p', user_id='u',
                           flavor=dict(FLAVOR), image={'id': 'img', 'properties': {}})
        try:
            picked = mgr.select_destinations(None, spec.to_dict(), [uuid],
                                             return_alternates=False)
            placed.append((uuid, picked[0][0]['compute_node_uuid']))
        except messaging.ExpectedException as exc:
            # select_destinations is an RPC method: NoValidHost comes wrapped.
            assert isinstance(exc.exc_info[1], exception.NoValidHost)
            refused += 1
    return placed, refused


def test_two_schedulers_fill_every_slot_once(url):
    ctx = multiprocessing.get_context('spawn')
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_scheduler_process, args=(url, barrier, out))
             for _ in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=300) for _ in procs]
    assert not [r for r in results if isinstance(r, str)], results
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    placed = [pair for r in results for pair in r[0]]
    assert len(placed) == HOSTS * VCPUS
    assert sum(r[1] for r in results) == 2 * REQUESTS - HOSTS * VCPUS
    for node in db.compute_node_get_all():
        assert db.provider_usages(node['uuid'])['VCPU'] == VCPUS
    for consumer, rp in placed:
        assert db.get_allocations(consumer) == {rp: {'VCPU': 1, 'MEMORY_MB': 256,
                                                     'DISK_GB': 1}}
