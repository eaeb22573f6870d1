"""Domain exceptions. They carry no HTTP status: novalite.api.faults maps them to codes.

Exceptions that may cross RPC are listed in ``REMOTE_ALLOWED`` so a caller can re-raise
them by class (oslo.messaging rebuilds only allow-listed modules).
"""


class NovaliteException(Exception):
    msg_fmt = 'An unknown exception occurred.'

    def __init__(self, message=None, **kwargs):
        self.kwargs = kwargs
        if message is None:
            try:
                message = self.msg_fmt % kwargs
            except (KeyError, TypeError):
                message = self.msg_fmt
        self.message = str(message)
        super().__init__(self.message)

    def __str__(self):
        return self.message


class NotFound(NovaliteException):
    msg_fmt = 'Resource could not be found.'


class InstanceNotFound(NotFound):
    msg_fmt = 'Instance %(instance_id)s could not be found.'


class FlavorNotFound(NotFound):
    msg_fmt = 'Flavor %(flavor_id)s could not be found.'


class ImageNotFound(NotFound):
    msg_fmt = 'Image %(image_id)s could not be found.'


class MigrationNotFound(NotFound):
    msg_fmt = 'Migration %(migration_id)s could not be found.'


class MigrationNotFoundForInstance(MigrationNotFound):
    msg_fmt = 'Migration %(migration_id)s not found for instance %(instance_id)s'


class ActionNotFound(NotFound):
    msg_fmt = 'Action %(request_id)s not found'


class ComputeHostNotFound(NotFound):
    msg_fmt = 'Compute host %(host)s could not be found.'


class ComputeNodeNotFound(NotFound):
    msg_fmt = 'Compute node %(node)s could not be found.'


class ServiceNotFound(NotFound):
    msg_fmt = 'Service %(service_id)s could not be found.'


class ResourceProviderNotFound(NotFound):
    msg_fmt = 'No resource provider with uuid %(uuid)s found.'


class InstanceGroupNotFound(NotFound):
    msg_fmt = 'Instance group %(group_uuid)s could not be found.'


class Invalid(NovaliteException):
    msg_fmt = 'Unacceptable parameters.'


class ValidationError(Invalid):
    msg_fmt = 'Invalid input: %(detail)s'


class CannotResizeToSameFlavor(Invalid):
    msg_fmt = 'When resizing, instances must change flavor!'


class CannotResizeDisk(Invalid):
    msg_fmt = 'Server disk was unable to be resized because: %(reason)s'


class CannotMigrateToSameHost(Invalid):
    msg_fmt = ('Cannot migrate to the host where the server exists. Please specify '
               'a different host.')


class FlavorDiskTooSmall(Invalid):
    msg_fmt = "Flavor's disk is too small for requested image."


class FlavorMemoryTooSmall(Invalid):
    msg_fmt = "Flavor's memory is too small for requested image."


class MigrationPreCheckError(Invalid):
    msg_fmt = 'Migration pre-check error: %(reason)s'


class InvalidHypervisorType(Invalid):
    msg_fmt = 'The supplied hypervisor type of is invalid.'


class InvalidCPUInfo(Invalid):
    msg_fmt = 'Unacceptable CPU info: %(reason)s'


class UnableToMigrateToSelf(Invalid):
    msg_fmt = 'Unable to migrate instance (%(instance_id)s) to current host (%(host)s).'


class DestinationHypervisorTooOld(Invalid):
    msg_fmt = ('The instance requires a newer hypervisor version than has been '
               'provided.')


class ComputeServiceUnavailable(Invalid):
    msg_fmt = 'Compute service of %(host)s is unavailable at this time.'


class ComputeServiceInUse(Invalid):
    msg_fmt = 'Compute service of %(host)s is still in use.'


class PeerUnavailable(ComputeServiceUnavailable):
    """A call got no answer and its peer does not answer a ping either: it is dead or
    cut off. A kind of ComputeServiceUnavailable, so a move treats a compute that dies
    during a call as it treats one already marked down."""

    msg_fmt = ('%(service)s on %(host)s did not answer %(method)s within %(waited)s s '
               'and does not answer a ping.')


class NoValidHost(NovaliteException):
    """No host satisfies the request; ``explanation`` says which filter removed which host."""

    msg_fmt = 'No valid host was found. %(reason)s'

    def __init__(self, message=None, explanation=None, **kwargs):
        kwargs.setdefault('reason', '')
        # Kept in kwargs so oslo.messaging rebuilds it on the caller's side.
        kwargs['explanation'] = explanation
        super().__init__(message, **kwargs)
        self.explanation = explanation


class MaxRetriesExceeded(NoValidHost):
    msg_fmt = 'Exceeded maximum number of retries. %(reason)s'


class Conflict(NovaliteException):
    msg_fmt = 'Conflict.'


class InstanceInvalidState(Conflict):
    msg_fmt = ("Cannot '%(action)s' instance %(instance_uuid)s while it is in "
               "%(attr)s %(state)s")


class UnexpectedTaskStateError(Conflict):
    msg_fmt = ('Conflict updating instance %(instance_uuid)s. Expected: '
               '%(expected)s. Actual: %(actual)s')


class HostDrainExists(Conflict):
    msg_fmt = 'Host %(host)s is already being drained (drain %(drain_id)s).'


class HostDrainFinished(Conflict):
    msg_fmt = 'Drain %(drain_id)s has already ended (%(status)s).'


class FlavorExtraSpecNotFound(NotFound):
    msg_fmt = 'Flavor %(flavor_id)s has no extra specs with key %(key)s.'


class HostDrainNotFound(NotFound):
    msg_fmt = 'Host drain %(drain_id)s could not be found.'


class UnexpectedMigrationStatus(Conflict):
    msg_fmt = ('Migration %(migration_id)s is in status %(actual)s, expected one of '
               '%(expected)s')


class InstanceIsLocked(Conflict):
    msg_fmt = 'Instance %(instance_uuid)s is locked'


class InstanceNotReady(Conflict):
    msg_fmt = 'Instance %(instance_id)s is not ready'


class ServiceUnavailable(Conflict):
    msg_fmt = 'Service is unavailable at this time.'


class DuplicateEntry(Conflict):
    msg_fmt = '%(what)s already exists.'


class FlavorExists(DuplicateEntry):
    msg_fmt = 'Flavor with %(field)s %(value)s already exists.'


class ResourceProviderGenerationConflict(Conflict):
    msg_fmt = 'Resource provider %(uuid)s changed while claiming; retry.'


class ServerGroupGenerationConflict(Conflict):
    msg_fmt = 'Server group %(uuid)s changed while claiming; retry.'


class AllocationConflict(Conflict):
    msg_fmt = 'Allocations of consumer %(consumer)s changed concurrently.'


class DatabaseUnavailable(NovaliteException):
    """Transient database errors outlasted ``[database] max_retry_seconds``. Its message
    never holds SQL text or parameters, so it may reach users and cross RPC."""

    msg_fmt = ('The database is unavailable at this time. The request was not '
               'completed; retry it later.')


class InsufficientResources(NovaliteException):
    msg_fmt = ('Unable to claim %(amount)d %(resource_class)s on %(provider)s: '
               '%(free)d available.')


class GroupPolicyViolation(NovaliteException):
    """Placing a server on a host would break the hard policy of its server group."""

    msg_fmt = ('Placing instance %(instance_uuid)s on %(host)s breaks the %(policy)s policy '
               'of server group %(group_uuid)s: %(reason)s')


class Forbidden(NovaliteException):
    msg_fmt = 'Policy does not allow %(action)s to be performed.'


class HostNotAuthorized(Forbidden):
    msg_fmt = ('Compute host %(host)s may not act on instance %(instance_uuid)s: it is '
               'neither on that host nor in a move naming it.')


class ServiceNotAuthorized(Forbidden):
    msg_fmt = 'Compute host %(caller)s may not report as %(host)s.'


class PolicyNotAuthorized(Forbidden):
    msg_fmt = 'Policy does not allow %(action)s to be performed.'


class OverQuota(Forbidden):
    msg_fmt = ('Quota exceeded for %(overs)s: Requested %(req)s, but already used '
               '%(used)s of %(allowed)s %(overs)s')


class VirtError(NovaliteException):
    msg_fmt = 'Hypervisor error: %(reason)s'


class ResizeError(VirtError):
    msg_fmt = 'Resize error: %(reason)s'


class InstanceFaultRollback(NovaliteException):
    """Wraps an error after which the instance returns to its previous state."""

    msg_fmt = 'Instance rollback performed due to: %(inner)s'

    def __init__(self, inner_exception=None):
        self.inner_exception = inner_exception
        super().__init__(inner=inner_exception)


class BuildAbortException(NovaliteException):
    msg_fmt = 'Build of instance %(instance_uuid)s aborted: %(reason)s'


class RescheduledException(NovaliteException):
    msg_fmt = 'Build of instance %(instance_uuid)s was re-scheduled: %(reason)s'


class MigrationError(NovaliteException):
    msg_fmt = 'Migration error: %(reason)s'


# Modules oslo.messaging may rebuild remote exceptions from.
REMOTE_ALLOWED = ['novalite.exception']
