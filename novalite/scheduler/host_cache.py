"""The scheduler's in-memory host states: loaded once, then kept current by the scheduler's
own claims and by cheap reads of what changed since the last request."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import math
import threading
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from novalite.conf import CONF
from novalite.db import models
from novalite.scheduler import host_manager
from novalite.scheduler.host_state import HostState, HostStateArrays

LOG = logging.getLogger(__name__)

_EPOCH = datetime.datetime(1970, 1, 1)
# Set for each request by begin_request(); a reload never copies them.
_REQUEST_FIELDS = ('group_members', 'instance_uuids')
_FIELDS = tuple(f.name for f in dataclasses.fields(HostState)
                if f.name not in _REQUEST_FIELDS)
_CLASSES = (('VCPU', 'vcpus_total', 'reserved_vcpus', 'cpu_allocation_ratio', 'vcpus_used'),
            ('MEMORY_MB', 'memory_mb_total', 'reserved_memory_mb', 'ram_allocation_ratio',
             'memory_mb_used'),
            ('DISK_GB', 'disk_gb_total', 'reserved_disk_gb', 'disk_allocation_ratio',
             'disk_gb_used'))


def _seconds(when: datetime.datetime | None) -> float:
    return math.nan if when is None else (when - _EPOCH).total_seconds()


class HostCache:
    """Host states of one scheduler process, and how it keeps them current.

    A full load at start (and every host_state_full_reload_interval, or when a compute
    node appears or goes away: a count and a max id, read every
    host_state_refresh_interval). Then, per request: the providers whose generation
    moved (claims, releases, inventory changes, by anyone) get their inventory and usage
    read again, unless only this process's own claims moved them; services enabled,
    disabled or forced down are read. Every host_state_refresh_interval: the compute
    nodes that reported and the services' heartbeats. Service liveness is recomputed
    from the cached heartbeats at each request. A host deleted since the last count can
    still be picked: its claim finds no provider, counts as lost, and the request reads
    that host again and goes on without it.

    In a scheduler service the every-interval reads are not a request's: its periodic
    task polls (``poll``), so a request reads only what moved. A request polls itself
    only when that task has fallen behind by ``POLL_LAG`` intervals (a database outage, a
    busy process), or when the interval is 0.

    The view may lag the database: the claim, a compare-and-swap in the database, stays
    the authority. A lost claim refreshes the provider (claim_lost) and the request goes
    on with fresh data; a stale view costs a retry, never an over-commit.

    Not thread-safe by itself: a request holds `lock` from refresh() to its last claim.
    """

    # Intervals a request lets the periodic poll fall behind before it polls itself.
    POLL_LAG = 3

    def __init__(self, conf: Any = CONF):
        self.conf = conf
        # Set by a service that runs poll() every host_state_refresh_interval.
        self.polled_in_background = False
        self.lock = threading.Lock()
        self.view: HostStateArrays | None = None
        self._index: dict[str, int] = {}
        self._by_host: dict[str, list[int]] = {}
        self._by_node: dict[tuple[str, str], int] = {}
        self._generations: dict[str, int | None] = {}
        self._reported: dict[str, Any] = {}
        self._beats = np.empty(0)
        self._forced = np.empty(0, dtype=bool)
        self._up = np.empty(0, dtype=bool)
        self._census = (0, 0)
        self._providers_since = self._nodes_since = self._admin_since = _EPOCH
        self._loaded_at = self._polled_at = -math.inf
        self._stale: set[str] = set()
        self._full_needed = False
        self._uuid_hosts: set[int] = set()
        # Hosts whose service is disabled or forced down, as last read.
        self._off: set[str] = set()
        # Claims this process made per provider since its generation was last read:
        # each moved the generation by one, and consumed its amounts in the view.
        self._own_claims: dict[str, int] = {}
        self.stats = {'full_loads': 0, 'hosts_reloaded': 0, 'usages_reloaded': 0}

    @property
    def states(self) -> list[HostState]:
        return self.view.hosts if self.view is not None else []

    # --- refresh ---------------------------------------------------------------------

    def refresh(self, session: Session, in_request: bool = False) -> HostStateArrays:
        """Bring the view up to date and return it.

        in_request: called during a request (after a lost claim): the set of hosts must
        not change under the running selection, so additions and removals wait for the
        next request.
        """
        return self._guarded(session, in_request, False)

    def poll(self, session: Session) -> HostStateArrays:
        """Refresh now with the every-interval reads (the count of compute nodes, the
        nodes that reported, the services' heartbeats), due or not: a scheduler service's
        periodic task, so its requests need not."""
        return self._guarded(session, False, True)

    def _guarded(self, session: Session, in_request: bool, poll: bool) -> HostStateArrays:
        try:
            return self._refresh(session, in_request, poll)
        except Exception:
            # Part of what changed may have been consumed (moments moved on, stale
            # hosts taken) without reaching the view: read everything next time.
            self._full_needed = True
            raise

    def _refresh(self, session: Session, in_request: bool,
                 force_poll: bool = False) -> HostStateArrays:
        opts = self.conf.scheduler
        mono = time.monotonic()
        due = opts.host_state_refresh_interval
        if self.polled_in_background and self.view is not None and self.view.hosts:
            # (A view without hosts, before the computes registered, is polled by
            # the request as often as it would be without the task.)
            due *= self.POLL_LAG
        if not in_request and (self.view is None or self._full_needed or
                               mono - self._loaded_at >= opts.host_state_full_reload_interval):
            self._load_all(session)
        else:
            start = models.utcnow()
            window = datetime.timedelta(seconds=opts.host_state_change_window)
            poll = not in_request and (force_poll or mono - self._polled_at >= due)
            if poll and host_manager.node_census(session) != self._census:
                self._load_all(session)
                return self._mark_up()
            moved = self._moved_providers(session)
            self._providers_since = start - window
            stale, self._stale = self._stale, set()
            if not in_request:
                if poll:
                    self._polled_at = mono
                    stale |= self._reported_nodes(session)
                    self._apply_services(session, self._nodes_since, beats=True)
                    self._nodes_since = start - window
                else:
                    self._apply_services(session, self._admin_since, beats=False)
                self._admin_since = start - window
            self._reload(session, stale, moved)
        return self._mark_up()

    def _moved_providers(self, session: Session) -> dict[str, int]:
        moved = {}
        for u, g in host_manager.provider_changes(session, self._providers_since):
            if u not in self._index or self._generations.get(u) == g:
                continue
            known = self._generations.get(u)
            if known is not None and g == known + self._own_claims.get(u, 0):
                # Only our own claims moved it, and the view holds them already.
                self._generations[u] = g
                self._own_claims.pop(u, None)
                continue
            moved[u] = g
        return moved

    def _reported_nodes(self, session: Session) -> set[str]:
        return {u for u, at in host_manager.node_changes(session, self._nodes_since)
                if u in self._index and self._reported.get(u) != at}

    def _load_all(self, session: Session) -> None:
        opts = self.conf.scheduler
        start = models.utcnow()
        # Generations first: data read after them is at least as new, so a change that
        # lands in between is seen again next time, never lost.
        generations = host_manager.provider_generations(session)
        census = host_manager.node_census(session)
        pairs = host_manager.build_host_states(session, self.conf)
        self._reported = {row.uuid: row.cn_updated_at for _, row in pairs}
        states = [hs for hs, _ in pairs]
        self._generations = {hs.uuid: generations.get(hs.uuid) for hs in states}
        self._set_states(states)
        self._off = {hs.host for hs in states if hs.service_disabled or hs.forced_down}
        window = datetime.timedelta(seconds=opts.host_state_change_window)
        self._providers_since = self._nodes_since = self._admin_since = start - window
        self._loaded_at = self._polled_at = time.monotonic()
        self._census = census
        self._full_needed = False
        self._stale = set()
        self._own_claims = {}
        self.stats['full_loads'] += 1
        LOG.debug('Host cache loaded: %d hosts', len(states))

    def _set_states(self, states: list[HostState]) -> None:
        self.view = HostStateArrays(states)
        self._index = {hs.uuid: i for i, hs in enumerate(states)}
        self._by_host = {}
        self._by_node = {}
        for i, hs in enumerate(states):
            self._by_host.setdefault(hs.host, []).append(i)
            self._by_node.setdefault((hs.host, hs.nodename), i)
        self._beats = np.fromiter((_seconds(hs.last_heartbeat) for hs in states),
                                  dtype=np.float64, count=len(states))
        self._forced = np.fromiter((hs.forced_down for hs in states), dtype=bool,
                                   count=len(states))
        self._up = np.fromiter((hs.service_up for hs in states), dtype=bool,
                               count=len(states))
        self._uuid_hosts = set()

    def _reload(self, session: Session, stale: set[str], moved: dict[str, int]) -> None:
        """Read again the hosts in `stale` (everything) and the providers in `moved`
        (inventory and usage only, unless instance counts are filtered on)."""
        stale = {u for u in stale if u in self._index}
        if 'NumInstancesFilter' in self.conf.filter_scheduler.enabled_filters:
            stale |= set(moved)
        usage_only = sorted(set(moved) - stale)
        if usage_only:
            stale |= self._reload_usages(session, usage_only)
        if stale:
            self._reload_hosts(session, sorted(stale))
        for u, g in moved.items():
            self._generations[u] = g
            self._own_claims.pop(u, None)

    def _reload_usages(self, session: Session, uuids: list[str]) -> set[str]:
        """Inventory and usage of providers; returns those lacking an inventory (their
        capacity comes from the compute node row: a host reload)."""
        inventories = host_manager.inventories(session, uuids)
        usages = host_manager.usages(session, uuids)
        fallback = set()
        for u in uuids:
            inv = inventories.get(u, {})
            if any(rc not in inv for rc, *_ in _CLASSES):
                fallback.add(u)
                continue
            i = self._index[u]
            hs, used = self.view.hosts[i], usages.get(u, {})
            for rc, total, reserved, ratio, used_attr in _CLASSES:
                setattr(hs, total, inv[rc][0])
                setattr(hs, reserved, inv[rc][1])
                setattr(hs, ratio, inv[rc][2])
                setattr(hs, used_attr, used.get(rc, 0))
            self.view.refresh_row(i)
        self.stats['usages_reloaded'] += len(uuids) - len(fallback)
        return fallback

    def _reload_hosts(self, session: Session, uuids: list[str]) -> None:
        fresh = {hs.uuid: (hs, row) for hs, row in
                 host_manager.build_host_states(session, self.conf, node_uuids=uuids)}
        for u in uuids:
            i = self._index[u]
            hs = self.view.hosts[i]
            if u not in fresh:
                # Deleted under us: unusable until the next full load drops it.
                hs.service_disabled, hs.disabled_reason = True, 'compute node deleted'
                self._full_needed = True
            else:
                new, row = fresh[u]
                for name in _FIELDS:
                    setattr(hs, name, getattr(new, name))
                if hs.service_disabled or hs.forced_down:
                    self._off.add(hs.host)
                self._reported[u] = row.cn_updated_at
            self._beats[i] = _seconds(hs.last_heartbeat)
            self._forced[i] = hs.forced_down
            self._up[i] = hs.service_up
            self.view.refresh_row(i)
        self.stats['hosts_reloaded'] += len(uuids)

    def _apply_services(self, session: Session, since: datetime.datetime,
                        beats: bool) -> None:
        default_az = self.conf.default_availability_zone
        rows = host_manager.service_changes(session, since, beats=beats)
        if not beats:
            # Every service switched off now is in rows: any other was switched on.
            off = {row.host for row in rows if row.disabled or row.forced_down}
            for host in self._off - off:
                for i in self._by_host.get(host, ()):
                    hs = self.view.hosts[i]
                    hs.service_disabled = hs.forced_down = self._forced[i] = False
                    self.view.refresh_row(i)
            self._off = off
        for row in rows:
            if row.disabled or row.forced_down:
                self._off.add(row.host)
            else:
                self._off.discard(row.host)
            for i in self._by_host.get(row.host, ()):
                hs = self.view.hosts[i]
                beat = row.last_seen_up or row.updated_at or row.created_at
                az = row.availability_zone or default_az
                self._beats[i] = _seconds(beat)
                hs.last_heartbeat = beat
                if (hs.service_disabled, hs.disabled_reason, hs.forced_down,
                        hs.availability_zone) != (bool(row.disabled), row.disabled_reason,
                                                  bool(row.forced_down), az):
                    hs.service_disabled = bool(row.disabled)
                    hs.disabled_reason = row.disabled_reason
                    hs.forced_down = self._forced[i] = bool(row.forced_down)
                    hs.availability_zone = az
                    self.view.refresh_row(i)

    def _mark_up(self) -> HostStateArrays:
        """Liveness from the cached heartbeats, as of now."""
        view = self.view
        now = _seconds(models.utcnow())
        with np.errstate(invalid='ignore'):
            up = ~self._forced & (np.abs(now - self._beats) <= self.conf.service_down_time)
        for i in np.flatnonzero(up != self._up).tolist():
            view.hosts[i].service_up = bool(up[i])
        self._up = up
        view.service_ok = ~view.service_disabled & up
        return view

    # --- one request -------------------------------------------------------------------

    def begin_request(self, group_hosts: dict[str, Any] | None,
                      instances: Iterable[tuple[str, str, str]] = ()) -> HostStateArrays:
        """Set the per-request fields: members of the request's server group on each
        host, and the instances named in same_host / different_host hints."""
        view = self.view
        for i in np.flatnonzero(view.group_members).tolist():
            view.group_members[i] = 0
            view.hosts[i].group_members = 0
        for host, members in (group_hosts or {}).items():
            for i in self._by_host.get(host, ()):
                view.hosts[i].group_members = view.group_members[i] = len(members)
        for i in self._uuid_hosts:
            view.hosts[i].instance_uuids.clear()
        self._uuid_hosts = set()
        for uuid, host, node in instances:
            i = self._by_node.get((host, node))
            if i is None and self._by_host.get(host):
                i = self._by_host[host][0]
            if i is not None:
                view.hosts[i].instance_uuids.add(uuid)
                self._uuid_hosts.add(i)
        return view

    def generation(self, host_state: HostState) -> int | None:
        """The provider generation the view of host_state is at (what was last read,
        moved by this process's own claims since), for the claim's compare-and-swap;
        None when unknown. Never ahead of the database: a claim against it that finds
        the generation moved falls back to reading the provider."""
        known = self._generations.get(host_state.uuid)
        if known is None:
            return None
        return known + self._own_claims.get(host_state.uuid, 0)

    def placed(self, host_state: HostState, claimed: bool) -> None:
        """An instance of this request was placed on host_state (consumed in the view).
        Without a claim in the database the view must forget it: read the host again."""
        i = self._index.get(host_state.uuid)
        if i is not None:
            self._uuid_hosts.add(i)
        if claimed:
            self._own_claims[host_state.uuid] = self._own_claims.get(host_state.uuid, 0) + 1
        else:
            self._stale.add(host_state.uuid)

    def claim_lost(self, session: Session, host_state: HostState) -> None:
        """A claim on host_state failed in the database: our view of it (and maybe of
        others) is stale. Read again what changed, that host whatever its generation."""
        self._stale.add(host_state.uuid)
        self.refresh(session, in_request=True)
