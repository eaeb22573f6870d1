"""Domain XML of a guest, built from the instance, its flavor and its files."""

import os
import xml.etree.ElementTree as ET

METADATA_NS = 'https://novalite.dev/xmlns/libvirt/instance/1'
METADATA_PREFIX = 'novalite'

ET.register_namespace(METADATA_PREFIX, METADATA_NS)


def _sub(parent, tag, text=None, **attrs):
    el = ET.SubElement(parent, tag, {k.rstrip('_'): str(v) for k, v in attrs.items()
                                     if v is not None})
    if text is not None:
        el.text = str(text)
    return el


def domain_name(conf, instance):
    return conf.libvirt.instance_name_template % {'uuid': instance['uuid']}


def _cpu_mode(conf):
    mode = conf.libvirt.cpu_mode
    if not mode:
        mode = 'host-model' if conf.libvirt.virt_type == 'kvm' else 'none'
    return mode


def build_domain(conf, instance, files, meta, flavor=None):
    """The <domain> element of ``instance`` with ``flavor`` (default: its flavor).

    ``files`` is the InstanceFiles of the instance on this host and ``meta`` its
    metadata (disks, boot files).
    """
    flavor = flavor or instance['flavor']
    lv = conf.libvirt
    dom = ET.Element('domain', {'type': lv.virt_type})
    _sub(dom, 'name', domain_name(conf, instance))
    _sub(dom, 'uuid', instance['uuid'])
    if instance.get('display_name'):
        _sub(dom, 'title', instance['display_name'])
    md = _sub(dom, 'metadata')
    nl = ET.SubElement(md, '{%s}instance' % METADATA_NS)
    for key, value in (('name', instance.get('display_name')),
                       ('flavor', flavor.get('name')),
                       ('flavorid', flavor.get('flavorid')),
                       ('image', instance.get('image_ref')),
                       ('project', instance.get('project_id'))):
        if value is not None:
            _sub(nl, '{%s}%s' % (METADATA_NS, key), value)

    memory_kib = int(flavor['memory_mb']) * 1024
    _sub(dom, 'memory', memory_kib, unit='KiB')
    _sub(dom, 'currentMemory', memory_kib, unit='KiB')
    _sub(dom, 'vcpu', int(flavor['vcpus']), placement='static')

    os_el = _sub(dom, 'os')
    _sub(os_el, 'type', 'hvm', machine=lv.machine_type or None)
    if meta.get('kernel'):
        _sub(os_el, 'kernel', files.file(meta['kernel']))
        if meta.get('ramdisk'):
            _sub(os_el, 'initrd', files.file(meta['ramdisk']))
        if meta.get('cmdline'):
            _sub(os_el, 'cmdline', meta['cmdline'])
    else:
        _sub(os_el, 'boot', dev='hd')

    features = _sub(dom, 'features')
    _sub(features, 'acpi')
    _sub(features, 'apic')
    mode = _cpu_mode(conf)
    if mode == 'custom':
        cpu = _sub(dom, 'cpu', mode='custom', match='exact')
        _sub(cpu, 'model', lv.cpu_model, fallback='allow')
    elif mode in ('host-model', 'host-passthrough'):
        _sub(dom, 'cpu', mode=mode)
    _sub(dom, 'clock', offset='utc')
    _sub(dom, 'on_poweroff', 'destroy')
    _sub(dom, 'on_reboot', 'restart')
    _sub(dom, 'on_crash', 'destroy')

    devices = _sub(dom, 'devices')
    for disk in meta['disks']:
        el = _sub(devices, 'disk', type='file', device='disk')
        _sub(el, 'driver', name='qemu', type=disk.get('format') or 'qcow2',
             cache=lv.disk_cachemode)
        _sub(el, 'source', file=files.file(disk['name']))
        _sub(el, 'target', dev=disk['dev'], bus='virtio')
    serial = _sub(devices, 'serial', type='file')
    _sub(serial, 'source', path=files.console_log, append='on')
    _sub(serial, 'target', port=0)
    _sub(devices, 'memballoon', model='virtio')
    return dom


def to_xml(element):
    ET.indent(element)
    return ET.tostring(element, encoding='unicode')


def domain_xml(conf, instance, files, meta, flavor=None):
    return to_xml(build_domain(conf, instance, files, meta, flavor))


# --------------------------------------------------------------------------- parsing

def parse(xml):
    return ET.fromstring(xml)


def summary(xml):
    """Facts tests and callers want from a domain XML: vcpus, memory_mb, disks, ..."""
    root = parse(xml)
    mem = root.find('memory')
    unit = (mem.get('unit') or 'KiB') if mem is not None else 'KiB'
    factor = {'KiB': 1.0 / 1024, 'MiB': 1, 'GiB': 1024, 'b': 1.0 / 1024 ** 2,
              'bytes': 1.0 / 1024 ** 2}.get(unit, 1.0 / 1024)
    disks = []
    for disk in root.findall('./devices/disk'):
        source = disk.find('source')
        target = disk.find('target')
        disks.append({'file': source.get('file') if source is not None else None,
                      'dev': target.get('dev') if target is not None else None})
    serial = root.find("./devices/serial/source")
    return {
        'type': root.get('type'),
        'name': root.findtext('name'),
        'uuid': root.findtext('uuid'),
        'vcpus': int(root.findtext('vcpu') or 0),
        'memory_mb': int(int(mem.text) * factor) if mem is not None else 0,
        'disks': disks,
        'kernel': root.findtext('./os/kernel'),
        'initrd': root.findtext('./os/initrd'),
        'cmdline': root.findtext('./os/cmdline'),
        'console_log': serial.get('path') if serial is not None else None,
    }


def relocate(xml, old_dir, new_dir):
    """Rewrite every file path below ``old_dir`` to ``new_dir`` (live migration XML)."""
    root = parse(xml)
    old_dir = old_dir.rstrip('/') + '/'
    new_dir = new_dir.rstrip('/') + '/'

    def move(value):
        if value and value.startswith(old_dir):
            return new_dir + value[len(old_dir):]
        return value

    for el in root.iter():
        for attr in ('file', 'path'):
            if el.get(attr):
                el.set(attr, move(el.get(attr)))
        if el.tag in ('kernel', 'initrd', 'loader', 'nvram') and el.text:
            el.text = move(el.text.strip())
    return ET.tostring(root, encoding='unicode')


def local_disk_targets(xml, instances_path):
    """Target devs of the file disks stored under ``instances_path`` (block-migrated)."""
    root = parse(xml)
    prefix = os.path.join(instances_path, '')
    devs = []
    for disk in root.findall('./devices/disk'):
        source = disk.find('source')
        target = disk.find('target')
        if source is None or target is None or disk.get('device') != 'disk':
            continue
        path = source.get('file') or ''
        if path.startswith(prefix):
            devs.append(target.get('dev'))
    return devs


def cpu_xml(cpu_info):
    """<cpu> XML for virConnectCompareCPU from a compute node's cpu_info dict."""
    cpu = ET.Element('cpu')
    if cpu_info.get('arch'):
        _sub(cpu, 'arch', cpu_info['arch'])
    if cpu_info.get('model'):
        _sub(cpu, 'model', cpu_info['model'])
    if cpu_info.get('vendor'):
        _sub(cpu, 'vendor', cpu_info['vendor'])
    topology = cpu_info.get('topology') or {}
    if topology:
        _sub(cpu, 'topology', sockets=topology.get('sockets', 1),
             cores=topology.get('cores', 1), threads=topology.get('threads', 1))
    for feature in cpu_info.get('features') or []:
        _sub(cpu, 'feature', name=feature, policy='require')
    return ET.tostring(cpu, encoding='unicode')


def host_cpu_info(capabilities_xml):
    """cpu_info dict (arch, model, vendor, topology, features) from capabilities XML."""
    root = parse(capabilities_xml)
    cpu = root.find('./host/cpu')
    info = {'arch': None, 'model': None, 'vendor': None, 'topology': {}, 'features': []}
    if cpu is None:
        return info
    info['arch'] = cpu.findtext('arch')
    info['model'] = cpu.findtext('model')
    info['vendor'] = cpu.findtext('vendor')
    topo = cpu.find('topology')
    if topo is not None:
        info['topology'] = {k: int(topo.get(k)) for k in ('sockets', 'cores', 'threads')
                            if topo.get(k) and topo.get(k).isdigit()}
    info['features'] = sorted(f.get('name') for f in cpu.findall('feature') if f.get('name'))
    return info

