"""novalite-status upgrade check against a SQLite database and unreachable brokers.

Broker success needs a real RabbitMQ (tests/integration/test_status_live.py); here
the broker probe is replaced where a test needs every other check to succeed.
"""

import datetime
import json

import pytest

from novalite.cmd import status
from novalite.db import api as db
from novalite.db import migration, models, session

UNREACHABLE_BROKER = 'rabbit://guest:guest@127.0.0.1:1/'
RESOURCES = {'vcpus': 8, 'memory_mb': 16384, 'local_gb': 100}
RATIOS = {'VCPU': 4.0, 'MEMORY_MB': 1.0, 'DISK_GB': 1.0}


@pytest.fixture(autouse=True)
def _fresh_engine():
    session.set_engine(None)
    yield
    session.set_engine(None)


@pytest.fixture
def synced_url(sqlite_url):
    migration.upgrade(sqlite_url)
    return sqlite_url


@pytest.fixture
def broker_ok(monkeypatch):
    probed = []
    monkeypatch.setattr(status, '_probe_rabbit_host',
                        lambda host, vhost, ssl, timeout: probed.append(host.hostname))
    return probed


def write_conf(tmp_path, db_url=None, transport_url=UNREACHABLE_BROKER, extra=''):
    path = tmp_path / 'novalite.conf'
    lines = ['[DEFAULT]', f'state_path = {tmp_path / "state"}']
    if transport_url:
        lines.append(f'transport_url = {transport_url}')
    lines.append(extra)
    if db_url:
        lines += ['[database]', f'connection = {db_url}']
    path.write_text('\n'.join(lines) + '\n')
    return path


def run(capsys, conf_path, *extra):
    rc = status.main(['--config-file', str(conf_path), 'upgrade', 'check', '--timeout', '2',
                      *extra])
    out = capsys.readouterr().out
    return rc, out


def run_json(capsys, conf_path):
    rc, out = run(capsys, conf_path, '--json')
    return rc, {r['check']: r for r in json.loads(out)}


def use_db(conf, url):
    conf.set_override('connection', url, group='database')
    session.set_engine(None)


def add_compute(host, inventory=True):
    db.service_create(host, 'novalite-compute', 'compute')
    if inventory:
        db.compute_node_update(host, host, RESOURCES, RATIOS, reserved={})


def add_control_services(host='ctl1'):
    db.service_create(host, 'novalite-conductor', 'conductor')
    db.service_create(host, 'novalite-scheduler', 'scheduler')


def make_stale(host, binary='novalite-compute'):
    svc = db.service_get_all(host=host, binary=binary)[0]
    db.service_update(svc['id'], last_seen_up=models.utcnow() - datetime.timedelta(hours=1))


# ------------------------------------------------------------------ exit codes

def test_unreachable_broker_is_a_failure(tmp_path, capsys, synced_url):
    rc, results = run_json(capsys, write_conf(tmp_path, synced_url))
    assert rc == 2
    broker = results['Message broker']
    assert broker['result'] == 2
    assert '127.0.0.1:1' in broker['details']
    assert results['Database']['result'] == 0


def test_table_output_like_nova_status(tmp_path, capsys, synced_url):
    rc, out = run(capsys, write_conf(tmp_path, synced_url))
    assert rc == 2
    assert out.splitlines()[1].startswith('| Upgrade Check Results')
    for name, _ in status.CHECKS:
        assert f'| Check: {name}' in out
    assert '| Result: Failure' in out and '| Result: Success' in out
    cells = ' '.join(line.strip('|+- ') for line in out.splitlines())
    assert f'schema at revision {migration.head()} (head)' in cells
    # No log noise on stdout: the table is all there is.
    assert out.lstrip().startswith('+') and out.rstrip().endswith('+')


def test_everything_fine_exits_0(tmp_path, capsys, synced_url, conf, broker_ok):
    use_db(conf, synced_url)
    add_control_services()
    add_compute('cmp1')
    add_compute('cmp2')
    rc, results = run_json(capsys, write_conf(tmp_path, synced_url))
    assert {k: r['result'] for k, r in results.items()} == {k: 0 for k, _ in status.CHECKS}
    assert rc == 0
    assert broker_ok == ['127.0.0.1']
    assert '2 of 2 novalite-compute services up' in results['Compute services']['details']


def test_fresh_install_warns(tmp_path, capsys, synced_url, broker_ok):
    rc, results = run_json(capsys, write_conf(tmp_path, synced_url))
    assert rc == 1
    assert results['Compute services']['result'] == 1
    assert 'fresh install' in results['Compute services']['details']
    assert results['Conductor and scheduler services']['result'] == 1


def test_unexpected_error_exits_255_but_prints_the_table(tmp_path, capsys, synced_url,
                                                         monkeypatch, broker_ok):
    def boom(conf, state, timeout):
        raise ZeroDivisionError('bug')

    monkeypatch.setattr(status, 'CHECKS', status.CHECKS + [('Broken', boom)])
    rc = status.main(['--config-file', str(write_conf(tmp_path, synced_url)),
                      'upgrade', 'check'])
    captured = capsys.readouterr()
    assert rc == 255
    assert '| Check: Broken' in captured.out
    assert 'ZeroDivisionError: bug' in captured.out
    assert 'Traceback' in captured.err


def test_missing_config_file_exits_255(tmp_path, capsys):
    rc = status.main(['--config-file', str(tmp_path / 'nope.conf'), 'upgrade', 'check'])
    assert rc == 255
    assert 'cannot load the configuration' in capsys.readouterr().err


def test_config_options_after_the_subcommand(tmp_path, capsys, synced_url, broker_ok):
    conf_path = write_conf(tmp_path, synced_url)
    rc = status.main(['upgrade', 'check', '--json', '--config-file', str(conf_path)])
    results = {r['check']: r for r in json.loads(capsys.readouterr().out)}
    assert results['Database']['result'] == 0
    assert rc == 1


# -------------------------------------------------------------------- database

def test_database_not_synced(tmp_path, capsys, sqlite_url, broker_ok):
    import sqlite3
    sqlite3.connect(sqlite_url[len('sqlite:///'):]).close()  # exists, but empty
    rc, results = run_json(capsys, write_conf(tmp_path, sqlite_url))
    assert rc == 2
    assert results['Database']['result'] == 2
    assert 'novalite-manage db sync' in results['Database']['details']
    # Checks that need the database say so instead of failing on their own.
    assert 'Not checked' in results['Compute services']['details']


def test_database_behind_head(tmp_path, capsys, sqlite_url, monkeypatch, broker_ok):
    migration.upgrade(sqlite_url)
    monkeypatch.setattr(migration, 'head', lambda: 'ffffffffffff')
    rc, results = run_json(capsys, write_conf(tmp_path, sqlite_url))
    assert rc == 2
    details = results['Database']['details']
    assert 'the newest is ffffffffffff' in details and 'db sync' in details


def test_database_from_a_newer_release(tmp_path, capsys, synced_url, broker_ok):
    import sqlite3
    with sqlite3.connect(synced_url[len('sqlite:///'):]) as c:
        c.execute("UPDATE alembic_version SET version_num = 'abcdef999999'")
    rc, results = run_json(capsys, write_conf(tmp_path, synced_url))
    assert rc == 2
    assert 'newer release' in results['Database']['details']


def test_unreachable_database(tmp_path, capsys, broker_ok):
    url = 'postgresql+psycopg2://novalite:secret@127.0.0.1:1/novalite'
    pytest.importorskip('psycopg2')
    rc, results = run_json(capsys, write_conf(tmp_path, url))
    assert rc == 2
    details = results['Database']['details']
    assert details.startswith('Cannot connect to postgresql+psycopg2://novalite:***@')
    assert 'secret' not in details


def test_embedded_sqlite_missing_is_not_created(tmp_path, capsys, broker_ok):
    conf_path = write_conf(tmp_path)  # no [database] connection
    rc, results = run_json(capsys, conf_path)
    assert rc == 2
    assert 'does not exist' in results['Database']['details']
    assert not (tmp_path / 'state' / 'novalite.sqlite').exists()
    assert '[database] connection is not set' in results['Configuration']['details']


# ---------------------------------------------------------------------- broker

def test_in_process_transport_warns(tmp_path, capsys, synced_url):
    rc, results = run_json(capsys, write_conf(tmp_path, synced_url,
                                              transport_url='fake://'))
    assert results['Message broker']['result'] == 1
    assert 'in-process' in results['Message broker']['details']


def test_default_transport_url_is_named(tmp_path, capsys, synced_url, monkeypatch):
    def refuse(host, vhost, ssl, timeout):
        raise ConnectionRefusedError(111, 'Connection refused')

    monkeypatch.setattr(status, '_probe_rabbit_host', refuse)
    rc, results = run_json(capsys, write_conf(tmp_path, synced_url, transport_url=None))
    assert rc == 2
    assert 'transport_url is not set' in results['Message broker']['details']


def test_one_of_two_brokers_down_warns(tmp_path, capsys, synced_url, monkeypatch):
    def probe(host, vhost, ssl, timeout):
        if host.port == 1:
            raise ConnectionRefusedError(111, 'Connection refused')

    monkeypatch.setattr(status, '_probe_rabbit_host', probe)
    url = 'rabbit://guest:guest@127.0.0.1:5672,guest:guest@127.0.0.1:1/'
    rc, results = run_json(capsys, write_conf(tmp_path, synced_url, transport_url=url))
    broker = results['Message broker']
    assert broker['result'] == 1
    assert '127.0.0.1:5672' in broker['details'] and '127.0.0.1:1' in broker['details']


# ------------------------------------------------------------------- services

def test_all_computes_down_fails(tmp_path, capsys, synced_url, conf, broker_ok):
    use_db(conf, synced_url)
    add_control_services()
    add_compute('cmp1')
    make_stale('cmp1')
    rc, results = run_json(capsys, write_conf(tmp_path, synced_url))
    assert rc == 2
    details = results['Compute services']['details']
    assert results['Compute services']['result'] == 2
    assert 'cmp1' in details and 'service_down_time' in details


def test_some_computes_down_warns(tmp_path, capsys, synced_url, conf, broker_ok):
    use_db(conf, synced_url)
    add_control_services()
    add_compute('cmp1')
    add_compute('cmp2')
    make_stale('cmp2')
    rc, results = run_json(capsys, write_conf(tmp_path, synced_url))
    assert rc == 1
    assert results['Compute services']['result'] == 1
    assert 'down: cmp2' in results['Compute services']['details']


def test_compute_without_inventory(tmp_path, capsys, synced_url, conf, broker_ok):
    use_db(conf, synced_url)
    add_control_services()
    add_compute('cmp1', inventory=False)
    rc, results = run_json(capsys, write_conf(tmp_path, synced_url))
    assert results['Compute services']['result'] == 2
    assert 'no compute node inventory' in results['Compute services']['details']
    add_compute('cmp2')
    rc, results = run_json(capsys, write_conf(tmp_path, synced_url))
    assert rc == 1
    details = results['Compute services']['details']
    assert 'inventory reported yet: cmp1' in details and 'cmp2' not in details


def test_conductor_down_fails(tmp_path, capsys, synced_url, conf, broker_ok):
    use_db(conf, synced_url)
    add_control_services()
    add_compute('cmp1')
    make_stale('ctl1', 'novalite-conductor')
    rc, results = run_json(capsys, write_conf(tmp_path, synced_url))
    assert rc == 2
    assert 'no novalite-conductor is up' in \
        results['Conductor and scheduler services']['details']


# -------------------------------------------------------------- configuration

def test_noauth2_warns(tmp_path, capsys, synced_url, broker_ok):
    conf_path = write_conf(tmp_path, synced_url,
                           extra='[api]\nauth_strategy = noauth2\n')
    rc, results = run_json(capsys, conf_path)
    assert results['Configuration']['result'] == 1
    assert 'noauth2' in results['Configuration']['details']


def test_service_down_time_too_short_warns(tmp_path, capsys, synced_url, broker_ok):
    conf_path = write_conf(tmp_path, synced_url,
                           extra='report_interval = 10\nservice_down_time = 15\n')
    rc, results = run_json(capsys, conf_path)
    assert results['Configuration']['result'] == 1
    assert 'service_down_time (15 s)' in results['Configuration']['details']


def test_policy_file_with_unknown_rule_warns(tmp_path, capsys, synced_url, broker_ok):
    policy = tmp_path / 'policy.yaml'
    policy.write_text('"os_compute_api:servers:create": "role:admin"\n'
                      '"os_compute_api:servers:frobnicate": "role:admin"\n')
    conf_path = write_conf(tmp_path, synced_url,
                           extra=f'[oslo_policy]\npolicy_file = {policy}\n')
    rc, results = run_json(capsys, conf_path)
    assert results['Policy file']['result'] == 1
    details = results['Policy file']['details']
    assert 'os_compute_api:servers:frobnicate' in details
    assert 'servers:create' not in details.replace('servers:frobnicate', '')


def test_policy_file_with_known_rules(tmp_path, capsys, synced_url, broker_ok):
    policy = tmp_path / 'policy.yaml'
    policy.write_text('"os_compute_api:servers:create": "role:admin"\n')
    conf_path = write_conf(tmp_path, synced_url,
                           extra=f'[oslo_policy]\npolicy_file = {policy}\n')
    rc, results = run_json(capsys, conf_path)
    assert results['Policy file']['result'] == 0
    assert '1 overrides' in results['Policy file']['details']


# ------------------------------------------------------------------ allocation audit

def _leak(host='cmp1', age_hours=1):
    """A deleted instance whose allocation stayed behind, older than the audit's grace."""
    node = db.compute_node_get_by_host_and_node(host)
    inst = db.instance_create({'display_name': 'gone', 'project_id': 'p', 'user_id': 'u',
                               'host': host, 'node': host, 'vm_state': 'active',
                               'flavor': {'vcpus': 1, 'memory_mb': 512, 'root_gb': 1}})
    db.claim_resources(inst['uuid'], {node['uuid']: {'VCPU': 1, 'MEMORY_MB': 512}})
    then = models.utcnow() - datetime.timedelta(hours=age_hours)
    with session.writer() as s:
        s.query(models.Instance).filter_by(uuid=inst['uuid']).update(
            {'deleted': True, 'deleted_at': then, 'updated_at': then})
        s.query(models.Allocation).update({'created_at': then})
    return inst['uuid']


def test_leaked_allocations_warn_with_counts_and_examples(tmp_path, capsys, synced_url,
                                                          conf, broker_ok):
    use_db(conf, synced_url)
    add_control_services()
    add_compute('cmp1')
    leaked = [_leak() for _ in range(4)]
    rc, results = run_json(capsys, write_conf(tmp_path, synced_url))
    check = results['Placement allocations']
    assert (rc, check['result']) == (1, 1)
    details = check['details']
    assert details.startswith('4 allocation findings (4 deleted_instance), 4 certain, '
                              '0 uncertain')
    assert sum(u in details for u in leaked) == status.AUDIT_SHOWN
    assert 'and 1 more' in details and 'placement audit --fix' in details
    # The check only reports.
    assert all(db.get_allocations(u) for u in leaked)


def test_a_fresh_leak_is_inside_the_grace_period(tmp_path, capsys, synced_url, conf,
                                                 broker_ok):
    use_db(conf, synced_url)
    add_compute('cmp1')
    _leak(age_hours=0)
    rc, results = run_json(capsys, write_conf(tmp_path, synced_url))
    assert results['Placement allocations']['result'] == 0


def test_allocation_check_needs_the_database(tmp_path, capsys, sqlite_url, broker_ok):
    rc, results = run_json(capsys, write_conf(tmp_path, sqlite_url))
    check = results['Placement allocations']
    assert check['result'] == 1 and 'Database check' in check['details']
