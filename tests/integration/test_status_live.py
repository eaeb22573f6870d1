"""novalite-status upgrade check against real PostgreSQL, RabbitMQ and daemons.

The checker runs as its own process (``python -m novalite.cmd.status``, what the
``novalite-status`` console script runs): against services registered straight in
the database, and with the configuration of a cluster of separate daemon processes,
before and after the cluster starts and after its compute host dies.
"""

import datetime
import json
import re
import signal
import subprocess
import sys
import time

import pytest

from novalite.cluster import Cluster
from novalite.db import api as db
from novalite.db import migration, models, session
from tests.rest import wait_until

pytestmark = pytest.mark.integration


def status(*conf_files, timeout=60):
    cmd = [sys.executable, '-m', 'novalite.cmd.status']
    for path in conf_files:
        cmd += ['--config-file', str(path)]
    cmd += ['upgrade', 'check', '--json', '--timeout', '3']
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert out.returncode in (0, 1, 2), f'rc {out.returncode}\n{out.stdout}\n{out.stderr}'
    return out.returncode, {r['check']: r for r in json.loads(out.stdout)}


def summary(results):
    return {name: (r['result'], r['details']) for name, r in results.items()}


@pytest.fixture
def cluster(tmp_path, pg_fresh_url, private_rabbit_url):
    c = Cluster(tmp_path / "cluster", pg_fresh_url, private_rabbit_url, computes=1)
    c.write_conf()
    # The cluster's API runs noauth2 (the test client needs it); the checker sees
    # the production setting from a later file, as an operator's host would.
    production = tmp_path / 'production.conf'
    production.write_text('[api]\nauth_strategy = keystone\n')
    c.status_confs = (c.conf_file, production)
    try:
        yield c
    finally:
        c.stop()


def test_status_through_a_cluster_lifetime(cluster):
    # Before db sync: the database is empty, the broker is fine.
    rc, results = status(*cluster.status_confs)
    assert rc == 2, summary(results)
    assert results['Database']['result'] == 2
    assert 'db sync' in results['Database']['details']
    assert results['Message broker']['result'] == 0, summary(results)
    assert 'RabbitMQ reachable' in results['Message broker']['details']

    cluster.start()
    last = []

    def all_up():
        last[:] = status(*cluster.status_confs)
        return tuple(last) if last[0] == 0 else None

    rc, results = wait_until(all_up, timeout=60, interval=1,
                             message=lambda: 'status 0; last: ' + summary(last[1]))
    assert rc == 0, summary(results)
    assert '1 of 1 novalite-compute services up' in results['Compute services']['details']

    # The only compute dies: once its heartbeat is older than service_down_time,
    # nothing can be scheduled any more.
    cluster.stop_process('compute1', sig=signal.SIGKILL)
    time.sleep(cluster.service_down_time + 1)
    rc, results = status(*cluster.status_confs)
    assert rc == 2, summary(results)
    assert results['Compute services']['result'] == 2
    assert 'compute1' in results['Compute services']['details']
    assert results['Conductor and scheduler services']['result'] == 0, summary(results)


@pytest.fixture
def registered(tmp_path, conf, pg_fresh_url, rabbit_url):
    """A synced PostgreSQL database with services registered as the daemons do."""
    migration.upgrade(pg_fresh_url)
    conf.set_override('connection', pg_fresh_url, group='database')
    session.set_engine(None)
    for binary, topic in (('novalite-conductor', 'conductor'),
                          ('novalite-scheduler', 'scheduler')):
        db.service_create('ctl1', binary, topic)
    for host in ('cmp1', 'cmp2'):
        db.service_create(host, 'novalite-compute', 'compute')
        db.compute_node_update(host, host, {'vcpus': 8, 'memory_mb': 8192, 'local_gb': 80},
                               {'VCPU': 4.0, 'MEMORY_MB': 1.0, 'DISK_GB': 1.0}, {})
    path = tmp_path / 'novalite.conf'
    path.write_text(f'[DEFAULT]\nstate_path = {tmp_path}\ntransport_url = {rabbit_url}\n'
                    f'[database]\nconnection = {pg_fresh_url}\n')
    try:
        yield path
    finally:
        session.set_engine(None)


def test_registered_services_on_postgresql(registered):
    rc, results = status(registered)
    assert rc == 0, summary(results)
    assert 'postgresql' in results['Database']['details']
    assert '2 of 2 novalite-compute services up' in results['Compute services']['details']

    svc = db.service_get_all(host='cmp2', binary='novalite-compute')[0]
    db.service_update(svc['id'], last_seen_up=models.utcnow() - datetime.timedelta(hours=1))
    rc, results = status(registered)
    assert rc == 1, summary(results)
    assert 'down: cmp2' in results['Compute services']['details']

    svc = db.service_get_all(host='cmp1', binary='novalite-compute')[0]
    db.service_update(svc['id'], forced_down=True)
    rc, results = status(registered)
    assert rc == 2, summary(results)
    assert results['Compute services']['result'] == 2


def test_broker_refusing_the_credentials(tmp_path, pg_fresh_url, rabbit_url):
    bad = re.sub(r'://([^:@/]+):[^@/]*@', r'://\1:wrong-password@', rabbit_url)
    if bad == rabbit_url:
        bad = rabbit_url.replace('://', '://nosuchuser:wrong-password@', 1)
    conf = tmp_path / 'novalite.conf'
    conf.write_text(f'[DEFAULT]\nstate_path = {tmp_path}\ntransport_url = {bad}\n'
                    f'[database]\nconnection = {pg_fresh_url}\n')
    rc, results = status(conf)
    assert rc == 2
    broker = results['Message broker']
    assert broker['result'] == 2
    assert 'ACCESS_REFUSED' in broker['details'] or 'AccessRefused' in broker['details']
    assert 'wrong-password' not in json.dumps(results)
