"""Property-based testing of the live API against its own OpenAPI document.

schemathesis reads ``GET /v2.1/openapi.json`` from an all-in-one served over HTTP
and fuzzes every operation as admin at the highest microversion. No response may be
a 5xx, and every response must match the document (status code, content type, body
schema). Bounded: a fixed number of examples per operation and a time budget, so the
run takes about a minute. ``NOVALITE_SCHEMATHESIS_SECONDS`` changes the budget and
``NOVALITE_SCHEMATHESIS_FULL=1`` turns on every check and the stateful phase (``tox -e fuzz``).

schemathesis runs with one worker. Its workers are threads, and hypothesis and schemathesis
parse Python source with ``ast`` while they generate; CPython 3.11 keeps the AST
constructor's recursion counter in per-interpreter state shared by all threads, so two
threads parsing at once corrupt it and one dies with "SystemError: AST constructor
recursion depth mismatch" (CPython gh-106905). One worker means one parsing thread.
"""

import os
import subprocess
import sys

import pytest

from tests.conftest import require_service
from tests.functional import harness

CHECKS = ('not_a_server_error,status_code_conformance,content_type_conformance,'
          'response_schema_conformance')
MAX_EXAMPLES = 15
SECONDS = int(os.environ.get('NOVALITE_SCHEMATHESIS_SECONDS', '60'))
FULL = os.environ.get('NOVALITE_SCHEMATHESIS_FULL') == '1'


def _cli() -> str:
    def check():
        local = os.path.join(os.path.dirname(sys.executable), 'schemathesis')
        if os.access(local, os.X_OK):
            return local
        import shutil
        found = shutil.which('schemathesis')
        if not found:
            raise RuntimeError('schemathesis is not installed (pip install .[clients])')
        return found
    return require_service('command schemathesis', check)


@pytest.fixture
def live(tmp_path):
    cloud = harness.Cloud(tmp_path / 'cloud', **{'osapi_compute_listen': '127.0.0.1',
                                                 'osapi_compute_listen_port': 0})
    cloud.start()
    try:
        cloud.aio._start_http()
        yield cloud
    finally:
        cloud.stop()


def _config(cloud, path) -> str:
    """Real identifiers for GET operations, so they reach past the 404."""
    server = cloud.boot('fuzz-target')
    hypervisor = cloud.get_json('/os-hypervisors', version='2.100')['hypervisors'][0]
    params = {'server_id': server['id'], 'hypervisor_id': hypervisor['id'],
              'image_id': cloud.first_image(),
              'pattern': hypervisor['hypervisor_hostname']}
    if not FULL:
        # The stateful phase deletes flavors it found; a pinned flavor id it deleted
        # would then read as "created resource not found". Links give it real ids.
        params['flavor_id'] = '1'

    # Schema-valid data that names nothing real (flavorRef 0, an unknown marker) is a 400
    # in Nova, not a 404: positive_data_acceptance takes that as an accepted answer.
    # A body above the size limit (114,688 bytes) is a 413 before it is read, valid or
    # not (the document lists the 413): both checks take it as a refusal of the request.
    lines = ['[checks.positive_data_acceptance]',
             'expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", '
             '"413", "429", "5xx"]',
             '[checks.negative_data_rejection]',
             'expected-statuses = ["400", "401", "403", "404", "405", "406", "409", '
             '"413", "415", "422", "428", "429", "5xx"]',
             # The document's own links (and Location headers) drive the stateful phase;
             # the guessed dependency links paired new flavors with other flavors' ids.
             '[phases.stateful.inference]', 'algorithms = ["location-headers"]',
             '[[operations]]', 'include-method = "GET"', '[operations.parameters]']
    lines += ['%s = "%s"' % item for item in params.items()]
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def _failures(out: str) -> str:
    """The FAILURES section (what failed and how to reproduce it) and the summary; a long
    run's whole report would push the failures out of the assertion message."""
    start = out.find('= FAILURES =')
    end = out.find('= WARNINGS =')
    failures = out[start:end if end > start else None] if start >= 0 else ''
    return failures[:30000] + '\n...\n' + out[-4000:]


def _selection() -> list[str]:
    if FULL:
        # ignored_auth sends made-up tokens; noauth2 takes any ``user:project`` token by
        # design, so it cannot hold there. tests/keystone checks real token handling.
        return ['--checks', 'all', '--exclude-checks', 'ignored_auth',
                '--max-examples', '200', '--phases', 'examples,coverage,fuzzing,stateful']
    return ['--checks', CHECKS, '--max-examples', str(MAX_EXAMPLES),
            '--phases', 'examples,coverage,fuzzing']


@pytest.mark.slow
@pytest.mark.timeout(SECONDS + 180)
def test_fuzz_against_openapi(live, tmp_path):
    cli = _cli()
    base = live.aio.endpoint + '/v2.1'
    cmd = [cli, '--config-file', _config(live, tmp_path / 'schemathesis.toml'), 'run',
           base + '/openapi.json', '--url', base,
           '-H', 'X-Auth-Token: admin:admin',
           '-H', 'OpenStack-API-Version: compute 2.100',
           *_selection(), '--max-time', str(SECONDS),
           '--workers', '1', '--generation-database', 'none', '--seed', '1',
           '--no-color', '--report-dir', str(tmp_path / 'report')]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=SECONDS + 90,
                          cwd=tmp_path, env=dict(os.environ, NO_COLOR='1'))
    # The run's summary (cases, failures) shows with ``pytest -s`` or in the report.
    print(proc.stdout[-4000:])
    assert proc.returncode == 0, _failures(proc.stdout) + proc.stderr[-5000:]
    assert 'No failures' in proc.stdout or ' 0 failures' in proc.stdout or \
        'failure' not in proc.stdout.split('SUMMARY')[-1], proc.stdout[-5000:]
