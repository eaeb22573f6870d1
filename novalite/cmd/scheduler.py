"""novalite-scheduler: the FilterScheduler behind select_destinations."""

import sys

from novalite.cmd import common

common.maybe_monkey_patch()


def main(argv=None):
    conf = common.setup(sys.argv[1:] if argv is None else argv, 'novalite-scheduler')
    from novalite import all_in_one, service, systemd
    from novalite.db import api as db
    from novalite.scheduler import manager
    svc = service.Service(manager.SchedulerManager(conf.host), 'novalite-scheduler',
                          'scheduler', conf.host, register=all_in_one.db_register,
                          heartbeat=db.service_heartbeat)
    svc.start()
    systemd.notify_ready()
    service.wait_for_signal([svc])
    return 0


if __name__ == '__main__':
    sys.exit(main())
