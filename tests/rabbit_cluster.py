"""A throwaway three-node RabbitMQ cluster on this machine, for tests of the bus.

Each node is a ``rabbitmq-server`` of the installed package run as the current user
with its own node name (``novalite-<token>-<n>@localhost``), AMQP and distribution
ports, data, logs and configuration under one temporary directory, and an Erlang
cookie of its own in that directory's ``home/.erlang.cookie`` (``HOME`` points there
for the servers and for ``rabbitmqctl``). Nodes 2.. join node 1. The machine's own
broker (and its epmd, which the nodes share) is left alone: ``stop()`` ends only the
process groups this module started, by their ids. Where no epmd runs yet, the first
node starts one, which outlives the cluster as epmd always does.

Usage::

    rc = RabbitCluster(tmp_path / 'rabbit').start()
    url = rc.transport_url()            # rabbit://u:p@127.0.0.1:P1,u:p@...:P2,.../vhost
    rc.kill(2)                          # SIGKILL node 2, the others keep the queues
    rc.ctl(1, 'list_queues', '-p', rc.vhost, 'name', 'type')
    rc.stop()
"""

import os
import secrets
import shutil
import signal
import subprocess
import time
import uuid

from novalite.cluster import free_port

SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server'
CTL = '/usr/lib/rabbitmq/bin/rabbitmqctl'


def missing() -> str | None:
    """Why a cluster cannot be started here, or None."""
    for path in (SERVER, CTL):
        if not os.access(path, os.X_OK):
            return f'{path} not found (install the rabbitmq-server package)'
    return None


class RabbitCluster:
    def __init__(self, workdir, nodes: int = 3, user: str = 'novalite',
                 password: str | None = None, vhost: str = 'novalite'):
        self.workdir = str(workdir)
        self.token = uuid.uuid4().hex[:6]
        self.user = user
        self.password = password or secrets.token_hex(8)
        self.vhost = vhost
        self.names = [f'novalite-{self.token}-{i}@localhost' for i in range(1, nodes + 1)]
        self.ports = [free_port() for _ in self.names]
        self.dist_ports = [free_port() for _ in self.names]
        self.home = os.path.join(self.workdir, 'home')
        self.procs: dict[int, subprocess.Popen] = {}

    # ------------------------------------------------------------------ set-up

    def _node_dir(self, n: int) -> str:
        return os.path.join(self.workdir, f'node{n}')

    def _env(self, n: int | None = None) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith('RABBITMQ_')}
        env.update({
            'HOME': self.home,
            # Not the machine's /etc/rabbitmq/rabbitmq-env.conf (its node name, ports).
            'RABBITMQ_CONF_ENV_FILE': os.path.join(self.workdir, 'rabbitmq-env.conf'),
            'LC_ALL': 'C.UTF-8', 'LANG': 'C.UTF-8',
        })
        env.pop('ERL_FLAGS', None)
        if n is None:
            return env
        base = self._node_dir(n)
        env.update({
            'RABBITMQ_NODENAME': self.names[n - 1],
            'RABBITMQ_NODE_IP_ADDRESS': '127.0.0.1',
            'RABBITMQ_NODE_PORT': str(self.ports[n - 1]),
            'RABBITMQ_DIST_PORT': str(self.dist_ports[n - 1]),
            'RABBITMQ_CONFIG_FILE': os.path.join(base, 'rabbitmq.conf'),
            'RABBITMQ_ADVANCED_CONFIG_FILE': os.path.join(base, 'advanced.config'),
            'RABBITMQ_ENABLED_PLUGINS_FILE': os.path.join(base, 'enabled_plugins'),
            'RABBITMQ_MNESIA_BASE': os.path.join(base, 'mnesia'),
            'RABBITMQ_LOG_BASE': os.path.join(base, 'log'),
            'RABBITMQ_PID_FILE': os.path.join(base, 'rabbit.pid'),
            'RABBITMQ_LOGS': os.path.join(base, 'log', 'rabbit.log'),
            'RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS':
                '-kernel inet_dist_use_interface {127,0,0,1}',
        })
        return env

    def _write_files(self):
        os.makedirs(self.home, exist_ok=True)
        cookie = os.path.join(self.home, '.erlang.cookie')
        with open(cookie, 'w') as f:
            f.write(secrets.token_hex(16).upper())
        os.chmod(cookie, 0o400)
        open(os.path.join(self.workdir, 'rabbitmq-env.conf'), 'w').close()
        for n in range(1, len(self.names) + 1):
            base = self._node_dir(n)
            os.makedirs(os.path.join(base, 'log'), exist_ok=True)
            with open(os.path.join(base, 'rabbitmq.conf'), 'w') as f:
                f.write(f'listeners.tcp.default = 127.0.0.1:{self.ports[n - 1]}\n'
                        'loopback_users = none\n'
                        'log.console = false\n'
                        'log.file.level = info\n'
                        # No disk alarm on a small test machine.
                        'disk_free_limit.absolute = 50MB\n')
            with open(os.path.join(base, 'advanced.config'), 'w') as f:
                f.write('[].\n')
            with open(os.path.join(base, 'enabled_plugins'), 'w') as f:
                f.write('[].\n')

    def ctl(self, n: int, *args, timeout: float = 60, check: bool = True) -> str:
        """``rabbitmqctl -n <node n> args...``; its stdout."""
        r = subprocess.run([CTL, '-q', '-n', self.names[n - 1], *args], env=self._env(),
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode:
            raise RuntimeError(f'rabbitmqctl -n {self.names[n - 1]} {" ".join(args)}: '
                               f'exit {r.returncode}: {r.stderr.strip() or r.stdout.strip()}'
                               f'\n{self.log_tail(n)}')
        return r.stdout

    def start_node(self, n: int):
        out = open(os.path.join(self._node_dir(n), 'log', 'stdout.log'), 'ab')
        # A session of its own: stop() and kill() end exactly this process group.
        self.procs[n] = subprocess.Popen([SERVER], env=self._env(n), stdout=out,
                                         stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         cwd=self._node_dir(n))
        out.close()

    def await_node(self, n: int, timeout: float = 90):
        deadline = time.monotonic() + timeout
        while True:
            p = self.procs.get(n)
            if p is not None and p.poll() is not None:
                raise RuntimeError(f'RabbitMQ node {self.names[n - 1]} exited with '
                                   f'{p.returncode}:\n{self.log_tail(n)}')
            try:
                self.ctl(n, 'await_startup', '--timeout', '10', timeout=20)
                return
            except (RuntimeError, subprocess.TimeoutExpired):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def start(self, timeout: float = 120):
        """Start every node, cluster them on node 1, add the user and vhost."""
        if why := missing():
            raise RuntimeError(why)
        self._write_files()
        try:
            for n in range(1, len(self.names) + 1):
                self.start_node(n)
            for n in range(1, len(self.names) + 1):
                self.await_node(n, timeout)
            for n in range(2, len(self.names) + 1):
                self.ctl(n, 'stop_app')
                self.ctl(n, 'join_cluster', self.names[0])
                self.ctl(n, 'start_app')
            self.ctl(1, 'add_user', self.user, self.password)
            self.ctl(1, 'add_vhost', self.vhost)
            self.ctl(1, 'set_permissions', '-p', self.vhost, self.user, '.*', '.*', '.*')
        except BaseException:
            self.stop()
            raise
        return self

    # ------------------------------------------------------------------- use

    def running(self) -> list[int]:
        return [n for n, p in sorted(self.procs.items()) if p.poll() is None]

    def transport_url(self, nodes: list[int] | None = None) -> str:
        """oslo.messaging URL naming every node (or ``nodes``), in that order."""
        hosts = ','.join(f'{self.user}:{self.password}@127.0.0.1:{self.ports[n - 1]}'
                         for n in nodes or range(1, len(self.names) + 1))
        return f'rabbit://{hosts}/{self.vhost}'

    def node_of_port(self, port: int) -> int:
        return self.ports.index(port) + 1

    def queues(self, n: int, *fields: str) -> list[list[str]]:
        """Rows of ``list_queues`` on node ``n`` for the test vhost."""
        out = self.ctl(n, 'list_queues', '-p', self.vhost, '--no-table-headers', *fields)
        return [line.split('\t') for line in out.splitlines() if line.strip()]

    def connections(self, n: int) -> dict[int, int]:
        """How many client connections each node holds (node number -> count),
        as node ``n`` sees the cluster."""
        out = self.ctl(n, 'list_connections', '--no-table-headers', 'port')
        counts = {m: 0 for m in range(1, len(self.names) + 1)}
        for line in out.splitlines():
            if line.strip().isdigit() and int(line) in self.ports:
                counts[self.node_of_port(int(line))] += 1
        return counts

    def _signal(self, n: int, sig) -> subprocess.Popen | None:
        p = self.procs.get(n)
        if p is None or p.poll() is not None:
            return None
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        return p

    def _reap(self, p: subprocess.Popen | None, timeout: float = 30):
        if p is None:
            return
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()

    def kill(self, n: int, sig=signal.SIGKILL):
        """Signal node ``n``'s process group (SIGKILL: a crash) and reap it."""
        self._reap(self._signal(n, sig))

    def stop(self, cleanup: bool = False):
        """Stop every node this cluster started: SIGTERM to all, SIGKILL to any still
        running 30 s later."""
        for p in [self._signal(n, signal.SIGTERM) for n in list(self.procs)]:
            self._reap(p)
        self.procs.clear()
        if cleanup:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, n: int, lines: int = 20) -> str:
        text = ''
        for name in ('stdout.log', 'rabbit.log'):
            try:
                with open(os.path.join(self._node_dir(n), 'log', name),
                          errors='replace') as f:
                    text += f'--- {name}\n' + ''.join(f.readlines()[-lines:])
            except OSError:
                pass
        return text
