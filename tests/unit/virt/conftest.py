"""Fixtures of the virt driver tests: a clean configuration and fresh fake hosts."""

import pytest
from virt_helpers import IMAGE, make_instance

from novalite.conf import CONF
from novalite.virt import fake


@pytest.fixture
def conf(tmp_path):
    CONF.set_override('state_path', str(tmp_path))
    fake.reset_hypervisors()
    yield CONF
    CONF.reset()
    fake.reset_hypervisors()


@pytest.fixture
def hosts(conf):
    """Two fake hosts of one process."""
    drivers = {}
    for name in ('host1', 'host2'):
        drivers[name] = fake.FakeDriver(conf, name)
        drivers[name].init_host(name)
    return drivers


@pytest.fixture
def booted(hosts):
    """An instance running on host1."""
    instance = make_instance()
    hosts['host1'].spawn(None, instance, IMAGE)
    instance.update(vm_state='active', power_state=1)
    return instance
