"""Options of the [api] group: authentication, paging and response details."""

from oslo_config import cfg

GROUP = 'api'

opts = [
    cfg.StrOpt('auth_strategy', default='keystone', choices=['keystone', 'noauth2'],
               help='How the API authenticates requests: keystone (keystonemiddleware '
                    'auth_token) or noauth2 (token "user:project", user "admin" is admin; '
                    'for development and the all-in-one only).'),
    cfg.IntOpt('max_limit', default=1000, min=0,
               help='Maximum number of items one collection page returns.'),
    cfg.BoolOpt('enable_instance_password', default=True,
                help='Return an adminPass in the server create response.'),
    cfg.StrOpt('compute_link_prefix',
               help='Base URL put into links instead of the request host URL.'),
    cfg.IntOpt('listen_backlog', default=1024, min=128,
               help='Connections the listening socket of the API queues before it '
                    'accepts them; bursts beyond it are reset by the kernel.'),
    cfg.StrOpt('max_microversion', default=None,
               help='Cap the highest microversion advertised, below the highest '
                    'implemented one (for rolling upgrades). Unset: advertise all.'),
]


def register_opts(conf):
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return {GROUP: opts}
