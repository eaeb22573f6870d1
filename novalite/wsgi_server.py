"""The production HTTP server of novalite-api: cheroot's threaded WSGI server."""

from cheroot import wsgi


def make_server(app, host: str, port: int, threads: int = 8,
                backlog: int | None = None) -> wsgi.Server:
    if backlog is None:
        from novalite.conf import CONF
        backlog = CONF.api.listen_backlog
    # cheroot's own default queue is 5: a burst of clients beyond that is reset.
    server = wsgi.Server((host, port), app, numthreads=threads, server_name='novalite-api',
                         request_queue_size=backlog)
    # Keep-alive connections of idle clients must not pin every worker thread.
    server.timeout = 30
    return server
