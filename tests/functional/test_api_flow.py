"""The REST surface against the whole in-process cloud: power, resize, cold migrate, lock."""


def test_power_resize_migrate_lock_flow(cloud):
    c = cloud
    server = c.boot('vm1')
    sid = server['id']
    detail = c.get_json('/servers/detail', version='2.100')['servers']
    assert [s['id'] for s in detail] == [sid]
    c.action(sid, {'os-stop': None})
    c.wait_for_server(sid, 'SHUTOFF')
    c.action(sid, {'os-stop': None}, expect=409)
    c.action(sid, {'os-start': None})
    c.wait_for_server(sid, 'ACTIVE')
    c.action(sid, {'reboot': {'type': 'HARD'}})
    c.wait_for_server(sid, 'ACTIVE')
    c.action(sid, {'resize': {'flavorRef': '1'}}, expect=400)
    c.action(sid, {'resize': {'flavorRef': '99'}}, expect=400)
    c.action(sid, {'confirmResize': None}, expect=409)
    c.action(sid, {'resize': {'flavorRef': '2'}})
    resized = c.wait_for_server(sid, 'VERIFY_RESIZE', version='2.47')
    assert resized['flavor']['original_name'] == 'm1.small'
    c.action(sid, {'confirmResize': None}, expect=204)
    c.wait_for_server(sid, 'ACTIVE')
    source = c.server(sid)['OS-EXT-SRV-ATTR:host']
    c.action(sid, {'migrate': {}}, version='2.56')
    c.wait_for_server(sid, 'VERIFY_RESIZE')
    assert c.server(sid)['OS-EXT-SRV-ATTR:host'] != source
    c.action(sid, {'revertResize': None})
    c.wait_for_server(sid, 'ACTIVE')
    assert c.server(sid)['OS-EXT-SRV-ATTR:host'] == source

    actions = c.get_json(f'/servers/{sid}/os-instance-actions', version='2.84')['instanceActions']
    assert [a['action'] for a in actions][:4] == ['revertResize', 'migrate', 'confirmResize',
                                                  'resize']
    migrations = c.get_json('/os-migrations', version='2.80')['migrations']
    assert {m['migration_type'] for m in migrations} == {'resize', 'migration'}

    c.action(sid, {'lock': {'locked_reason': 'audit'}}, version='2.73')
    assert c.server(sid, version='2.73')['locked_reason'] == 'audit'
    c.action(sid, {'os-stop': None}, token='demo:admin', expect=409)
    c.action(sid, {'unlock': None})
    c.request('DELETE', f'/servers/{sid}', expect=204)
    c.wait_for_server(sid, 'DELETED')
