"""Schema migrations: a thin, programmatic front end to alembic.

There is no ``alembic.ini``. Every entry point builds an ``alembic.config.Config``
in code (:func:`alembic_config`) with the script location found by
:func:`migrations_dir` and the database URL passed in (or taken from
``[database] connection`` / the embedded SQLite default).

Where the migration scripts live
--------------------------------
The scripts are kept in the top-level ``migrations/`` directory of the source tree
(``migrations/env.py``, ``migrations/script.py.mako``, ``migrations/versions/``), not
inside the ``novalite`` package. Two install modes are supported:

* Source checkout / editable install (``pip install -e .``): the directory next to
  the package, ``Path(novalite.__file__).parent.parent / 'migrations'``.
* Regular install (``pip install .`` or a wheel): setup.cfg ships the same files as
  ``[options.data_files]`` into ``<prefix>/share/novalite/migrations`` (``<prefix>`` is
  the virtualenv, ``/usr/local``, the ``--user`` base, ...). They are found there.

``NOVALITE_MIGRATIONS_DIR`` overrides both (packagers who move the files elsewhere).
Data files instead of package data keep one copy of the scripts in the tree with
no symlinks and no build-time copying; the price is the prefix lookup below.

Command line for developers (``novalite-manage db sync`` is the operator's one)::

    python -m novalite.db.migration revision -m "add foo" [--url URL]   # autogenerate
    python -m novalite.db.migration upgrade|downgrade REV [--url URL]
    python -m novalite.db.migration current|heads|history [--url URL]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import site
import sys
import sysconfig

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import novalite

ENV_DIR = 'NOVALITE_MIGRATIONS_DIR'
_SHARE = pathlib.Path('share') / 'novalite' / 'migrations'


class MigrationsNotFound(RuntimeError):
    pass


def _candidates() -> list[pathlib.Path]:
    found = []
    if os.environ.get(ENV_DIR):
        found.append(pathlib.Path(os.environ[ENV_DIR]))
    # Source checkout or editable install.
    found.append(pathlib.Path(novalite.__file__).resolve().parent.parent / 'migrations')
    # data_files of a regular install, under every prefix the install may have used.
    prefixes = [sysconfig.get_path('data'), sys.prefix, sys.exec_prefix,
                getattr(site, 'USER_BASE', None), '/usr/local', '/usr']
    for prefix in prefixes:
        if prefix:
            found.append(pathlib.Path(prefix) / _SHARE)
    return found


def migrations_dir() -> pathlib.Path:
    """The directory holding env.py and versions/ (see the module docstring)."""
    tried = _candidates()
    for path in tried:
        env = path / 'env.py'
        # The content check keeps an unrelated top-level "migrations" directory
        # that another distribution dropped into site-packages from matching.
        if (env.is_file() and (path / 'versions').is_dir()
                and 'novalite' in env.read_text(errors='replace')):
            return path
    raise MigrationsNotFound('novalite migration scripts not found; looked in: '
                             + ', '.join(str(p) for p in tried)
                             + f'. Set {ENV_DIR} to their directory.')


def _url(url: str | None) -> str:
    if url:
        return str(url)
    from novalite.db import session
    return session.default_url()


def alembic_config(url: str | None = None, connection=None) -> Config:
    """An alembic Config for ``url`` (default: the configured database).

    The URL travels in ``config.attributes`` rather than the ini-style main options
    so passwords with ``%`` need no escaping. ``connection`` (a SQLAlchemy
    Connection) makes env.py run on that connection instead of opening its own.
    """
    cfg = Config()
    cfg.set_main_option('script_location', str(migrations_dir()))
    cfg.attributes['url'] = None if connection is not None else _url(url)
    if connection is not None:
        cfg.attributes['connection'] = connection
    return cfg


def upgrade(url: str | None = None, revision: str = 'head') -> None:
    """Upgrade the database at ``url`` (default: the configured one) to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = 'base') -> None:
    """Downgrade the database at ``url`` to ``revision`` ('base' drops everything)."""
    command.downgrade(alembic_config(url), revision)


def current(url: str | None = None) -> str | None:
    """The revision the database is at; None for an empty (unversioned) database."""
    import sqlalchemy as sa

    engine = sa.create_engine(_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            heads = MigrationContext.configure(conn).get_current_heads()
    finally:
        engine.dispose()
    if not heads:
        return None
    return ','.join(sorted(heads))


def head() -> str:
    """The newest revision in the migration scripts."""
    script = ScriptDirectory.from_config(alembic_config('sqlite://'))
    heads = script.get_heads()
    if len(heads) != 1:
        raise RuntimeError(f'expected one migration head, found {heads}')
    return heads[0]


def is_current(url: str | None = None) -> bool:
    """True when the database at ``url`` is at the newest revision."""
    return current(url) == head()


def revision(message: str, autogenerate: bool = True, url: str | None = None) -> None:
    """Write a new revision file; autogenerate compares ``url`` (upgraded to head first
    by the caller) with the models. Developers only."""
    command.revision(alembic_config(url), message=message, autogenerate=autogenerate)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m novalite.db.migration',
                                     description='novalite schema migrations (developers)')
    parser.add_argument('--url', help='database URL (default: [database] connection)')
    sub = parser.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('upgrade')
    p.add_argument('revision', nargs='?', default='head')
    p = sub.add_parser('downgrade')
    p.add_argument('revision')
    sub.add_parser('current')
    sub.add_parser('heads')
    sub.add_parser('history')
    p = sub.add_parser('revision')
    p.add_argument('-m', '--message', required=True)
    p.add_argument('--empty', action='store_true', help='do not autogenerate')
    args = parser.parse_args(argv)

    if args.cmd == 'upgrade':
        upgrade(args.url, args.revision)
    elif args.cmd == 'downgrade':
        downgrade(args.url, args.revision)
    elif args.cmd == 'current':
        print(current(args.url) or '<empty database>')
    elif args.cmd == 'heads':
        print(head())
    elif args.cmd == 'history':
        command.history(alembic_config('sqlite://'))
    elif args.cmd == 'revision':
        revision(args.message, autogenerate=not args.empty, url=args.url)
    return 0


if __name__ == '__main__':
    sys.exit(main())
