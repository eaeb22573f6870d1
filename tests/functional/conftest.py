"""Fixtures for whole-system tests: every service in one process over the in-process
transport, a SQLite database in a temp dir, driven through the REST API."""

import pytest

from tests.functional import harness


@pytest.fixture
def cloud(tmp_path):
    c = harness.Cloud(tmp_path)
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def cloud_factory(tmp_path):
    """Start a cloud with option overrides: cloud_factory(compute_hosts=2, **{'group.opt': v})."""
    started = []

    def make(**kwargs):
        c = harness.Cloud(tmp_path / f'c{len(started)}', **kwargs)
        c.start()
        started.append(c)
        return c

    yield make
    for c in started:
        c.stop()
