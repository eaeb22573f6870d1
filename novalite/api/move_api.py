"""API side of the move operations: resize, cold migrate, confirm, revert, live migrate,
force-complete and abort; the API class of compute_api.py serves them as methods."""

import logging

from novalite import exception
from novalite.api.checks import check_instance_state, check_locked
from novalite.compute import states
from novalite.conf import CONF
from novalite.db import api as db

LOG = logging.getLogger(__name__)
MS = states.MS

SAME_HOST_RESIZE_TRAIT = 'COMPUTE_SAME_HOST_RESIZE'


def _allowed(operation):
    return check_instance_state(**states.API_ALLOWED[operation])


def _finished_migration(instance, side):
    """The finished cold move a confirm or revert acts on, once its ``side``'s compute
    service (which does the work) is known to be up: MigrationNotFound or
    ServiceUnavailable otherwise."""
    mig, up = db.finished_cold_move(instance['uuid'], side, CONF.service_down_time)
    if mig is None:
        raise exception.MigrationNotFound(
            message='Instance has not been resized.', migration_id=None)
    if not up:
        raise exception.ServiceUnavailable()
    return mig


def _node_traits(host, node):
    try:
        return set(db.compute_node_get_by_host_and_node(host, node).get('traits') or [])
    except exception.ComputeHostNotFound:
        return set()


@check_locked
@_allowed('resize')
def resize(api, context, instance, flavor_id=None, host=None, auto_disk_config=None):
    api._require_host(instance)
    current = instance['flavor']
    if flavor_id is None:
        new_flavor = current
        if host is not None:
            if host == instance['host']:
                raise exception.CannotMigrateToSameHost()
            db.compute_node_get_by_host_and_node(host)
    else:
        try:
            flavor = db.flavor_get_by_flavorid(flavor_id)
        except exception.FlavorNotFound:
            raise exception.FlavorNotFound(flavor_id=flavor_id)
        if flavor['flavorid'] == current['flavorid']:
            raise exception.CannotResizeToSameFlavor()
        if flavor['disabled']:
            raise exception.FlavorNotFound(flavor_id=flavor_id)
        if flavor['root_gb'] == 0 and current.get('root_gb'):
            raise exception.CannotResizeDisk(
                reason='Resize to zero disk flavor is not allowed.')
        new_flavor = db.flavor_record(flavor)
        deltas = {'cores': new_flavor['vcpus'] - current['vcpus'],
                  'ram': new_flavor['memory_mb'] - current['memory_mb']}
        db.quota_check(instance['project_id'], {k: v for k, v in deltas.items() if v > 0})
        if instance.get('image_ref'):
            try:
                image = db.image_get(instance['image_ref'])
            except exception.ImageNotFound:
                image = None
            if image:
                if image.get('min_ram') and new_flavor['memory_mb'] < image['min_ram']:
                    raise exception.FlavorMemoryTooSmall()
                if new_flavor['root_gb'] and new_flavor['root_gb'] < (image.get('min_disk')
                                                                      or 0):
                    raise exception.FlavorDiskTooSmall()
    is_resize = flavor_id is not None
    same_host_ok = (is_resize and CONF.allow_resize_to_same_host and SAME_HOST_RESIZE_TRAIT
                    in _node_traits(instance['host'], instance['node']))
    values = {'progress': 0}
    if auto_disk_config is not None:
        values['auto_disk_config'] = auto_disk_config
    spec = db.request_spec_get(instance['uuid']) or {}
    spec.update(instance_uuid=instance['uuid'], project_id=instance['project_id'],
                user_id=instance['user_id'], flavor=new_flavor, num_instances=1,
                instance_uuids=[instance['uuid']], force_hosts=[], force_nodes=[],
                ignore_hosts=[] if same_host_ok else [instance['host']],
                requested_destination={'host': host, 'node': None} if host else None)
    inst = api._step(context, instance, 'resize_requested',
                     action='resize' if is_resize else 'migrate', instance_values=values,
                     request_spec=spec)['instance']
    api.conductor_rpcapi.migrate_server(context, inst['uuid'],
                                        new_flavor if is_resize else None,
                                        request_spec=spec, instance=inst)


@check_locked
@_allowed('confirm_resize')
def confirm_resize(api, context, instance):
    mig = _finished_migration(instance, 'source_compute')
    out = api._step(context, instance, 'confirm_requested', action='confirmResize',
                    migration_uuid=mig['uuid'])
    api.compute_rpcapi.confirm_resize(context, mig['source_compute'], out['instance'],
                                      out['migration'])


@check_locked
@_allowed('revert_resize')
def revert_resize(api, context, instance):
    mig = _finished_migration(instance, 'dest_compute')
    old = instance.get('old_flavor')
    if not old:
        raise exception.FlavorNotFound(flavor_id='(old flavor)')
    new = instance['flavor']
    deltas = {'cores': old['vcpus'] - new['vcpus'], 'ram': old['memory_mb'] - new['memory_mb']}
    db.quota_check(instance['project_id'], {k: v for k, v in deltas.items() if v > 0})
    spec = db.request_spec_get(instance['uuid'])
    if spec:
        spec['flavor'] = old
    out = api._step(context, instance, 'revert_requested', action='revertResize',
                    migration_uuid=mig['uuid'], request_spec=spec)
    api.compute_rpcapi.revert_resize(context, mig['dest_compute'], out['instance'],
                                     out['migration'])


@check_locked
@_allowed('live_migrate')
def live_migrate(api, context, instance, host, block_migration, disk_over_commit, force,
                 async_=True, drain_id=None):
    """Start a live migration; the new migration's uuid (asynchronous) or the conductor's
    answer (``async_=False``). ``drain_id`` marks a move a host drain started."""
    api._require_host(instance)
    if force and not host:
        raise exception.ValidationError(detail="Can't force to a non-provided destination")
    if host is not None:
        if host == instance['host']:
            raise exception.UnableToMigrateToSelf(instance_id=instance['uuid'], host=host)
        db.compute_node_get_by_host_and_node(host)
    out = api._step(context, instance, 'live_migration_requested', action='live-migration',
                    new_migration={
                        'instance_uuid': instance['uuid'],
                        'migration_type': states.LIVE_MIGRATION,
                        'source_compute': instance['host'],
                        'source_node': instance['node'], 'dest_compute': host,
                        'old_instance_type_id': instance['flavor'].get('id'),
                        'new_instance_type_id': instance['flavor'].get('id'),
                        'user_id': context.user_id, 'project_id': context.project_id,
                        'drain_id': drain_id})
    inst, mig = out['instance'], out['migration']
    answer = api.conductor_rpcapi.live_migrate_instance(
        context, inst['uuid'], host, block_migration, disk_over_commit, bool(force),
        mig['uuid'], sync=not async_)
    return mig['uuid'] if async_ else answer


def _live_migration_for(instance, migration_id):
    try:
        mig = db.migration_get(int(migration_id))
    except (ValueError, TypeError):
        raise exception.MigrationNotFoundForInstance(migration_id=migration_id,
                                                     instance_id=instance['uuid'])
    except exception.MigrationNotFound:
        raise exception.MigrationNotFoundForInstance(migration_id=migration_id,
                                                     instance_id=instance['uuid'])
    if mig['instance_uuid'] != instance['uuid']:
        raise exception.MigrationNotFoundForInstance(migration_id=migration_id,
                                                     instance_id=instance['uuid'])
    return mig


@check_locked
@_allowed('live_migrate_force_complete')
def live_migrate_force_complete(api, context, instance, migration_id):
    mig = _live_migration_for(instance, migration_id)
    if mig['status'] not in states.LIVE_MIGRATION_FORCEABLE or \
            mig['migration_type'] != states.LIVE_MIGRATION:
        raise exception.Invalid(
            message=f"Migration {migration_id} state of instance {instance['uuid']} is "
                    f"{mig['status']}. Cannot force_complete while the migration is in "
                    "this state.")
    api._record_action(context, instance, 'live_migration_force_complete')
    api.compute_rpcapi.live_migration_force_complete(context, mig['source_compute'],
                                                     instance, mig)


@check_locked
@_allowed('live_migrate_abort')
def live_migrate_abort(api, context, instance, migration_id, support_abort_in_queue=False):
    mig = _live_migration_for(instance, migration_id)
    allowed = states.LIVE_MIGRATION_ABORTABLE_IN_QUEUE if support_abort_in_queue else \
        states.LIVE_MIGRATION_ABORTABLE
    if mig['status'] not in allowed or mig['migration_type'] != states.LIVE_MIGRATION:
        raise exception.Invalid(
            message=f"Migration {migration_id} state of instance {instance['uuid']} is "
                    f"{mig['status']}. Cannot abort live migration while the migration "
                    "is in this state.")
    if states.waiting_for_slot(mig, instance):
        # A conductor holds it until a slot frees: nothing started anywhere, so the
        # records alone end it (the waiting conductor sees the move gone).
        vm = instance['vm_state'] if instance['vm_state'] in (states.ACTIVE,
                                                             states.PAUSED) else states.ERROR
        try:
            api._step(context, instance, 'live_migration_failed', action='live_migration_cancel',
                      migration_uuid=mig['uuid'], status=MS.CANCELLED, vm_state=vm,
                      expected_driver=instance['task_driver'])
        except exception.UnexpectedMigrationStatus as e:
            raise exception.Invalid(message=f'Migration {migration_id} changed: {e}') from e
        return
    api._record_action(context, instance, 'live_migration_cancel')
    api.compute_rpcapi.live_migration_abort(context, mig['source_compute'], instance, mig)


@check_locked
@_allowed('evacuate')
def evacuate(api, context, instance, host=None, force=False, stop=False):
    """Rebuild a server of a dead host elsewhere. The source's compute service must be
    down (forced down, or its heartbeats older than service_down_time); ``host`` names
    the destination (checked by the scheduler unless ``force``); ``stop`` leaves the
    server stopped at the destination (microversion 2.95)."""
    source = instance.get('host')
    if not source:
        raise exception.InstanceNotReady(instance_id=instance['uuid'])
    if host is not None:
        if host == source:
            raise exception.Invalid(message="The target host can't be the same one.")
        db.compute_node_get_by_host_and_node(host)
    if api._service_up(source):
        LOG.warning('Evacuation of %s refused: the compute service on %s is up',
                    instance['uuid'], source)
        raise exception.ComputeServiceInUse(host=source)
    spec = db.request_spec_get(instance['uuid']) or {}
    spec.update(instance_uuid=instance['uuid'], project_id=instance['project_id'],
                user_id=instance['user_id'], flavor=instance['flavor'], num_instances=1,
                instance_uuids=[instance['uuid']], force_hosts=[], force_nodes=[],
                ignore_hosts=[source],
                requested_destination={'host': host, 'node': None} if host else None)
    out = api._step(context, instance, 'evacuation_requested', action='evacuate',
                    new_migration={
                        'instance_uuid': instance['uuid'],
                        'migration_type': states.EVACUATION,
                        'source_compute': source, 'source_node': instance['node'],
                        'old_instance_type_id': instance['flavor'].get('id'),
                        'new_instance_type_id': instance['flavor'].get('id'),
                        'user_id': context.user_id, 'project_id': context.project_id})
    inst, mig = out['instance'], out['migration']
    api.conductor_rpcapi.evacuate_instance(context, inst['uuid'], mig['uuid'], host,
                                           bool(force), bool(stop), spec)
    return mig
