"""Options of the [all_in_one] group used by novalite-all."""

from oslo_config import cfg

GROUP = 'all_in_one'

opts = [
    cfg.IntOpt('compute_hosts', default=3, min=1, max=10000,
               help='Fake compute hosts started in the all-in-one process, named '
                    'compute1..computeN.'),
    cfg.StrOpt('transport_url', default='inproc://',
               help='Transport used between the services of the all-in-one process.'),
    cfg.BoolOpt('register_default_image', default=True,
                help='Register a small default image ("cirros") if none exists.'),
]


def register_opts(conf):
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return {GROUP: opts}
