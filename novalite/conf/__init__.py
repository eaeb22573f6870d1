"""The global configuration object with every novalite option group registered."""

from oslo_config import cfg

from novalite.conf import (
    all_in_one,
    api,
    compute,
    conductor,
    database,
    default,
    fake_driver,
    libvirt,
    notifications,
    quota,
    scheduler,
)

CONF = cfg.CONF

for _mod in (default, api, database, scheduler, compute, conductor, all_in_one,
             fake_driver, libvirt, notifications, quota):
    _mod.register_opts(CONF)
