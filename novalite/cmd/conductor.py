"""novalite-conductor: database proxy for computes and orchestration of builds and moves."""

import sys

from novalite.cmd import common

common.maybe_monkey_patch()


def main(argv=None):
    def manager(host):
        from novalite.conductor import policies
        from novalite.conductor.manager import ConductorManager
        try:
            return ConductorManager(host)
        except policies.PolicyFileError as e:
            raise SystemExit(f'novalite-conductor: [migration] policy_file: {e}')

    return common.run_db_service(sys.argv[1:] if argv is None else argv,
                                 'novalite-conductor', 'conductor', manager)


if __name__ == '__main__':
    sys.exit(main())
