"""Conductor service: database proxy for computes and the orchestration of builds and moves."""

import logging

import oslo_messaging as messaging

from novalite import exception, service
from novalite.compute import rpcapi as compute_rpcapi
from novalite.conductor import rpcapi as conductor_rpcapi
from novalite.conductor.tasks import build
from novalite.conf import CONF
from novalite.db import api as db
from novalite.scheduler import rpcapi as scheduler_rpcapi

LOG = logging.getLogger(__name__)


class ConductorManager(service.Manager):
    target = messaging.Target(version='1.0')

    def __init__(self, host, transport_url=None):
        super().__init__(host, 'novalite-conductor')
        self.compute_rpcapi = compute_rpcapi.ComputeAPI(url=transport_url)
        self.scheduler_rpcapi = scheduler_rpcapi.SchedulerAPI(url=transport_url)
        self.conductor_rpcapi = conductor_rpcapi.ConductorAPI(url=transport_url)

    def ping(self, context):
        return {'host': self.host, 'service': self.service_name}

    @messaging.expected_exceptions(exception.NovaliteException)
    def db_call(self, context, name, args, kwargs):
        if name not in conductor_rpcapi.RemoteDB.ALLOWED:
            raise exception.Forbidden(action=f'db_call {name}')
        return getattr(db, name)(*args, **kwargs)

    def schedule_and_build_instances(self, context, instance_uuids, request_spec, image):
        build.ScheduleAndBuildTask(self, context, instance_uuids, request_spec,
                                   image).execute()

    def build_instances(self, context, instance_uuid, request_spec, image, host_list, reason):
        build.RescheduleBuildTask(self, context, instance_uuid, request_spec, image,
                                  host_list, reason).execute()

    def migrate_server(self, context, instance_uuid, flavor, host_list=None,
                       migration_uuid=None, request_spec=None, reason=None):
        from novalite.conductor.tasks import migrate
        migrate.MigrationTask(self, context, instance_uuid, flavor, host_list=host_list,
                              migration_uuid=migration_uuid, request_spec=request_spec,
                              reason=reason).run()

    @messaging.expected_exceptions(exception.NovaliteException)
    def live_migrate_instance(self, context, instance_uuid, host, block_migration,
                              disk_over_commit, force, migration_uuid):
        from novalite.conductor.tasks import live_migrate
        return live_migrate.LiveMigrationTask(
            self, context, instance_uuid, host, block_migration, disk_over_commit, force,
            migration_uuid).run()

    @service.periodic_task(spacing='conductor.stuck_operation_timeout')
    def reconcile_stuck_operations(self, context):
        """Bring instances whose owning compute is gone out of transitional states."""
        from novalite.conductor import reconcile
        reconcile.reconcile_orphans(self, context, CONF)
