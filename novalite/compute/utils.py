"""Helpers shared by the conductor and compute: action events, instance faults, locks."""

import datetime
import logging
import threading
import traceback as tb

from novalite import exception

LOG = logging.getLogger(__name__)


def fault_code(exc: BaseException) -> int:
    if isinstance(exc, exception.NoValidHost):
        return 500
    if isinstance(exc, (exception.Invalid,)):
        return 400
    if isinstance(exc, exception.Conflict):
        return 409
    return 500


GENERIC_NO_VALID_HOST = 'No valid host was found. There are not enough hosts available.'


def fault_message(exc: BaseException) -> str:
    """The fault message everyone may read; a scheduler explanation goes to details."""
    if isinstance(exc, exception.InstanceFaultRollback) and exc.inner_exception:
        exc = exc.inner_exception
    if isinstance(exc, exception.NoValidHost) and exc.explanation and not isinstance(
            exc, exception.MaxRetriesExceeded):
        from novalite.scheduler.filter_scheduler import format_explanation
        if str(exc) == format_explanation(exc.explanation):
            return GENERIC_NO_VALID_HOST
    return str(exc) or type(exc).__name__


def fault_details(exc: BaseException) -> str:
    """Details stored with a fault: the per-filter explanation for NoValidHost, else the
    traceback."""
    explanation = getattr(exc, 'explanation', None)
    if explanation:
        from novalite.scheduler.filter_scheduler import format_explanation
        return format_explanation(explanation)
    return ''.join(tb.format_exception(type(exc), exc, exc.__traceback__))


def add_fault(db, instance_uuid: str, exc: BaseException, host: str | None) -> None:
    try:
        db.fault_create(instance_uuid, fault_code(exc), fault_message(exc),
                        fault_details(exc), host)
    except Exception:
        LOG.warning('Could not record fault for %s', instance_uuid, exc_info=True)


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def fault_record(exc: BaseException) -> dict:
    """A fault as a step write carries it."""
    return {'code': fault_code(exc), 'message': fault_message(exc),
            'details': fault_details(exc)}


class Hop:
    """The action event of one compute step, carried by the step's own state write(s):
    ``opened()`` with the first write, ``ok()`` or ``error(exc)`` with the last, or only
    one of those with a single write (the event then starts when the hop began)."""

    def __init__(self, context, name: str):
        self.request_id = context.request_id
        self.name = name
        self.start_time = utcnow().isoformat()
        self._opened = False

    def _event(self, **kw):
        return dict(request_id=self.request_id, name=self.name, start_time=self.start_time,
                    **kw)

    def opened(self) -> dict:
        self._opened = True
        return self._event(started=True)

    def ok(self) -> dict:
        return self._event(started=not self._opened, result='Success')

    def error(self, exc: BaseException) -> dict:
        details = fault_details(exc) if getattr(exc, 'explanation', None) else None
        return self._event(started=not self._opened, result='Error', details=details,
                           traceback=''.join(tb.format_exception(type(exc), exc,
                                                                 exc.__traceback__)))


class InstanceLocks:
    """One lock per instance on this host: a step and a reconcile never overlap. Re-entrant,
    so a reconcile holding it can run the step's own handler."""

    def __init__(self):
        self._locks: dict[str, threading.RLock] = {}
        self._guard = threading.Lock()

    def __call__(self, instance_uuid: str) -> threading.RLock:
        with self._guard:
            return self._locks.setdefault(instance_uuid, threading.RLock())
