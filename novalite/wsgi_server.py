"""The production HTTP server of novalite-api: cheroot's threaded WSGI server."""

from cheroot import wsgi


def make_server(app, host: str, port: int, threads: int = 8) -> wsgi.Server:
    server = wsgi.Server((host, port), app, numthreads=threads, server_name='novalite-api')
    # Keep-alive connections of idle clients must not pin every worker thread.
    server.timeout = 30
    return server
