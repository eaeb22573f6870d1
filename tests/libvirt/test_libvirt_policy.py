"""End to end with real libvirtd daemons and a TCG guest: a live migration whose policy
(chosen by the project mapping) switches it to post-copy on its own, with every
decision recorded on the migration.

The migration is throttled to 1 MiB/s once its memory moves, so it cannot finish in
pre-copy; the policy's completion timeout (force_complete) or its stall detection,
whichever comes first, switches it to post-copy, and the guest keeps running on the
destination without a reboot.
"""

import json
import time

import pytest

from tests.libvirt.fixtures import other_host, running_cluster, start_crawling_live_migration
from tests.rest import RestClient

pytestmark = [pytest.mark.integration, pytest.mark.slow]

POLICY = {'permit_post_copy': True, 'completion_timeout_per_gib': 3,
          'timeout_action': 'force_complete', 'stall_seconds': 5,
          'stall_action': 'post_copy'}


@pytest.fixture
def policy_cluster(tmp_path, libvirt_hosts, private_rabbit_url, pg_fresh_url):
    path = tmp_path / 'policies.json'
    # The test client's project (noauth2 admin:admin) gets the policy.
    path.write_text(json.dumps({'policies': {'switch': POLICY},
                                'projects': {'admin': 'switch'}}))
    with running_cluster(tmp_path / 'cluster', pg_fresh_url, private_rabbit_url,
                         extra_conf={'migration.policy_file': str(path)}) as cluster:
        yield cluster


def test_policy_switches_a_crawling_live_migration_to_post_copy(policy_cluster,
                                                                libvirt_hosts):
    cluster = policy_cluster
    client = RestClient(cluster.endpoint, wait_timeout=90)
    image = cluster.register_image()
    client.request('POST', '/flavors', {'flavor': {
        'id': 'pol', 'name': 'lv.pol', 'ram': 128, 'vcpus': 1, 'disk': 1}}, expect=200)
    sid = client.request('POST', '/servers', {'server': {
        'name': 'pol', 'flavorRef': 'pol', 'imageRef': image, 'networks': 'none'}},
        expect=202).data['server']['id']
    host = client.wait_for_server(sid, 'ACTIVE')['OS-EXT-SRV-ATTR:host']
    cluster.wait_ticks(host, sid, count=1)

    last = cluster.ticks(host, sid)[-1][0]
    start_crawling_live_migration(client, libvirt_hosts, sid, host)
    started = time.monotonic()
    client.wait_until(lambda: client.server(sid)['OS-EXT-STS:task_state'] is None,
                      timeout=120, message='the policy to complete the live migration')
    mig = client.migrations(sid, 'live-migration')[0]
    assert mig['status'] == 'completed', mig
    assert client.server(sid)['OS-EXT-SRV-ATTR:host'] == other_host(host)
    assert mig['policy'] == 'switch'
    decisions = [e['decision'] for e in mig['policy_log']]
    assert decisions[0] == 'policy_selected'
    assert decisions[-1] == 'switched_to_post_copy', mig['policy_log']
    assert decisions[1] in ('timeout', 'stall_detected'), mig['policy_log']
    # The guest runs on, on the destination, from where it was: no reboot.
    ticks = cluster.wait_ticks(other_host(host), sid, count=2)
    assert cluster.boots(other_host(host), sid) == 0 and ticks[0][0] > last
    print('policy switch to post-copy and completion took %.1fs: %s'
          % (time.monotonic() - started, decisions))

