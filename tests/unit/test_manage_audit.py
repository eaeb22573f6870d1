"""novalite-manage placement audit against a SQLite database: one line per finding, the
--fix repair and the exit codes."""

import datetime
import logging

import pytest

from novalite.cmd import manage
from novalite.compute import states
from novalite.db import api as db
from novalite.db import migration, models, session

RESOURCES = {'vcpus': 4, 'memory_mb': 4096, 'local_gb': 40}
RATIOS = {'VCPU': 1.0, 'MEMORY_MB': 1.0, 'DISK_GB': 1.0}
FLAVOR = {'vcpus': 1, 'memory_mb': 512, 'root_gb': 1}
SMALL = {'VCPU': 1, 'MEMORY_MB': 512, 'DISK_GB': 1}


@pytest.fixture
def cloud(tmp_path, sqlite_url, conf):
    migration.upgrade(sqlite_url)
    path = tmp_path / 'novalite.conf'
    path.write_text(f'[DEFAULT]\nstate_path = {tmp_path / "state"}\n'
                    'use_stderr = true\n'
                    f'[database]\nconnection = {sqlite_url}\n')
    conf.set_override('connection', sqlite_url, group='database')
    session.set_engine(None)
    nodes = {h: db.compute_node_update(h, h, RESOURCES, RATIOS, {})['uuid']
             for h in ('cmp1', 'cmp2')}
    # novalite-manage parses its own command line and registers its logging options:
    # hand it a configuration that has not parsed one yet.
    conf.clear()
    session.set_engine(None)
    handlers = list(logging.root.handlers)
    yield path, nodes
    session.set_engine(None)
    # Logging set up by the command writes to this test's captured stderr: undo it.
    for handler in set(logging.root.handlers) - set(handlers):
        logging.root.removeHandler(handler)


def _instance(host, task=None):
    session.get_engine()
    return db.instance_create({'display_name': 'x', 'project_id': 'p', 'user_id': 'u',
                               'host': host, 'node': host, 'vm_state': states.ACTIVE,
                               'task_state': task, 'flavor': dict(FLAVOR)})['uuid']


def _age():
    then = models.utcnow() - datetime.timedelta(hours=1)
    with session.writer() as s:
        s.query(models.Instance).update({'updated_at': then, 'created_at': then})
        s.query(models.Allocation).update({'created_at': then})


def run(capsys, path, *args):
    from novalite.conf import CONF
    try:
        rc = manage.main(['--config-file', str(path), 'placement', 'audit', *args])
    finally:
        CONF.clear()
        session.set_engine(None)
    return rc, capsys.readouterr().out.splitlines()


def test_clean_cloud_exits_0(cloud, capsys):
    path, nodes = cloud
    db.claim_resources(_instance('cmp1'), {nodes['cmp1']: SMALL})
    _age()
    assert run(capsys, path) == (0, ['0 findings: 0 fixed, 0 certain left, 0 uncertain'])


def test_certain_findings_exit_1_until_fixed(cloud, capsys):
    path, nodes = cloud
    wrong = _instance('cmp1')
    db.claim_resources(wrong, {nodes['cmp2']: SMALL})
    _age()
    rc, lines = run(capsys, path)
    assert rc == 1
    assert lines == [f'wrong_provider {wrong} {nodes["cmp2"]} cmp1 certain',
                     '1 findings: 0 fixed, 1 certain left (run with --fix), 0 uncertain']
    rc, lines = run(capsys, path, '--fix', '--verbose')
    assert rc == 0
    assert lines[0].startswith(f'wrong_provider consumer={wrong} ')
    assert '[fixed]' in lines[0] and 'move it there' in lines[0]
    assert lines[1] == '1 findings: 1 fixed, 0 certain left, 0 uncertain'
    assert db.get_allocations(wrong) == {nodes['cmp1']: SMALL}
    assert run(capsys, path)[0] == 0


def test_uncertain_findings_exit_2_even_after_fix(cloud, capsys):
    path, nodes = cloud
    bare = _instance('cmp2')
    _age()
    rc, lines = run(capsys, path, '--fix')
    assert rc == 2
    assert lines[0] == f'missing_allocation {bare} {nodes["cmp2"]} cmp2 uncertain'


def test_grace_option(cloud, capsys):
    path, nodes = cloud
    db.claim_resources(_instance('cmp1'), {nodes['cmp2']: SMALL})
    assert run(capsys, path)[0] == 0  # too fresh for the default grace period
    assert run(capsys, path, '--grace', '0')[0] == 1


def test_bad_grace_is_refused(cloud, capsys):
    path, _ = cloud
    with pytest.raises(SystemExit):
        run(capsys, path, '--grace', '-5')
    assert 'must be zero or more seconds' in capsys.readouterr().err
