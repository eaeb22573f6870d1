"""Helpers of the integration tier shared by its fixtures."""

from novalite.conf import CONF
from novalite.db import api as db
from novalite.db import session
from tests.rest import wait_until


def use_cluster_database(cluster, timeout=60):
    """Point this process's database at ``cluster``'s and return once every daemon
    consumes (heartbeats only start then: a request sent earlier could be lost)."""
    CONF.set_override('connection', cluster.db_url, group='database')
    session.set_engine(None)
    wait_until(lambda: len([s for s in db.service_get_all() if s['report_count']]) >=
               len(cluster.compute_hosts) + 2, timeout=timeout, interval=0.2,
               message='every daemon consuming')
