"""The scripted scenario of ``novalite-all --demo``: a short tour a newcomer can watch.

It talks to the API over HTTP exactly like any client would (noauth2 admin token).
"""

import sys
import time

import requests

TOKEN = 'admin:admin'
MV = '2.80'


class Demo:
    def __init__(self, endpoint, out=sys.stdout):
        self.base = endpoint.rstrip('/') + '/v2.1'
        self.out = out
        self.http = requests.Session()
        self.http.headers.update({'X-Auth-Token': TOKEN,
                                  'OpenStack-API-Version': f'compute {MV}',
                                  'Content-Type': 'application/json'})

    def say(self, text=''):
        print(text, file=self.out, flush=True)

    def call(self, method, path, body=None, expect=(200, 202, 204)):
        resp = self.http.request(method, self.base + path, json=body, timeout=30)
        if resp.status_code not in expect:
            raise RuntimeError(f'{method} {path} -> {resp.status_code}: {resp.text[:300]}')
        return resp.json() if resp.content else None

    def server(self, sid):
        return self.call('GET', f'/servers/{sid}')['server']

    def wait(self, sid, status, timeout=30):
        start = time.perf_counter()
        seen = []
        while True:
            s = self.server(sid)
            if not seen or seen[-1] != s['status']:
                seen.append(s['status'])
            if s['status'] == status and s['OS-EXT-STS:task_state'] is None:
                ms = (time.perf_counter() - start) * 1000
                return s, ms, seen
            if s['status'] == 'ERROR' and status != 'ERROR':
                raise RuntimeError(f"server {sid} went to ERROR: {s.get('fault')}")
            if time.perf_counter() - start > timeout:
                raise RuntimeError(f'timed out waiting for {status}; seen {seen}')
            time.sleep(0.005)

    def action(self, sid, body):
        self.call('POST', f'/servers/{sid}/action', body)

    def delete_and_wait(self, ids):
        for x in ids:
            self.call('DELETE', f'/servers/{x}', expect=(204, 404))
        for x in ids:
            start = time.perf_counter()
            while self.http.get(f'{self.base}/servers/{x}').status_code != 404:
                if time.perf_counter() - start > 30:
                    raise RuntimeError('delete timed out')
                time.sleep(0.005)

    def run(self):
        # Servers an interrupted earlier run left behind would eat the quota.
        leftovers = [s['id'] for s in self.call('GET', '/servers')['servers']
                     if s['name'] in ('web-1', 'too-big')]
        self.delete_and_wait(leftovers)
        v = self.call('GET', '')['version']
        self.say(f"== novalite compute API {v['id']} (microversions {v['min_version']} "
                 f"to {v['version']})")
        hyps = self.call('GET', '/os-hypervisors')['hypervisors']
        self.say(f"== {len(hyps)} hypervisors: " + ', '.join(
            f"{h['hypervisor_hostname']} ({h['state']})" for h in hyps))
        flavors = self.call('GET', '/flavors/detail')['flavors']
        self.say('== flavors: ' + ', '.join(
            f"{f['name']} ({f['vcpus']} vCPU, {f['ram']} MB)" for f in flavors))
        image = self.http.get(self.base.rsplit('/v2.1', 1)[0] + '/image/v2/images',
                              timeout=30).json()['images'][0]
        self.say(f"== image: {image['name']}")

        self.say('\n-- boot server "web-1" with m1.small')
        sid = self.call('POST', '/servers', {'server': {
            'name': 'web-1', 'flavorRef': '2', 'imageRef': image['id'],
            'networks': 'none'}})['server']['id']
        s, ms, seen = self.wait(sid, 'ACTIVE')
        host0 = s['OS-EXT-SRV-ATTR:host']
        self.say(f"   {' -> '.join(seen)} on {host0} in {ms:.0f} ms")

        self.say('-- resize web-1 to m1.medium')
        self.action(sid, {'resize': {'flavorRef': '3'}})
        s, ms, seen = self.wait(sid, 'VERIFY_RESIZE')
        self.say(f"   {' -> '.join(seen)} on {s['OS-EXT-SRV-ATTR:host']} in {ms:.0f} ms, "
                 f"flavor now {s['flavor']['original_name']}")
        self.action(sid, {'confirmResize': None})
        s, ms, seen = self.wait(sid, 'ACTIVE')
        self.say(f'   confirmed: ACTIVE in {ms:.0f} ms')
        host1 = s['OS-EXT-SRV-ATTR:host']

        self.say('-- cold migrate web-1, then revert')
        self.action(sid, {'migrate': None})
        s, ms, seen = self.wait(sid, 'VERIFY_RESIZE')
        self.say(f"   {' -> '.join(seen)}: {host1} -> {s['OS-EXT-SRV-ATTR:host']} "
                 f"in {ms:.0f} ms")
        self.action(sid, {'revertResize': None})
        s, ms, seen = self.wait(sid, 'ACTIVE')
        self.say(f"   reverted: back on {s['OS-EXT-SRV-ATTR:host']} in {ms:.0f} ms")

        self.say('-- live migrate web-1 (scheduler picks the destination)')
        self.action(sid, {'os-migrateLive': {'host': None, 'block_migration': 'auto'}})
        s, ms, seen = self.wait(sid, 'ACTIVE')
        self.say(f"   {' -> '.join(seen)}: now on {s['OS-EXT-SRV-ATTR:host']} "
                 f"in {ms:.0f} ms")

        self.say('\n-- migrations of web-1')
        migs = self.call('GET', f'/os-migrations?instance_uuid={sid}')['migrations']
        for m in sorted(migs, key=lambda m: m['id']):
            self.say(f"   #{m['id']} {m['migration_type']:<15} {m['status']:<10} "
                     f"{m['source_compute']} -> {m['dest_compute']}")
        self.say('-- instance actions of web-1')
        for a in reversed(self.call('GET', f'/servers/{sid}/os-instance-actions')
                          ['instanceActions']):
            detail = self.call('GET', f"/servers/{sid}/os-instance-actions/"
                                      f"{a['request_id']}")['instanceAction']
            events = ', '.join(e['event'] for e in reversed(detail.get('events', [])))
            self.say(f"   {a['action']:<15} {a['message'] or 'ok':<5} {events}")

        self.say('\n-- boot a server no host can hold (flavor with 40 GB of RAM)')
        self.call('DELETE', '/flavors/huge', expect=(202, 404))
        self.call('POST', '/flavors', {'flavor': {'name': 'demo.huge', 'ram': 40960,
                                                  'vcpus': 2, 'disk': 10, 'id': 'huge'}})
        big = self.call('POST', '/servers', {'server': {
            'name': 'too-big', 'flavorRef': 'huge', 'imageRef': image['id'],
            'networks': 'none'}})['server']['id']
        s, _, _ = self.wait(big, 'ERROR')
        self.say(f"   ERROR: {s['fault']['message'][:120]}")
        self.say('   why (admin view of the fault details):')
        for line in (s['fault'].get('details') or '').splitlines()[:8]:
            self.say('     ' + line)

        self.say('\n-- clean up')
        self.delete_and_wait([sid, big])
        self.call('DELETE', '/flavors/huge')
        self.say('   all servers deleted. Done.')
        return 0


def run(endpoint, out=sys.stdout) -> int:
    try:
        return Demo(endpoint, out).run()
    except Exception as e:
        print(f'demo failed: {e}', file=out)
        return 1
