"""novalite-status: preflight checks before (and after) an install or an upgrade.

``novalite-status upgrade check`` runs every check and prints one table in the
format of ``nova-status upgrade check``::

    +------------------------------------------------------------------+
    | Upgrade Check Results                                            |
    +------------------------------------------------------------------+
    | Check: Database                                                  |
    | Result: Success                                                  |
    | Details: schema at revision 0001 (head)                          |
    +------------------------------------------------------------------+

The exit code is the worst result: 0 all checks succeeded, 1 at least one warning,
2 at least one failure, 255 a check could not run (an unexpected error; the table
is still printed, the traceback goes to stderr). ``--json`` prints the results as a
list of ``{"check", "result", "details"}`` objects instead.

Checks: the database is reachable and its schema at the newest migration; the
message broker accepts a connection; conductor and scheduler services are up;
compute services are up and report inventory; the configuration is fit for
production; the policy file (if any) only names known rules; every placement allocation
belongs to a live instance or an unfinished migration (the allocation audit).
"""

from __future__ import annotations

import argparse
import enum
import json
import logging
import os
import sys
import textwrap
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from novalite.cmd import common  # noqa: F401  (silences library import warnings)

LOG = logging.getLogger('novalite-status')

#: Seconds each network probe (database, broker) may take.
DEFAULT_TIMEOUT = 5.0

RESOURCE_CLASSES = ('VCPU', 'MEMORY_MB', 'DISK_GB')
IN_PROCESS_TRANSPORTS = ('fake', 'inproc')
RABBIT_TRANSPORTS = ('rabbit', 'kombu')  # amqp:// is AMQP 1.0, not RabbitMQ


class Code(enum.IntEnum):
    """Result of one check; the values are the exit codes."""

    SUCCESS = 0
    WARNING = 1
    FAILURE = 2

    @property
    def label(self) -> str:
        return self.name.capitalize()


@dataclass
class Result:
    code: Code
    details: str | None = None


UNEXPECTED = 255


class CheckError(Exception):
    """A check found something it cannot continue past (reported as a Failure)."""


# ------------------------------------------------------------------- helpers

def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ''
    return f'{type(exc).__name__}: {first}' if first else type(exc).__name__


def _database_url(conf) -> tuple[str, bool]:
    """(URL, configured) of the database; the embedded SQLite file when not configured.

    Unlike novalite.db.session.default_url this never creates anything.
    """
    if conf.database.connection:
        return conf.database.connection, True
    return 'sqlite:///' + os.path.join(conf.state_path, 'novalite.sqlite'), False


def _safe_url(url: str) -> str:
    import sqlalchemy as sa
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return '<unparsable URL>'


def _connect_args(url, timeout: float) -> dict:
    backend = url.get_backend_name()
    secs = max(1, int(round(timeout)))
    if backend == 'postgresql':
        return {'connect_timeout': secs}
    if backend == 'mysql':
        return {'connect_timeout': secs, 'read_timeout': secs * 2, 'write_timeout': secs * 2}
    if backend == 'sqlite':
        return {'timeout': timeout}
    return {}


def _is_default(conf, name: str, group: str | None = None) -> bool:
    """True when no configuration file or override set the option."""
    from oslo_config import cfg
    try:
        where = conf.get_location(name, group).location
    except Exception:
        return False
    return where in (cfg.Locations.opt_default, cfg.Locations.set_default)


def _db_usable(state: dict) -> Result | None:
    """None when the database check passed; else the result dependent checks report."""
    if state.get('db_ok'):
        return None
    return Result(Code.WARNING, 'Not checked: the database is not usable (see the '
                                'Database check).')


# -------------------------------------------------------------------- checks

def check_database(conf, state: dict, timeout: float) -> Result:
    import sqlalchemy as sa

    from novalite.db import migration

    url, configured = _database_url(conf)
    shown = _safe_url(url)
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == 'sqlite':
        path = parsed.database
        if path and path != ':memory:' and not os.path.exists(path):
            how = ('' if configured else '[database] connection is not set, so the '
                   'embedded SQLite file is used. ')
            return Result(Code.FAILURE, f'{how}The database file {path} does not exist. '
                          'Set [database] connection, then run: novalite-manage db sync')
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool,
                              connect_args=_connect_args(parsed, timeout))
    try:
        with engine.connect() as conn:
            conn.execute(sa.text('SELECT 1'))
    except Exception as exc:
        return Result(Code.FAILURE, f'Cannot connect to {shown}: {_first_line(exc)}')
    finally:
        engine.dispose()

    try:
        head = migration.head()
    except migration.MigrationsNotFound as exc:
        return Result(Code.FAILURE, str(exc))
    current = migration.current(url)
    if current is None:
        return Result(Code.FAILURE, f'The database at {shown} has no schema. Run: '
                                    'novalite-manage db sync')
    if current != head:
        from alembic.script import ScriptDirectory
        script = ScriptDirectory.from_config(migration.alembic_config('sqlite://'))
        known = True
        for rev in current.split(','):
            try:
                known = known and script.get_revision(rev) is not None
            except Exception:
                known = False
        if not known:
            return Result(Code.FAILURE, f'The schema is at revision {current}, which this '
                          f'novalite does not know (its newest is {head}): the database '
                          'belongs to a newer release. Upgrade novalite on this host.')
        return Result(Code.FAILURE, f'The schema is at revision {current}, the newest is '
                                    f'{head}. Run: novalite-manage db sync')
    state['db_ok'] = True
    return Result(Code.SUCCESS, f'{shown}: schema at revision {head} (head)')


def _rabbit_ssl(conf, url) -> dict | bool:
    """kombu ssl argument from [oslo_messaging_rabbit] and the URL query."""
    query = {k.lower(): v for k, v in (url.query or {}).items()}
    enabled = str(query.get('ssl', '')).lower() in ('1', 'true', 'yes', 'on')
    group = getattr(conf, 'oslo_messaging_rabbit', None)
    if group is not None and getattr(group, 'ssl', False):
        enabled = True
    if not enabled:
        return False
    opts = {}
    if group is not None:
        for key, opt in (('ca_certs', 'ssl_ca_file'), ('certfile', 'ssl_cert_file'),
                         ('keyfile', 'ssl_key_file')):
            value = getattr(group, opt, None)
            if value:
                opts[key] = value
    return opts or True


def _probe_rabbit_host(host, virtual_host: str, ssl, timeout: float) -> None:
    """Open (and close) one AMQP connection; raises when the broker refuses it."""
    import kombu

    conn = kombu.Connection(hostname=host.hostname or 'localhost', port=host.port or 5672,
                            userid=host.username or 'guest',
                            password=host.password or 'guest',
                            virtual_host=virtual_host or '/', ssl=ssl, transport='pyamqp',
                            connect_timeout=timeout)
    try:
        conn.ensure_connection(max_retries=0, timeout=timeout)
    finally:
        conn.release()


def _register_rabbit_opts(conf) -> None:
    """[oslo_messaging_rabbit] (TLS settings) without loading the driver."""
    from oslo_messaging import opts as msg_opts
    for group, opts in msg_opts.list_opts():
        if group == 'oslo_messaging_rabbit':
            try:
                conf.register_opts(opts, group=group)
            except Exception:  # registered before by the driver, with other defaults
                LOG.debug('Could not register the options of [%s]', group, exc_info=True)


def check_broker(conf, state: dict, timeout: float) -> Result:
    import oslo_messaging as messaging

    from novalite import rpc

    _register_rabbit_opts(conf)
    raw = rpc.transport_url(conf)
    try:
        url = messaging.TransportURL.parse(conf, raw)
    except Exception as exc:
        return Result(Code.FAILURE, f'transport_url cannot be parsed: {_first_line(exc)}')
    default = (' (transport_url is not set; this is the default)'
               if _is_default(conf, 'transport_url') else '')
    if url.transport in IN_PROCESS_TRANSPORTS:
        return Result(Code.WARNING, f'transport_url uses the in-process "{url.transport}" '
                      'transport: services in other processes or on other hosts cannot '
                      'reach each other. Multi-host deployments need rabbit://.')
    if url.transport not in RABBIT_TRANSPORTS:
        return Result(Code.WARNING, f'Transport "{url.transport}" is not checked; only '
                                    'RabbitMQ (rabbit://) is.')
    if not url.hosts:
        return Result(Code.FAILURE, 'transport_url names no broker host.')
    ssl = _rabbit_ssl(conf, url)
    reachable, errors = [], []
    for host in url.hosts:
        name = f'{host.hostname}:{host.port or 5672}'
        try:
            _probe_rabbit_host(host, url.virtual_host, ssl, timeout)
        except Exception as exc:
            errors.append(f'{name}: {_first_line(exc)}')
        else:
            reachable.append(name)
    if not reachable:
        return Result(Code.FAILURE, 'Cannot connect to the message broker: '
                      + '; '.join(errors) + default)
    if errors:
        return Result(Code.WARNING, f'Broker reachable at {", ".join(reachable)}, not at: '
                      + '; '.join(errors))
    state['broker_ok'] = True
    return Result(Code.SUCCESS, f'RabbitMQ reachable at {", ".join(reachable)}'
                                f'{" (TLS)" if ssl else ""}{default}')


def _services_by_binary(conf, binary: str) -> tuple[list[dict], list[dict]]:
    from novalite.db import api as db
    services = db.service_get_all(binary=binary)
    up = [s for s in services if db.service_is_up(s, conf.service_down_time)]
    down = [s for s in services if s not in up]
    return up, down


def check_control_services(conf, state: dict, timeout: float) -> Result:
    skipped = _db_usable(state)
    if skipped:
        return skipped
    failures, warnings, fine = [], [], []
    for binary in ('novalite-conductor', 'novalite-scheduler'):
        up, down = _services_by_binary(conf, binary)
        down_hosts = ', '.join(sorted(s['host'] for s in down))
        if not up and not down:
            warnings.append(f'no {binary} service has registered yet (not started?)')
        elif not up:
            failures.append(f'no {binary} is up (down: {down_hosts})')
        elif down:
            warnings.append(f'{len(up)} {binary} up, down: {down_hosts}')
        else:
            fine.append(f'{len(up)} {binary} up')
    if failures:
        return Result(Code.FAILURE, '; '.join(failures + warnings) + '. A service is down '
                      f'when its last heartbeat is older than service_down_time '
                      f'({conf.service_down_time} s).')
    if warnings:
        return Result(Code.WARNING, '; '.join(warnings + fine) + '.')
    return Result(Code.SUCCESS, '; '.join(fine) + '.')


def check_computes(conf, state: dict, timeout: float) -> Result:
    skipped = _db_usable(state)
    if skipped:
        return skipped
    from novalite import exception
    from novalite.db import api as db

    up, down = _services_by_binary(conf, 'novalite-compute')
    if not up and not down:
        return Result(Code.WARNING, 'No novalite-compute service has registered yet. '
                      'Expected on a fresh install until the compute hosts start; no '
                      'server can be scheduled before one does.')
    if not up:
        return Result(Code.FAILURE, f'None of the {len(down)} novalite-compute services is '
                      'up (last heartbeat older than service_down_time = '
                      f'{conf.service_down_time} s): '
                      + ', '.join(sorted(s['host'] for s in down)))
    nodes: dict[str, list[dict]] = {}
    for node in db.compute_node_get_all():
        nodes.setdefault(node['host'], []).append(node)
    without_inventory, schedulable = [], []
    for svc in up:
        ok = False
        for node in nodes.get(svc['host'], []):
            try:
                inventory = db.provider_inventories(node['uuid'])
            except exception.NotFound:
                inventory = {}
            if all(inventory.get(rc, {}).get('total', 0) > 0 for rc in RESOURCE_CLASSES):
                ok = True
        if not ok:
            without_inventory.append(svc['host'])
        elif not svc.get('disabled'):
            schedulable.append(svc['host'])
    problems = []
    if down:
        problems.append('down: ' + ', '.join(sorted(s['host'] for s in down)))
    if without_inventory:
        problems.append('up but no compute node inventory reported yet: '
                        + ', '.join(sorted(without_inventory)))
    disabled = sorted(s['host'] for s in up if s.get('disabled'))
    if disabled:
        problems.append('disabled: ' + ', '.join(disabled))
    summary = f'{len(up)} of {len(up) + len(down)} novalite-compute services up'
    if not schedulable:
        return Result(Code.FAILURE, f'{summary}, but none is enabled with inventory, so '
                      'no server can be scheduled; ' + '; '.join(problems))
    if problems:
        return Result(Code.WARNING, f'{summary}; ' + '; '.join(problems))
    return Result(Code.SUCCESS, f'{summary}, all report inventory '
                                f'({", ".join(RESOURCE_CLASSES)}).')


def check_configuration(conf, state: dict, timeout: float) -> Result:
    warnings = []
    if conf.api.auth_strategy == 'noauth2':
        warnings.append('[api] auth_strategy = noauth2 trusts whatever user and project a '
                        'client claims; use keystone in production')
    if not conf.database.connection:
        warnings.append('[database] connection is not set: the embedded SQLite file serves '
                        'one host only; multi-host deployments need PostgreSQL or MySQL')
    if conf.service_down_time < 2 * conf.report_interval:
        warnings.append(f'service_down_time ({conf.service_down_time} s) is less than twice '
                        f'report_interval ({conf.report_interval} s): one late heartbeat '
                        'marks a service down')
    if warnings:
        return Result(Code.WARNING, '; '.join(warnings) + '.')
    return Result(Code.SUCCESS, None)


def check_policy(conf, state: dict, timeout: float) -> Result:
    from oslo_policy import policy as oslo_policy

    from novalite import policies

    enforcer = oslo_policy.Enforcer(conf)
    enforcer.register_defaults(policies.list_rules())
    try:
        enforcer.load_rules(force_reload=True)
    except Exception as exc:
        return Result(Code.FAILURE, f'The policy file cannot be loaded: {_first_line(exc)}')
    path = getattr(enforcer, 'policy_path', None)
    if not path:
        return Result(Code.SUCCESS, 'No policy file; the in-code defaults apply.')
    unknown = sorted(set(enforcer.file_rules) - set(enforcer.registered_rules))
    notes = []
    if path.endswith('.json'):
        notes.append(f'{path} is JSON; convert it to YAML with '
                     'oslopolicy-convert-json-to-yaml --namespace novalite')
    if unknown:
        notes.append(f'{path} sets rules novalite does not know (typos or rules of '
                     f'another service?): {", ".join(unknown)}')
    if notes:
        return Result(Code.WARNING, '; '.join(notes) + '.')
    return Result(Code.SUCCESS, f'{path}: {len(enforcer.file_rules)} overrides, all known.')


#: Findings the allocation check names in its details; the rest are counted.
AUDIT_SHOWN = 3


def check_allocations(conf, state: dict, timeout: float) -> Result:
    skipped = _db_usable(state)
    if skipped:
        return skipped
    from novalite.db import audit

    findings = audit.audit(fix=False)
    if not findings:
        return Result(Code.SUCCESS, 'Every allocation belongs to a live instance or an '
                                    'unfinished migration.')
    counts = audit.summary(findings)
    uncertain = sum(not f.certain for f in findings)
    shown = '; '.join(f.line() for f in findings[:AUDIT_SHOWN])
    more = f'; and {len(findings) - AUDIT_SHOWN} more' if len(findings) > AUDIT_SHOWN else ''
    return Result(Code.WARNING, f'{len(findings)} allocation findings ('
                  + ', '.join(f'{n} {k}' for k, n in sorted(counts.items()))
                  + f'), {len(findings) - uncertain} certain, {uncertain} uncertain: '
                  f'{shown}{more}. Repair the certain ones with: novalite-manage placement '
                  'audit --fix')


CHECKS: list[tuple[str, Callable]] = [
    ('Database', check_database),
    ('Message broker', check_broker),
    ('Conductor and scheduler services', check_control_services),
    ('Compute services', check_computes),
    ('Configuration', check_configuration),
    ('Policy file', check_policy),
    ('Placement allocations', check_allocations),
]


# ------------------------------------------------------------------- running

def run_checks(conf, timeout: float = DEFAULT_TIMEOUT) -> tuple[list[tuple[str, Result]], bool]:
    """Run every check; (results, whether some check raised unexpectedly)."""
    from novalite.db import session

    state: dict = {}
    results = []
    unexpected = False
    # The db api uses the process engine; build it from this configuration.
    session.set_engine(None)
    try:
        for name, fn in CHECKS:
            try:
                result = fn(conf, state, timeout)
            except Exception as exc:
                unexpected = True
                traceback.print_exc(file=sys.stderr)
                result = Result(Code.FAILURE, f'The check could not run: {_first_line(exc)}')
            results.append((name, result))
    finally:
        session.set_engine(None)
    return results, unexpected


def _format_details(details: str | None) -> str:
    if not details:
        return 'None'
    return '\n'.join(textwrap.wrap(details, 60, subsequent_indent='  '))


def format_table(results) -> str:
    import prettytable
    table = prettytable.PrettyTable(['Upgrade Check Results'], hrules=prettytable.HRuleStyle.ALL
                                    if hasattr(prettytable, 'HRuleStyle') else prettytable.ALL)
    table.align = 'l'
    for name, result in results:
        table.add_row([f'Check: {name}\nResult: {result.code.label}\n'
                       f'Details: {_format_details(result.details)}'])
    return table.get_string()


def format_json(results) -> str:
    return json.dumps([{'check': name, 'result': int(r.code), 'details': r.details}
                       for name, r in results], indent=2)


def exit_code(results, unexpected: bool = False) -> int:
    if unexpected:
        return UNEXPECTED
    return max((int(r.code) for _, r in results), default=0)


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='novalite-status',
        description='Preflight checks of a novalite deployment. Exit codes: 0 success, '
                    '1 warning, 2 failure, 255 unexpected error.')
    parser.add_argument('--config-file', action='append', default=[], metavar='PATH',
                        help='Configuration file (repeatable). Default: the usual '
                             'novalite.conf search path, e.g. /etc/novalite/novalite.conf.')
    parser.add_argument('--config-dir', action='append', default=[], metavar='DIR')
    parser.add_argument('--debug', action='store_true', help='Log what the checks do.')
    sub = parser.add_subparsers(dest='category', required=True)
    upgrade = sub.add_parser('upgrade').add_subparsers(dest='action', required=True)
    check = upgrade.add_parser('check', help='Run every check and print the results.')
    check.add_argument('--json', action='store_true', help='Print the results as JSON.')
    check.add_argument('--timeout', type=float, default=DEFAULT_TIMEOUT, metavar='SECONDS',
                       help='Seconds each database or broker probe may take '
                            f'(default {DEFAULT_TIMEOUT:g}).')
    # Also accept the configuration options after "upgrade check".
    check.add_argument('--config-file', action='append', dest='config_file_late',
                       default=[], metavar='PATH', help=argparse.SUPPRESS)
    check.add_argument('--config-dir', action='append', dest='config_dir_late',
                       default=[], metavar='DIR', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        stream=sys.stderr, format='%(levelname)s %(name)s: %(message)s')
    conf_args = []
    for path in args.config_file + args.config_file_late:
        conf_args += ['--config-file', path]
    for path in args.config_dir + args.config_dir_late:
        conf_args += ['--config-dir', path]
    try:
        from novalite import rpc
        from novalite.conf import CONF
        rpc.set_defaults()
        CONF(conf_args, project='novalite', prog='novalite-status')
    except Exception as exc:
        print(f'novalite-status: cannot load the configuration: {_first_line(exc)}',
              file=sys.stderr)
        return UNEXPECTED
    try:
        results, unexpected = run_checks(CONF, timeout=args.timeout)
    except Exception:
        traceback.print_exc(file=sys.stderr)
        return UNEXPECTED
    print(format_json(results) if args.json else format_table(results))
    return exit_code(results, unexpected)


if __name__ == '__main__':
    sys.exit(main())
