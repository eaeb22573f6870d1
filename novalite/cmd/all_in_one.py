"""novalite-all: the whole control plane in one process on its embedded defaults."""

import sys

from novalite.cmd import common

common.maybe_monkey_patch()


def main(argv=None):
    import logging

    from oslo_config import cfg

    argv = sys.argv[1:] if argv is None else argv
    from novalite.conf import CONF
    CONF.register_cli_opts([
        cfg.BoolOpt('demo', default=False,
                    help='Run a short scripted scenario against the API, then exit.'),
    ])
    CONF.set_default('auth_strategy', 'noauth2', group='api')
    def demo_logs_to_file(conf):
        # The demo's own narration goes to the terminal; the services log to a file.
        if conf.demo and not conf.log_file:
            import os
            os.makedirs(conf.state_path, exist_ok=True)
            conf.set_override('log_file', os.path.join(conf.state_path, 'novalite-all.log'))

    common.setup(argv, 'novalite-all', before_logging=demo_logs_to_file)
    from novalite import all_in_one
    log = logging.getLogger('novalite-all')
    aio = all_in_one.AllInOne()
    aio.start(with_http=True)
    log.info('novalite all-in-one: API at %s/v2.1 with %d fake compute hosts',
             aio.endpoint, aio.num_hosts)
    if CONF.demo:
        print(f'novalite all-in-one: API at {aio.endpoint}/v2.1, {aio.num_hosts} fake '
              f'compute hosts, state and log in {CONF.state_path}',
              flush=True)
    if CONF.demo:
        from novalite import demo
        try:
            rc = demo.run(aio.endpoint)
        finally:
            aio.stop()
        return rc
    from novalite import service
    service.wait_for_signal([], on_stop=aio.stop)
    return 0


if __name__ == '__main__':
    sys.exit(main())
