"""os-server-groups through REST: every microversion boundary (2.13, 2.15, 2.64, 2.71,
2.75), every error, the quotas, and membership through the group scheduler hint."""

import pytest

from novalite.db import api as db
from novalite.db import models, session

MISSING = '9d1d8d0c-5b40-4d8e-9a56-7f9e0d4c1a11'


def _create(cloud, name='g', policy='anti-affinity', version='2.64', expect=200, token=None,
            **extra):
    if tuple(int(p) for p in version.split('.')) >= (2, 64):
        body = {'name': name, 'policy': policy, **extra}
    else:
        body = {'name': name, 'policies': [policy], **extra}
    kw = {'token': token} if token else {}
    resp = cloud.request('POST', '/os-server-groups', {'server_group': body},
                         version=version, expect=expect, **kw)
    return resp.data.get('server_group') if expect == 200 else resp.data


def _group_rows():
    with session.reader() as s:
        return s.query(models.ServerGroup).count()


def _boot_in(cloud, group, name='m', wait=True, token=None, version=None, **extra):
    body = {'server': {'name': name, 'flavorRef': '1', 'networks': 'none',
                       'imageRef': cloud.first_image(), **extra},
            'os:scheduler_hints': {'group': group}}
    kw = {'token': token} if token else {}
    server = cloud.request('POST', '/servers', body, expect=202, version=version,
                           **kw).data['server']
    if wait:
        return cloud.wait_for_server(server['id'], 'ACTIVE', **kw)
    return server


def test_create_show_list_delete_at_2_1(cloud):
    group = _create(cloud, 'web', 'affinity', version='2.1')
    assert group == {'id': group['id'], 'name': 'web', 'policies': ['affinity'],
                     'members': [], 'metadata': {}}
    shown = cloud.get_json(f"/os-server-groups/{group['id']}", version='2.1')['server_group']
    assert shown == group
    listed = cloud.get_json('/os-server-groups', version='2.1')['server_groups']
    assert listed == [group]
    cloud.request('DELETE', f"/os-server-groups/{group['id']}", version='2.1', expect=204)
    cloud.request('GET', f"/os-server-groups/{group['id']}", version='2.1', expect=404)
    assert cloud.get_json('/os-server-groups', version='2.1')['server_groups'] == []


def test_2_13_adds_project_and_user(cloud):
    older = _create(cloud, 'a', version='2.12', token='alice:demo')
    assert 'project_id' not in older and 'user_id' not in older
    newer = cloud.get_json(f"/os-server-groups/{older['id']}", version='2.13',
                           token='alice:demo')['server_group']
    assert newer['project_id'] == 'demo' and newer['user_id'] == 'alice'
    assert newer['policies'] == ['anti-affinity'] and newer['metadata'] == {}


@pytest.mark.parametrize('policy', ['soft-affinity', 'soft-anti-affinity'])
def test_soft_policies_from_2_15(cloud, policy):
    err = _create(cloud, 's', policy, version='2.14', expect=400)
    assert 'badRequest' in err
    assert _group_rows() == 0
    group = _create(cloud, 's', policy, version='2.15')
    assert group['policies'] == [policy]


def test_2_64_policy_and_rules(cloud):
    group = _create(cloud, 'spread', 'anti-affinity', rules={'max_server_per_host': 2})
    assert group['policy'] == 'anti-affinity'
    assert group['rules'] == {'max_server_per_host': 2}
    assert 'policies' not in group and 'metadata' not in group
    assert group['project_id'] == 'admin' and group['members'] == []
    plain = _create(cloud, 'plain', 'affinity')
    assert plain['rules'] == {}
    # The same group seen at 2.63: policies, no rules.
    old = cloud.get_json(f"/os-server-groups/{group['id']}", version='2.63')['server_group']
    assert old['policies'] == ['anti-affinity'] and 'rules' not in old
    # A rule given as a string of digits is taken as a number, as Nova does.
    text = _create(cloud, 'text', 'anti-affinity', rules={'max_server_per_host': '3'})
    assert text['rules'] == {'max_server_per_host': 3}


@pytest.mark.parametrize('version,body,message', [
    ('2.64', {'name': 'x', 'policy': 'affinity', 'rules': {'max_server_per_host': 2}},
     'Only anti-affinity policy supports rules.'),
    ('2.64', {'name': 'x', 'policy': 'soft-anti-affinity',
              'rules': {'max_server_per_host': 2}},
     'Only anti-affinity policy supports rules.'),
    ('2.64', {'name': 'x', 'policy': 'anti-affinity', 'rules': {'max_server_per_host': 0}},
     'Invalid input'),
    ('2.64', {'name': 'x', 'policy': 'anti-affinity', 'rules': {'other': 1}}, 'Invalid input'),
    ('2.64', {'name': 'x', 'policies': ['anti-affinity']}, 'Invalid input'),
    ('2.64', {'name': 'x', 'policy': 'best-effort'}, 'Invalid input'),
    ('2.63', {'name': 'x', 'policy': 'anti-affinity'}, 'Invalid input'),
    ('2.63', {'name': 'x', 'policies': ['anti-affinity'],
              'rules': {'max_server_per_host': 2}}, 'Invalid input'),
    ('2.63', {'name': 'x', 'policies': ['anti-affinity', 'affinity']}, 'Invalid input'),
    ('2.63', {'name': 'x', 'policies': []}, 'Invalid input'),
    ('2.1', {'name': 'x', 'policies': ['bogus']}, 'Invalid input'),
    ('2.1', {'name': ' x', 'policies': ['affinity']}, 'Invalid input'),
    ('2.1', {'policies': ['affinity']}, 'Invalid input'),
])
def test_bad_create_is_400_and_changes_nothing(cloud, version, body, message):
    resp = cloud.request('POST', '/os-server-groups', {'server_group': body},
                         version=version, expect=400)
    assert message in resp.data['badRequest']['message']
    assert _group_rows() == 0


def test_unknown_group_is_404(cloud):
    for method in ('GET', 'DELETE'):
        resp = cloud.request(method, f'/os-server-groups/{MISSING}', expect=404)
        assert resp.data['itemNotFound']['message'] == (
            f'Instance group {MISSING} could not be found.')


def test_projects_see_their_own_groups(cloud):
    mine = _create(cloud, 'mine', token='alice:demo')
    theirs = _create(cloud, 'theirs', token='bob:other')
    listed = cloud.get_json('/os-server-groups', token='alice:demo')['server_groups']
    assert [g['id'] for g in listed] == [mine['id']]
    # Another project's group does not exist for a project's user, as in Nova.
    cloud.request('GET', f"/os-server-groups/{theirs['id']}", token='alice:demo', expect=404)
    cloud.request('DELETE', f"/os-server-groups/{theirs['id']}", token='alice:demo',
                  expect=404)
    body = {'server': {'name': 'x', 'flavorRef': '1', 'networks': 'none',
                       'imageRef': cloud.first_image()},
            'os:scheduler_hints': {'group': theirs['id']}}
    resp = cloud.request('POST', '/servers', body, token='alice:demo', expect=400)
    assert resp.data['badRequest']['message'] == (
        f"Instance group {theirs['id']} could not be found.")
    # all_projects from a project's user is no error: it lists its own (as Nova).
    own = cloud.get_json('/os-server-groups?all_projects=True', token='alice:demo')
    assert [g['id'] for g in own['server_groups']] == [mine['id']]
    everyone = cloud.get_json('/os-server-groups?all_projects=True')['server_groups']
    assert [g['id'] for g in everyone] == [mine['id'], theirs['id']]
    # The admin's own project holds none without all_projects.
    assert cloud.get_json('/os-server-groups')['server_groups'] == []
    assert cloud.get_json(f"/os-server-groups/{theirs['id']}")['server_group']['name'] == (
        'theirs')


def test_limit_and_offset(cloud):
    ids = [_create(cloud, f'g{i}')['id'] for i in range(5)]

    def page(query):
        return [g['id'] for g in cloud.get_json(f'/os-server-groups?{query}')['server_groups']]

    assert page('limit=2') == ids[:2]
    assert page('limit=2&offset=2') == ids[2:4]
    assert page('offset=4') == ids[4:]
    assert page('offset=9') == []
    for bad in ('limit=-1', 'offset=x', 'limit=1.5'):
        cloud.request('GET', f'/os-server-groups?{bad}', expect=400)
    # Unknown query parameters: ignored before 2.75, a 400 from it.
    assert len(cloud.get_json('/os-server-groups?foo=1', version='2.74')['server_groups']) == 5
    cloud.request('GET', '/os-server-groups?foo=1', version='2.75', expect=400)


def test_group_quota_is_403_and_shown_in_limits_and_quota_sets(cloud):
    db.quota_set('demo', 'server_groups', 2)
    _create(cloud, 'one', token='alice:demo')
    _create(cloud, 'two', token='alice:demo')
    err = _create(cloud, 'three', token='alice:demo', expect=403)
    assert err['forbidden']['message'] == 'Quota exceeded, too many server groups.'
    assert _group_rows() == 2
    absolute = cloud.get_json('/limits', token='alice:demo')['limits']['absolute']
    assert absolute['maxServerGroups'] == 2
    assert absolute['maxServerGroupMembers'] == 10
    assert absolute['totalServerGroupsUsed'] == 2
    detail = cloud.get_json('/os-quota-sets/demo/detail')['quota_set']
    assert detail['server_groups'] == {'limit': 2, 'in_use': 2, 'reserved': 0}
    assert detail['server_group_members']['limit'] == 10
    # Lowering the limit under the usage needs force, as for every counted quota.
    cloud.request('PUT', '/os-quota-sets/demo', {'quota_set': {'server_groups': 1}},
                  expect=400)


# ---------------------------------------------------------------- membership

def test_boot_with_group_hint_records_member_and_2_71_shows_it(cloud):
    group = _create(cloud, 'members')
    server = _boot_in(cloud, group['id'], 'm1')
    sid = server['id']
    shown = cloud.get_json(f"/os-server-groups/{group['id']}")['server_group']
    assert shown['members'] == [sid]
    assert cloud.server(sid, version='2.71')['server_groups'] == [group['id']]
    assert 'server_groups' not in cloud.server(sid, version='2.70')
    update = cloud.request('PUT', f'/servers/{sid}', {'server': {'name': 'renamed'}},
                           version='2.71', expect=200).data['server']
    assert update['server_groups'] == [group['id']]
    loner = cloud.boot('loner')
    assert cloud.server(loner['id'], version='2.71')['server_groups'] == []
    # Deleting the server takes it out of the group.
    cloud.request('DELETE', f'/servers/{sid}', expect=204)
    cloud.wait_for_server(sid, 'DELETED')
    assert cloud.get_json(f"/os-server-groups/{group['id']}")['server_group']['members'] == []


def test_deleting_a_group_leaves_its_servers(cloud):
    group = _create(cloud, 'gone')
    sid = _boot_in(cloud, group['id'])['id']
    cloud.request('DELETE', f"/os-server-groups/{group['id']}", expect=204)
    server = cloud.server(sid, version='2.71')
    assert server['status'] == 'ACTIVE' and server['server_groups'] == []


def test_unknown_group_hint_is_400_and_creates_nothing(cloud):
    before = len(db.instance_get_all_filtered())
    body = {'server': {'name': 'x', 'flavorRef': '1', 'networks': 'none',
                       'imageRef': cloud.first_image()},
            'os:scheduler_hints': {'group': MISSING}}
    resp = cloud.request('POST', '/servers', body, expect=400)
    assert resp.data['badRequest']['message'] == (
        f'Instance group {MISSING} could not be found.')
    body['os:scheduler_hints'] = {'group': 'not-a-uuid'}
    resp = cloud.request('POST', '/servers', body, expect=400)
    assert 'Invalid input' in resp.data['badRequest']['message']
    assert len(db.instance_get_all_filtered()) == before


def test_member_quota_is_403_and_creates_nothing(cloud):
    db.quota_set('admin', 'server_group_members', 2)
    group = _create(cloud, 'small', policy='soft-anti-affinity')
    _boot_in(cloud, group['id'], 'a')
    before = len(db.instance_get_all_filtered())
    body = {'server': {'name': 'two-more', 'flavorRef': '1', 'networks': 'none',
                       'imageRef': cloud.first_image(), 'min_count': 2},
            'os:scheduler_hints': {'group': group['id']}}
    resp = cloud.request('POST', '/servers', body, expect=403)
    assert resp.data['forbidden']['message'] == 'Quota exceeded, too many servers in group'
    assert len(db.instance_get_all_filtered()) == before
    assert len(cloud.get_json(f"/os-server-groups/{group['id']}")['server_group'][
        'members']) == 1
    # One more still fits.
    _boot_in(cloud, group['id'], 'b')
    assert len(cloud.get_json(f"/os-server-groups/{group['id']}")['server_group'][
        'members']) == 2
    resp = cloud.request('POST', '/servers', dict(body, server=dict(body['server'],
                                                                     min_count=1)),
                         expect=403)
    # The quota counts per user, as Nova's does: another user of the project still has
    # room in the same group.
    other = cloud.request('POST', '/servers', dict(body, server=dict(body['server'],
                                                                      min_count=2)),
                          token='bob:admin', expect=202).data['server']
    cloud.wait_for_server(other['id'], 'ACTIVE')
    assert len(cloud.get_json(f"/os-server-groups/{group['id']}")['server_group'][
        'members']) == 4


def test_owner_deletes_own_group(cloud):
    group = _create(cloud, 'own', token='alice:demo')
    cloud.request('DELETE', f"/os-server-groups/{group['id']}", token='alice:demo',
                  expect=204)
    assert _group_rows() == 0
