"""novalite-scheduler: the FilterScheduler behind select_destinations."""

import sys

from novalite.cmd import common

common.maybe_monkey_patch()


def main(argv=None):
    def manager(host):
        from novalite.scheduler.manager import SchedulerManager
        return SchedulerManager(host)

    return common.run_db_service(sys.argv[1:] if argv is None else argv,
                                 'novalite-scheduler', 'scheduler', manager)


if __name__ == '__main__':
    sys.exit(main())
