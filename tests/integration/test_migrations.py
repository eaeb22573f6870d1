"""The alembic migrations build exactly the schema of novalite.db.models.

Each backend gets an empty database of its own (SQLite file, throwaway PostgreSQL
and MariaDB/MySQL databases); PostgreSQL and MariaDB skip when not reachable, or
fail with NOVALITE_REQUIRE_SERVICES=1 (see tests/conftest.py).

Comparison is alembic's autogenerate with compare_type=True. No difference is
filtered out: the dialect quirks one might expect to need excluding (Boolean
reflected as TINYINT(1) on MySQL, JSON reflected as LONGTEXT COLLATE utf8mb4_bin on
MariaDB, the index InnoDB adds by itself for every foreign key, Float reflected as
DOUBLE PRECISION on PostgreSQL) are already recognised as equal by alembic 1.12+ and
SQLAlchemy 2, and test_comparison_detects_differences proves the comparison is not
simply blind on each backend.
"""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from novalite.db import migration, models


def _diff(url, metadata=models.Base.metadata):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={'compare_type': True})
            return compare_metadata(ctx, metadata)
    finally:
        engine.dispose()


def _tables(url):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _inspect(url, fn):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        return fn(sa.inspect(engine))
    finally:
        engine.dispose()


def test_single_head():
    assert migration.head() == '0005'


def test_upgrade_matches_models_and_downgrades(any_db_url):
    assert migration.current(any_db_url) is None

    migration.upgrade(any_db_url)

    assert migration.current(any_db_url) == migration.head()
    assert migration.is_current(any_db_url)
    assert _tables(any_db_url) == set(models.Base.metadata.tables) | {'alembic_version'}
    assert _diff(any_db_url) == []

    migration.upgrade(any_db_url)  # at head already: a no-op
    assert migration.current(any_db_url) == migration.head()

    migration.downgrade(any_db_url, 'base')

    assert migration.current(any_db_url) is None
    assert _tables(any_db_url) == {'alembic_version'}

    migration.upgrade(any_db_url)  # and back up again from base
    assert _diff(any_db_url) == []


def test_constraint_names_are_explicit(any_db_url):
    """Names come from the migration, never from the database's own scheme."""
    migration.upgrade(any_db_url)
    names = _inspect(any_db_url, lambda insp: {
        table: (
            {fk['name'] for fk in insp.get_foreign_keys(table)},
            {uq['name'] for uq in insp.get_unique_constraints(table)},
        )
        for table in models.Base.metadata.tables})
    for table, (fks, uniques) in names.items():
        assert all(n and n.startswith('fk_') for n in fks), (table, fks)
        assert all(n and n.startswith('uniq_') for n in uniques), (table, uniques)
    assert names['services'][1] == {'uniq_services0uuid', 'uniq_services0host0binary'}
    assert names['compute_nodes'][0] == {'fk_compute_nodes_service_id_services'}


def test_comparison_detects_differences(any_db_url):
    """The check above would notice a wrong type, a missing column or index."""
    migration.upgrade(any_db_url)
    metadata = sa.MetaData()
    for table in models.Base.metadata.tables.values():
        table.to_metadata(metadata)
    flavors = metadata.tables['flavors']
    flavors.c.name.type = sa.String(100)
    flavors.append_column(sa.Column('extra', sa.Integer(), nullable=True))
    sa.Index('flavors_memory_idx', flavors.c.memory_mb)

    kinds = {d[0] if isinstance(d, tuple) else d[0][0] for d in _diff(any_db_url, metadata)}

    assert {'modify_type', 'add_column', 'add_index'} <= kinds


def test_upgrade_on_connection_default_url(conf, tmp_path):
    """Without a URL the configured [database] connection is migrated."""
    url = 'sqlite:///' + str(tmp_path / 'configured.sqlite')
    conf.set_override('connection', url, group='database')

    migration.upgrade()

    assert migration.current() == migration.head()
    assert _diff(url) == []


def test_migrations_dir_override(monkeypatch, tmp_path):
    monkeypatch.setenv(migration.ENV_DIR, str(tmp_path))
    # An empty directory is not a migrations directory: the next candidate wins.
    assert migration.migrations_dir() != tmp_path
    (tmp_path / 'versions').mkdir()
    (tmp_path / 'env.py').write_text('')
    assert migration.migrations_dir() != tmp_path  # not novalite's env.py
    (tmp_path / 'env.py').write_text('from novalite.db import models\n')
    assert migration.migrations_dir() == tmp_path


@pytest.mark.parametrize('revision', ['0001', '0002', '0003', '0004', '0005'])
def test_upgrade_to_named_revision(sqlite_url, revision):
    migration.upgrade(sqlite_url, revision)
    assert migration.current(sqlite_url) == revision
