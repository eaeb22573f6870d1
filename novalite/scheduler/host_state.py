"""Scheduler records: one compute node's capacity (HostState), a request (RequestSpec), and
the columnar numpy view of many host states that filters and weighers work on."""

from __future__ import annotations

import dataclasses
import datetime
import math
from operator import attrgetter
from typing import Any

import numpy as np

SPEC_VERSION = 1


def flavor_disk_gb(flavor: dict[str, Any]) -> int:
    """Local disk a flavor needs in GB: root + ephemeral + swap (MB, rounded up)."""
    swap_mb = int(flavor.get('swap') or 0)
    return (int(flavor.get('root_gb') or 0) + int(flavor.get('ephemeral_gb') or 0)
            + math.ceil(swap_mb / 1024))


def flavor_resources(flavor: dict[str, Any]) -> dict[str, int]:
    """The placement resources a flavor claims: the one place this is computed."""
    return {'VCPU': int(flavor.get('vcpus') or 0),
            'MEMORY_MB': int(flavor.get('memory_mb') or 0),
            'DISK_GB': flavor_disk_gb(flavor)}


@dataclasses.dataclass(eq=False)
class HostState:
    """What the scheduler knows about one compute node.

    Capacity follows placement: capacity = (total - reserved) * allocation_ratio and
    free = capacity - used. Compared and hashed by identity: it is mutable state.
    """

    host: str
    nodename: str
    uuid: str
    availability_zone: str = 'nova'
    service_disabled: bool = False
    service_up: bool = True
    hypervisor_type: str = 'fake'
    hypervisor_version: int = 0
    vcpus_total: int = 0
    vcpus_used: int = 0
    memory_mb_total: int = 0
    memory_mb_used: int = 0
    disk_gb_total: int = 0
    disk_gb_used: int = 0
    reserved_vcpus: int = 0
    reserved_memory_mb: int = 0
    reserved_disk_gb: int = 0
    cpu_allocation_ratio: float = 1.0
    ram_allocation_ratio: float = 1.0
    disk_allocation_ratio: float = 1.0
    num_instances: int = 0
    # Members of the request's server group holding allocations on this host (set by
    # the scheduler for a request in a group; see db/server_groups.py).
    group_members: int = 0
    instance_uuids: set[str] = dataclasses.field(default_factory=set)
    traits: set[str] = dataclasses.field(default_factory=set)
    # Extra detail used only to explain rejections.
    disabled_reason: str | None = None
    forced_down: bool = False
    last_heartbeat: datetime.datetime | None = None
    cpu_arch: str | None = None

    @property
    def vcpus_capacity(self) -> float:
        return (self.vcpus_total - self.reserved_vcpus) * self.cpu_allocation_ratio

    @property
    def memory_mb_capacity(self) -> float:
        return (self.memory_mb_total - self.reserved_memory_mb) * self.ram_allocation_ratio

    @property
    def disk_gb_capacity(self) -> float:
        return (self.disk_gb_total - self.reserved_disk_gb) * self.disk_allocation_ratio

    @property
    def free_vcpus(self) -> float:
        return self.vcpus_capacity - self.vcpus_used

    @property
    def free_ram_mb(self) -> float:
        return self.memory_mb_capacity - self.memory_mb_used

    @property
    def free_disk_gb(self) -> float:
        return self.disk_gb_capacity - self.disk_gb_used

    def consume(self, flavor: dict[str, Any], instance_uuid: str | None = None,
                group_member: bool = False) -> None:
        """Account for one more instance of `flavor` placed here by the current request."""
        self.vcpus_used += int(flavor.get('vcpus') or 0)
        self.memory_mb_used += int(flavor.get('memory_mb') or 0)
        self.disk_gb_used += flavor_disk_gb(flavor)
        self.num_instances += 1
        if group_member:
            self.group_members += 1
        if instance_uuid:
            self.instance_uuids.add(instance_uuid)

    @property
    def label(self) -> str:
        return self.host if self.nodename in (None, '', self.host) else (
            f'{self.host}:{self.nodename}')


@dataclasses.dataclass
class RequestSpec:
    """One scheduling request: a flavor and image for num_instances servers plus hints."""

    instance_uuid: str | None = None
    project_id: str | None = None
    user_id: str | None = None
    flavor: dict[str, Any] = dataclasses.field(default_factory=dict)
    image: dict[str, Any] = dataclasses.field(default_factory=dict)
    num_instances: int = 1
    availability_zone: str | None = None
    scheduler_hints: dict[str, Any] = dataclasses.field(default_factory=dict)
    ignore_hosts: list[str] = dataclasses.field(default_factory=list)
    force_hosts: list[str] = dataclasses.field(default_factory=list)
    force_nodes: list[str] = dataclasses.field(default_factory=list)
    requested_destination: dict[str, Any] | None = None
    instance_uuids: list[str] = dataclasses.field(default_factory=list)
    # {'uuid', 'policy', 'rules'} of the server group of the request's instances; the
    # scheduler fills it from the database for each request, whatever was sent.
    instance_group: dict[str, Any] | None = None

    def resources(self) -> dict[str, int]:
        return flavor_resources(self.flavor)

    def hint_list(self, name: str) -> list[str]:
        """A scheduler hint that holds instance uuids, always as a list."""
        value = self.scheduler_hints.get(name) or []
        return [value] if isinstance(value, str) else list(value)

    def to_dict(self) -> dict[str, Any]:
        """A copy as plain dicts and lists (what dataclasses.asdict gives, at a fraction
        of its cost: every boot and move sends and stores one)."""
        data = {name: _plain_copy(getattr(self, name)) for name in _SPEC_FIELDS}
        data['version'] = SPEC_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known and v is not None}
        if data.get('requested_destination') is not None:
            kwargs['requested_destination'] = dict(data['requested_destination'])
        for key in ('ignore_hosts', 'force_hosts', 'force_nodes', 'instance_uuids'):
            if key in kwargs:
                kwargs[key] = list(kwargs[key])
        spec = cls(**kwargs)
        spec.flavor = dict(spec.flavor)
        spec.flavor.setdefault('extra_specs', {})
        return spec


_NUMERIC = ('vcpus_total', 'vcpus_used', 'reserved_vcpus', 'cpu_allocation_ratio',
            'memory_mb_total', 'memory_mb_used', 'reserved_memory_mb', 'ram_allocation_ratio',
            'disk_gb_total', 'disk_gb_used', 'reserved_disk_gb', 'disk_allocation_ratio',
            'num_instances', 'service_disabled', 'service_up', 'group_members')

_ARCH_ALIASES = {'amd64': 'x86_64', 'x64': 'x86_64', 'x86-64': 'x86_64', 'arm64': 'aarch64',
                 'i486': 'i686', 'i586': 'i686', 'i386': 'i686', 'x86_32': 'i686'}


def canonical_arch(arch: str | None) -> str | None:
    if not arch:
        return None
    arch = arch.lower()
    return _ARCH_ALIASES.get(arch, arch)


def _codes(values: list[str | None]) -> tuple[np.ndarray, dict[str | None, int]]:
    """Factorise strings into int codes so filters compare integers, not strings."""
    table: dict[str | None, int] = {}
    codes = np.fromiter((table.setdefault(v, len(table)) for v in values),
                        dtype=np.int32, count=len(values))
    return codes, table


class HostStateArrays:
    """Columnar view of a list of HostStates, built once per select() call.

    Used amounts are kept in step with the HostState objects by consume(), so a later
    instance of a multi-instance request sees the earlier ones.
    """

    def __init__(self, hosts: list[HostState]):
        self.hosts = hosts
        self.size = n = len(hosts)
        col = {name: np.fromiter(map(attrgetter(name), hosts), dtype=np.float64, count=n)
               for name in _NUMERIC}
        self.vcpus_used = col['vcpus_used']
        self.memory_mb_used = col['memory_mb_used']
        self.disk_gb_used = col['disk_gb_used']
        self.num_instances = col['num_instances']
        self.group_members = col['group_members']
        self.vcpus_capacity = ((col['vcpus_total'] - col['reserved_vcpus'])
                               * col['cpu_allocation_ratio'])
        self.memory_mb_capacity = ((col['memory_mb_total'] - col['reserved_memory_mb'])
                                   * col['ram_allocation_ratio'])
        self.disk_gb_capacity = ((col['disk_gb_total'] - col['reserved_disk_gb'])
                                 * col['disk_allocation_ratio'])
        self.service_disabled = col['service_disabled'] != 0
        self.service_ok = ~self.service_disabled & (col['service_up'] != 0)
        self._az: tuple[np.ndarray, dict] | None = None
        self._hv_type: tuple[np.ndarray, dict] | None = None
        self._arch: tuple[np.ndarray, dict] | None = None

    @property
    def free_vcpus(self) -> np.ndarray:
        return self.vcpus_capacity - self.vcpus_used

    @property
    def free_ram_mb(self) -> np.ndarray:
        return self.memory_mb_capacity - self.memory_mb_used

    @property
    def free_disk_gb(self) -> np.ndarray:
        return self.disk_gb_capacity - self.disk_gb_used

    # String columns are factorised lazily: most requests never look at them.
    @property
    def az_codes(self) -> tuple[np.ndarray, dict]:
        if self._az is None:
            self._az = _codes([h.availability_zone for h in self.hosts])
        return self._az

    @property
    def hv_type_codes(self) -> tuple[np.ndarray, dict]:
        if self._hv_type is None:
            self._hv_type = _codes([(h.hypervisor_type or '').lower() or None
                                    for h in self.hosts])
        return self._hv_type

    @property
    def arch_codes(self) -> tuple[np.ndarray, dict]:
        if self._arch is None:
            self._arch = _codes([canonical_arch(h.cpu_arch) for h in self.hosts])
        return self._arch

    def refresh_row(self, index: int) -> None:
        """Copy hosts[index] into the columns after it changed in place (a host cache
        keeps one view across requests and refreshes the rows that changed)."""
        hs = self.hosts[index]
        self.vcpus_used[index] = hs.vcpus_used
        self.memory_mb_used[index] = hs.memory_mb_used
        self.disk_gb_used[index] = hs.disk_gb_used
        self.num_instances[index] = hs.num_instances
        self.group_members[index] = hs.group_members
        self.vcpus_capacity[index] = hs.vcpus_capacity
        self.memory_mb_capacity[index] = hs.memory_mb_capacity
        self.disk_gb_capacity[index] = hs.disk_gb_capacity
        self.service_disabled[index] = bool(hs.service_disabled)
        self.service_ok[index] = not hs.service_disabled and bool(hs.service_up)
        for attr, value in (('_az', hs.availability_zone),
                            ('_hv_type', (hs.hypervisor_type or '').lower() or None),
                            ('_arch', canonical_arch(hs.cpu_arch))):
            factorised = getattr(self, attr)
            if factorised is None:
                continue
            codes, table = factorised
            if value in table:
                codes[index] = table[value]
            else:
                # A value not seen before: factorise the column again when next needed.
                setattr(self, attr, None)

    def consume(self, index: int, flavor: dict[str, Any],
                instance_uuid: str | None = None, group_member: bool = False) -> None:
        self.hosts[index].consume(flavor, instance_uuid, group_member)
        self.vcpus_used[index] += int(flavor.get('vcpus') or 0)
        self.memory_mb_used[index] += int(flavor.get('memory_mb') or 0)
        self.disk_gb_used[index] += flavor_disk_gb(flavor)
        self.num_instances[index] += 1
        if group_member:
            self.group_members[index] += 1


_SPEC_FIELDS = tuple(f.name for f in dataclasses.fields(RequestSpec))


def _plain_copy(value):
    """A copy of nested dicts, lists and tuples, as dataclasses.asdict makes; other
    values are shared."""
    if isinstance(value, dict):
        return {k: _plain_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_copy(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain_copy(v) for v in value)
    return value
