"""Request contexts from noauth2 tokens and keystone headers."""

import pytest
import webob

from novalite.api import auth, faults


def _req(**headers):
    return webob.Request.blank('/v2.1/servers', headers=headers)


def test_noauth2_admin_and_user():
    ctx = auth.noauth2_context(_req(**{'X-Auth-Token': 'admin:proj'}), 'req-1')
    assert ctx.is_admin and ctx.project_id == 'proj' and 'member' in ctx.roles
    assert ctx.request_id == 'req-1'
    ctx = auth.noauth2_context(_req(**{'X-Auth-Token': 'alice'}), 'req-2')
    assert not ctx.is_admin and ctx.user_id == 'alice' and ctx.project_id == 'alice'
    assert ctx.roles == ['member', 'reader']


def test_noauth2_roles_from_token_never_admin():
    ctx = auth.noauth2_context(_req(**{'X-Auth-Token': 'bob:p:Manager,reader'}), 'r')
    assert ctx.roles == ['manager', 'reader'] and not ctx.is_admin
    ctx = auth.noauth2_context(_req(**{'X-Auth-Token': 'bob:p:admin,reader'}), 'r')
    assert ctx.roles == ['reader'] and not ctx.is_admin


def test_noauth2_ignores_roles_header():
    ctx = auth.noauth2_context(_req(**{'X-Auth-Token': 'bob:p', 'X-Roles': 'admin'}), 'r')
    assert ctx.roles == ['member', 'reader'] and not ctx.is_admin


def test_noauth2_challenge():
    resp = auth.noauth2_challenge(_req())
    assert resp.status_int == 204 and resp.headers['X-Auth-Token'] == 'admin:admin'


def test_keystone_headers():
    ctx = auth.keystone_context(_req(**{'X-User-Id': 'u', 'X-Project-Id': 'p',
                                        'X-Roles': 'admin,reader'}), 'r')
    assert ctx.is_admin and ctx.project_id == 'p'
    with pytest.raises(faults.HTTPError) as err:
        auth.keystone_context(_req(**{'X-Project-Id': 'p'}), 'r')
    assert err.value.code == 401
    with pytest.raises(faults.HTTPError):
        auth.keystone_context(_req(**{'X-User-Id': 'u', 'X-Identity-Status': 'Invalid'}),
                              'r')


def test_keystone_scopes():
    ctx = auth.keystone_context(_req(**{'X-User-Id': 'u', 'X-Domain-Id': 'default',
                                        'X-Roles': 'Reader'}), 'r')
    assert ctx.domain_id == 'default' and ctx.project_id is None and ctx.roles == ['reader']
    ctx = auth.keystone_context(_req(**{'X-User-Id': 'u', 'OpenStack-System-Scope': 'all',
                                        'X-Roles': 'admin'}), 'r')
    assert ctx.system_scope == 'all' and ctx.is_admin and ctx.request_id == 'r'
    with pytest.raises(faults.HTTPError) as err:
        auth.keystone_context(_req(**{'X-User-Id': 'u', 'X-Roles': 'admin'}), 'r')
    assert err.value.code == 403
