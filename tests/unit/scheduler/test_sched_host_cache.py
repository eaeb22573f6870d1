"""The scheduler's host cache: a full load once, then only what changed; and two
schedulers with stale views never over-commit a host."""

import datetime

import oslo_messaging as messaging
import pytest
import sqlalchemy as sa
from sched_helpers import make_conf, spec

from novalite import exception
from novalite.db import api as db
from novalite.db import models
from novalite.db.session import reader
from novalite.scheduler import host_manager
from novalite.scheduler.host_cache import HostCache
from novalite.scheduler.manager import SchedulerManager

RESOURCES = {'vcpus': 4, 'memory_mb': 4096, 'local_gb': 100}


@pytest.fixture
def nodes(sqlite_db):
    def add(*hosts, resources=RESOURCES):
        for h in hosts:
            db.service_create(h, 'novalite-compute', 'compute')
        return sqlite_db(resources, *hosts)
    return add


def refreshed(cache):
    with reader() as s:
        return cache.refresh(s)


def by_host(view):
    return {hs.host: i for i, hs in enumerate(view.hosts)}


def ago(seconds):
    return models.utcnow() - datetime.timedelta(seconds=seconds)


def test_one_full_load_then_claims_and_releases_of_others_are_read(nodes):
    found = nodes('h1', 'h2')
    cache = HostCache(make_conf())
    view = refreshed(cache)
    assert sorted(by_host(view)) == ['h1', 'h2']
    db.claim_resources('i1', {found['h1']['uuid']: {'VCPU': 2, 'MEMORY_MB': 1024,
                                                    'DISK_GB': 10}})
    view = refreshed(cache)
    i = by_host(view)['h1']
    assert view.hosts[i].memory_mb_used == 1024 and view.memory_mb_used[i] == 1024
    assert view.vcpus_used[i] == 2 and view.disk_gb_used[i] == 10
    assert view.memory_mb_used[by_host(view)['h2']] == 0
    db.delete_allocations('i1')
    view = refreshed(cache)
    assert view.memory_mb_used[i] == 0 and view.hosts[i].vcpus_used == 0
    assert cache.stats['full_loads'] == 1
    assert cache.stats['usages_reloaded'] == 2, cache.stats


def test_nothing_changed_reads_nothing_again(nodes):
    nodes('h1', 'h2')
    cache = HostCache(make_conf())
    refreshed(cache)
    refreshed(cache)
    assert cache.stats == {'full_loads': 1, 'hosts_reloaded': 0, 'usages_reloaded': 0}


def test_inventory_change_reported_by_the_compute(nodes):
    nodes('h1')
    conf = make_conf()
    conf.set_override('host_state_refresh_interval', 3600, group='scheduler')
    cache = HostCache(conf)
    assert refreshed(cache).memory_mb_capacity[0] == 4096
    db.compute_node_update('h1', 'h1', dict(RESOURCES, memory_mb=8192),
                           {'VCPU': 1.0, 'MEMORY_MB': 1.5, 'DISK_GB': 1.0},
                           {'VCPU': 0, 'MEMORY_MB': 0, 'DISK_GB': 0}, traits=['CUSTOM_X'])
    view = refreshed(cache)
    # Inventory at once (the provider generation moved); the node's report (traits)
    # with the next read of reports.
    assert view.memory_mb_capacity[0] == 8192 * 1.5
    assert view.hosts[0].traits == set()
    conf.set_override('host_state_refresh_interval', 0, group='scheduler')
    assert refreshed(cache).hosts[0].traits == {'CUSTOM_X'}
    assert cache.stats['full_loads'] == 1


def test_disabled_and_forced_down_services_are_read_on_every_request(nodes):
    nodes('h1', 'h2')
    conf = make_conf()
    conf.set_override('host_state_refresh_interval', 3600, group='scheduler')
    cache = HostCache(conf)
    assert refreshed(cache).service_ok.tolist() == [True, True]
    db.service_update(db.service_get_all(host='h1')[0]['id'], disabled=True,
                      disabled_reason='maintenance')
    view = refreshed(cache)
    assert view.service_ok.tolist() == [False, True]
    assert view.hosts[0].disabled_reason == 'maintenance'
    db.service_update(db.service_get_all(host='h1')[0]['id'], disabled=False)
    db.service_update(db.service_get_all(host='h2')[0]['id'], forced_down=True)
    assert refreshed(cache).service_ok.tolist() == [True, False]
    assert cache.stats['full_loads'] == 1


def test_host_goes_down_from_cached_heartbeats_and_comes_back(nodes):
    nodes('h1', 'h2')
    conf = make_conf()
    # Services are read once only: liveness must come from the cached heartbeats.
    conf.set_override('host_state_refresh_interval', 3600, group='scheduler')
    cache = HostCache(conf)
    db.service_update(db.service_get_all(host='h1')[0]['id'], last_seen_up=ago(30))
    assert refreshed(cache).service_ok.tolist() == [True, True]
    conf.set_override('service_down_time', 20)
    view = refreshed(cache)
    assert view.service_ok.tolist() == [False, True]
    assert not view.hosts[0].service_up
    db.service_heartbeat('h1', 'novalite-compute')
    assert refreshed(cache).service_ok.tolist() == [False, True]   # not read yet
    conf.set_override('host_state_refresh_interval', 0, group='scheduler')
    view = refreshed(cache)
    assert view.service_ok.tolist() == [True, True] and view.hosts[0].service_up


def test_new_host_appears_and_deleted_host_goes(nodes):
    nodes('h1', 'h2')
    conf = make_conf()
    # Hosts are counted at the poll of reports and heartbeats; 0 polls every request.
    conf.set_override('host_state_refresh_interval', 0, group='scheduler')
    cache = HostCache(conf)
    refreshed(cache)
    nodes('h3')
    assert sorted(by_host(refreshed(cache))) == ['h1', 'h2', 'h3']
    db.service_delete(db.service_get_all(host='h2')[0]['id'])
    assert sorted(by_host(refreshed(cache))) == ['h1', 'h3']
    assert cache.stats['full_loads'] == 3


def test_deleted_host_seen_during_a_request_is_unusable_until_reload(nodes):
    found = nodes('h1', 'h2')
    cache = HostCache(make_conf())
    view = refreshed(cache)
    db.service_delete(db.service_get_all(host='h2')[0]['id'])
    with reader() as s:
        cache.claim_lost(s, view.hosts[by_host(view)['h2']])
    assert cache.view is view and view.service_ok.tolist() == [True, False]
    assert sorted(by_host(refreshed(cache))) == ['h1']
    assert found['h1']['uuid'] == cache.view.hosts[0].uuid


def test_missed_change_is_caught_by_the_full_reload_interval(nodes):
    found = nodes('h1')
    conf = make_conf()
    cache = HostCache(conf)
    refreshed(cache)
    db.claim_resources('i1', {found['h1']['uuid']: {'MEMORY_MB': 512}})
    cache._providers_since = models.utcnow() + datetime.timedelta(days=1)
    assert refreshed(cache).memory_mb_used[0] == 0   # the change feed missed it
    cache._loaded_at -= conf.scheduler.host_state_full_reload_interval
    assert refreshed(cache).memory_mb_used[0] == 512


def _manager():
    mgr = SchedulerManager('sched')
    mgr.cache = HostCache(make_conf())
    return mgr


def _boot(mgr, uuid, memory_mb=2048):
    request = spec(vcpus=1, memory_mb=memory_mb, root_gb=1)
    request.instance_uuid = uuid
    return mgr.select_destinations(None, request.to_dict(), [uuid],
                                   return_alternates=False)[0][0]['host']


def test_two_schedulers_with_a_stale_view_never_over_commit(nodes):
    nodes('big', resources=dict(RESOURCES, memory_mb=3072))
    nodes('small', resources=dict(RESOURCES, memory_mb=2048))
    one, two = _manager(), _manager()
    refreshed(one.cache)
    refreshed(two.cache)
    assert _boot(one, 'i1') == 'big'
    # Scheduler two misses that claim in its change feed: its view is stale.
    two.cache._providers_since = models.utcnow() + datetime.timedelta(days=1)
    assert _boot(two, 'i2') == 'small'   # lost 'big', read it again, went on
    assert two.cache.stats['usages_reloaded'] + two.cache.stats['hosts_reloaded'] >= 1
    with pytest.raises(messaging.ExpectedException) as raised:
        _boot(one, 'i3')
    assert isinstance(raised.value.exc_info[1], exception.NoValidHost)
    for name in ('big', 'small'):
        uuid = db.compute_node_get_by_host_and_node(name)['uuid']
        assert db.provider_usages(uuid)['MEMORY_MB'] == 2048


def test_host_deleted_between_two_counts_is_dropped_by_its_lost_claim(nodes):
    # The host count is read once per host_state_refresh_interval: until then the
    # view still holds a deleted host, whose claim finds no provider.
    nodes('roomy', resources=dict(RESOURCES, memory_mb=8192))
    nodes('tight', resources=dict(RESOURCES, memory_mb=4096))
    mgr = _manager()
    mgr.cache.conf.set_override('host_state_refresh_interval', 3600, group='scheduler')
    refreshed(mgr.cache)
    db.service_delete(db.service_get_all(host='roomy')[0]['id'])
    assert _boot(mgr, 'i1') == 'tight'
    assert mgr.cache.stats == {'full_loads': 1, 'hosts_reloaded': 1, 'usages_reloaded': 0}
    assert [hs.host for hs in mgr.cache.view.hosts if not hs.service_disabled] == ['tight']
    assert db.get_allocations('i1') == {
        db.compute_node_get_by_host_and_node('tight')['uuid']: {
            'VCPU': 1, 'MEMORY_MB': 2048, 'DISK_GB': 1}}


def test_a_database_error_in_the_refresh_is_retried_with_a_full_load(nodes, monkeypatch):
    nodes('h1', 'h2')
    mgr = _manager()
    refreshed(mgr.cache)
    real, failures = host_manager.provider_changes, []

    def lost_once(session, since):
        if not failures:
            failures.append(since)
            raise sa.exc.OperationalError('SELECT', {}, Exception(
                'server closed the connection unexpectedly'))
        return real(session, since)
    monkeypatch.setattr(host_manager, 'provider_changes', lost_once)
    mgr.cache.conf.set_override('host_state_refresh_interval', 3600, group='scheduler')
    assert _boot(mgr, 'i1') in ('h1', 'h2')
    assert len(failures) == 1 and mgr.cache.stats['full_loads'] == 2
    assert len(db.get_allocations('i1')) == 1


def test_own_claims_are_in_the_view_at_once(nodes):
    nodes('h1', 'h2')
    mgr = _manager()
    first = _boot(mgr, 'i1')
    view = mgr.cache.view
    assert view.hosts[by_host(view)[first]].memory_mb_used == 2048
    assert _boot(mgr, 'i2') != first    # spread by the RAM weigher on the fresh view


def test_a_selection_without_claim_is_forgotten(nodes):
    nodes('h1')
    mgr = _manager()
    request = spec(vcpus=1, memory_mb=2048, root_gb=1)
    mgr.select_destinations(None, request.to_dict(), ['i1'], claim=False)
    assert mgr.cache.view.memory_mb_used[0] == 2048
    assert refreshed(mgr.cache).memory_mb_used[0] == 0


def test_per_request_fields_do_not_leak_into_the_next_request(nodes):
    nodes('h1', 'h2')
    cache = HostCache(make_conf())
    refreshed(cache)
    view = cache.begin_request({'h1': ['m1', 'm2']}, [('x1', 'h2', 'h2')])
    assert view.group_members.tolist() == [2, 0]
    assert view.hosts[1].instance_uuids == {'x1'}
    view = cache.begin_request(None, ())
    assert view.group_members.tolist() == [0, 0]
    assert view.hosts[0].group_members == 0 and not view.hosts[1].instance_uuids


def test_a_heartbeat_right_after_disable_or_enable_hides_nothing(nodes):
    nodes('h1', 'h2')
    conf = make_conf()
    conf.set_override('host_state_refresh_interval', 3600, group='scheduler')
    cache = HostCache(conf)
    refreshed(cache)
    svc = db.service_get_all(host='h1')[0]['id']
    db.service_update(svc, disabled=True)
    db.service_heartbeat('h1', 'novalite-compute')   # updated_at == last_seen_up again
    assert refreshed(cache).service_ok.tolist() == [False, True]
    db.service_update(svc, disabled=False)
    db.service_heartbeat('h1', 'novalite-compute')
    assert refreshed(cache).service_ok.tolist() == [True, True]
    db.service_update(db.service_get_all(host='h2')[0]['id'], forced_down=True)
    db.service_heartbeat('h2', 'novalite-compute')
    assert refreshed(cache).service_ok.tolist() == [True, False]


def test_a_service_polls_in_its_own_task_and_a_request_only_when_that_lags(nodes):
    nodes('h1')
    conf = make_conf()
    conf.set_override('host_state_refresh_interval', 1.0, group='scheduler')
    mgr = SchedulerManager('sched')
    mgr.cache = cache = HostCache(conf)
    mgr.after_start()
    assert cache.polled_in_background
    refreshed(cache)
    nodes('h2')
    cache._polled_at -= 1.5   # a request-time poll would be due
    assert sorted(by_host(refreshed(cache))) == ['h1']   # left to the task
    mgr.poll_host_states(None)
    assert sorted(by_host(cache.view)) == ['h1', 'h2']
    nodes('h3')
    # The task is three intervals late (a failing database, a busy process): the
    # request polls itself.
    cache._polled_at -= HostCache.POLL_LAG * 1.0
    assert sorted(by_host(refreshed(cache))) == ['h1', 'h2', 'h3']


def test_the_poll_task_never_waits_behind_a_request_and_survives_a_failure(nodes, caplog):
    nodes('h1')
    mgr = SchedulerManager('sched')
    mgr.cache = cache = HostCache(make_conf())
    refreshed(cache)
    nodes('h2')
    with cache.lock:   # a request is running
        mgr.poll_host_states(None)
    assert sorted(by_host(cache.view)) == ['h1']
    real = cache.poll

    def failing(session):
        raise sa.exc.OperationalError('SELECT 1', {}, Exception('server closed'))
    cache.poll = failing
    mgr.poll_host_states(None)
    mgr.poll_host_states(None)
    assert caplog.text.count('Reading the host view failed') == 1
    assert not cache.lock.locked()
    cache.poll = real
    mgr.poll_host_states(None)
    assert sorted(by_host(cache.view)) == ['h1', 'h2'] and not mgr._poll_failing


def test_before_any_host_the_first_request_loads_and_an_empty_view_is_polled_as_usual(
        nodes):
    conf = make_conf()
    conf.set_override('host_state_refresh_interval', 1.0, group='scheduler')
    mgr = SchedulerManager('sched')
    mgr.cache = cache = HostCache(conf)
    mgr.after_start()
    mgr.poll_host_states(None)
    assert cache.view is None   # left to the first request
    assert by_host(refreshed(cache)) == {}   # no compute has registered yet
    nodes('h1')
    cache._polled_at -= 1.5   # one interval, not three: the view has no host
    assert sorted(by_host(refreshed(cache))) == ['h1']
