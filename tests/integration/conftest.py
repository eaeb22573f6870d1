"""Fixtures of the integration tier: clusters of daemon processes."""

import pytest

from novalite.cluster import Cluster


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
