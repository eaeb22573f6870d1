"""The state and lock checks every API-side server operation starts with."""

import functools

from novalite import exception

_ANY = object()


def check_instance_state(vm_state=None, task_state=(None,), must_have_launched=True):
    """Reject an action unless the instance is in one of the given states."""

    def outer(fn):
        @functools.wraps(fn)
        def inner(self, context, instance, *args, **kwargs):
            action = fn.__name__
            if vm_state is not None and instance['vm_state'] not in vm_state:
                raise exception.InstanceInvalidState(
                    action=action, instance_uuid=instance['uuid'], attr='vm_state',
                    state=instance['vm_state'])
            if task_state is not _ANY and instance['task_state'] not in task_state:
                raise exception.InstanceInvalidState(
                    action=action, instance_uuid=instance['uuid'], attr='task_state',
                    state=instance['task_state'])
            if must_have_launched and not instance.get('launched_at'):
                raise exception.InstanceInvalidState(
                    action=action, instance_uuid=instance['uuid'], attr='launched_at',
                    state=instance.get('launched_at'))
            return fn(self, context, instance, *args, **kwargs)
        return inner
    return outer


def check_locked(fn):
    @functools.wraps(fn)
    def inner(self, context, instance, *args, **kwargs):
        if instance.get('locked') and not context.is_admin:
            raise exception.InstanceIsLocked(instance_uuid=instance['uuid'])
        return fn(self, context, instance, *args, **kwargs)
    return inner
