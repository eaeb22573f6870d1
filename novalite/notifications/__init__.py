"""Versioned notifications: ``instance.<action>.<phase>`` payloads sent on the bus."""

import logging

from novalite import rpc
from novalite.conf import CONF

LOG = logging.getLogger(__name__)

PAYLOAD_VERSION = '1.0'
_INSTANCE_FIELDS = ('uuid', 'display_name', 'host', 'node', 'vm_state', 'task_state',
                    'power_state', 'project_id', 'user_id', 'availability_zone', 'progress')


def instance_payload(instance: dict, **extra) -> dict:
    data = {k: instance.get(k) for k in _INSTANCE_FIELDS}
    flavor = instance.get('flavor') or {}
    data['flavor'] = {k: flavor.get(k) for k in ('flavorid', 'name', 'vcpus', 'memory_mb',
                                                 'root_gb', 'ephemeral_gb', 'swap')}
    data.update(extra)
    return {'novalite_object.name': 'InstanceActionPayload',
            'novalite_object.version': PAYLOAD_VERSION,
            'novalite_object.namespace': 'novalite',
            'novalite_object.data': data}


def notify_instance(context, instance: dict, action: str, phase: str, host: str,
                    binary: str = 'novalite-compute', error: str | None = None, **extra) -> None:
    """Emit ``instance.<action>.<phase>`` (phase: start, end or error). Never raises."""
    if not CONF.notifications.enabled:
        return
    event_type = f'instance.{action}.{phase}'
    payload = instance_payload(instance, **extra)
    if error:
        payload['novalite_object.data']['fault'] = error
    try:
        notifier = rpc.get_notifier(f'{binary}:{host}')
        if phase == 'error':
            notifier.error(context, event_type, payload)
        else:
            notifier.info(context, event_type, payload)
    except Exception:
        LOG.warning('Could not emit notification %s', event_type, exc_info=True)
