"""Host weighers: each scores the candidate hosts, the scores are min-max normalised to
[0, 1] across the candidates, multiplied by the weigher's multiplier and summed."""

from __future__ import annotations

from typing import Any

import numpy as np

from novalite.scheduler.host_state import HostStateArrays, RequestSpec


class BaseWeigher:
    name = 'BaseWeigher'
    multiplier_option = ''

    def __init__(self, conf: Any):
        self.conf = conf

    def multiplier(self) -> float:
        return float(getattr(self.conf.filter_scheduler, self.multiplier_option))

    def raw(self, view: HostStateArrays, idx: np.ndarray, spec: RequestSpec) -> np.ndarray:
        raise NotImplementedError


def normalize(values: np.ndarray) -> np.ndarray:
    """Min-max scale to [0, 1]; all equal (or fewer than two hosts) gives all zeros."""
    if values.size == 0:
        return values.astype(np.float64)
    lo, hi = values.min(), values.max()
    if hi == lo:
        return np.zeros(values.shape, dtype=np.float64)
    return (values - lo) / (hi - lo)


def weigh(weighers: list[BaseWeigher], view: HostStateArrays, idx: np.ndarray,
          spec: RequestSpec) -> np.ndarray:
    """Total weight of each host in idx (same order); higher is better."""
    total = np.zeros(len(idx), dtype=np.float64)
    for weigher in weighers:
        multiplier = weigher.multiplier()
        if multiplier:
            total += multiplier * normalize(weigher.raw(view, idx, spec))
    return total


def _registry() -> dict[str, type[BaseWeigher]]:
    from novalite.scheduler.weights import resources, server_group
    classes = (resources.RAMWeigher, resources.CPUWeigher, resources.DiskWeigher,
               server_group.ServerGroupSoftAffinityWeigher,
               server_group.ServerGroupSoftAntiAffinityWeigher)
    return {cls.name: cls for cls in classes}


def all_weighers() -> dict[str, type[BaseWeigher]]:
    return _registry()


def load_weighers(names: list[str], conf: Any) -> list[BaseWeigher]:
    known = _registry()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError('unknown scheduler weigher(s): %s; known: %s'
                         % (', '.join(unknown), ', '.join(sorted(known))))
    return [known[n](conf) for n in names]
