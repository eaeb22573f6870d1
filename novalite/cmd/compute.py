"""novalite-compute: runs guests on this host; talks to the database only via conductor."""

import sys

from novalite.cmd import common

common.maybe_monkey_patch()


def main(argv=None):
    conf = common.setup(sys.argv[1:] if argv is None else argv, 'novalite-compute')
    from novalite import all_in_one, service, systemd
    node = all_in_one.ComputeNode(conf.host, transport_url=None)
    node.start()
    systemd.notify_ready()
    service.wait_for_signal([node.service])
    return 0


if __name__ == '__main__':
    sys.exit(main())
