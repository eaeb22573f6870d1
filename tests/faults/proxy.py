"""A small threaded TCP proxy that can cut every connection and refuse new ones, so a
test can take PostgreSQL or RabbitMQ away from a cluster without touching the service."""

import socket
import threading

_CHUNK = 65536


class TcpProxy:
    """Forward ``127.0.0.1:port`` to ``target``; ``cut()`` drops every connection and
    closes the listening socket (new connections are refused), ``restore()`` listens on
    the same port again."""

    def __init__(self, target_host, target_port, listen_host='127.0.0.1', port=0,
                 connect_timeout=5.0):
        if not isinstance(target_port, int) or not 0 < target_port < 65536:
            raise ValueError(f'target port must be an int in 1..65535, not {target_port!r}')
        self.target = (target_host, target_port)
        self.listen_host = listen_host
        self.port = port
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._up = False
        self.accepted = 0

    @property
    def address(self):
        return self.listen_host, self.port

    @property
    def is_up(self):
        return self._up

    def start(self):
        """Listen (on a free port the first time) and forward; returns self."""
        with self._lock:
            if self._up:
                return self
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                listener.bind((self.listen_host, self.port))
            except OSError:
                listener.close()
                raise
            listener.listen(128)
            self.port = listener.getsockname()[1]
            self._listener = listener
            self._up = True
        threading.Thread(target=self._accept_loop, args=(listener,), daemon=True,
                         name=f'proxy-accept-{self.port}').start()
        return self

    restore = start

    def cut(self):
        """Close the listening socket and every open connection, both sides."""
        with self._lock:
            self._up = False
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, set()
        if listener is not None:
            _close(listener)
        for sock in conns:
            _close(sock)

    stop = cut

    def _accept_loop(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by cut()
                return
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client):
        try:
            upstream = socket.create_connection(self.target, timeout=self.connect_timeout)
            upstream.settimeout(None)
        except OSError:
            _close(client)
            return
        with self._lock:
            if not self._up:
                refused = True
            else:
                refused = False
                self._conns.update((client, upstream))
                self.accepted += 1
        if refused:
            _close(client)
            _close(upstream)
            return
        threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
        self._pipe(client, upstream)

    def _pipe(self, src, dst):
        try:
            while True:
                data = src.recv(_CHUNK)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)
            _close(src)
            _close(dst)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cut()


def _close(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
