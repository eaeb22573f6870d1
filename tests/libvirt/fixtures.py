"""Two real libvirt hosts on one machine and a novalite cluster bound to them.

LibvirtHosts starts one privileged libvirtd per compute with tools/libvirt_hosts.sh
(own mount+UTS namespace, own 127.0.0.x address, host UUID and migration ports), and
LibvirtCluster runs api + conductor + scheduler + one novalite-compute per libvirtd,
each compute with its own connection URI and instances_path. Guests are the tiny TCG
guest of tools/build_guest.sh (kernel + busybox initrd, ticking on its serial console).
"""

import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys

from novalite.cluster import Cluster
from tests.rest import wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(ROOT, 'tools')
GUEST_DIR = os.environ.get('NOVALITE_TEST_GUEST_DIR', '/var/tmp/novalite-guest')

HOSTS = {
    # name: (listen address, libvirt host UUID, first migration port)
    'compute1': ('127.0.0.2', '6e6f7661-0000-4000-8000-000000000001', 49152),
    'compute2': ('127.0.0.3', '6e6f7661-0000-4000-8000-000000000002', 49200),
}

TICK = re.compile(r'tick (\d+) uptime=([\d.]+) mem=(\d+) cpus=(\d+)')


def other_host(host):
    """The other of the two libvirt hosts."""
    return next(h for h in HOSTS if h != host)


def check_prerequisites():
    """Raise with the reason when this machine cannot run the end-to-end tier."""
    if os.geteuid() != 0:
        raise RuntimeError('the libvirt end-to-end tests need root (privileged libvirtd)')
    for binary in ('libvirtd', 'virsh', 'qemu-system-x86_64', 'qemu-img', 'unshare'):
        if shutil.which(binary) is None and not os.path.exists('/usr/sbin/' + binary):
            raise RuntimeError('%s is not installed (run tools/install_libvirt.sh)' % binary)
    import libvirt
    if not hasattr(libvirt, 'virConnect'):
        raise RuntimeError('libvirt-python is not installed')
    proc = subprocess.run([os.path.join(TOOLS, 'build_guest.sh'), GUEST_DIR],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError('cannot build the test guest: ' + proc.stderr.strip()[-400:])
    return GUEST_DIR


class LibvirtHosts:
    """The libvirtd daemons of HOSTS. A lock file serialises test sessions of one
    machine, which would otherwise restart each other's daemons."""

    LOCK_TIMEOUT = 900

    def __init__(self):
        self.started = []
        self._lock = None

    def _acquire(self):
        base = os.environ.get('NOVALITE_LIBVIRT_HOSTS', '/var/tmp/novalite-libvirt-hosts')
        os.makedirs(base, exist_ok=True)
        self._lock = open(os.path.join(base, '.session.lock'), 'w')

        def locked():
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False

        try:
            wait_until(locked, timeout=self.LOCK_TIMEOUT, interval=1)
        except AssertionError:
            raise RuntimeError('another test session holds the libvirt hosts')

    def uri(self, name):
        return 'qemu+tcp://%s/system' % HOSTS[name][0]

    def start(self):
        self._acquire()
        for name, (address, host_uuid, port) in HOSTS.items():
            subprocess.run([os.path.join(TOOLS, 'libvirt_hosts.sh'), 'start', name, address,
                            host_uuid, str(port)], check=True, capture_output=True,
                           text=True)
            self.started.append(name)
        return self

    def stop(self):
        for name in reversed(self.started):
            subprocess.run([os.path.join(TOOLS, 'libvirt_hosts.sh'), 'stop', name],
                           check=False, capture_output=True)
        self.started = []
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None


class LibvirtCluster(Cluster):
    """A Cluster whose computes run the libvirt driver against LibvirtHosts."""

    def __init__(self, workdir, db_url, transport_url, extra_conf=None):
        self.instances_paths = {h: os.path.join(str(workdir), h, 'instances') for h in HOSTS}
        conf = {
            'compute.compute_driver': 'libvirt',
            'libvirt.virt_type': 'qemu',
            'libvirt.disk_transfer': 'copy',
            'libvirt.disk_cachemode': 'none',
            'libvirt.host_addresses': ','.join('%s:%s' % (h, a[0])
                                               for h, a in HOSTS.items()),
            'libvirt.remote_instances_paths': ','.join(
                '%s:%s' % (h, p) for h, p in self.instances_paths.items()),
            'libvirt.live_migration_monitor_interval': 0,
            'libvirt.live_migration_permit_post_copy': 'true',
            'shutdown_timeout': 1,
        }
        conf.update(extra_conf or {})
        super().__init__(workdir, db_url, transport_url, computes=len(HOSTS),
                         extra_conf=conf)

    def _cmd(self, module, host=None):
        cmd = super()._cmd(module, host)
        if host in HOSTS:
            path = os.path.join(self.workdir, 'libvirt-%s.conf' % host)
            with open(path, 'w') as f:
                f.write('[libvirt]\nconnection_uri = qemu+tcp://%s/system\n\n'
                        '[compute]\ninstances_path = %s\n'
                        % (HOSTS[host][0], self.instances_paths[host]))
            cmd += ['--config-file', path]
        return cmd

    def stop(self):
        # Computes first, while the conductor still answers their last reports; each
        # group is signalled at once (a daemon needs a few seconds to leave the broker).
        for group in (['api'] + list(HOSTS), ['scheduler', 'conductor']):
            procs = [self.procs[n] for n in group if n in self.procs]
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        super().stop()

    def register_image(self, name='tiny-guest', path=GUEST_DIR):
        out = subprocess.run([sys.executable, '-m', 'novalite.cmd.manage', '--config-file',
                              self.conf_file, 'image', 'register', name, path,
                              '--disk-format', 'raw'],
                             check=True, capture_output=True, text=True).stdout
        return out.strip().splitlines()[-1]

    # -- guest observation ---------------------------------------------------------------

    def console(self, host, uuid):
        path = os.path.join(self.instances_paths[host], uuid, 'console.log')
        try:
            with open(path, errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''

    def boots(self, host, uuid):
        """How many times the guest booted while writing its log on ``host``."""
        return self.console(host, uuid).count('GUEST-BOOTED')

    def ticks(self, host, uuid):
        """[(n, uptime, mem_kib, cpus)] printed on ``host`` since the guest's last boot
        there (the log survives reboots and cold moves, like a real console log)."""
        text = self.console(host, uuid)
        text = text[text.rfind('GUEST-BOOTED'):] if 'GUEST-BOOTED' in text else text
        return [(int(n), float(up), int(mem), int(cpus))
                for n, up, mem, cpus in TICK.findall(text)]

    def wait_ticks(self, host, uuid, count=1, after=0, boots=0, timeout=60):
        """Wait until the guest booted ``boots`` times on ``host`` and printed ``count``
        ticks numbered above ``after`` since its last boot."""
        def enough():
            ticks = [t for t in self.ticks(host, uuid) if t[0] > after]
            return ticks if len(ticks) >= count and self.boots(host, uuid) >= boots else None

        return wait_until(enough, timeout=timeout, interval=0.2,
                          message=lambda: 'guest %s on %s to print a tick > %d; console:\n%s'
                          % (uuid, host, after, self.console(host, uuid)[-800:]))


@contextlib.contextmanager
def running_cluster(workdir, db_url, transport_url, extra_conf=None):
    """A started LibvirtCluster, stopped on the way out."""
    cluster = LibvirtCluster(workdir, db_url, transport_url, extra_conf=extra_conf)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def start_crawling_live_migration(client, libvirt_hosts, sid, host):
    """Live-migrate ``sid`` away from ``host`` so that it cannot finish in pre-copy:
    disks go first at full speed; once memory moves, the copy crawls at 1 MiB/s (a
    guest that dirties memory faster than the link). Returns once it crawls."""
    import libvirt
    conn = libvirt.open(libvirt_hosts.uri(host))
    try:
        dom = conn.lookupByUUIDString(sid)
        dom.migrateSetMaxSpeed(100000, 0)
        client.action(sid, {'os-migrateLive': {'host': None, 'block_migration': 'auto'}})

        def crawl_once_memory_moves():
            try:
                if dom.jobStats().get('memory_processed'):
                    dom.migrateSetMaxSpeed(1, 0)
                    return True
            except libvirt.libvirtError:
                pass  # no job yet
            return False

        wait_until(crawl_once_memory_moves, timeout=60, interval=0.005,
                   message='the migration to reach memory')
    finally:
        conn.close()
