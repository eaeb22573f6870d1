"""A compute host acts only on its own work, proven across processes: a second compute
process asks the conductor, over RabbitMQ, about an instance on another host and is
refused, and nothing changes."""

import json
import subprocess
import sys
import textwrap

import pytest

from tests.rest import RestClient, wait_until

pytestmark = pytest.mark.integration

# Runs as its own process with the cluster's configuration and another host's name.
INTRUDER = textwrap.dedent('''
    import json, sys
    from novalite.cmd import common
    conf = common.setup(['--config-file', sys.argv[1]], 'novalite-compute')
    from novalite import context, exception
    from novalite.conductor import rpcapi
    host, sid = sys.argv[2], sys.argv[3]
    me = rpcapi.HostConductor(rpcapi.ConductorAPI(), host, context.get_admin_context)
    ctxt = context.get_admin_context()
    attempts = {
        'instance_get': lambda: me.instance_get(sid),
        'record_step': lambda: me.record_step(ctxt, 'power_action_done', sid,
                                              vm_state='error'),
        'instance_destroyed': lambda: me.instance_destroyed(ctxt, sid),
        'record_progress': lambda: me.record_progress(sid, progress=50),
        'release_claim': lambda: me.release_claim(ctxt, sid),
    }
    out = {}
    for name, attempt in attempts.items():
        try:
            attempt()
            out[name] = 'accepted'
        except exception.HostNotAuthorized:
            out[name] = 'refused'
        except exception.NovaliteException as exc:
            out[name] = type(exc).__name__
    out['own_instances'] = [i['uuid'] for i in me.host_instances()]
    print('RESULT ' + json.dumps(out))
''')


def _memory_used(client):
    usages = {}
    for h in client.get_json('/os-hypervisors/detail')['hypervisors']:
        usages[h['hypervisor_hostname']] = h['memory_mb_used']
    return usages


def test_conductor_refuses_a_second_compute_process(cluster):
    client = RestClient(cluster.endpoint)
    sid = client.boot('victim', wait=False)['id']
    before = client.wait_for_server(sid, 'ACTIVE')
    owner = before['OS-EXT-SRV-ATTR:host']
    other = next(h for h in cluster.compute_hosts if h != owner)
    usage_before = _memory_used(client)

    run = subprocess.run([sys.executable, '-c', INTRUDER, cluster.conf_file, other, sid],
                         capture_output=True, text=True, timeout=120)
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith('RESULT ')), None)
    assert line, run.stdout + run.stderr
    result = json.loads(line[len('RESULT '):])

    assert {k: v for k, v in result.items() if k != 'own_instances'} == dict.fromkeys(
        ('instance_get', 'record_step', 'instance_destroyed', 'record_progress',
         'release_claim'), 'refused')
    assert sid not in result['own_instances']
    # The conductor says who it refused, and the server is untouched.
    wait_until(lambda: f'Refused compute host {other}' in cluster.log_tail('conductor', 400),
               timeout=10, message='the refusal in the conductor log')
    after = client.server(sid)
    assert (after['status'], after['OS-EXT-SRV-ATTR:host'], after['OS-EXT-STS:task_state']) \
        == ('ACTIVE', owner, None)
    assert _memory_used(client) == usage_before
    # The real owner still acts on it: a stop goes through.
    client.action(sid, {'os-stop': None})
    client.wait_for_server(sid, 'SHUTOFF')
