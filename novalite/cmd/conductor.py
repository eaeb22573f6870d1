"""novalite-conductor: database proxy for computes and orchestration of builds and moves."""

import sys

from novalite.cmd import common

common.maybe_monkey_patch()


def main(argv=None):
    conf = common.setup(sys.argv[1:] if argv is None else argv, 'novalite-conductor')
    from novalite import all_in_one, service, systemd
    from novalite.conductor import manager
    from novalite.db import api as db
    svc = service.Service(manager.ConductorManager(conf.host), 'novalite-conductor',
                          'conductor', conf.host, register=all_in_one.db_register,
                          heartbeat=db.service_heartbeat)
    svc.start()
    systemd.notify_ready()
    service.wait_for_signal([svc])
    return 0


if __name__ == '__main__':
    sys.exit(main())
