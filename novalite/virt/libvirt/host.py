"""The libvirt connection of one compute host: opened on first use, reopened when lost."""

import logging
import threading
import time

from novalite.virt import driver

try:
    import libvirt
except ImportError:  # pragma: no cover - load_driver reports it
    libvirt = None

LOG = logging.getLogger(__name__)

if libvirt is None or not hasattr(libvirt, 'virConnect'):
    # A directory named "libvirt" on sys.path imports as an empty namespace package.
    raise ImportError('libvirt-python is not installed')


def _ignore_libvirt_errors(ctx, err):
    """libvirt prints every error on stderr by default; we raise them instead."""


libvirt.registerErrorHandler(_ignore_libvirt_errors, None)

_event_loop_lock = threading.Lock()
_event_loop_started = False


def start_event_loop():
    """Run libvirt's default event loop in a daemon thread (once per process).

    Must happen before connections are opened for their events (and keepalives) to be
    dispatched.
    """
    global _event_loop_started
    with _event_loop_lock:
        if _event_loop_started:
            return
        libvirt.virEventRegisterDefaultImpl()

        def loop():
            while True:
                try:
                    libvirt.virEventRunDefaultImpl()
                except Exception:  # pragma: no cover - keep the loop alive
                    LOG.exception('libvirt event loop iteration failed')
                    time.sleep(0.1)

        threading.Thread(target=loop, name='libvirt-events', daemon=True).start()
        _event_loop_started = True


class Host:
    """One libvirt connection, shared by every thread of the driver that owns it.

    With a ``lifecycle_event_handler`` the process runs libvirt's event loop and each new
    connection delivers domain lifecycle events to it, called as libvirt's
    ``domainEventRegisterAny`` callbacks are: (conn, dom, event, detail, opaque).
    """

    def __init__(self, uri, lifecycle_event_handler=None):
        self.uri = uri
        self._lifecycle_event_handler = lifecycle_event_handler
        self._conn = None
        self._lock = threading.RLock()
        self._event_callback_id = None

    def get_connection(self):
        """The open connection; a lost one is replaced by a new one first."""
        with self._lock:
            if self._conn is not None:
                try:
                    if self._conn.isAlive():
                        return self._conn
                except libvirt.libvirtError:
                    pass
                LOG.warning('Connection to libvirt %s lost; reconnecting', self.uri)
                self._close()
            self._conn = self._connect()
            return self._conn

    def close(self):
        with self._lock:
            self._close()

    def _connect(self):
        handler = self._lifecycle_event_handler
        if handler is not None:
            start_event_loop()
        try:
            conn = libvirt.open(self.uri)
        except libvirt.libvirtError as exc:
            raise driver.VirtDriverError('Cannot connect to libvirt at %s: %s'
                                         % (self.uri, exc))
        if handler is not None:
            try:
                self._event_callback_id = conn.domainEventRegisterAny(
                    None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, handler, None)
            except libvirt.libvirtError as exc:
                LOG.warning('libvirt lifecycle events unavailable on %s: %s', self.uri, exc)
        LOG.info('Connected to libvirt %s (%s)', self.uri, conn.getType())
        return conn

    def _close(self):
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._event_callback_id is not None:
            try:
                conn.domainEventDeregisterAny(self._event_callback_id)
            except libvirt.libvirtError:
                pass
            self._event_callback_id = None
        try:
            conn.close()
        except libvirt.libvirtError:
            pass
