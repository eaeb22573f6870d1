"""The first step of every selection: ignore_hosts, force_hosts / force_nodes and
requested_destination narrow the candidates before any filter runs.

Forced hosts and nodes skip the filters, as in Nova (the atomic claim still guards
capacity); a requested destination (cold migrate or live migrate to a named host) is
narrowed to and then filtered like any other host.
"""

from __future__ import annotations

import numpy as np

from novalite.scheduler.filters import Step
from novalite.scheduler.host_state import HostStateArrays, RequestSpec


def _select(view: HostStateArrays, idx: np.ndarray, keep) -> np.ndarray:
    hosts = view.hosts
    return np.fromiter((keep(hosts[i]) for i in idx.tolist()), dtype=bool, count=len(idx))


def apply_targets(view: HostStateArrays, idx: np.ndarray,
                  spec: RequestSpec) -> tuple[np.ndarray, list[Step], bool]:
    """Return the remaining indices, the steps that removed hosts, and whether the
    remaining hosts were forced (so the filters must be skipped)."""
    steps: list[Step] = []

    def narrow(name, keep, reason):
        nonlocal idx
        mask = _select(view, idx, keep)
        steps.append(Step(name, len(idx), idx[~mask], reason))
        idx = idx[mask]

    if spec.ignore_hosts:
        ignored = set(spec.ignore_hosts)
        narrow('IgnoreHosts', lambda h: h.host not in ignored,
               lambda i: 'in ignore_hosts of the request')
    forced = False
    if spec.force_hosts:
        wanted = {h.lower() for h in spec.force_hosts}
        narrow('ForceHosts', lambda h: h.host.lower() in wanted,
               lambda i: 'not one of the forced hosts %s' % ', '.join(spec.force_hosts))
        forced = True
    if spec.force_nodes:
        nodes = {n.lower() for n in spec.force_nodes}
        narrow('ForceNodes', lambda h: (h.nodename or '').lower() in nodes,
               lambda i: 'not one of the forced nodes %s' % ', '.join(spec.force_nodes))
        forced = True
    dest = spec.requested_destination or {}
    if dest.get('host') or dest.get('node'):
        host, node = dest.get('host'), dest.get('node')

        def keep(h):
            return (not host or h.host == host) and (not node or h.nodename == node)
        target = ' '.join(p for p in (host, node and 'node %s' % node) if p)
        narrow('RequestedDestination', keep,
               lambda i: 'not the requested destination %s' % target)
    return idx, steps, forced
