"""Fixtures of the libvirt end-to-end tier (real libvirtd daemons, real TCG guests).

Skipped with the reason when root, libvirtd, QEMU or the test guest are missing;
NOVALITE_REQUIRE_SERVICES=1 makes that a failure. The two libvirt hosts live for the
whole session; each test gets a fresh novalite cluster (database, daemons).
"""

import shutil
import subprocess
import uuid

import pytest

from tests.conftest import require_service
from tests.libvirt import fixtures


@pytest.fixture(scope='session')
def guest_dir():
    return require_service('libvirt hosts', fixtures.check_prerequisites)


@pytest.fixture(scope='session')
def libvirt_hosts(guest_dir):
    hosts = fixtures.LibvirtHosts()
    try:
        hosts.start()
    except Exception as exc:
        hosts.stop()
        detail = getattr(exc, 'stderr', '') or ''
        pytest.fail('libvirt hosts did not start: %s %s' % (exc, detail), pytrace=False)
    try:
        yield hosts
    finally:
        hosts.stop()


@pytest.fixture
def private_rabbit_url(rabbit_url):
    """rabbit_url on a throwaway vhost when the broker is local and rabbitmqctl works.

    RabbitMQ queue names are per vhost, not per exchange: two clusters on one vhost
    share the 'conductor' and 'compute.<host>' queues whatever their control_exchange.
    """
    ctl = shutil.which('rabbitmqctl')
    if not ctl or '@127.0.0.1' not in rabbit_url and '@localhost' not in rabbit_url:
        yield rabbit_url
        return
    vhost = 'novalite-lv-' + uuid.uuid4().hex[:8]
    user = rabbit_url.split('://', 1)[1].split(':', 1)[0] or 'guest'
    try:
        subprocess.run([ctl, '-q', 'add_vhost', vhost], check=True, capture_output=True)
        subprocess.run([ctl, '-q', 'set_permissions', '-p', vhost, user, '.*', '.*', '.*'],
                       check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        yield rabbit_url
        return
    try:
        yield rabbit_url.rstrip('/') + '/' + vhost
    finally:
        subprocess.run([ctl, '-q', 'delete_vhost', vhost], check=False, capture_output=True)


@pytest.fixture
def libvirt_cluster(tmp_path, libvirt_hosts, private_rabbit_url, pg_fresh_url):
    cluster = fixtures.LibvirtCluster(tmp_path / 'cluster', pg_fresh_url, private_rabbit_url)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
