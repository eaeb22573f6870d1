"""novalite-api: the compute REST API behind cheroot's threaded WSGI server."""

import sys

from novalite.cmd import common

common.maybe_monkey_patch()


def main(argv=None):
    import logging

    conf = common.setup(sys.argv[1:] if argv is None else argv, 'novalite-api')
    from novalite import service, systemd, wsgi_server
    from novalite.api import compute_api, wsgi
    log = logging.getLogger('novalite-api')
    app = wsgi.make_app(conf, compute_api=compute_api.API())
    if conf.api.auth_strategy == 'keystone':
        ks = conf.keystone_authtoken
        if not (ks.www_authenticate_uri or ks.auth_type):
            # Without it every request would fail inside keystonemiddleware: refuse to
            # start and say what is missing instead.
            log.error('[api] auth_strategy = keystone needs a [keystone_authtoken] '
                      'section (www_authenticate_uri, auth_type, auth_url, credentials); '
                      'for development use [api] auth_strategy = noauth2')
            return 2
    server = wsgi_server.make_server(app, conf.osapi_compute_listen,
                                     conf.osapi_compute_listen_port,
                                     conf.osapi_compute_workers)
    server.prepare()
    import threading
    t = threading.Thread(target=server.serve, daemon=True, name='http')
    t.start()
    log.info('novalite-api listening on %s:%s', *server.bind_addr[:2])
    systemd.notify_ready()
    service.wait_for_signal([], on_stop=server.stop)
    return 0


if __name__ == '__main__':
    sys.exit(main())
