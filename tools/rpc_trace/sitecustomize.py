"""Trace every RPC call, cast and dispatch of the processes that start with this folder on
PYTHONPATH and NOVALITE_RPC_TRACE_DIR set: one line per event, in a file per process,
naming the first instance uuid of the message. tools/rpc_trace_report.py turns the files
into the time between the steps of each boot.

  NOVALITE_RPC_TRACE_DIR=/tmp/trace PYTHONPATH=tools/rpc_trace \\
      python tools/bench_fleet.py --cluster --hosts 1000 --boots 200
  python tools/rpc_trace_report.py /tmp/trace

For measuring where time goes, not for production: it costs a little on every message.
"""

import os

if os.environ.get('NOVALITE_RPC_TRACE_DIR'):
    import builtins
    import re
    import sys
    import threading
    import time

    _UUID = re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}')
    _out = open(os.path.join(os.environ['NOVALITE_RPC_TRACE_DIR'],
                             'trace-%d.log' % os.getpid()), 'a', buffering=1)
    _lock = threading.Lock()

    def _log(event, method, payload):
        found = _UUID.search(repr(payload)[:4000])
        with _lock:
            _out.write('%.6f %s %s %s\n' % (time.time(), event, method,
                                            found.group(0) if found else '-'))

    _log('start', ' '.join(sys.argv)[:200].replace(' ', '_'), None)

    def _patch():
        from oslo_messaging.rpc import client, dispatcher

        do_dispatch = dispatcher.RPCDispatcher._do_dispatch
        call, cast = client._BaseCallContext.call, client._BaseCallContext.cast

        def traced_dispatch(self, endpoint, method, ctxt, args):
            _log('dispatch>', method, args)
            try:
                return do_dispatch(self, endpoint, method, ctxt, args)
            finally:
                _log('dispatch<', method, args)

        def traced(kind, send):
            def sending(self, ctxt, method, **kwargs):
                _log(kind + '>', method, kwargs)
                try:
                    return send(self, ctxt, method, **kwargs)
                finally:
                    _log(kind + '<', method, kwargs)
            return sending

        dispatcher.RPCDispatcher._do_dispatch = traced_dispatch
        client._BaseCallContext.call = traced('call', call)
        client._BaseCallContext.cast = traced('cast', cast)

    # oslo.messaging is imported late (after the configuration): patch it at the first
    # import of a novalite module that follows it.
    _import = builtins.__import__

    _patched = []

    def _importing(name, *args, **kwargs):
        module = _import(name, *args, **kwargs)
        if (not _patched and name.startswith('novalite') and
                'oslo_messaging.rpc.client' in sys.modules):
            _patched.append(True)
            builtins.__import__ = _import
            _patch()
        return module

    builtins.__import__ = _importing
