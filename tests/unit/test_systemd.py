"""novalite.systemd.notify: sd_notify over a real AF_UNIX datagram socket."""

import os
import socket
import uuid

import pytest

from novalite import systemd


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    path = tmp_path / 'n.sock'
    if len(os.fsencode(path)) >= 100:  # sun_path holds 108 bytes
        pytest.skip(f'tmp_path too long for an AF_UNIX socket: {path}')
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    monkeypatch.setenv('NOTIFY_SOCKET', str(path))
    yield sock
    sock.close()


def test_notify_ready_sends_ready_1(notify_socket):
    assert systemd.notify_ready() is True
    assert notify_socket.recv(4096) == b'READY=1'


def test_notify_sends_the_message_as_one_datagram(notify_socket):
    assert systemd.notify('STATUS=draining\nSTOPPING=1') is True
    assert notify_socket.recv(4096) == b'STATUS=draining\nSTOPPING=1'
    assert systemd.notify('READY=1') is True
    assert notify_socket.recv(4096) == b'READY=1'


def test_abstract_namespace_socket(monkeypatch):
    """systemd may hand out "@name": a socket in Linux's abstract namespace."""
    name = f'novalite-test-{uuid.uuid4().hex}'
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind('\0' + name)
    except OSError as exc:
        sock.close()
        pytest.skip(f'no abstract AF_UNIX namespace here: {exc}')
    sock.settimeout(5)
    with sock:
        monkeypatch.setenv('NOTIFY_SOCKET', '@' + name)
        assert systemd.notify_ready() is True
        assert sock.recv(4096) == b'READY=1'


def test_no_op_outside_systemd(monkeypatch):
    monkeypatch.delenv('NOTIFY_SOCKET', raising=False)
    assert systemd.notify_ready() is False
    monkeypatch.setenv('NOTIFY_SOCKET', '')
    assert systemd.notify('READY=1') is False
