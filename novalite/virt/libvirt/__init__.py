"""The libvirt virt driver: QEMU/KVM guests through libvirt-python."""
