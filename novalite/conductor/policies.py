"""Live-migration policies: the operator's named settings, which one a server gets, and
the migrate_data keys it gives the source compute.

A policy file (``[migration] policy_file``, YAML or JSON) looks like::

    default: standard            # optional; else the built-in "default"
    projects:                    # optional: project id -> policy
      9a1c...: bulk
    policies:
      standard: {stall_seconds: 30, stall_action: post_copy, permit_post_copy: true}
      bulk: {bandwidth: 200, max_outbound_per_host: 1, stall_action: pause,
             stall_seconds: 60}

Every key a policy leaves out takes the built-in ``default`` policy's value, which comes
from the [libvirt] live_migration_* options (so without a file nothing changes).
Selection: the flavor extra spec ``novalite:migration_policy``, else the image property
``novalite_migration_policy``, else the project mapping, else the default. A name that
no policy has falls back to the default, and the fallback is recorded.
"""

import dataclasses
import logging
import os
import threading

import yaml

from novalite.conf import CONF
from novalite.virt import driver as virt_driver

LOG = logging.getLogger(__name__)

DEFAULT = 'default'
FLAVOR_SPEC = 'novalite:migration_policy'
IMAGE_PROPERTY = 'novalite_migration_policy'

TIMEOUT_ACTIONS = ('abort', 'force_complete')
# What a stall (no progress of the memory copy for stall_seconds) triggers.
STALL_ACTIONS = (virt_driver.STALL_POST_COPY, virt_driver.STALL_PAUSE,
                 virt_driver.STALL_ABORT)

# Decisions the conductor records in ``migrations.policy_log`` (the computes' come from
# virt.driver's DECISION_* names).
SELECTED = 'policy_selected'
UNKNOWN = 'policy_unknown'


class PolicyFileError(ValueError):
    """The policy file cannot be read or says something invalid."""


@dataclasses.dataclass(frozen=True)
class Policy:
    name: str
    bandwidth: int = 0                  # MiB/s, 0 unlimited
    completion_timeout_per_gib: int = 800   # seconds per GiB moved, 0 no timeout
    timeout_action: str = 'abort'
    permit_post_copy: bool = False
    permit_auto_converge: bool = False
    stall_seconds: float = 0            # 0: no stall detection
    stall_action: str = virt_driver.STALL_POST_COPY
    max_outbound_per_host: int = 0      # live migrations out of one host; 0 unlimited
    max_inbound_per_host: int = 0       # live migrations into one host; 0 unlimited
    max_parallel: int = 0               # live migrations in the whole cloud; 0 unlimited
    priority: int = 0                   # a waiting move of a higher priority goes first

    def settings(self, flavor: dict, block_migration: bool) -> dict:
        """The migrate_data keys the source's job honours."""
        return {
            'policy': self.name,
            'bandwidth': self.bandwidth,
            'permit_post_copy': self.permit_post_copy,
            'permit_auto_converge': self.permit_auto_converge,
            'completion_timeout': virt_driver.completion_timeout_for(
                self.completion_timeout_per_gib, flavor, block_migration),
            'timeout_action': self.timeout_action,
            'stall_seconds': self.stall_seconds,
            'stall_action': self.stall_action,
        }


_FIELDS = {f.name: f for f in dataclasses.fields(Policy) if f.name != 'name'}
_CHOICES = {'timeout_action': TIMEOUT_ACTIONS, 'stall_action': STALL_ACTIONS}


def builtin_default(conf=None) -> Policy:
    """The ``default`` policy of a cloud without a policy file: today's [libvirt] options."""
    lv = (conf or CONF).libvirt
    return Policy(DEFAULT, bandwidth=lv.live_migration_bandwidth,
                  completion_timeout_per_gib=lv.live_migration_completion_timeout,
                  timeout_action=lv.live_migration_timeout_action,
                  permit_post_copy=lv.live_migration_permit_post_copy,
                  permit_auto_converge=lv.live_migration_permit_auto_converge)


def _value(where, key, value):
    field = _FIELDS.get(key)
    if field is None:
        raise PolicyFileError(f'{where}: unknown key {key!r}; known keys: '
                              f'{", ".join(sorted(_FIELDS))}')
    if field.type in (bool, 'bool'):
        if not isinstance(value, bool):
            raise PolicyFileError(f'{where}: {key} must be true or false, not {value!r}')
        return value
    if field.type in (str, 'str'):
        if value not in _CHOICES[key]:
            raise PolicyFileError(f'{where}: {key} must be one of '
                                  f'{", ".join(_CHOICES[key])}, not {value!r}')
        return value
    if field.type in (float, 'float'):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise PolicyFileError(f'{where}: {key} must be a number >= 0, not {value!r}')
        return value
    if key == 'priority':
        if isinstance(value, bool) or not isinstance(value, int):
            raise PolicyFileError(f'{where}: {key} must be an integer, not {value!r}')
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PolicyFileError(f'{where}: {key} must be an integer >= 0, not {value!r}')
    return value


@dataclasses.dataclass(frozen=True)
class Policies:
    """What a policy file defines, the built-in default merged in."""
    policies: dict
    default: str = DEFAULT
    projects: dict = dataclasses.field(default_factory=dict)

    def get(self, name) -> Policy | None:
        return self.policies.get(name)

    @property
    def default_policy(self) -> Policy:
        return self.policies[self.default]


def parse(data, base: Policy) -> Policies:
    """The policies a loaded file (a mapping) defines; PolicyFileError when invalid."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyFileError('the file must hold a mapping with "policies" '
                              '(and optionally "default" and "projects")')
    extra = set(data) - {'policies', 'default', 'projects'}
    if extra:
        raise PolicyFileError(f'unknown top-level keys {sorted(extra)}; expected '
                              'policies, default, projects')
    raw = data.get('policies') or {}
    if not isinstance(raw, dict):
        raise PolicyFileError('"policies" must map policy names to their settings')
    defined_default = raw.get(DEFAULT) or {}
    if not isinstance(defined_default, dict):
        raise PolicyFileError(f'policy {DEFAULT!r} must be a mapping')
    base = dataclasses.replace(base, **{k: _value(f'policy {DEFAULT!r}', k, v)
                                        for k, v in defined_default.items()})
    policies = {DEFAULT: base}
    for name, settings in raw.items():
        if name == DEFAULT:
            continue
        if not isinstance(name, str) or not name or len(name) > 255:
            raise PolicyFileError(f'policy name {name!r} must be a string of 1-255 chars')
        if not isinstance(settings, dict):
            raise PolicyFileError(f'policy {name!r} must be a mapping of settings')
        values = {k: _value(f'policy {name!r}', k, v) for k, v in settings.items()}
        policies[name] = dataclasses.replace(base, name=name, **values)
    default = data.get('default', DEFAULT)
    if default not in policies:
        raise PolicyFileError(f'default policy {default!r} is not defined')
    projects = data.get('projects') or {}
    if not isinstance(projects, dict):
        raise PolicyFileError('"projects" must map project ids to policy names')
    for project, name in projects.items():
        if name not in policies:
            raise PolicyFileError(f'project {project!r} maps to undefined policy {name!r}')
    return Policies(policies, default, {str(k): v for k, v in projects.items()})


def load(path: str, conf=None) -> Policies:
    """The policies of ``path`` (none: the built-in default only)."""
    base = builtin_default(conf)
    if not path:
        return Policies({DEFAULT: base})
    try:
        with open(path, encoding='utf-8') as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise PolicyFileError(f'cannot read {path}: {e.strerror or e}')
    except yaml.YAMLError as e:
        raise PolicyFileError(f'{path} is not valid YAML/JSON: {e}')
    try:
        return parse(data, base)
    except PolicyFileError as e:
        raise PolicyFileError(f'{path}: {e}')


_cache = {'key': None, 'policies': None}
_cache_lock = threading.Lock()


def current() -> Policies:
    """The policies in force: the file is read again when it (or the [libvirt] options
    the default comes from) change; a file that became invalid keeps the last good
    policies, with an error in the log."""
    path = CONF.migration.policy_file
    try:
        mtime = os.stat(path).st_mtime_ns if path else None
    except OSError:
        mtime = None
    base = builtin_default()
    key = (path, mtime, base)
    with _cache_lock:
        if _cache['key'] == key:
            return _cache['policies']
        try:
            policies = load(path)
        except PolicyFileError as e:
            if _cache['policies'] is None:
                raise
            LOG.error('Keeping the previous migration policies: %s', e)
            return _cache['policies']
        _cache.update(key=key, policies=policies)
        return policies


def check_at_start():
    """Read the policy file once at daemon start: a bad file is a clear start-up error
    (never hidden by policies read earlier in this process)."""
    load(CONF.migration.policy_file)
    policies = current()
    LOG.info('Live-migration policies: %s (default %s)',
             ', '.join(sorted(policies.policies)), policies.default)
    return policies


def select(policies: Policies, flavor: dict | None, image: dict | None,
           project_id: str | None) -> tuple[Policy, list]:
    """The policy of one live migration and the decisions that chose it (dicts of
    ``decision`` and ``detail``, for ``migrations.policy_log``)."""
    choices = (
        ('flavor extra spec ' + FLAVOR_SPEC,
         ((flavor or {}).get('extra_specs') or {}).get(FLAVOR_SPEC)),
        ('image property ' + IMAGE_PROPERTY,
         ((image or {}).get('properties') or {}).get(IMAGE_PROPERTY)),
        (f'project {project_id}', policies.projects.get(project_id or '')),
    )
    for source, name in choices:
        if not name:
            continue
        policy = policies.get(name)
        if policy is None:
            default = policies.default_policy
            return default, [
                {'decision': UNKNOWN,
                 'detail': f'{source} names policy {name!r}, which is not defined: '
                           f'the default policy {default.name!r} applies'},
                {'decision': SELECTED, 'detail': f'{default.name} (default)'}]
        return policy, [{'decision': SELECTED, 'detail': f'{name} ({source})'}]
    default = policies.default_policy
    return default, [{'decision': SELECTED, 'detail': f'{default.name} (default)'}]
