"""Instance files of the libvirt driver: qcow2 disks, boot files and their metadata.

Layout under ``[compute] instances_path``::

    _base/<sha1 of the image location>      base images (read-only backing files)
    <uuid>/disk                             root disk, qcow2 (backed by a base or blank)
    <uuid>/disk.eph0, <uuid>/disk.swap      ephemeral and swap disks (blank qcow2)
    <uuid>/kernel, <uuid>/ramdisk           direct kernel boot files copied from the image
    <uuid>/console.log                      serial console of the guest
    <uuid>/novalite.json                    what the files are (see InstanceFiles.meta)
    <uuid>_resize/                          the source copy kept by a cold move for revert

Images are local files (the image record's ``location``): a raw or qcow2 disk image, or
a directory holding a kernel (vmlinuz/kernel/bzImage), an initrd (initrd.gz/initrd/
initrd.img/ramdisk) and optionally a root disk (disk.qcow2/disk.img/disk.raw) and a
``cmdline`` file. Image properties ``kernel``/``initrd``/``os_command_line`` (paths
absolute or relative to the image directory) override what is found.
"""

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import uuid as uuid_module

from novalite.virt import driver

LOG = logging.getLogger(__name__)

GiB = driver.GiB
MiB = driver.MiB

META_FILE = 'novalite.json'
CONSOLE_LOG = 'console.log'
KERNEL_FILE = 'kernel'
RAMDISK_FILE = 'ramdisk'
DOMAIN_XML_FILE = 'domain.xml'
INCOMING_MARKER = '.incoming'
RESIZE_SUFFIX = '_resize'
BASE_DIR = '_base'
HOST_MARKER = '.novalite-storage-id'
HOSTS_DIR = '.novalite-hosts'

_KERNEL_NAMES = ('vmlinuz', 'kernel', 'bzImage')
_INITRD_NAMES = ('initrd.gz', 'initrd', 'initrd.img', 'ramdisk')
_DISK_NAMES = (('disk.qcow2', 'qcow2'), ('disk.img', 'raw'), ('disk.raw', 'raw'),
               ('disk', 'qcow2'))
_CHUNK = 4 * MiB


class ImageError(driver.VirtDriverError):
    """An image or disk file could not be prepared."""


# --------------------------------------------------------------------------- qemu-img

def _run(cmd, what):
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise ImageError('%s: %s is not installed (%s)' % (what, cmd[0], exc))
    if proc.returncode != 0:
        raise ImageError('%s failed: %s' % (what, (proc.stderr or proc.stdout).strip()))
    return proc.stdout


def qemu_img_available():
    return shutil.which('qemu-img') is not None


def image_info(path):
    """qemu-img's view of a disk file (format, virtual-size, backing-filename ...)."""
    out = _run(['qemu-img', 'info', '--force-share', '--output=json', path],
               'qemu-img info %s' % path)
    return json.loads(out)


def create_disk(path, size_bytes, backing=None, backing_format=None):
    """A qcow2 file of ``size_bytes`` virtual size, optionally backed by ``backing``."""
    cmd = ['qemu-img', 'create', '-q', '-f', 'qcow2']
    if backing:
        cmd += ['-b', backing, '-F', backing_format or 'raw']
    cmd += [path]
    if size_bytes:
        cmd.append(str(int(size_bytes)))
    _run(cmd, 'qemu-img create %s' % path)


def grow_disk(path, size_bytes):
    """Grow a disk to ``size_bytes``; never shrinks. Returns True if it grew."""
    current = image_info(path)['virtual-size']
    if size_bytes <= current:
        return False
    _run(['qemu-img', 'resize', '-q', path, str(int(size_bytes))],
         'qemu-img resize %s' % path)
    return True


def rebase_unsafe(path, backing, backing_format):
    """Point a qcow2 file at another (identical) backing file without copying data."""
    _run(['qemu-img', 'rebase', '-u', '-b', backing, '-F', backing_format, path],
         'qemu-img rebase %s' % path)


# --------------------------------------------------------------------------- images

def _find(directory, names):
    for name in names:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def resolve_image(image):
    """What ``image`` (an image record) boots from.

    Returns dict(kind='disk'|'kernel'|'blank', disk=path|None, disk_format,
    kernel=path|None, initrd=path|None, cmdline=str|None).
    """
    image = image or {}
    props = dict(image.get('properties') or {})
    location = image.get('location')
    result = {'disk': None, 'disk_format': None, 'kernel': None, 'initrd': None,
              'cmdline': props.get('os_command_line')}
    if location and location.startswith('file://'):
        location = location[len('file://'):]
    base_dir = None
    if location:
        if not os.path.isabs(location) or not os.path.exists(location):
            raise ImageError('Image %s: location %r is not a local file or directory.'
                             % (image.get('uuid'), image.get('location')))
        if os.path.isdir(location):
            base_dir = location
            result['kernel'] = _find(location, _KERNEL_NAMES)
            result['initrd'] = _find(location, _INITRD_NAMES)
            for name, fmt in _DISK_NAMES:
                path = os.path.join(location, name)
                if os.path.isfile(path):
                    result['disk'], result['disk_format'] = path, fmt
                    break
            cmdline_file = os.path.join(location, 'cmdline')
            if result['cmdline'] is None and os.path.isfile(cmdline_file):
                with open(cmdline_file) as f:
                    result['cmdline'] = f.read().strip()
        else:
            result['disk'] = location
            result['disk_format'] = image.get('disk_format') or 'raw'
            base_dir = os.path.dirname(location)
    for prop, key in (('kernel', 'kernel'), ('kernel_id', 'kernel'),
                      ('initrd', 'initrd'), ('ramdisk_id', 'initrd')):
        value = props.get(prop)
        if value and isinstance(value, str):
            path = value if os.path.isabs(value) or base_dir is None else \
                os.path.join(base_dir, value)
            if not os.path.isfile(path):
                raise ImageError('Image %s: %s file %s does not exist.'
                                 % (image.get('uuid'), prop, path))
            result[key] = path
    if result['disk_format'] not in (None, 'raw', 'qcow2'):
        raise ImageError('Image %s: disk format %s is not supported (raw or qcow2).'
                         % (image.get('uuid'), result['disk_format']))
    if result['initrd'] and not result['kernel']:
        raise ImageError('Image %s has an initrd but no kernel.' % image.get('uuid'))
    result['kind'] = 'kernel' if result['kernel'] else ('disk' if result['disk']
                                                       else 'blank')
    return result


@contextlib.contextmanager
def _file_lock(path):
    with open(path + '.lock', 'a') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def base_name(location):
    return hashlib.sha1(location.encode()).hexdigest()


def ensure_base(instances_path, location, disk_format, name=None):
    """The cached base copy of a disk image under _base/ (created once, atomically)."""
    base_dir = os.path.join(instances_path, BASE_DIR)
    os.makedirs(base_dir, exist_ok=True)
    path = os.path.join(base_dir, name or base_name(location))
    if os.path.exists(path):
        return path
    with _file_lock(path):
        if not os.path.exists(path):
            tmp = path + '.part'
            copy_file(location, tmp)
            os.chmod(tmp, 0o444)
            os.replace(tmp, path)
            LOG.info('Cached image %s (%s) as %s', location, disk_format, path)
    return path


# --------------------------------------------------------------------------- copies

def copy_file(src, dst, progress=None):
    """Copy preserving holes (all-zero chunks are skipped), reporting bytes copied."""
    with open(src, 'rb') as fin, open(dst, 'wb') as fout:
        size = os.fstat(fin.fileno()).st_size
        done = 0
        while True:
            chunk = fin.read(_CHUNK)
            if not chunk:
                break
            if chunk.count(0) == len(chunk):
                fout.seek(len(chunk), os.SEEK_CUR)
            else:
                fout.write(chunk)
            done += len(chunk)
            if progress is not None:
                progress(len(chunk))
        fout.truncate(size)
    shutil.copymode(src, dst)
    return done


def _tree_files(src_dir, exclude):
    return sorted(n for n in os.listdir(src_dir)
                  if n not in exclude and os.path.isfile(os.path.join(src_dir, n)))


def copy_tree(src_dir, dst_dir, progress_callback=None, exclude=()):
    """Copy the files of one instance directory, calling progress_callback(copied,
    total) in bytes (at most once per percent)."""
    names = _tree_files(src_dir, exclude)
    total = sum(os.path.getsize(os.path.join(src_dir, n)) for n in names)
    copied = [0]
    last = [-1]

    def report(nbytes):
        copied[0] += nbytes
        percent = min(100, int(copied[0] * 100 / (total or 1)))
        if progress_callback is not None and percent != last[0]:
            last[0] = percent
            progress_callback(min(copied[0], total), total)

    os.makedirs(dst_dir, exist_ok=True)
    if progress_callback is not None:
        progress_callback(0, total)
    for name in names:
        copy_file(os.path.join(src_dir, name), os.path.join(dst_dir, name), report)
    if progress_callback is not None and last[0] != 100:
        progress_callback(total, total)


def rsync_tree(rsync_command, src_dir, address, dst_dir, progress_callback=None,
               exclude=()):
    """Copy an instance directory to ``address:dst_dir`` with rsync (over ssh)."""
    import shlex
    cmd = shlex.split(rsync_command) + ['-a', '--sparse', '--mkpath']
    for name in exclude:
        cmd += ['--exclude', name]
    cmd += [src_dir.rstrip('/') + '/', '%s:%s/' % (address, dst_dir.rstrip('/'))]
    total = sum(os.path.getsize(os.path.join(src_dir, n))
                for n in _tree_files(src_dir, exclude))
    if progress_callback is not None:
        progress_callback(0, total)
    _run(cmd, 'rsync of %s to %s' % (src_dir, address))
    if progress_callback is not None:
        progress_callback(total, total)


# --------------------------------------------------------------------------- instances

class InstanceFiles:
    """The files of one instance under one instances_path."""

    def __init__(self, instances_path, uuid):
        self.instances_path = instances_path
        self.uuid = uuid
        self.path = os.path.join(instances_path, uuid)
        self.resize_path = self.path + RESIZE_SUFFIX

    def file(self, name):
        return os.path.join(self.path, name)

    @property
    def console_log(self):
        return self.file(CONSOLE_LOG)

    def exists(self):
        return os.path.isdir(self.path)

    # -- metadata --------------------------------------------------------------------

    def read_meta(self, directory=None):
        path = os.path.join(directory or self.path, META_FILE)
        try:
            with open(path) as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def write_meta(self, meta, directory=None):
        directory = directory or self.path
        tmp = os.path.join(directory, META_FILE + '.tmp')
        with open(tmp, 'w') as f:
            json.dump(meta, f, indent=1, sort_keys=True)
        os.replace(tmp, os.path.join(directory, META_FILE))

    # -- creation ----------------------------------------------------------------------

    def create(self, instance, image, conf):
        """Create every file the guest needs; returns the metadata written."""
        flavor = instance['flavor']
        boot = resolve_image(image)
        os.makedirs(self.path, exist_ok=True)
        meta = {'uuid': self.uuid, 'image': {
            'uuid': (image or {}).get('uuid'), 'location': boot['disk'],
            'disk_format': boot['disk_format'], 'kernel': boot['kernel'],
            'initrd': boot['initrd']},
            'cmdline': None, 'kernel': None, 'ramdisk': None, 'disks': []}
        if boot['kernel']:
            shutil.copyfile(boot['kernel'], self.file(KERNEL_FILE))
            meta['kernel'] = KERNEL_FILE
            if boot['initrd']:
                shutil.copyfile(boot['initrd'], self.file(RAMDISK_FILE))
                meta['ramdisk'] = RAMDISK_FILE
            meta['cmdline'] = boot['cmdline'] or conf.libvirt.kernel_cmdline
        root_bytes = (flavor.get('root_gb') or 0) * GiB
        root = {'name': 'disk', 'dev': 'vda', 'format': 'qcow2', 'base': None,
                'base_format': None}
        if boot['disk']:
            base = ensure_base(self.instances_path, boot['disk'], boot['disk_format'])
            base_size = image_info(base)['virtual-size']
            if root_bytes and root_bytes < base_size:
                raise ImageError('Flavor root disk (%d GiB) is smaller than image %s.'
                                 % (flavor.get('root_gb'), meta['image']['uuid']))
            root.update(base=os.path.basename(base), base_format=boot['disk_format'])
            create_disk(self.file('disk'), max(root_bytes, base_size), base,
                        boot['disk_format'])
        else:
            create_disk(self.file('disk'), root_bytes or GiB)
        meta['disks'].append(root)
        if flavor.get('ephemeral_gb'):
            create_disk(self.file('disk.eph0'), flavor['ephemeral_gb'] * GiB)
            meta['disks'].append({'name': 'disk.eph0', 'dev': 'vdb', 'format': 'qcow2',
                                  'base': None, 'base_format': None})
        if flavor.get('swap'):
            create_disk(self.file('disk.swap'), flavor['swap'] * MiB)
            meta['disks'].append({'name': 'disk.swap', 'dev': 'vdc', 'format': 'qcow2',
                                  'base': None, 'base_format': None})
        self.write_meta(meta)
        return meta

    def disk_sizes(self, meta):
        """{disk name: virtual size} of the disks described by ``meta``."""
        return {d['name']: image_info(self.file(d['name']))['virtual-size']
                for d in meta['disks']}

    def ensure_backing(self, meta):
        """Make every backed disk point at this host's _base copy (after a move)."""
        for disk in meta['disks']:
            if not disk.get('base'):
                continue
            base_path = os.path.join(self.instances_path, BASE_DIR, disk['base'])
            if not os.path.exists(base_path):
                location = meta['image'].get('location')
                if not location or not os.path.exists(location):
                    raise ImageError('Base image %s of instance %s is missing on this host '
                                     'and its image file %r is not available.'
                                     % (disk['base'], self.uuid, location))
                ensure_base(self.instances_path, location, disk['base_format'],
                            name=disk['base'])
            path = self.file(disk['name'])
            if os.path.exists(path):
                current = image_info(path).get('full-backing-filename') or \
                    image_info(path).get('backing-filename')
                if current != base_path:
                    rebase_unsafe(path, base_path, disk['base_format'])

    def resize_disks(self, meta, flavor):
        """Grow root and ephemeral disks to ``flavor``; create a missing ephemeral disk."""
        grew = []
        for disk in meta['disks']:
            if disk['name'] == 'disk' and flavor.get('root_gb'):
                if grow_disk(self.file('disk'), flavor['root_gb'] * GiB):
                    grew.append('disk')
            elif disk['name'] == 'disk.eph0' and flavor.get('ephemeral_gb'):
                if grow_disk(self.file('disk.eph0'), flavor['ephemeral_gb'] * GiB):
                    grew.append('disk.eph0')
        names = {d['name'] for d in meta['disks']}
        if flavor.get('ephemeral_gb') and 'disk.eph0' not in names:
            create_disk(self.file('disk.eph0'), flavor['ephemeral_gb'] * GiB)
            meta['disks'].append({'name': 'disk.eph0', 'dev': 'vdb', 'format': 'qcow2',
                                  'base': None, 'base_format': None})
            grew.append('disk.eph0')
        if flavor.get('swap') and 'disk.swap' not in names:
            create_disk(self.file('disk.swap'), flavor['swap'] * MiB)
            meta['disks'].append({'name': 'disk.swap', 'dev': 'vdc', 'format': 'qcow2',
                                  'base': None, 'base_format': None})
        return grew

    def create_incoming(self, meta, sizes):
        """Destination of a block live migration: empty disks of the same shape."""
        os.makedirs(self.path, exist_ok=True)
        with open(self.file(INCOMING_MARKER), 'w'):
            pass
        meta = json.loads(json.dumps(meta))
        for disk in meta['disks']:
            path = self.file(disk['name'])
            if os.path.exists(path):
                continue
            backing = None
            if disk.get('base'):
                location = meta['image'].get('location')
                if not location or not os.path.exists(location):
                    raise ImageError('Image file %r of instance %s is not available on '
                                     'this host.' % (location, self.uuid))
                backing = ensure_base(self.instances_path, location, disk['base_format'],
                                      name=disk['base'])
            create_disk(path, sizes.get(disk['name']) or GiB, backing, disk['base_format'])
        for name, key in ((KERNEL_FILE, 'kernel'), (RAMDISK_FILE, 'initrd')):
            if meta.get('kernel' if name == KERNEL_FILE else 'ramdisk'):
                src = meta['image'].get(key)
                if not src or not os.path.isfile(src):
                    raise ImageError('Boot file %r of instance %s is not available on '
                                     'this host.' % (src, self.uuid))
                shutil.copyfile(src, self.file(name))
        self.write_meta(meta)
        return meta

    # -- removal -----------------------------------------------------------------------

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)

    def remove_resize(self):
        shutil.rmtree(self.resize_path, ignore_errors=True)


def _is_uuid(name):
    try:
        return str(uuid_module.UUID(name)) == name.lower() and len(name) == 36
    except ValueError:
        return False


def instance_dirs(instances_path):
    """The instance directories under instances_path: uuid -> set of 'files' (``<uuid>/``
    without the incoming marker), 'incoming' (``<uuid>/`` prepared for an incoming
    live migration) and 'resize' (``<uuid>_resize/``). Anything else is not ours."""
    out = {}
    try:
        names = os.listdir(instances_path)
    except FileNotFoundError:
        return out
    for name in names:
        path = os.path.join(instances_path, name)
        if not os.path.isdir(path) or os.path.islink(path):
            continue
        if name.endswith(RESIZE_SUFFIX) and _is_uuid(name[:-len(RESIZE_SUFFIX)]):
            out.setdefault(name[:-len(RESIZE_SUFFIX)], set()).add('resize')
        elif _is_uuid(name):
            marker = os.path.exists(os.path.join(path, INCOMING_MARKER))
            out.setdefault(name, set()).add('incoming' if marker else 'files')
    return out


def hosts_using(instances_path, host):
    """Record that ``host`` keeps instances in instances_path and return every host
    that ever did: more than one means the storage is shared."""
    directory = os.path.join(instances_path, HOSTS_DIR)
    os.makedirs(directory, exist_ok=True)
    marker = os.path.join(directory, host)
    if not os.path.exists(marker):
        with open(marker, 'w'):
            pass
    return set(os.listdir(directory))


def storage_id(instances_path):
    """A random id stored in instances_path: equal ids on two hosts = shared storage."""
    os.makedirs(instances_path, exist_ok=True)
    path = os.path.join(instances_path, HOST_MARKER)
    try:
        with open(path) as f:
            value = f.read().strip()
            if value:
                return value
    except FileNotFoundError:
        pass
    import uuid
    value = str(uuid.uuid4())
    tmp = path + '.%d' % os.getpid()
    with open(tmp, 'w') as f:
        f.write(value)
    try:
        os.link(tmp, path)  # first writer wins
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    with open(path) as f:
        return f.read().strip()


def free_bytes(path):
    os.makedirs(path, exist_ok=True)
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
