"""Server create, power actions and delete through REST, end to end."""

from novalite.db import api as db


def test_boot_active_and_allocations(cloud):
    server = cloud.boot('vm1')
    assert server['status'] == 'ACTIVE'
    host = server['OS-EXT-SRV-ATTR:host']
    assert host in cloud.aio.computes
    assert server['id'] in cloud.hypervisor(host).guests
    allocs = db.get_allocations(server['id'])
    assert list(allocs.values()) == [{'VCPU': 1, 'MEMORY_MB': 512, 'DISK_GB': 1}]


def test_show_reads_the_server_its_host_and_its_group_in_one_statement(cloud):
    # A server GET is one SELECT: the instance, its host's compute service (for
    # host_status) and its server group, read together; what it shows is what the
    # list's separate reads show.
    import threading

    from sqlalchemy import event

    from novalite.db import session
    sid = cloud.boot('shown')['id']
    host = cloud.server(sid)['OS-EXT-SRV-ATTR:host']
    engine = session.get_engine()
    seen = []

    def statement(conn, cursor, text, *args):
        if threading.get_ident() == me:  # the services of the cloud run beside
            seen.append(" ".join(text.split())[:200])

    me = threading.get_ident()

    event.listen(engine, 'before_cursor_execute', statement)
    try:
        shown = cloud.server(sid, version='2.95')  # 2.96 and 2.98 add their reads
    finally:
        event.remove(engine, 'before_cursor_execute', statement)
    assert [s.split()[0] for s in seen if not s.startswith("BEGIN")] == ["SELECT"], seen
    assert shown['host_status'] == 'UP' and shown['server_groups'] == []
    for body, version, status in (
            ({'host': host, 'binary': 'novalite-compute'}, '2.1', 'MAINTENANCE'),
            ({'host': host, 'binary': 'novalite-compute', 'forced_down': True}, '2.11',
             'DOWN')):
        path = '/os-services/disable' if 'forced_down' not in body else \
            '/os-services/force-down'
        cloud.request('PUT', path, body, version=version, expect=200)
        listed = cloud.get_json('/servers/detail', version='2.16')['servers']
        assert [s['host_status'] for s in listed if s['id'] == sid] == [status]
        assert cloud.server(sid, version='2.16')['host_status'] == status
