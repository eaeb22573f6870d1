"""Fixtures of the libvirt driver unit tests: libvirt's test:/// hypervisor, no daemon.

Each fake host is a node XML written into the test's tmp dir and opened as
test:///<path>; every open() of such a URI is an independent hypervisor, so one driver
(one connection) is one host. The whole tier skips when libvirt-python is missing
(fails under NOVALITE_REQUIRE_SERVICES=1); tests that need real disk files also need
qemu-img (the ``qemu_img`` fixture).
"""

import os
import shutil
import subprocess

import pytest
from lv_helpers import write_node

from tests.conftest import require_service


def _import_libvirt():
    try:
        import libvirt
    except ImportError as exc:
        raise RuntimeError('libvirt-python is not installed (%s); run '
                           'tools/install_libvirt.sh' % exc)
    if not hasattr(libvirt, 'virConnect'):
        raise RuntimeError('libvirt-python is not installed ("libvirt" is a bare '
                           'directory on sys.path); run tools/install_libvirt.sh')
    return libvirt


@pytest.fixture(autouse=True)
def libvirt_module():
    return require_service('libvirt-python', _import_libvirt)


def _check_qemu_img():
    if shutil.which('qemu-img') is None:
        raise RuntimeError('qemu-img is not installed (apt-get install qemu-utils): '
                           'the disk operations of this test need it')
    return shutil.which('qemu-img')


@pytest.fixture
def qemu_img():
    return require_service('qemu-img', _check_qemu_img)


@pytest.fixture
def lv_conf(conf, tmp_path):
    conf.set_override('virt_type', 'qemu', group='libvirt')
    conf.set_override('disk_transfer', 'copy', group='libvirt')
    conf.set_override('shutdown_timeout', 2)
    conf.set_override('live_migration_monitor_interval', 0, group='libvirt')
    conf.set_override('host_addresses', {'hostA': '127.0.0.2', 'hostB': '127.0.0.3'},
                      group='libvirt')
    conf.set_override('remote_instances_paths', {
        'hostA': str(tmp_path / 'hostA' / 'instances'),
        'hostB': str(tmp_path / 'hostB' / 'instances')}, group='libvirt')
    return conf


@pytest.fixture
def make_host(lv_conf, tmp_path):
    """make_host(name, cpus, memory_mb) -> an initialised LibvirtDriver on its own node."""
    from novalite.virt.libvirt import driver as lv_driver

    made = []

    def make(name, cpus=8, memory_mb=16384):
        base = tmp_path / name
        base.mkdir(exist_ok=True)
        uri = write_node(base / 'node.xml', cpus, memory_mb)
        lv_conf.set_override('connection_uri', uri, group='libvirt')
        lv_conf.set_override('instances_path', str(base / 'instances'), group='compute')
        drv = lv_driver.LibvirtDriver(lv_conf, name)
        drv.init_host(name)
        made.append(drv)
        return drv

    yield make
    for drv in made:
        drv.cleanup_host()


@pytest.fixture
def hosts(make_host):
    return {'hostA': make_host('hostA', 8, 16384), 'hostB': make_host('hostB', 4, 8192)}


@pytest.fixture
def kernel_image(tmp_path):
    """A direct-kernel-boot image directory (the test hypervisor never runs it)."""
    d = tmp_path / 'image'
    d.mkdir()
    (d / 'vmlinuz').write_bytes(os.urandom(4096))
    (d / 'initrd.gz').write_bytes(os.urandom(2048))
    (d / 'cmdline').write_text('console=ttyS0 quiet\n')
    return {'uuid': 'img-kernel', 'name': 'tiny', 'location': str(d), 'disk_format': 'raw',
            'size': 0, 'min_disk': 0, 'min_ram': 0, 'properties': {}}


@pytest.fixture
def disk_image(tmp_path, qemu_img):
    """A 64 MiB qcow2 disk image."""
    path = tmp_path / 'disk-image.qcow2'
    subprocess.run([qemu_img, 'create', '-q', '-f', 'qcow2', str(path), '64M'], check=True)
    return {'uuid': 'img-disk', 'name': 'disk', 'location': str(path),
            'disk_format': 'qcow2', 'size': path.stat().st_size, 'min_disk': 0,
            'min_ram': 0, 'properties': {}}
