"""The fault matrix's CI subset (tests/faults/matrix.py FAST), one test per cell, each of
which must come out ok; plus the proxy and the shape of the full matrix. The full matrix
runs with ``tox -e faults`` (tools/fault_matrix.py)."""

import collections
import socket
import threading

import pytest

from tests.faults import matrix
from tests.faults.proxy import TcpProxy

# ------------------------------------------------------------- the matrix's shape

def test_full_matrix_has_enough_distinct_valid_cells():
    names = [c.name for c in matrix.CELLS]
    assert len(names) >= 60
    assert len(set(names)) == len(names)
    assert {c.operation for c in matrix.CELLS} == set(matrix.OPERATIONS)
    assert {c.fault for c in matrix.CELLS} == set(matrix.FAULTS)
    killed = {c.daemon for c in matrix.CELLS if c.fault == 'sigkill'}
    assert {'api', 'conductor', 'scheduler', 'source', 'dest', 'compute'} <= killed


def test_fast_subset_is_in_the_matrix_and_selectable():
    assert len(matrix.FAST) == len(set(matrix.FAST)) >= 6
    assert [c.name for c in matrix.select(fast=True)] == \
        [c.name for c in matrix.CELLS if c.name in matrix.FAST]
    assert all(matrix.cell_by_name(n) for n in matrix.FAST)
    assert [c.name for c in matrix.select('confirm/*/source/sigkill')] == \
        ['confirm/confirming/source/sigkill']
    assert matrix.select('no-such/*') == []


def test_cells_reject_unknown_parts():
    with pytest.raises(ValueError, match='has no phase'):
        matrix.Cell('boot', 'api', 'running', 'sigkill')
    with pytest.raises(ValueError, match='unknown fault'):
        matrix.Cell('boot', 'api', 'spawning', 'sigstop')
    with pytest.raises(KeyError):
        matrix.cell_by_name('boot/spawning/api/sigstop')


def test_summary_counts_outcomes():
    cells = matrix.CELLS[:5]
    outcomes = ['ok', 'stuck', 'guest-on-0', 'guest-on-2', 'leaked']
    results = [matrix.Result(c, o, 1.0) for c, o in zip(cells, outcomes, strict=True)]
    line = matrix.summary(results)
    assert line.startswith('5 cells, 1 ok, 1 stuck, 1 leaked, 2 guest-on-0-or-2,')
    assert collections.Counter(r.outcome for r in results)['ok'] == 1
    assert cells[1].name in matrix.table(results)


# ---------------------------------------------------------------------- the proxy

@pytest.fixture
def echo_server():
    srv = socket.create_server(('127.0.0.1', 0))
    stop = threading.Event()

    def serve(conn):
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    def accept():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield srv.getsockname()[1]
    stop.set()
    srv.close()


def _echo(port, payload=b'ping'):
    with socket.create_connection(('127.0.0.1', port), timeout=5) as s:
        s.sendall(payload)
        return s.recv(4096)


def test_proxy_forwards_cuts_and_restores(echo_server):
    with TcpProxy('127.0.0.1', echo_server) as proxy:
        assert _echo(proxy.port) == b'ping'
        held = socket.create_connection(proxy.address, timeout=5)
        held.sendall(b'x')
        assert held.recv(10) == b'x'
        port = proxy.port
        proxy.cut()
        assert held.recv(10) == b''       # the open connection is gone
        held.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(proxy.address, timeout=5)
        proxy.restore()
        assert proxy.port == port
        assert _echo(proxy.port, b'again') == b'again'


def test_proxy_rejects_a_bad_target():
    with pytest.raises(ValueError, match='target port'):
        TcpProxy('127.0.0.1', 'postgres')


# ------------------------------------------------------------------ the fast cells

@pytest.fixture(scope='module')
def rig_pool(pg_url, rabbit_url, tmp_path_factory):
    pool = matrix.RigPool(tmp_path_factory.mktemp('fault-matrix'), pg_url, rabbit_url)
    yield pool
    pool.close()


@pytest.mark.integration
@pytest.mark.parametrize('name', matrix.FAST)
def test_fast_cell(rig_pool, name):
    result = rig_pool.play(matrix.cell_by_name(name))
    assert result.outcome == 'ok', f'{name}: {result.outcome}: {result.detail}'
