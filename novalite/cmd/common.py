"""Start-up shared by the daemons: eventlet switch, configuration, logging."""

import os
import sys
import warnings

# oslo.messaging imports oslo.service, whose eventlet backend warns at import even when
# nothing uses eventlet; that noise is not for our operators.
warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')

_EVENTLET_PATCHED = False


def maybe_monkey_patch(argv=None) -> bool:
    """Monkey patch for eventlet when NOVALITE_EVENTLET=1 or --use-eventlet is given.

    Must run before anything imports threading-heavy modules, so it looks at the
    environment and argv itself rather than at the parsed configuration.
    """
    global _EVENTLET_PATCHED
    argv = sys.argv if argv is None else argv
    wanted = os.environ.get('NOVALITE_EVENTLET', '').lower() in ('1', 'true', 'yes') or \
        '--use-eventlet' in argv
    if wanted and not _EVENTLET_PATCHED:
        import eventlet
        eventlet.monkey_patch()
        _EVENTLET_PATCHED = True
    return _EVENTLET_PATCHED


def run_db_service(argv, binary, topic, make_manager):
    """Run a daemon that owns a database connection (conductor, scheduler) until
    SIGTERM: register, heartbeat, consume ``topic``, tell systemd it is ready."""
    conf = setup(argv, binary)
    from novalite import all_in_one, service, systemd
    from novalite.db import api as db
    svc = service.Service(make_manager(conf.host), binary, topic, conf.host,
                          register=all_in_one.db_register, heartbeat=db.service_heartbeat)
    svc.start()
    systemd.notify_ready()
    service.wait_for_signal([svc])
    return 0


def setup(argv, prog, default_config_files=None, before_logging=None):
    """Parse options and set up logging; returns the CONF object."""
    from oslo_log import log as logging

    from novalite import rpc
    from novalite.conf import CONF
    logging.register_options(CONF)
    rpc.set_defaults()
    argv = [a for a in argv if a != '--use-eventlet']
    CONF(argv, project='novalite', prog=prog, default_config_files=default_config_files)
    if before_logging:
        before_logging(CONF)
    logging.setup(CONF, 'novalite')
    from novalite import stats
    stats.start_dump_from_env()
    logging.getLogger(prog).info(
        '%s starting under %s', prog,
        'eventlet green threads' if _EVENTLET_PATCHED else 'native threads')
    return CONF
