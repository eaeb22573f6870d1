"""Helpers shared by the conductor and compute: action events and instance faults."""

import contextlib
import logging
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


@contextlib.contextmanager
def event(db, context, instance_uuid: str, name: str, host: str | None):
    """Record an instance-action event around a block: start, then Success or Error
    with the traceback (and the scheduler's explanation when there is one)."""
    request_id = context.request_id
    try:
        db.action_event_start(instance_uuid, request_id, name, host=host)
    except Exception:
        LOG.warning('Could not record event %s start', name, exc_info=True)
    try:
        yield
    except BaseException as exc:
        details = None
        if getattr(exc, 'explanation', None):
            details = fault_details(exc)
        try:
            db.action_event_finish(instance_uuid, request_id, name, 'Error',
                                   traceback=''.join(tb.format_exception(
                                       type(exc), exc, exc.__traceback__)),
                                   details=details, host=host)
        except Exception:
            LOG.warning('Could not record event %s error', name, exc_info=True)
        raise
    else:
        try:
            db.action_event_finish(instance_uuid, request_id, name, 'Success', host=host)
        except Exception:
            LOG.warning('Could not record event %s finish', name, exc_info=True)
