"""Fixtures shared by the unit tests."""

import pytest

from novalite.db import api as db
from novalite.db import models, session

RATIOS = {'VCPU': 1.0, 'MEMORY_MB': 1.0, 'DISK_GB': 1.0}
RESERVED = {'VCPU': 0, 'MEMORY_MB': 0, 'DISK_GB': 0}


@pytest.fixture
def sqlite_db(tmp_path):
    """A fresh SQLite schema as the process database; ``add_nodes(resources, *hosts)``
    registers compute nodes on it and returns them by host."""
    engine = session.create_engine('sqlite:///' + str(tmp_path / 't.sqlite'))
    models.Base.metadata.create_all(engine)
    session.set_engine(engine)

    def add_nodes(resources, *hosts):
        return {h: db.compute_node_update(h, h, dict(resources), RATIOS, RESERVED)
                for h in hosts}
    yield add_nodes
    session.set_engine(None)
