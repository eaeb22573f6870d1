"""Host filters: each removes, in one vectorised pass, the hosts that cannot take a request
and can say in a few words why it removed a given host."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from novalite.scheduler.host_state import HostStateArrays, RequestSpec


class BaseFilter:
    """A filter over a HostStateArrays view.

    `passes` gets the indices of the hosts still in the running and returns a boolean mask
    over them; `reason` is called only for hosts that were removed, and only when an
    explanation is wanted.
    """

    name = 'BaseFilter'

    def __init__(self, conf: Any):
        self.conf = conf

    def enabled_for(self, spec: RequestSpec) -> bool:
        """False when the request asks nothing of this filter, so it is skipped entirely."""
        return True

    def passes(self, view: HostStateArrays, idx: np.ndarray, spec: RequestSpec) -> np.ndarray:
        raise NotImplementedError

    def reason(self, view: HostStateArrays, i: int, spec: RequestSpec) -> str:
        raise NotImplementedError


@dataclass
class Step:
    """What one filter (or targeting step) did during one selection: reasons are built
    from `reason` later, and only if an explanation is asked for."""

    name: str
    hosts_before: int
    removed: np.ndarray
    reason: Callable[[int], str]


def fmt_num(value: float) -> str:
    """Print a capacity without a useless '.0' but keep real fractions visible."""
    value = float(value)
    return str(int(value)) if value.is_integer() else f'{value:.1f}'


def _registry() -> dict[str, type[BaseFilter]]:
    from novalite.scheduler.filters import (
        affinity,
        availability_zone,
        compute,
        image_props,
        num_instances,
        resources,
        server_group,
    )
    classes = (compute.ComputeFilter, availability_zone.AvailabilityZoneFilter,
               resources.RamFilter, resources.CoreFilter, resources.DiskFilter,
               affinity.SameHostFilter, affinity.DifferentHostFilter,
               image_props.ImagePropertiesFilter, num_instances.NumInstancesFilter,
               server_group.ServerGroupAntiAffinityFilter,
               server_group.ServerGroupAffinityFilter)
    return {cls.name: cls for cls in classes}


def all_filters() -> dict[str, type[BaseFilter]]:
    return _registry()


def load_filters(names: list[str], conf: Any) -> list[BaseFilter]:
    """Instantiate the enabled filters in the configured order; unknown names are errors."""
    known = _registry()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError('unknown scheduler filter(s): %s; known: %s'
                         % (', '.join(unknown), ', '.join(sorted(known))))
    return [known[n](conf) for n in names]
