"""Real OpenStack clients against a novalite all-in-one served over HTTP.

Each test starts its own in-process cloud (three fake compute hosts, noauth2) with the
API on a free local port, then drives it through an unmodified client: the
``openstack`` and ``nova`` CLIs as subprocesses, openstacksdk in-process. A client that
is not installed skips its tests (``pip install .[clients]``); with
``NOVALITE_REQUIRE_SERVICES=1`` that is a failure instead.
"""

import importlib
import os
import shutil
import sys

import pytest

from tests.conftest import require_service
from tests.functional import harness
from tests.rest import RestClient

TOKEN = 'admin:admin'
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLOUDS_SAMPLE = os.path.join(REPO, 'etc', 'clouds.yaml.sample')


def need_module(name: str):
    """Import a client library, or skip (fail under NOVALITE_REQUIRE_SERVICES=1)."""
    def check():
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            raise RuntimeError('%s is not installed (pip install .[clients]): %s'
                               % (name, exc))
    return require_service('python module ' + name, check)


def need_cli(name: str) -> str:
    """Path of a client CLI next to this interpreter or on PATH, or skip/fail."""
    def check():
        local = os.path.join(os.path.dirname(sys.executable), name)
        found = local if os.access(local, os.X_OK) else shutil.which(name)
        if not found:
            raise RuntimeError('the %r command is not installed (pip install .[clients])'
                               % name)
        return found
    return require_service('command ' + name, check)


def client_env(**extra) -> dict:
    """The environment for a client subprocess: no stray OS_* variables (they break
    the admin_token plugin), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('OS_')}
    env.update({k: v for k, v in extra.items() if v is not None})
    return env


class Live(RestClient):
    """A running cloud reachable over HTTP, talked to as admin for checks and waits."""

    def __init__(self, cloud):
        super().__init__(cloud.aio.endpoint, token=TOKEN)
        self.cloud = cloud

    def clouds_yaml(self, path) -> str:
        """The shipped clouds.yaml example, pointed at this cloud; returns its path."""
        with open(CLOUDS_SAMPLE) as f:
            text = f.read()
        with open(path, 'w') as f:
            f.write(text.replace('http://127.0.0.1:8774', self.endpoint))
        return str(path)


@pytest.fixture
def live(tmp_path):
    cloud = harness.Cloud(tmp_path / 'cloud', **{'osapi_compute_listen': '127.0.0.1',
                                                 'osapi_compute_listen_port': 0})
    cloud.start()
    try:
        cloud.aio._start_http()
        yield Live(cloud)
    finally:
        cloud.stop()


def assert_scenario_records(live, server_id, expect_live=True):
    """What every client scenario leaves behind, checked over plain REST."""
    migs = live.get_json('/os-migrations?instance_uuid=%s' % server_id)['migrations']
    by_type = {}
    for mig in migs:
        by_type.setdefault(mig['migration_type'], []).append(mig['status'])
    assert by_type.get('resize') == ['confirmed'], migs
    assert by_type.get('migration') == ['reverted'], migs
    if expect_live:
        assert by_type.get('live-migration') == ['completed'], migs
    actions = [a['action'] for a in reversed(
        live.get_json('/servers/%s/os-instance-actions' % server_id)['instanceActions'])]
    expected = ['create', 'resize', 'confirmResize', 'migrate', 'revertResize']
    if expect_live:
        expected.append('live-migration')
    assert actions == expected
