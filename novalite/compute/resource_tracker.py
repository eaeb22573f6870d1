"""Reports this host's inventory and usage through the conductor."""

import json
import logging
import time

from novalite.conf import CONF

LOG = logging.getLogger(__name__)


def allocation_ratios(conf=CONF) -> dict[str, float]:
    return {
        'VCPU': conf.cpu_allocation_ratio or conf.initial_cpu_allocation_ratio,
        'MEMORY_MB': conf.ram_allocation_ratio or conf.initial_ram_allocation_ratio,
        'DISK_GB': conf.disk_allocation_ratio or conf.initial_disk_allocation_ratio,
    }


def reserved(conf=CONF) -> dict[str, int]:
    return {'VCPU': conf.reserved_host_cpus, 'MEMORY_MB': conf.reserved_host_memory_mb,
            'DISK_GB': (conf.reserved_host_disk_mb + 1023) // 1024}


class ResourceTracker:
    def __init__(self, host, driver, conductor, clock=time.monotonic):
        self.host = host
        self.driver = driver
        self.conductor = conductor
        self.compute_nodes: dict[str, dict] = {}
        self._clock = clock
        # nodename -> (what was last reported, when)
        self._reported: dict[str, tuple[str, float]] = {}

    def update_available_resource(self, force: bool = False) -> dict[str, dict]:
        """Push the hypervisor's view of every node; returns nodename -> compute node.

        Report on change: a node whose view is the one last accepted is sent again only
        once ``[compute] resource_full_report_interval`` seconds have passed since (0:
        every time), so an idle host costs the bus almost nothing. ``force`` sends all.
        A host of several nodes sends its changed nodes in batches of
        ``[compute] resource_report_batch`` per call (one transaction each).
        """
        traits = []
        if self.driver.capabilities.get('supports_same_host_migration'):
            traits.append("COMPUTE_SAME_HOST_RESIZE")
        full_every = CONF.compute.resource_full_report_interval
        ratios, held = allocation_ratios(), reserved()
        due = []
        views = self.driver.get_available_resources()
        for nodename, resources in views.items():
            view = _fingerprint(resources, ratios, held, traits)
            last = self._reported.get(nodename)
            now = self._clock()
            if (not force and full_every and nodename in self.compute_nodes and last
                    and last[0] == view and now - last[1] < full_every):
                continue
            due.append((nodename, resources, view, now))
        if len(views) == 1 and due:
            # A host of one node: the call every conductor version serves.
            nodename, resources, view, now = due[0]
            self.compute_nodes[nodename] = self.conductor.compute_node_report(
                nodename, resources, ratios, held, traits)
            self._reported[nodename] = (view, now)
            return self.compute_nodes
        size = CONF.compute.resource_report_batch
        for lo in range(0, len(due), size):
            batch = due[lo:lo + size]
            uuids = self.conductor.compute_nodes_report([
                {'nodename': nodename, 'resources': resources, 'allocation_ratios': ratios,
                 'reserved': held, 'traits': traits}
                for nodename, resources, _view, _now in batch])
            for nodename, resources, view, now in batch:
                self.compute_nodes[nodename] = dict(resources, uuid=uuids[nodename],
                                                    host=self.host)
                self._reported[nodename] = (view, now)
        return self.compute_nodes

    def node_uuid(self, nodename=None) -> str:
        if not self.compute_nodes:
            self.update_available_resource()
        if nodename and nodename in self.compute_nodes:
            return self.compute_nodes[nodename]['uuid']
        return next(iter(self.compute_nodes.values()))['uuid']


def _fingerprint(resources, ratios, held, traits) -> str:
    """What a report says, less what changes on its own (a host's uptime)."""
    view = {k: v for k, v in resources.items() if k != 'uptime'}
    return json.dumps([view, ratios, held, sorted(traits)], sort_keys=True, default=str)
