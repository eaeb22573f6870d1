"""In-code policy defaults."""

from novalite import context, policies
from novalite.api import auth


def test_rule_names_are_unique_and_documented():
    rules = policies.list_rules()
    names = [r.name for r in rules]
    assert len(names) == len(set(names))
    for name in ('os_compute_api:servers:create', 'os_compute_api:servers:resize',
                 'os_compute_api:os-migrate-server:migrate_live',
                 'os_compute_api:os-hypervisors:list', 'os_compute_api:os-services:update',
                 'os_compute_api:os-migrations:index:all_projects'):
        assert name in names


def test_defaults(conf):
    authz = auth.Authorizer(conf)
    admin = context.RequestContext('admin', 'p1', roles=['admin', 'member', 'reader'])
    member = context.RequestContext('u', 'p1', roles=['member', 'reader'])
    manager = context.RequestContext('u', 'p1', roles=['manager', 'member', 'reader'])
    own = {'project_id': 'p1', 'user_id': 'u'}
    other = {'project_id': 'p2', 'user_id': 'x'}
    assert authz.check(member, 'os_compute_api:servers:resize', own)
    assert not authz.check(member, 'os_compute_api:servers:resize', other)
    assert authz.check(admin, 'os_compute_api:servers:resize', other)
    assert not authz.check(member, 'os_compute_api:os-migrate-server:migrate', own)
    assert authz.check(manager, 'os_compute_api:os-migrate-server:migrate', own)
    assert not authz.check(manager, 'os_compute_api:os-migrate-server:migrate:host', own)
    assert not authz.check(member, 'os_compute_api:os-hypervisors:list', own)
    assert authz.check(admin, 'os_compute_api:os-hypervisors:list', own)
