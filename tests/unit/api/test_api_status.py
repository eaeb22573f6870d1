"""vm_state/task_state -> API status (spec §4.1) and small view helpers."""

import hashlib

import pytest

from novalite.api.views import servers as views


@pytest.mark.parametrize('vm,task,status', [
    ('active', None, 'ACTIVE'), ('active', 'rebooting', 'REBOOT'),
    ('active', 'reboot_started', 'REBOOT'), ('active', 'rebooting_hard', 'HARD_REBOOT'),
    ('active', 'reboot_pending_hard', 'HARD_REBOOT'), ('active', 'migrating', 'MIGRATING'),
    ('active', 'resize_prep', 'RESIZE'), ('active', 'resize_migrating', 'RESIZE'),
    ('active', 'resize_migrated', 'RESIZE'), ('active', 'resize_finish', 'RESIZE'),
    ('active', 'rebuilding', 'REBUILD'), ('active', 'updating_password', 'PASSWORD'),
    ('active', 'powering-off', 'ACTIVE'), ('active', 'deleting', 'ACTIVE'),
    ('building', 'scheduling', 'BUILD'), ('building', None, 'BUILD'),
    ('stopped', None, 'SHUTOFF'), ('stopped', 'resize_prep', 'RESIZE'),
    ('stopped', 'powering-on', 'SHUTOFF'), ('stopped', 'rebuilding', 'REBUILD'),
    ('resized', None, 'VERIFY_RESIZE'), ('resized', 'resize_reverting', 'REVERT_RESIZE'),
    ('paused', None, 'PAUSED'), ('paused', 'migrating', 'MIGRATING'),
    ('suspended', None, 'SUSPENDED'), ('rescued', None, 'RESCUE'),
    ('error', None, 'ERROR'), ('error', 'rebuilding', 'REBUILD'),
    ('deleted', None, 'DELETED'), ('soft-delete', None, 'SOFT_DELETED'),
    ('shelved', None, 'SHELVED'), ('shelved_offloaded', None, 'SHELVED_OFFLOADED'),
    ('weird', None, 'UNKNOWN'), (None, None, 'UNKNOWN'),
])
def test_status_table(vm, task, status):
    assert views.status_from_state(vm, task) == status


def test_deleted_row_is_deleted_status():
    assert views.instance_status({'deleted': True, 'vm_state': 'active'}) == 'DELETED'


def test_host_id():
    assert views.host_id('p', None) == ''
    assert views.host_id('p', 'h') == hashlib.sha224(b'ph').hexdigest()
