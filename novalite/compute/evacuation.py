"""Compute side of an evacuation: the destination rebuilds the guest from its image, and
a source that comes back destroys what is left there of the guests evacuated away from
it. Each state change is one ``record_step`` write."""

import logging

from novalite import exception
from novalite.compute import states
from novalite.compute.utils import Hop, fault_record, start_work, utcnow
from novalite.virt import power_state

LOG = logging.getLogger(__name__)
MS = states.MS
# A request about a move that has moved on, or is no longer this host's.
_GONE = (exception.InstanceNotFound, exception.UnexpectedTaskStateError,
         exception.UnexpectedMigrationStatus, exception.MigrationNotFound,
         exception.HostNotAuthorized)


class EvacuationFlow:
    """Rebuilds evacuated servers on this host and cleans up after evacuations away
    from it.

    Uses: ``host``, ``driver``, ``conductor`` (the host's conductor methods), ``lock``
    (per-instance lock factory), ``power_state_of`` and the service's in-flight
    accounting (``enter``/``leave``).
    """

    def __init__(self, host, driver, conductor, lock, power_state_of, enter, leave):
        self.host = host
        self.driver = driver
        self.conductor = conductor
        self.lock = lock
        self.power_state_of = power_state_of
        self._enter = enter
        self._leave = leave

    def _step(self, context, name, instance_uuid, migration_uuid, **changes):
        return self.conductor.record_step(context, name, instance_uuid, migration_uuid,
                                          **changes)

    # ------------------------------------------------------------ destination

    def rebuild(self, context, instance, migration, image, stop):
        start_work(f'rebuild-{instance["uuid"]}', self._enter, self._leave,
                   self._rebuild_locked, context, instance, migration, image, stop)

    def _rebuild_locked(self, context, instance, migration, image, stop):
        with self.lock(instance['uuid']):
            self._rebuild(context, instance, migration, image, stop)

    def _rebuild(self, context, instance, migration, image, stop):
        uuid, mig_uuid = instance['uuid'], migration['uuid']
        hop = Hop(context, 'compute_rebuild_instance')
        # The server was stopped before, or the caller asked (2.95): it ends stopped.
        stop = stop or instance['vm_state'] == states.STOPPED
        try:
            out = self._step(context, 'evacuation_rebuilding', uuid, mig_uuid,
                             instance_values={'host': self.host,
                                              'node': migration['dest_node']},
                             events=[hop.opened()])
        except _GONE as e:
            LOG.info('Not rebuilding %s: %s', uuid, e)
            return
        instance = out['instance']
        try:
            if self.driver.instance_exists(instance):
                # What an earlier attempt left here: the rebuild starts from the image.
                self.driver.destroy(context, instance)
            self.driver.spawn(context, instance, image)
            if stop:
                self.driver.power_off(instance)
        except Exception as exc:
            LOG.warning('Rebuild of evacuated %s failed: %s', uuid, exc)
            self._rebuild_failed(context, instance, migration, exc, hop)
            return
        try:
            self._step(context, 'evacuation_done', uuid, mig_uuid,
                       vm_state=states.STOPPED if stop else states.ACTIVE,
                       instance_values={'power_state': self.power_state_of(instance),
                                        'launched_at': utcnow().isoformat(),
                                        'progress': 0},
                       events=[hop.ok()])
        except exception.InstanceNotFound:
            # Deleted while it was rebuilt: nothing here belongs to anybody.
            self.driver.destroy(context, instance)
            return
        except _GONE as e:
            LOG.info('Evacuation of %s moved on while rebuilding: %s', uuid, e)
            return
        LOG.info('Rebuilt evacuated instance %s from %s', uuid, migration['source_compute'])

    def _rebuild_failed(self, context, instance, migration, exc, hop):
        """Remove what the rebuild made here and record the server back on its source,
        in ERROR, holding its source allocation again (it can be evacuated again)."""
        try:
            self.driver.destroy(context, instance)
        except Exception:
            LOG.warning('Cleanup after the failed rebuild of %s failed', instance['uuid'],
                        exc_info=True)
        try:
            self._step(context, 'evacuation_rebuild_failed', instance['uuid'],
                       migration['uuid'], vm_state=states.ERROR,
                       instance_values={'host': migration['source_compute'],
                                        'node': migration['source_node'],
                                        'power_state': power_state.NOSTATE},
                       fault=fault_record(exc), events=[hop.error(exc)] if hop else None)
        except _GONE as e:
            LOG.info('Evacuation of %s moved on before its failure was recorded: %s',
                     instance['uuid'], e)

    def reconcile(self, context, mig):
        """A rebuild this host owed when it stopped (or whose request was lost): finish it
        if the guest runs, else record it failed so it can be evacuated again."""
        if mig['dest_compute'] != self.host:
            return
        inst = self.conductor.instance_get(mig['instance_uuid'])
        if mig['status'] == MS.ACCEPTED and inst['task_state'] == states.REBUILDING:
            # The rebuild request never ran here: nothing was made; roll back.
            exc = exception.MigrationError(reason=f'the rebuild request to {self.host} '
                                                  'was lost')
            try:
                self._step(context, 'evacuation_failed', inst['uuid'], mig['uuid'],
                           vm_state=states.ERROR, fault=fault_record(exc))
            except _GONE:
                pass
            return
        if mig['status'] != MS.PRE_MIGRATING or inst['task_state'] != \
                states.REBUILD_SPAWNING:
            return
        actual = self.power_state_of(inst)
        if actual in (power_state.RUNNING, power_state.SHUTDOWN):
            try:
                self._step(context, 'evacuation_done', inst['uuid'], mig['uuid'],
                           vm_state=states.ACTIVE if actual == power_state.RUNNING
                           else states.STOPPED,
                           instance_values={'power_state': actual,
                                            'launched_at': utcnow().isoformat()})
            except _GONE:
                pass
            return
        self._rebuild_failed(context, inst, mig, exception.MigrationError(
            reason=f'the compute service on {self.host} stopped during the rebuild'), None)

    # ------------------------------------------------------------ source

    def clean_up_evacuated(self, context, migrations):
        """Destroy the guests evacuated away from this host that it still holds, release
        the allocation each evacuation kept here, and complete the migration. A guest of an
        instance recorded on this host again is never touched."""
        for mig in migrations:
            if not (states.source_owes_cleanup(mig) and mig['source_compute'] == self.host):
                continue
            uuid = mig['instance_uuid']
            with self.lock(uuid):
                try:
                    inst = self.conductor.instance_get(uuid)
                except exception.InstanceNotFound:
                    continue
                if inst['host'] != self.host and self.driver.instance_exists(inst):
                    LOG.info('Destroying %s: it was evacuated to %s', uuid, inst['host'])
                    self.driver.destroy(context, inst)
                try:
                    self._step(context, 'evacuation_cleaned', uuid, mig['uuid'])
                except _GONE as e:
                    LOG.info('Evacuation %s moved on during its clean-up: %s', mig['uuid'], e)
