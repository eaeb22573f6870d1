"""End to end through novalite with real libvirtd daemons and a real (TCG) guest.

One scenario, in the order an operator would meet it: boot, resize (the guest sees
the new vCPU count), cold migrate + revert, live migrate there and back (the guest
keeps running: its console tick counter continues), an aborted live migration
(bandwidth throttled so it is still running when the abort arrives) and a
force-completed one (post-copy switch of a throttled migration), then an evacuation
when the host's compute service dies, and that host's clean-up when it comes back.
"""

import os
import signal
import time

import pytest

from tests.libvirt.fixtures import other_host, start_crawling_live_migration
from tests.rest import RestClient

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BOOT_TIMEOUT = 90


def _live_migrate(client, cluster, sid, source):
    """Live-migrate and check the guest kept running across the move."""
    last = cluster.ticks(source, sid)[-1][0]
    started = time.monotonic()
    client.action(sid, {'os-migrateLive': {'host': None, 'block_migration': 'auto'}})
    client.wait_until(lambda: client.server(sid)['OS-EXT-STS:task_state'] is None and
                      client.server(sid)['OS-EXT-SRV-ATTR:host'] != source,
                      timeout=90, message='live migration away from %s' % source)
    took = time.monotonic() - started
    dest = client.server(sid)['OS-EXT-SRV-ATTR:host']
    assert dest == other_host(source)
    assert client.server(sid)['status'] == 'ACTIVE'
    ticks = cluster.wait_ticks(dest, sid, count=2, after=0, timeout=30)
    # No reboot: the counter goes on from where it was on the source.
    assert cluster.boots(dest, sid) == 0, cluster.console(dest, sid)[:400]
    assert ticks[0][0] > last, (last, ticks[:3])
    assert not os.path.exists(os.path.join(cluster.instances_paths[source], sid))
    return dest, took


def test_boot_resize_migrate_live_abort_force(libvirt_cluster, libvirt_hosts):
    cluster = libvirt_cluster
    client = RestClient(cluster.endpoint, wait_timeout=BOOT_TIMEOUT)
    timings = {}
    image = cluster.register_image()
    for fid, ram, vcpus, disk in (('lv1', 128, 1, 1), ('lv2', 192, 2, 2)):
        client.request('POST', '/flavors', {'flavor': {
            'id': fid, 'name': 'lv.%s' % fid, 'ram': ram, 'vcpus': vcpus, 'disk': disk}},
            expect=200)

    # -- boot ------------------------------------------------------------------------------
    t0 = time.monotonic()
    r = client.request('POST', '/servers', {'server': {
        'name': 'tiny', 'flavorRef': 'lv1', 'imageRef': image, 'networks': 'none'}},
        expect=202)
    sid = r.data['server']['id']
    server = client.wait_for_server(sid, 'ACTIVE')
    host = server['OS-EXT-SRV-ATTR:host']
    ticks = cluster.wait_ticks(host, sid, count=1)
    timings['boot_to_guest_userspace'] = time.monotonic() - t0
    assert ticks[-1][3] == 1  # one vCPU
    hypervisors = {h['hypervisor_hostname']: h for h in
                   client.get_json('/os-hypervisors/detail')['hypervisors']}
    assert hypervisors[host]['hypervisor_type'] == 'QEMU'

    # -- resize to 2 vCPUs / 192 MiB: the guest reboots on the other host and sees them -----
    t0 = time.monotonic()
    client.action(sid, {'resize': {'flavorRef': 'lv2'}})
    server = client.wait_for_server(sid, 'VERIFY_RESIZE')
    new_host = server['OS-EXT-SRV-ATTR:host']
    assert new_host == other_host(host)
    ticks = cluster.wait_ticks(new_host, sid, count=1, boots=1)
    timings['resize_to_guest_userspace'] = time.monotonic() - t0
    assert ticks[-1][3] == 2, ticks[-1]
    assert ticks[-1][2] > 128 * 1024 * 0.8  # MemTotal grew past the old 128 MiB guest
    assert os.path.isdir(os.path.join(cluster.instances_paths[host], sid + '_resize'))
    client.action(sid, {'confirmResize': None}, expect=204)
    server = client.wait_for_server(sid, 'ACTIVE')
    assert server['flavor']['original_name'] == 'lv.lv2'
    client.wait_until(lambda: not os.path.exists(
        os.path.join(cluster.instances_paths[host], sid + '_resize')), message='source cleanup')
    host = new_host

    # -- cold migrate and revert: back on the original host with its own disk ----------------
    t0 = time.monotonic()
    client.action(sid, {'migrate': None})
    server = client.wait_for_server(sid, 'VERIFY_RESIZE')
    assert server['OS-EXT-SRV-ATTR:host'] == other_host(host)
    cluster.wait_ticks(other_host(host), sid, count=1, boots=1)
    client.action(sid, {'revertResize': None})
    server = client.wait_for_server(sid, 'ACTIVE')
    assert server['OS-EXT-SRV-ATTR:host'] == host
    assert not os.path.exists(os.path.join(cluster.instances_paths[other_host(host)], sid))
    assert client.migrations(sid, 'migration')[0]['status'] == 'reverted'
    # The restored guest boots again on the original host: a second boot in its log.
    cluster.wait_ticks(host, sid, count=2, boots=2)
    timings['cold_migrate_and_revert'] = time.monotonic() - t0
    assert cluster.ticks(host, sid)[-1][3] == 2

    # -- live migration there and back --------------------------------------------------------
    host, timings['live_migration_1'] = _live_migrate(client, cluster, sid, host)
    host, timings['live_migration_2'] = _live_migrate(client, cluster, sid, host)
    live = client.migrations(sid, 'live-migration')
    assert [m['status'] for m in live] == ['completed', 'completed']

    # -- abort a running live migration ------------------------------------------------------
    import libvirt
    conn = libvirt.open(libvirt_hosts.uri(host))
    try:
        conn.lookupByUUIDString(sid).migrateSetMaxSpeed(1, 0)  # 1 MiB/s
    finally:
        conn.close()
    last = cluster.ticks(host, sid)[-1][0]
    t0 = time.monotonic()
    client.action(sid, {'os-migrateLive': {'host': None, 'block_migration': 'auto'}})

    def running_with_progress():
        migs = client.get_json('/servers/%s/migrations' % sid)['migrations']
        if migs and migs[0]['status'] == 'running' and \
                (migs[0]['memory_processed_bytes'] or migs[0]['disk_processed_bytes']):
            return migs[0]
        return None

    mig = client.wait_until(running_with_progress, timeout=60, message='a running migration')
    client.request('DELETE', '/servers/%s/migrations/%s' % (sid, mig['id']), expect=202)
    client.wait_until(lambda: client.migrations(sid, 'live-migration')[0]['status'] ==
                      'cancelled' and client.server(sid)['OS-EXT-STS:task_state'] is None,
                      timeout=60, message='cancelled live migration')
    timings['live_migration_abort'] = time.monotonic() - t0
    server = client.server(sid)
    assert server['OS-EXT-SRV-ATTR:host'] == host and server['status'] == 'ACTIVE'
    cluster.wait_ticks(host, sid, count=1, after=last + 1)  # still running, same boot
    assert not os.path.exists(os.path.join(cluster.instances_paths[other_host(host)], sid))

    # -- force-complete a crawling live migration: it switches to post-copy -----------------
    # It crawls (too slow to finish in pre-copy) until the operator forces completion.
    last = cluster.ticks(host, sid)[-1][0]
    t0 = time.monotonic()
    start_crawling_live_migration(client, libvirt_hosts, sid, host)
    mig = client.wait_until(running_with_progress, timeout=60, message='a running migration')
    client.request('POST', '/servers/%s/migrations/%s/action' % (sid, mig['id']),
                   {'force_complete': None}, expect=202)
    client.wait_until(lambda: client.server(sid)['OS-EXT-STS:task_state'] is None and
                      client.server(sid)['OS-EXT-SRV-ATTR:host'] == other_host(host),
                      timeout=60, message='force-completed live migration')
    timings['live_migration_force_complete'] = time.monotonic() - t0
    assert client.migrations(sid, 'live-migration')[0]['status'] == 'completed'
    host = other_host(host)
    ticks = cluster.wait_ticks(host, sid, count=2)
    assert cluster.boots(host, sid) == 0 and ticks[0][0] > last

    # -- evacuate: the host's compute service dies (its libvirtd and guest run on) ------------
    cluster.stop_process(host, sig=signal.SIGKILL)
    client.request('PUT', '/os-services/force-down', {
        'host': host, 'binary': 'novalite-compute', 'forced_down': True},
        version='2.11', expect=200)
    t0 = time.monotonic()
    client.request('POST', '/servers/%s/action' % sid, {'evacuate': {}}, version='2.80',
                   expect=200)
    server = client.wait_for_server(sid, 'ACTIVE')
    dest = server['OS-EXT-SRV-ATTR:host']
    assert dest == other_host(host)
    cluster.wait_ticks(dest, sid, count=1, boots=1)  # rebuilt from the image: booted
    timings['evacuate_to_guest_userspace'] = time.monotonic() - t0
    assert client.migrations(sid, 'evacuation')[0]['status'] == 'done'
    # The old host comes back: it destroys the evacuated guest still running there, and
    # only then may it be forced up again.
    cluster.start_process(host, 'compute', host)
    client.wait_until(lambda: client.migrations(sid, 'evacuation')[0]['status'] ==
                      'completed', timeout=60, message='evacuation cleaned up')
    client.request('PUT', '/os-services/force-down', {
        'host': host, 'binary': 'novalite-compute', 'forced_down': False},
        version='2.11', expect=200)
    conn = libvirt.open(libvirt_hosts.uri(host))
    try:
        with pytest.raises(libvirt.libvirtError):
            conn.lookupByUUIDString(sid)
    finally:
        conn.close()
    assert not os.path.exists(os.path.join(cluster.instances_paths[host], sid))
    host = dest
    cluster.wait_ticks(host, sid, count=2)  # the rebuilt guest runs on

    # -- delete ---------------------------------------------------------------------------------
    client.request('DELETE', '/servers/%s' % sid, expect=204)
    client.wait_for_server(sid, 'DELETED', timeout=60)
    assert not os.path.exists(os.path.join(cluster.instances_paths[host], sid))
    print('timings (s):', {k: round(v, 1) for k, v in timings.items()})
