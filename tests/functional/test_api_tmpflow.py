import json
from tests.functional.conftest import cloud  # noqa

def test_flow(cloud):
    c = cloud
    s = c.boot('vm1')
    sid = s['id']
    for mv in ('2.1', '2.47', '2.75', '2.96', '2.100'):
        r, d = c.request('GET', f'/servers/{sid}', version=mv, expect=200)
        print(mv, sorted(d['server'].keys()))
    r, d = c.request('GET', '/servers/detail?deleted=False', version='2.100', expect=200)
    r, d = c.request('GET', '/servers?name=vm&status=ACTIVE&limit=1', version='2.100', expect=200)
    print(d)
    c.action(sid, {'os-stop': None}); c.wait_status(sid, 'SHUTOFF')
    c.action(sid, {'os-start': None}); c.wait_status(sid, 'ACTIVE')
    c.action(sid, {'reboot': {'type': 'HARD'}}); c.wait_status(sid, 'ACTIVE')
    c.action(sid, {'resize': {'flavorRef': '1'}}, expect=400)
    c.action(sid, {'resize': {'flavorRef': '2'}}); c.wait_status(sid, 'VERIFY_RESIZE')
    c.action(sid, {'confirmResize': None}, expect=204); c.wait_status(sid, 'ACTIVE')
    c.action(sid, {'confirmResize': None}, expect=409)
    c.action(sid, {'migrate': {}}, version='2.100'); c.wait_status(sid, 'VERIFY_RESIZE')
    c.action(sid, {'revertResize': None}); c.wait_status(sid, 'ACTIVE')
    pass
    pass
    c.action(sid, {'lock': None}); 
    c.action(sid, {'os-stop': None}, token='demo:' + s['tenant_id'], expect=409)
    c.action(sid, {'unlock': None})
    r, d = c.request('GET', f'/servers/{sid}/os-instance-actions', version='2.84', expect=200)
    print([a['action'] for a in d['instanceActions']])
    rid = d['instanceActions'][0]['request_id']
    r, d = c.request('GET', f'/servers/{sid}/os-instance-actions/{rid}', version='2.84', expect=200)
    print(d)
    r, d = c.request('GET', '/os-migrations', version='2.80', expect=200)
    print(d['migrations'][0])
    r, d = c.request('GET', f'/servers/{sid}/migrations', version='2.80', expect=200)
    r, d = c.request('GET', '/os-hypervisors/detail', version='2.88', expect=200)
    print(d['hypervisors'][0])
    r, d = c.request('GET', '/os-services', version='2.53', expect=200)
    print(d['services'][0])
    svc = [x for x in d['services'] if x['binary'] == 'novalite-compute'][0]
    r, d = c.request('PUT', f'/os-services/{svc["id"]}', {'status': 'disabled', 'disabled_reason': 'x'}, version='2.53', expect=200)
    r, d = c.request('PUT', '/os-services/disable', {'host': svc['host'], 'binary': 'nova-compute'}, version='2.1', expect=200)
    r, d = c.request('GET', '/limits', expect=200)
    print(d)
    c.request('DELETE', f'/servers/{sid}', expect=204)
    c.wait_status(sid, 'DELETED')
