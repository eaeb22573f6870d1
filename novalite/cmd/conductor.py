"""novalite-conductor: database proxy for computes and orchestration of builds and moves."""

import sys

from novalite.cmd import common

common.maybe_monkey_patch()


def main(argv=None):
    def manager(host):
        from novalite.conductor.manager import ConductorManager
        return ConductorManager(host)

    return common.run_db_service(sys.argv[1:] if argv is None else argv,
                                 'novalite-conductor', 'conductor', manager)


if __name__ == '__main__':
    sys.exit(main())
