"""Concurrent boots into one server group, over real daemons: six computes, two
schedulers and two conductors (each its own process), RabbitMQ, and PostgreSQL or
MariaDB (both under READ COMMITTED).

Twenty boots race into an anti-affinity group: exactly one member lands on each of the
six hosts and the other fourteen end in ERROR with NoValidHost, never two on one host.
Twenty boots race into an affinity group: all land on one host. The placement is read
from the database's allocations as well as from the API."""

import collections
import concurrent.futures
import os

import pytest

from novalite.cluster import Cluster
from novalite.conf import CONF
from novalite.db import api as db
from novalite.db import models, session
from tests.conftest import fresh_mysql_database, fresh_pg_database, private_vhost
from tests.rest import RestClient

pytestmark = pytest.mark.integration

COMPUTES = 6
BOOTS = 20


@pytest.fixture(scope='module', params=['postgresql', 'mysql'])
def cluster(request, tmp_path_factory, rabbit_url):
    if request.param == 'postgresql':
        db_gen = fresh_pg_database(request.getfixturevalue('pg_url'))
    else:
        db_gen = fresh_mysql_database(request.getfixturevalue('mysql_url'))
    vhost_gen = private_vhost(rabbit_url)
    db_url, transport_url = next(db_gen), next(vhost_gen)
    c = Cluster(tmp_path_factory.mktemp('groups'), db_url, transport_url, computes=COMPUTES)
    try:
        c.start(timeout=120)
        # A second scheduler and a second conductor on their own hosts: the two of each
        # consume the same topics, so the boots are spread over both.
        c.start_process('scheduler2', 'scheduler', 'ctl2')
        c.start_process('conductor2', 'conductor', 'ctl2')
        CONF.set_override('connection', db_url, group='database')
        session.set_engine(None)
        client = RestClient(c.endpoint, wait_timeout=120.0, poll_interval=0.2)
        client.wait_until(lambda: {s['host'] for s in db.service_get_all()
                                   if s['binary'] in ('novalite-scheduler',
                                                      'novalite-conductor')
                                   and s['report_count']} == {'ctl', 'ctl2'},
                          message='both schedulers and conductors consuming')
        client.request('PUT', '/os-quota-sets/admin', {'quota_set': {
            'instances': 100, 'cores': 200, 'ram': 10 ** 6,
            'server_group_members': 100}}, expect=200)
        yield c, client
    finally:
        c.stop()
        session.set_engine(None)
        CONF.clear_override('connection', group='database')
        vhost_gen.close()
        db_gen.close()


def _group(client, policy):
    return client.request('POST', '/os-server-groups', {'server_group': {
        'name': policy, 'policy': policy}}, version='2.64', expect=200).data[
        'server_group']['id']


def _boot_all(client, group):
    image = db.image_get_all()[0]['uuid']

    def boot(i):
        body = {'server': {'name': f'race-{i}', 'flavorRef': '1', 'networks': 'none',
                           'imageRef': image}, 'os:scheduler_hints': {'group': group}}
        return client.request('POST', '/servers', body, expect=202).data['server']['id']

    with concurrent.futures.ThreadPoolExecutor(BOOTS) as pool:
        sids = list(pool.map(boot, range(BOOTS)))

    def settled():
        servers = [client.server(s) for s in sids]
        if all(s['status'] in ('ACTIVE', 'ERROR') and s['OS-EXT-STS:task_state'] is None
               for s in servers):
            return servers
        return None

    return client.wait_until(settled, message='every boot ACTIVE or ERROR')


def _hosts_by_allocation(sids):
    """host -> the servers holding an allocation there, as the database says."""
    node_host = {n['uuid']: n['host'] for n in db.compute_node_get_all()}
    out = collections.defaultdict(list)
    for sid in sids:
        for rp in db.get_allocations(sid):
            out[node_host[rp]].append(sid)
    return out


def _resent_selections(c) -> int:
    """How often a conductor sent select_destinations again (no answer in time)."""
    with open(os.path.join(c.workdir, 'conductor.log'), errors='replace') as f:
        return sum('select_destinations got no answer' in line for line in f)


def test_twenty_parallel_boots_into_an_anti_affinity_group(cluster):
    c, client = cluster
    group = _group(client, 'anti-affinity')
    servers = _boot_all(client, group)
    active = [s for s in servers if s['status'] == 'ACTIVE']
    failed = [s for s in servers if s['status'] == 'ERROR']
    hosts = [s['OS-EXT-SRV-ATTR:host'] for s in active]
    assert len(active) == COMPUTES and len(failed) == BOOTS - COMPUTES, [
        (s['status'], s.get('fault')) for s in servers]
    assert sorted(hosts) == [f'compute{i}' for i in range(1, COMPUTES + 1)]
    for server in failed:
        assert server['fault']['message'].startswith('No valid host was found.'), server
        assert server['OS-EXT-SRV-ATTR:host'] is None
    placed = _hosts_by_allocation([s['id'] for s in servers])
    assert sorted(placed) == sorted(hosts)
    assert all(len(members) == 1 for members in placed.values()), placed
    # The group's generation moved once per successful claim and never for a refusal.
    # A request a loaded scheduler answered too late is sent again and claims again
    # (the server stays placed once), so each resend may move it once more.
    with session.reader() as s:
        generation = s.query(models.ServerGroup.generation).filter(
            models.ServerGroup.uuid == group).scalar()
    assert COMPUTES <= generation <= COMPUTES + _resent_selections(c), generation


def test_twenty_parallel_boots_into_an_affinity_group(cluster):
    _c, client = cluster
    group = _group(client, 'affinity')
    servers = _boot_all(client, group)
    assert all(s['status'] == 'ACTIVE' for s in servers), [
        (s['status'], s.get('fault')) for s in servers]
    assert len({s['OS-EXT-SRV-ATTR:host'] for s in servers}) == 1
    placed = _hosts_by_allocation([s['id'] for s in servers])
    assert len(placed) == 1 and len(next(iter(placed.values()))) == BOOTS
