"""Run the daemons as separate OS processes from one generated configuration.

Used by the integration tests and the benchmarks: one api, one conductor, one
scheduler and N computes, each its own process, over a real broker and database.
"""

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _write_conf_file(path, sections: dict, options: dict) -> None:
    """Write ``sections`` ({group: {name: value}}) and ``options`` ({'group.name' or
    'name' (DEFAULT): value}, written over them) as an oslo.config file."""
    sections = {group: dict(opts) for group, opts in sections.items()}
    for key, value in options.items():
        group, _, name = key.rpartition('.')
        sections.setdefault(group or 'DEFAULT', {})[name] = value
    with open(path, 'w') as f:
        for group, opts in sections.items():
            f.write(f'[{group}]\n')
            for k, v in opts.items():
                f.write(f'{k} = {v}\n')
            f.write('\n')


class Cluster:
    def __init__(self, workdir, db_url, transport_url, computes=2, extra_conf=None,
                 report_interval=1, service_down_time=6, host_transport_urls=None):
        self.workdir = str(workdir)
        self.db_url = db_url
        self.transport_url = transport_url
        self.compute_hosts = [f'compute{i}' for i in range(1, computes + 1)]
        self.extra_conf = extra_conf or {}
        # A compute host may talk to the broker as its own user (see the README's
        # security notes); the others use ``transport_url``.
        self.host_transport_urls = host_transport_urls or {}
        self.report_interval = report_interval
        self.service_down_time = service_down_time
        self.port = free_port()
        self.exchange = 'novalite-' + uuid.uuid4().hex[:8]
        self.procs: dict[str, subprocess.Popen] = {}
        os.makedirs(self.workdir, exist_ok=True)
        self.conf_file = os.path.join(self.workdir, 'novalite.conf')

    @property
    def endpoint(self):
        return f'http://127.0.0.1:{self.port}'

    def write_conf(self):
        sections = {
            'DEFAULT': {'transport_url': self.transport_url, 'state_path': self.workdir,
                        'report_interval': self.report_interval,
                        'service_down_time': self.service_down_time,
                        'osapi_compute_listen': '127.0.0.1',
                        'osapi_compute_listen_port': self.port, 'debug': 'false',
                        'periodic_interval': 1,
                        # Each cluster talks on its own exchange: several clusters (or
                        # leftovers of a crashed run) on one broker never mix.
                        'control_exchange': self.exchange},
            'database': {'connection': self.db_url},
            'api': {'auth_strategy': 'noauth2'},
            'compute': {'compute_driver': 'fake', 'resource_update_interval': 2},
            'fake_driver': {'persist': 'true'},
            'oslo_messaging_rabbit': {'rabbit_retry_interval': 1},
        }
        _write_conf_file(self.conf_file, sections, self.extra_conf)

    def _cmd(self, module, host=None):
        cmd = [sys.executable, '-m', f'novalite.cmd.{module}', '--config-file',
               self.conf_file]
        if host:
            host_conf = os.path.join(self.workdir, f'host-{host}.conf')
            with open(host_conf, 'w') as f:
                f.write(f'[DEFAULT]\nhost = {host}\n')
                if host in self.host_transport_urls:
                    f.write(f'transport_url = {self.host_transport_urls[host]}\n')
            cmd += ['--config-file', host_conf]
        return cmd

    def db_sync(self):
        subprocess.run([sys.executable, '-m', 'novalite.cmd.manage', '--config-file',
                        self.conf_file, 'db', 'sync'], check=True, capture_output=True)
        subprocess.run([sys.executable, '-m', 'novalite.cmd.manage', '--config-file',
                        self.conf_file, 'image', 'register', 'cirros', 'fake://cirros'],
                       check=True, capture_output=True)

    def start_process(self, name, module, host=None, env=None, conf=None):
        """Start ``name`` running ``novalite.cmd.<module>`` as ``host``; ``conf`` holds
        options of this process alone (``'group.name'`` keys, as ``extra_conf``)."""
        cmd = self._cmd(module, host)
        if conf:
            own = os.path.join(self.workdir, f'process-{name}.conf')
            _write_conf_file(own, {}, conf)
            cmd += ['--config-file', own]
        log = open(os.path.join(self.workdir, f'{name}.log'), 'ab')
        if not self.procs:
            atexit.register(self.stop)
        self.procs[name] = subprocess.Popen(cmd, stdout=log,
                                            stderr=subprocess.STDOUT,
                                            env={**os.environ, **(env or {})})
        return self.procs[name]

    def start(self, env=None, timeout=60):
        self.write_conf()
        self.db_sync()
        self.start_process('conductor', 'conductor', 'ctl', env)
        self.start_process('scheduler', 'scheduler', 'ctl', env)
        for host in self.compute_hosts:
            self.start_process(host, 'compute', host, env)
        self.start_process('api', 'api', 'ctl', env)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=60, computes_up=None):
        """Until the API answers and ``computes_up`` (default: every) compute is up."""
        want = len(self.compute_hosts) if computes_up is None else computes_up
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise RuntimeError(f'{name} exited with {p.returncode}:\n' +
                                       self.log_tail(name))
            try:
                r = requests.get(self.endpoint + '/v2.1/os-hypervisors',
                                 headers={'X-Auth-Token': 'admin:admin'}, timeout=2)
                if r.ok and sum(h['state'] == 'up' for h in r.json()['hypervisors']) \
                        >= want:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError('cluster did not become ready:\n' + '\n'.join(
            f'--- {n}\n{self.log_tail(n)}' for n in self.procs))

    def log_tail(self, name, lines=30):
        path = os.path.join(self.workdir, f'{name}.log')
        try:
            with open(path, errors='replace') as f:
                return ''.join(f.readlines()[-lines:])
        except OSError:
            return ''

    def stop_process(self, name, sig=signal.SIGTERM, timeout=20):
        p = self.procs.pop(name, None)
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return p.returncode

    def stop(self, timeout=20):
        """Stop every process: all are signalled first, so their graceful stops overlap."""
        procs, self.procs = self.procs, {}
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in procs.values():
            try:
                p.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
