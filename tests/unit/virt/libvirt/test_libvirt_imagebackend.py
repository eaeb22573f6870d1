"""Instance files: image resolution, qcow2 disks, copies, storage ids."""

import os

import pytest
from virt_helpers import make_flavor, make_instance

from novalite.virt.libvirt import imagebackend

GiB = imagebackend.GiB


def test_resolve_kernel_directory(kernel_image):
    boot = imagebackend.resolve_image(kernel_image)
    assert boot['kind'] == 'kernel'
    assert boot['kernel'].endswith('vmlinuz') and boot['initrd'].endswith('initrd.gz')
    assert boot['cmdline'] == 'console=ttyS0 quiet'
    assert boot['disk'] is None


def test_resolve_properties_and_errors(kernel_image, tmp_path):
    image = dict(kernel_image, properties={'kernel': 'vmlinuz', 'os_command_line': 'x=1'})
    assert imagebackend.resolve_image(image)['cmdline'] == 'x=1'
    with pytest.raises(imagebackend.ImageError, match='does not exist'):
        imagebackend.resolve_image(dict(kernel_image, properties={'initrd': 'nope'}))
    with pytest.raises(imagebackend.ImageError, match='not a local file'):
        imagebackend.resolve_image({'uuid': 'x', 'location': 'fake://cirros'})
    raw = tmp_path / 'r.img'
    raw.write_bytes(b'\0' * 1024)
    with pytest.raises(imagebackend.ImageError, match='not supported'):
        imagebackend.resolve_image({'uuid': 'x', 'location': str(raw), 'disk_format': 'vmdk'})
    assert imagebackend.resolve_image(None)['kind'] == 'blank'


def test_create_files_from_disk_image(conf, tmp_path, disk_image):
    files = imagebackend.InstanceFiles(str(tmp_path / 'inst'), 'u-1')
    inst = make_instance(flavor=make_flavor(root_gb=1, ephemeral_gb=1, swap=64))
    meta = files.create(inst, disk_image, conf)
    assert [d['name'] for d in meta['disks']] == ['disk', 'disk.eph0', 'disk.swap']
    root = imagebackend.image_info(files.file('disk'))
    assert root['virtual-size'] == GiB
    base = os.path.join(files.instances_path, '_base', meta['disks'][0]['base'])
    assert root['full-backing-filename'] == base
    assert files.disk_sizes(meta) == {'disk': GiB, 'disk.eph0': GiB,
                                      'disk.swap': 64 * 1024 ** 2}
    assert files.read_meta() == meta
    # A grown flavor grows the disks, never shrinks them.
    assert files.resize_disks(meta, make_flavor(root_gb=3, ephemeral_gb=2)) == \
        ['disk', 'disk.eph0']
    assert imagebackend.image_info(files.file('disk'))['virtual-size'] == 3 * GiB
    assert files.resize_disks(meta, make_flavor(root_gb=2)) == []


def test_moved_disk_is_rebased_on_the_local_base(conf, tmp_path, disk_image):
    a = imagebackend.InstanceFiles(str(tmp_path / 'a'), 'u-1')
    meta = a.create(make_instance(), disk_image, conf)
    b = imagebackend.InstanceFiles(str(tmp_path / 'b'), 'u-1')
    imagebackend.copy_tree(a.path, b.path)
    b.ensure_backing(meta)
    info = imagebackend.image_info(b.file('disk'))
    assert info['full-backing-filename'].startswith(str(tmp_path / 'b' / '_base'))


def test_blank_root_when_image_has_no_disk(conf, tmp_path, kernel_image, qemu_img):
    files = imagebackend.InstanceFiles(str(tmp_path / 'inst'), 'u-1')
    meta = files.create(make_instance(flavor=make_flavor(root_gb=2)), kernel_image, conf)
    assert meta['kernel'] == 'kernel' and os.path.exists(files.file('kernel'))
    assert meta['cmdline'] == 'console=ttyS0 quiet'
    info = imagebackend.image_info(files.file('disk'))
    assert info['virtual-size'] == 2 * GiB and 'backing-filename' not in info


def test_copy_tree_reports_progress_and_keeps_holes(tmp_path):
    src = tmp_path / 'src'
    src.mkdir()
    with open(src / 'sparse', 'wb') as f:
        f.truncate(32 * 1024 ** 2)
        f.seek(5 * 1024 ** 2)
        f.write(b'data')
    (src / 'console.log').write_text('skip me')
    seen = []
    imagebackend.copy_tree(str(src), str(tmp_path / 'dst'),
                           lambda done, total: seen.append((done, total)),
                           exclude=('console.log',))
    total = 32 * 1024 ** 2  # bytes of the files copied (console.log excluded)
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    assert seen == sorted(seen) and {t for _, t in seen} == {total}
    dst = tmp_path / 'dst' / 'sparse'
    assert dst.stat().st_size == 32 * 1024 ** 2
    assert dst.stat().st_blocks * 512 < 8 * 1024 ** 2  # holes stayed holes
    assert dst.read_bytes()[5 * 1024 ** 2:5 * 1024 ** 2 + 4] == b'data'
    assert not (tmp_path / 'dst' / 'console.log').exists()


def test_storage_id_is_stable_and_per_directory(tmp_path):
    one = imagebackend.storage_id(str(tmp_path / 'one'))
    assert imagebackend.storage_id(str(tmp_path / 'one')) == one
    assert imagebackend.storage_id(str(tmp_path / 'two')) != one
