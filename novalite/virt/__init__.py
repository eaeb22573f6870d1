"""Virt drivers: the hypervisor interface of a compute host and its implementations."""
