"""sd_notify readiness for Type=notify units, without a dependency on libsystemd."""

import logging
import os
import socket


def notify(message: str) -> bool:
    """Send ``message`` to $NOTIFY_SOCKET; a no-op outside systemd."""
    path = os.environ.get('NOTIFY_SOCKET')
    if not path:
        return False
    if path.startswith('@'):
        path = '\0' + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(path)
            sock.sendall(message.encode())
    except OSError as e:
        # Like sd_notify(3): a missing notification socket never stops the daemon.
        logging.getLogger(__name__).warning('sd_notify to %s failed: %s', path, e)
        return False
    return True


def notify_ready() -> bool:
    return notify('READY=1')
