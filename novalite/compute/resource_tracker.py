"""Reports this host's inventory and usage through the conductor."""

import logging

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
    def __init__(self, host, driver, conductor):
        self.host = host
        self.driver = driver
        self.conductor = conductor
        self.compute_nodes: dict[str, dict] = {}

    def update_available_resource(self) -> dict[str, dict]:
        """Push the hypervisor's view of every node; returns nodename -> compute node."""
        traits = []
        if self.driver.capabilities.get('supports_same_host_migration'):
            traits.append("COMPUTE_SAME_HOST_RESIZE")
        for nodename in self.driver.get_available_nodes():
            resources = self.driver.get_available_resource(nodename)
            cn = self.conductor.compute_node_report(nodename, resources,
                                                    allocation_ratios(), reserved(), traits)
            self.compute_nodes[nodename] = cn
        return self.compute_nodes

    def node_uuid(self, nodename=None) -> str:
        if not self.compute_nodes:
            self.update_available_resource()
        if nodename and nodename in self.compute_nodes:
            return self.compute_nodes[nodename]['uuid']
        return next(iter(self.compute_nodes.values()))['uuid']
