"""Host: the libvirt connection is opened once, shared, and replaced when it dies."""

import pytest
from lv_helpers import write_node

from novalite.virt import driver


def test_connection_is_reused_and_reopened_after_loss(tmp_path):
    from novalite.virt.libvirt.host import Host

    host = Host(write_node(tmp_path / 'node.xml', cpus=2))
    first = host.get_connection()
    assert host.get_connection() is first
    assert first.getInfo()[2] == 2
    first.close()  # as a libvirtd restart would leave it
    second = host.get_connection()
    assert second is not first and second.isAlive()
    host.close()
    host.close()  # closing twice is harmless


def test_unreachable_uri_is_a_driver_error(tmp_path):
    from novalite.virt.libvirt.host import Host

    with pytest.raises(driver.VirtDriverError, match='Cannot connect to libvirt'):
        Host('test://' + str(tmp_path / 'missing.xml')).get_connection()
