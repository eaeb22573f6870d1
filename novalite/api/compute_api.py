"""The compute business layer behind the REST handlers: checks, CAS state changes,
instance actions, then a hand-off over RPC.

Every method takes the request context first and raises domain exceptions; the REST
layer maps them to HTTP codes. Order of checks follows Nova: load (404), lock (409),
vm/task state (409), host (409), then the operation's own rules.
"""

import base64
import logging
import uuid as uuidlib

from novalite import exception
from novalite.api import move_api
from novalite.api.checks import _ANY, check_instance_state, check_locked  # noqa: F401
from novalite.compute import rpcapi as compute_rpcapi
from novalite.compute import states
from novalite.conductor import rpcapi as conductor_rpcapi
from novalite.conf import CONF
from novalite.db import api as db
from novalite.db import steps
from novalite.scheduler.host_state import RequestSpec

LOG = logging.getLogger(__name__)
MS = states.MS

def _flavor_resources(flavor):
    return {'cores': int(flavor['vcpus']), 'ram': int(flavor['memory_mb'])}


def _action(context, action: str) -> dict:
    """An instance action of this request, as db.action_start and apply_step take it."""
    return {'action': action, 'request_id': context.request_id,
            'user_id': context.user_id, 'project_id': context.project_id}


class API:
    def __init__(self, transport_url: str | None = None):
        self.compute_rpcapi = compute_rpcapi.ComputeAPI(url=transport_url)
        self.conductor_rpcapi = conductor_rpcapi.ConductorAPI(url=transport_url)

    # ------------------------------------------------------------ helpers

    def get(self, context, instance_uuid, read_deleted='no'):
        inst = db.instance_get(instance_uuid, read_deleted=read_deleted)
        if not context.is_admin and inst['project_id'] != context.project_id:
            raise exception.InstanceNotFound(instance_id=instance_uuid)
        return inst

    def get_for_view(self, context, instance_uuid):
        """(instance, its host's compute service or None, its server group's uuid or
        None): what a server GET shows, in one read."""
        inst, service, group = db.instance_get_for_view(instance_uuid, 'novalite-compute')
        if not context.is_admin and inst['project_id'] != context.project_id:
            raise exception.InstanceNotFound(instance_id=instance_uuid)
        return inst, service, group

    def _record_action(self, context, instance, action):
        return db.action_start(instance['uuid'], **_action(context, action))

    def _cas(self, instance, values, expected_task_state=(None,), expected_vm_state=None):
        """Move the instance into its transitional state; a lost race is a 409."""
        kwargs = {'expected_task_state': list(expected_task_state)}
        if expected_vm_state is not None:
            kwargs['expected_vm_state'] = list(expected_vm_state)
        try:
            return db.instance_update(instance['uuid'], values, **kwargs)
        except exception.UnexpectedTaskStateError as e:
            raise exception.InstanceInvalidState(
                action='update', instance_uuid=instance['uuid'], attr='task_state',
                state=getattr(e, 'kwargs', {}).get('actual')) from e

    def _step(self, context, instance, step, action=None, migration_uuid=None, **changes):
        """Take one API step of the state table in one transaction, with the instance
        action recorded beside it; a lost race is a 409."""
        if action is not None:
            changes['action'] = _action(context, action)
        try:
            return steps.apply_step(step, instance['uuid'], migration_uuid, **changes)
        except exception.UnexpectedTaskStateError as e:
            raise exception.InstanceInvalidState(
                action=step, instance_uuid=instance['uuid'], attr='task_state',
                state=getattr(e, 'kwargs', {}).get('actual')) from e

    def _service_up(self, host) -> bool:
        return db.compute_is_up(host, CONF.service_down_time)

    def service_host(self, context, host) -> dict:
        """The compute service on ``host``, or ComputeHostNotFound."""
        svcs = db.service_get_all(host=host, binary='novalite-compute')
        if not svcs:
            raise exception.ComputeHostNotFound(host=host)
        return svcs[0]

    def _require_host(self, instance, check_up=True):
        if not instance.get('host'):
            raise exception.InstanceNotReady(instance_id=instance['uuid'])
        if check_up and not self._service_up(instance['host']):
            raise exception.ServiceUnavailable()

    # ------------------------------------------------------------ create

    def create(self, context, *, name, flavor, image, min_count=1, max_count=1,
               availability_zone=None, host=None, node=None, metadata=None,
               scheduler_hints=None, key_name=None, description=None, user_data=None,
               access_ip_v4=None, access_ip_v6=None, config_drive=False, hostname=None,
               tags=None, admin_pass=None):
        if flavor.get('disabled'):
            raise exception.FlavorNotFound(flavor_id=flavor['flavorid'])
        if image:
            if image.get('min_ram') and flavor['memory_mb'] < image['min_ram']:
                raise exception.FlavorMemoryTooSmall()
            min_disk_gb = max(int(image.get('min_disk') or 0),
                              (int(image.get('size') or 0) + 1024 ** 3 - 1) // 1024 ** 3)
            if flavor['root_gb'] and flavor['root_gb'] < min_disk_gb:
                raise exception.FlavorDiskTooSmall()
        if user_data is not None:
            try:
                base64.b64decode(user_data, validate=True)
            except (ValueError, TypeError) as e:
                raise exception.ValidationError(detail='Userdata content cannot be decoded') \
                    from e
        limits = db.quota_get_all(context.project_id)
        count = self._count_within_quota(context, limits, flavor, min_count, max_count)
        group_uuid = (scheduler_hints or {}).get('group')
        if group_uuid:
            self._check_group(context, limits, group_uuid, count)
        reservation_id = 'r-' + uuidlib.uuid4().hex[:8]
        flavor_rec = db.flavor_record(flavor)
        az = availability_zone
        instances = []
        uuids = [str(uuidlib.uuid4()) for _ in range(count)]
        spec = RequestSpec(
            instance_uuid=uuids[0], project_id=context.project_id, user_id=context.user_id,
            flavor=flavor_rec, image=_image_for_spec(image), num_instances=count,
            availability_zone=az, scheduler_hints=dict(scheduler_hints or {}),
            ignore_hosts=[], force_hosts=[host] if host and not node else [],
            force_nodes=[node] if node else [],
            requested_destination=None, instance_uuids=uuids)
        for index, instance_uuid in enumerate(uuids):
            display = name if count == 1 else f'{name}-{index + 1}'
            inst = db.instance_create({
                'uuid': instance_uuid, 'display_name': display,
                'display_description': description,
                'hostname': hostname or _hostname_from(display),
                'project_id': context.project_id, 'user_id': context.user_id,
                'image_ref': image['uuid'] if image else '', 'flavor': flavor_rec,
                'vm_state': states.BUILDING, 'task_state': states.SCHEDULING,
                'power_state': 0, 'availability_zone': az, 'metadata': metadata or {},
                'key_name': key_name, 'reservation_id': reservation_id,
                'launch_index': index, 'config_drive': 'True' if config_drive else '',
                'access_ip_v4': access_ip_v4, 'access_ip_v6': access_ip_v6,
                'user_data': user_data, 'tags': list(tags or []),
            }, request_spec=dict(spec.to_dict(), instance_uuid=instance_uuid),
                action=_action(context, 'create'))
            instances.append(inst)
        self._recheck_quota(context, limits, uuids)
        if group_uuid:
            self._join_group(context, limits, group_uuid, uuids)
        self.conductor_rpcapi.schedule_and_build_instances(context, uuids, spec.to_dict(),
                                                           image)
        return instances, reservation_id

    def _count_within_quota(self, context, limits, flavor, min_count, max_count):
        res = _flavor_resources(flavor)
        if all(limits.get(key, -1) < 0 for key in db.COUNTED_RESOURCES):
            return max_count  # unlimited: counting could not change the answer
        usage = db.quota_usage(context.project_id)
        allowed = max_count
        for key, per in (('instances', 1), ('cores', res['cores']), ('ram', res['ram'])):
            limit = limits.get(key, -1)
            if limit < 0 or per == 0:
                continue
            allowed = min(allowed, (limit - usage.get(key, 0)) // per)
        if allowed < min_count:
            deltas = {'instances': min_count, 'cores': res['cores'] * min_count,
                      'ram': res['ram'] * min_count}
            db.quota_check(context.project_id, deltas)
            raise exception.OverQuota(overs='instances', req=min_count,
                                      used=usage['instances'], allowed=limits['instances'])
        return allowed

    def _check_group(self, context, limits, group_uuid, count):
        """Before anything is written: the group exists (InstanceGroupNotFound) and has
        room for ``count`` more servers of this user (OverQuota: the member quota counts
        per user, as Nova's does)."""
        group = db.group_get(group_uuid)
        if not context.is_admin and group['project_id'] != context.project_id:
            raise exception.InstanceGroupNotFound(group_uuid=group_uuid)
        limit = limits.get('server_group_members', -1)
        if limit < 0:
            return
        used = db.group_member_count(group_uuid, context.user_id)
        if limit < used + count:
            raise exception.OverQuota(overs='server_group_members', req=count,
                                      used=used, allowed=limit)

    def _join_group(self, context, limits, group_uuid, uuids):
        """The accepted servers become members, the member quota checked again in the
        same transaction (a concurrent boot into the group may have taken the room);
        when that fails the servers go and the request fails."""
        try:
            db.group_add_members(group_uuid, uuids,
                                 limit=limits.get('server_group_members', -1),
                                 user_id=context.user_id)
        except (exception.OverQuota, exception.InstanceGroupNotFound):
            for instance_uuid in uuids:
                db.instance_destroy(instance_uuid)
            raise

    @staticmethod
    def _recheck_quota(context, limits, uuids):
        """Count again now that this request's rows exist (concurrent creates see each
        other here); over a limit, this request's instances go and it fails with 403.
        The limits are those the request was checked against (``limits``): the recheck
        is about concurrent creates, and a limit changed in between could as well have
        changed a moment after."""
        if not CONF.quota.recheck_quota:
            return
        try:
            db.quota_recheck(context.project_id, limits)
        except exception.OverQuota:
            for instance_uuid in uuids:
                db.instance_destroy(instance_uuid)
            raise

    # ------------------------------------------------------------ update / lock

    def update(self, context, instance, values):
        return db.instance_update(instance['uuid'], values)

    def lock(self, context, instance, reason=None):
        self._record_action(context, instance, 'lock')
        return db.instance_update(instance['uuid'], {'locked': True,
                                                     'locked_by': 'admin' if context.is_admin
                                                     else 'owner',
                                                     'locked_reason': reason})

    def unlock(self, context, instance):
        if instance.get('locked') and instance.get('locked_by') == 'admin' \
                and not context.is_admin:
            raise exception.PolicyNotAuthorized(
                action='os_compute_api:os-lock-server:unlock:unlock_override')
        self._record_action(context, instance, 'unlock')
        return db.instance_update(instance['uuid'], {'locked': False, 'locked_by': None,
                                                     'locked_reason': None})

    # ------------------------------------------------------------ delete

    @check_locked
    def delete(self, context, instance):
        if instance['vm_state'] == states.RESIZED:
            self._confirm_before_delete(context, instance)
            instance = db.instance_get(instance['uuid'])
        self._record_action(context, instance, 'delete')
        host = instance.get('host')
        if not host or not self._service_up(host):
            self._local_delete(context, instance)
            return
        inst = db.instance_update(instance['uuid'], {'task_state': states.DELETING,
                                                     'progress': 0})
        self.compute_rpcapi.terminate_instance(context, inst)

    def _local_delete(self, context, instance):
        """No compute can act: delete in the database and release every allocation."""
        steps.destroy_instance(instance['uuid'], None, None)

    def _confirm_before_delete(self, context, instance):
        migs = [m for m in db.migration_get_all(instance_uuid=instance['uuid'],
                                                status=[MS.FINISHED, MS.CONFIRMING])
                if m['migration_type'] in states.COLD_MOVES]
        if not migs:
            return
        mig = migs[0]
        if self._service_up(mig['source_compute']):
            if mig['status'] == MS.FINISHED:
                mig = steps.apply_step('confirm_requested', instance['uuid'],
                                       mig['uuid'])['migration']
            try:
                self.compute_rpcapi.confirm_resize(context, mig['source_compute'], instance,
                                                   mig, sync=True)
                return
            except Exception:
                LOG.warning('Confirm before delete of %s failed', instance['uuid'],
                            exc_info=True)
        # The source cannot clean up: the records say confirmed and its allocation goes;
        # the delete that follows removes the guest on the destination.
        steps.apply_step('confirm_resize', instance['uuid'], mig['uuid'])

    # ------------------------------------------------------------ power

    @check_locked
    @check_instance_state(vm_state=[states.STOPPED])
    def start(self, context, instance):
        self._require_host(instance, check_up=False)
        inst = self._cas(instance, {'task_state': states.POWERING_ON})
        self._record_action(context, inst, 'start')
        self.compute_rpcapi.start_instance(context, inst)

    @check_locked
    @check_instance_state(vm_state=[states.ACTIVE, states.ERROR])
    def stop(self, context, instance):
        self._require_host(instance, check_up=False)
        inst = self._cas(instance, {'task_state': states.POWERING_OFF, 'progress': 0})
        self._record_action(context, inst, 'stop')
        self.compute_rpcapi.stop_instance(context, inst)

    @check_locked
    def reboot(self, context, instance, reboot_type):
        reboot_type = reboot_type.upper()
        if reboot_type == 'SOFT':
            return self._soft_reboot(context, instance)
        return self._hard_reboot(context, instance)

    @check_instance_state(vm_state=[states.ACTIVE])
    def _soft_reboot(self, context, instance):
        return self._do_reboot(context, instance, 'SOFT', states.REBOOTING, [None])

    @check_instance_state(vm_state=[states.ACTIVE, states.STOPPED, states.PAUSED,
                                    states.SUSPENDED, states.ERROR],
                          task_state=[None, states.REBOOTING, states.REBOOT_PENDING,
                                      states.REBOOT_STARTED, states.REBOOTING_HARD,
                                      states.RESUMING, states.UNPAUSING, states.PAUSING,
                                      states.SUSPENDING])
    def _hard_reboot(self, context, instance):
        return self._do_reboot(context, instance, 'HARD', states.REBOOTING_HARD,
                               [instance['task_state']])

    def _do_reboot(self, context, instance, reboot_type, task, expected):
        self._require_host(instance, check_up=False)
        inst = self._cas(instance, {'task_state': task}, expected_task_state=expected)
        self._record_action(context, inst, 'reboot')
        self.compute_rpcapi.reboot_instance(context, inst, reboot_type)

    # ------------------------------------------------------------ services

    def service_set_enabled(self, context, service, enabled, reason=None):
        return db.service_update(service['id'], disabled=not enabled,
                                 disabled_reason=None if enabled else reason)

    def service_force_down(self, context, service, forced_down):
        if not forced_down:
            self.check_force_up(context, service)
        return db.service_update(service['id'], forced_down=bool(forced_down))

    def check_force_up(self, context, service):
        """A host still holding guests evacuated away from it (its evacuations are
        ``done``, not ``completed``) may come up only by restarting, which destroys them:
        forcing it up would let it run them beside their rebuilt copies."""
        if db.migration_get_all(source_compute=service['host'], status=MS.DONE,
                                migration_type=states.EVACUATION):
            raise exception.Invalid(message=(
                f"Unable to force up host {service['host']} as `done` evacuation migration "
                "records remain associated with the host. Ensure the compute service has "
                "been restarted, allowing these records to move to `completed` before "
                "retrying this request."))

    # ------------------------------------------------------------ moves (move_api.py)

    resize = move_api.resize
    confirm_resize = move_api.confirm_resize
    revert_resize = move_api.revert_resize
    live_migrate = move_api.live_migrate
    live_migrate_force_complete = move_api.live_migrate_force_complete
    live_migrate_abort = move_api.live_migrate_abort
    evacuate = move_api.evacuate


def _image_for_spec(image):
    if not image:
        return {}
    return {'id': image['uuid'], 'properties': dict(image.get('properties') or {}),
            'min_ram': image.get('min_ram') or 0, 'min_disk': image.get('min_disk') or 0}


def _hostname_from(display_name: str) -> str:
    out = ''.join(c if c.isalnum() or c == '-' else '-' for c in display_name.lower())
    return out.strip('-')[:63] or 'server'
