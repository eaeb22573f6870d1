"""Live-migration policies through REST: which policy a server's move gets (flavor, image,
project, default, an unknown name), and what its stall detection does with a guest that
dirties memory faster than the fake hosts' bandwidth (post-copy, pause or abort), every
decision recorded on the migration."""

import json

import pytest

from novalite.db import api as db
from tests.rest import ADMIN_TOKEN

HOSTS = ('compute1', 'compute2', 'compute3')
MV = '2.80'

POLICIES = {
    'default': {'completion_timeout_per_gib': 0},
    'postcopy': {'permit_post_copy': True, 'stall_seconds': 0.5,
                 'stall_action': 'post_copy', 'completion_timeout_per_gib': 0},
    'pausing': {'permit_post_copy': True, 'stall_seconds': 0.5, 'stall_action': 'pause',
                'completion_timeout_per_gib': 0},
    'no-postcopy': {'stall_seconds': 0.5, 'stall_action': 'post_copy',
                    'completion_timeout_per_gib': 0},
    'giving-up': {'stall_seconds': 0.5, 'stall_action': 'abort',
                  'completion_timeout_per_gib': 0},
    'capped': {'bandwidth': 2000},
    'impatient': {'completion_timeout_per_gib': 1, 'timeout_action': 'force_complete',
                  'permit_post_copy': True},
}


@pytest.fixture
def policy_cloud(cloud_factory, tmp_path):
    def make(projects=None, **overrides):
        path = tmp_path / 'policies.json'
        path.write_text(json.dumps({'policies': POLICIES, 'projects': projects or {}}))
        return cloud_factory(**{'migration.policy_file': str(path), **overrides})
    return make


def _host(server):
    return server['OS-EXT-SRV-ATTR:host']


def _flavor(cloud, name, policy):
    db.flavor_create(name, 512, 1, root_gb=1, flavorid=name,
                     extra_specs={'novalite:migration_policy': policy})
    return name


def _storm(cloud):
    """The guest dirties memory ten times faster than the hosts can send it."""
    for h in HOSTS:
        cloud.hypervisor(h).live_migration_bandwidth_mb_s = 400
        cloud.hypervisor(h).dirty_rate_mb_s = 4000


def _live(cloud, sid):
    cloud.request('POST', f'/servers/{sid}/action',
                  {'os-migrateLive': {'host': None, 'block_migration': 'auto'}},
                  version='2.34', expect=202)


def _finished(cloud, sid, *statuses):
    mig = cloud.wait_for_migration(sid, 'live-migration', statuses, timeout=30)
    server = cloud.wait_until(lambda: cloud.server(sid)['OS-EXT-STS:task_state'] is None
                              and cloud.server(sid), message='task cleared')
    # The record as os-migrations shows it, with the policy and its log.
    mig = [m for m in cloud.get_json(f'/os-migrations?instance_uuid={sid}',
                                     version=MV)['migrations'] if m['id'] == mig['id']][0]
    return mig, server


def _decisions(mig):
    return [e['decision'] for e in mig['policy_log']]


def test_without_a_policy_file_the_default_is_recorded(cloud):
    sid = cloud.boot('p0')['id']
    _live(cloud, sid)
    mig, _ = _finished(cloud, sid, 'completed')
    # Recorded, though the API shows it only once policies are defined (the body stays
    # Nova's for strict clients until then).
    assert 'policy' not in mig
    rec = db.migration_get(mig['uuid'])
    assert rec['policy'] == 'default'
    assert rec['policy_log'][0]['decision'] == 'policy_selected'
    assert rec['policy_log'][0]['detail'] == 'default (default)'
    assert rec['policy_log'][0]['at']


def test_stall_switches_to_post_copy(policy_cloud):
    cloud = policy_cloud()
    sid = cloud.boot('pc', flavor=_flavor(cloud, 'pc', 'postcopy'))['id']
    src = _host(cloud.server(sid))
    _storm(cloud)
    _live(cloud, sid)
    mig, server = _finished(cloud, sid, 'completed', 'cancelled', 'failed', 'error')
    assert mig['status'] == 'completed'
    assert mig['policy'] == 'postcopy'
    assert _decisions(mig) == ['policy_selected', 'stall_detected',
                               'switched_to_post_copy']
    assert 'flavor extra spec novalite:migration_policy' in mig['policy_log'][0]['detail']
    assert 'action: post_copy' in mig['policy_log'][1]['detail']
    times = [e['at'] for e in mig['policy_log']]
    assert times == sorted(times)
    assert _host(server) != src and server['OS-EXT-STS:power_state'] == 1
    assert sid in cloud.hypervisor(_host(server)).guests


@pytest.mark.parametrize('policy', ['pausing', 'no-postcopy'])
def test_stall_pauses_the_guest(policy_cloud, policy):
    """A policy that says pause, or says post-copy without permitting it, pauses the
    guest so the copy converges; it runs again on the destination."""
    cloud = policy_cloud()
    sid = cloud.boot('pz', flavor=_flavor(cloud, 'pz', policy))['id']
    src = _host(cloud.server(sid))
    _storm(cloud)
    _live(cloud, sid)
    mig, server = _finished(cloud, sid, 'completed', 'cancelled', 'failed', 'error')
    assert mig['status'] == 'completed' and mig['policy'] == policy
    assert _decisions(mig) == ['policy_selected', 'stall_detected', 'guest_paused']
    assert 'action: pause' in mig['policy_log'][1]['detail']
    assert _host(server) != src and server['status'] == 'ACTIVE'
    assert server['OS-EXT-STS:power_state'] == 1


def test_stall_aborts_and_the_guest_stays(policy_cloud):
    cloud = policy_cloud()
    sid = cloud.boot('ab', flavor=_flavor(cloud, 'ab', 'giving-up'))['id']
    src = _host(cloud.server(sid))
    _storm(cloud)
    _live(cloud, sid)
    mig, server = _finished(cloud, sid, 'completed', 'cancelled', 'failed', 'error')
    assert mig['status'] == 'cancelled' and mig['policy'] == 'giving-up'
    assert _decisions(mig) == ['policy_selected', 'stall_detected', 'aborted']
    assert _host(server) == src and server['status'] == 'ACTIVE'
    assert cloud.hypervisor(src).guests[sid]['power_state'] == 1
    assert all(sid not in cloud.hypervisor(h).incoming for h in HOSTS)
    assert 'aborted by its policy' in db.fault_get_latest([sid])[sid]['message']


def test_image_property_then_project_then_default(policy_cloud):
    """The flavor wins over the image, the image over the project mapping."""
    cloud = policy_cloud()
    image = db.image_create('policy-image',
                            properties={'novalite_migration_policy': 'capped'})['uuid']
    by_image = cloud.boot('im', image=image)['id']
    both = cloud.boot('fl', image=image, flavor=_flavor(cloud, 'fl', 'pausing'))['id']
    for sid in (by_image, both):
        _live(cloud, sid)
    mig, _ = _finished(cloud, by_image, 'completed')
    assert mig['policy'] == 'capped'
    assert 'image property novalite_migration_policy' in mig['policy_log'][0]['detail']
    mig, _ = _finished(cloud, both, 'completed')
    assert mig['policy'] == 'pausing'


def test_project_mapping(policy_cloud):
    project = ADMIN_TOKEN.split(':')[1]  # noauth2: user:project
    cloud = policy_cloud(projects={project: 'capped'})
    sid = cloud.boot('pr')['id']
    _live(cloud, sid)
    mig, _ = _finished(cloud, sid, 'completed')
    assert mig['policy'] == 'capped'
    assert mig['policy_log'][0]['detail'] == f'capped (project {project})'


def test_unknown_policy_falls_back_to_default(policy_cloud):
    cloud = policy_cloud()
    sid = cloud.boot('un', flavor=_flavor(cloud, 'un', 'no-such-policy'))['id']
    _live(cloud, sid)
    mig, server = _finished(cloud, sid, 'completed')
    assert mig['policy'] == 'default'
    assert _decisions(mig) == ['policy_unknown', 'policy_selected']
    assert "'no-such-policy'" in mig['policy_log'][0]['detail']


def test_server_migration_show_has_the_policy(policy_cloud):
    cloud = policy_cloud()
    sid = cloud.boot('sh', flavor=_flavor(cloud, 'sh', 'pausing'))['id']
    for h in HOSTS:
        cloud.hypervisor(h).live_migration_bandwidth_mb_s = 100
    _live(cloud, sid)
    mig = cloud.wait_for_migration(sid, 'live-migration', ('running',), timeout=15)
    shown = cloud.get_json(f"/servers/{sid}/migrations/{mig['id']}",
                           version=MV)['migration']
    assert shown['policy'] == 'pausing'
    assert shown['policy_log'][0]['decision'] == 'policy_selected'
    cloud.wait_for_migration(sid, 'live-migration', ('completed',), timeout=30)


def test_completion_timeout_of_the_policy_forces_post_copy(policy_cloud):
    cloud = policy_cloud()
    sid = cloud.boot('to', flavor=_flavor(cloud, 'to', 'impatient'))['id']
    src = _host(cloud.server(sid))
    _storm(cloud)
    _live(cloud, sid)
    mig, server = _finished(cloud, sid, 'completed', 'cancelled', 'failed', 'error')
    assert mig['status'] == 'completed'
    assert _decisions(mig) == ['policy_selected', 'timeout', 'switched_to_post_copy']
    assert 'action: force_complete' in mig['policy_log'][1]['detail']
    assert 'completion timeout' in mig['policy_log'][2]['detail']
    assert _host(server) != src
