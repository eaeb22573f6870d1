"""Domain XML generation, path relocation and CPU descriptions."""

import pytest
from virt_helpers import make_flavor, make_instance

from novalite.virt.libvirt import config as vconfig
from novalite.virt.libvirt import imagebackend


@pytest.fixture
def files(tmp_path):
    return imagebackend.InstanceFiles(str(tmp_path / 'instances'), 'u-1')


KERNEL_META = {'kernel': 'kernel', 'ramdisk': 'ramdisk', 'cmdline': 'console=ttyS0',
               'disks': [{'name': 'disk', 'dev': 'vda', 'format': 'qcow2'},
                         {'name': 'disk.eph0', 'dev': 'vdb', 'format': 'qcow2'}]}


def test_domain_from_flavor_with_direct_kernel_boot(conf, files):
    conf.set_override('virt_type', 'qemu', group='libvirt')
    inst = make_instance(flavor=make_flavor(vcpus=3, memory_mb=384, ephemeral_gb=1))
    xml = vconfig.domain_xml(conf, inst, files, KERNEL_META)
    s = vconfig.summary(xml)
    assert s['type'] == 'qemu'
    assert s['uuid'] == inst['uuid']
    assert s['name'] == 'instance-%s' % inst['uuid']
    assert (s['vcpus'], s['memory_mb']) == (3, 384)
    assert s['kernel'] == files.file('kernel')
    assert s['initrd'] == files.file('ramdisk')
    assert s['cmdline'] == 'console=ttyS0'
    assert s['disks'] == [{'file': files.file('disk'), 'dev': 'vda'},
                          {'file': files.file('disk.eph0'), 'dev': 'vdb'}]
    assert s['console_log'] == files.console_log
    root = vconfig.parse(xml)
    assert root.find('cpu') is None  # TCG: the emulator's default CPU
    assert root.find('./devices/disk/driver').get('cache') == 'none'
    assert 'novalite.dev/xmlns' in xml and inst['display_name'] in xml


def test_domain_for_kvm_disk_boot_and_options(conf, files):
    conf.set_override('virt_type', 'kvm', group='libvirt')
    conf.set_override('disk_cachemode', 'writeback', group='libvirt')
    conf.set_override('machine_type', 'q35', group='libvirt')
    conf.set_override('instance_name_template', 'vm-%(uuid)s', group='libvirt')
    inst = make_instance()
    meta = {'disks': [{'name': 'disk', 'dev': 'vda', 'format': 'qcow2'}]}
    root = vconfig.build_domain(conf, inst, files, meta)
    assert root.get('type') == 'kvm'
    assert root.findtext('name') == 'vm-%s' % inst['uuid']
    assert root.find('cpu').get('mode') == 'host-model'
    assert root.find('./os/boot').get('dev') == 'hd'
    assert root.find('./os/kernel') is None
    assert root.find('./os/type').get('machine') == 'q35'
    assert root.find('./devices/disk/driver').get('cache') == 'writeback'


def test_custom_cpu_model(conf, files):
    conf.set_override('cpu_mode', 'custom', group='libvirt')
    conf.set_override('cpu_model', 'Westmere', group='libvirt')
    root = vconfig.build_domain(conf, make_instance(), files,
                                {'disks': [{'name': 'disk', 'dev': 'vda'}]})
    assert root.find('cpu').get('mode') == 'custom'
    assert root.findtext('./cpu/model') == 'Westmere'


def test_flavor_argument_overrides_instance_flavor(conf, files):
    inst = make_instance(flavor=make_flavor(vcpus=1, memory_mb=128))
    xml = vconfig.domain_xml(conf, inst, files, KERNEL_META,
                             flavor=make_flavor(vcpus=2, memory_mb=192))
    assert (vconfig.summary(xml)['vcpus'], vconfig.summary(xml)['memory_mb']) == (2, 192)


def test_relocate_moves_every_instance_path(conf, files, tmp_path):
    xml = vconfig.domain_xml(conf, make_instance(), files, KERNEL_META)
    moved = vconfig.relocate(xml, files.path, '/elsewhere/u-1')
    s = vconfig.summary(moved)
    assert s['kernel'] == '/elsewhere/u-1/kernel'
    assert s['initrd'] == '/elsewhere/u-1/ramdisk'
    assert s['console_log'] == '/elsewhere/u-1/console.log'
    assert [d['file'] for d in s['disks']] == ['/elsewhere/u-1/disk',
                                              '/elsewhere/u-1/disk.eph0']
    assert files.path not in moved


def test_local_disk_targets(conf, files):
    xml = vconfig.domain_xml(conf, make_instance(), files, KERNEL_META)
    assert vconfig.local_disk_targets(xml, files.instances_path) == ['vda', 'vdb']
    assert vconfig.local_disk_targets(xml, '/somewhere/else') == []


def test_cpu_descriptions():
    caps = """<capabilities><host><cpu><arch>x86_64</arch><model>Skylake</model>
      <vendor>Intel</vendor><topology sockets='1' cores='4' threads='2'/>
      <feature name='vmx'/><feature name='aes'/></cpu></host></capabilities>"""
    info = vconfig.host_cpu_info(caps)
    assert info == {'arch': 'x86_64', 'model': 'Skylake', 'vendor': 'Intel',
                    'topology': {'sockets': 1, 'cores': 4, 'threads': 2},
                    'features': ['aes', 'vmx']}
    cpu = vconfig.parse(vconfig.cpu_xml(info))
    assert cpu.findtext('model') == 'Skylake'
    assert sorted(f.get('name') for f in cpu.findall('feature')) == ['aes', 'vmx']
    assert vconfig.host_cpu_info('<capabilities><host/></capabilities>')['arch'] is None
