"""A small REST client for tests against a live endpoint."""

import time

import requests


class Client:
    def __init__(self, endpoint, token='admin:admin', microversion='2.80'):
        self.endpoint = endpoint.rstrip('/')
        self.base = self.endpoint + '/v2.1'
        self.http = requests.Session()
        self.http.headers.update({'X-Auth-Token': token,
                                  'OpenStack-API-Version': f'compute {microversion}'})

    def request(self, method, path, body=None, expect=None):
        r = self.http.request(method, self.base + path, json=body, timeout=30)
        if expect is not None and r.status_code != expect:
            raise AssertionError(f'{method} {path}: {r.status_code} {r.text[:400]}')
        return r

    def get(self, path):
        return self.request('GET', path, expect=200).json()

    def server(self, sid):
        return self.get(f'/servers/{sid}')['server']

    def boot(self, name, flavor='1'):
        image = self.http.get(self.endpoint + '/image/v2/images',
                              timeout=30).json()['images'][0]['id']
        r = self.request('POST', '/servers', {'server': {
            'name': name, 'flavorRef': flavor, 'imageRef': image, 'networks': 'none'}},
            expect=202)
        return r.json()['server']['id']

    def action(self, sid, body, expect=202):
        return self.request('POST', f'/servers/{sid}/action', body, expect=expect)

    def wait(self, sid, status, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            r = self.request('GET', f'/servers/{sid}')
            if r.status_code == 404 and status == 'DELETED':
                return None
            s = r.json()['server']
            if s['status'] == status and s['OS-EXT-STS:task_state'] is None:
                return s
            if s['status'] == 'ERROR' and status != 'ERROR':
                raise AssertionError(f'ERROR: {s.get("fault")}')
            if time.monotonic() > deadline:
                raise AssertionError(f'timeout waiting for {status}: {s["status"]} '
                                     f'{s["OS-EXT-STS:task_state"]}')
            time.sleep(0.02)

    def wait_for(self, predicate, timeout=30, what='condition'):
        deadline = time.monotonic() + timeout
        while True:
            v = predicate()
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError(f'timeout waiting for {what}')
            time.sleep(0.05)
