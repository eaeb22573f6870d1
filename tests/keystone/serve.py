"""Serve Keystone's public WSGI application from one config file on 127.0.0.1:PORT.

Run by tests/keystone/conftest.py as ``python -m tests.keystone.serve CONFIG PORT``; the
fixture stops it by its PID.
"""

import os
import sys


def main(argv):
    config, port = argv[1], int(argv[2])
    os.environ['OS_KEYSTONE_CONFIG_FILES'] = config
    # Keystone parses sys.argv as its own command line.
    sys.argv = argv[:1]
    from cheroot import wsgi
    from keystone.server import wsgi as keystone_wsgi
    app = keystone_wsgi.initialize_public_application()
    server = wsgi.Server(('127.0.0.1', port), app, numthreads=8,
                         server_name='keystone-test', request_queue_size=128)
    server.safe_start()


if __name__ == '__main__':
    main(sys.argv)
