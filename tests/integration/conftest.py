"""Fixtures of the integration tier: clusters of daemon processes."""

import pytest

from novalite.cluster import Cluster
from novalite.db import session
from tests.integration.helpers import use_cluster_database


@pytest.fixture
def cluster(tmp_path, pg_fresh_url, private_rabbit_url):
    """Two computes, a conductor, a scheduler and an API, each its own process, over a
    private RabbitMQ vhost and a throwaway PostgreSQL database."""
    c = Cluster(tmp_path / 'cluster', pg_fresh_url, private_rabbit_url, computes=2)
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def start_slow_cluster(tmp_path, pg_fresh_url, private_rabbit_url):
    """``start(op_delay, **conf)``: a two-compute cluster whose fake hypervisor takes
    ``op_delay`` seconds per operation (so a test can catch a daemon mid-step), with this
    process's database pointed at the cluster's. It returns once every daemon consumes
    (heartbeats only start then: a request sent earlier could be lost)."""
    started = []

    def start(op_delay, **conf):
        extra = {'fake_driver.operation_delay': op_delay}
        extra.update({k.replace('__', '.'): v for k, v in conf.items()})
        c = Cluster(tmp_path / 'cluster', pg_fresh_url, private_rabbit_url, computes=2,
                    extra_conf=extra)
        started.append(c)
        c.start()
        use_cluster_database(c)
        return c

    try:
        yield start
    finally:
        for c in started:
            c.stop()
        session.set_engine(None)
