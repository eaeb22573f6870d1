"""Fixtures of the libvirt end-to-end tier (real libvirtd daemons, real TCG guests).

Skipped with the reason when root, libvirtd, QEMU or the test guest are missing;
NOVALITE_REQUIRE_SERVICES=1 makes that a failure. The two libvirt hosts live for the
whole session; each test gets a fresh novalite cluster (database, daemons).
"""


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
def libvirt_cluster(tmp_path, libvirt_hosts, private_rabbit_url, pg_fresh_url):
    with fixtures.running_cluster(tmp_path / 'cluster', pg_fresh_url,
                                  private_rabbit_url) as cluster:
        yield cluster
