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
    scheduler,
)

CONF = cfg.CONF

for _mod in (default, api, database, scheduler, compute, conductor, all_in_one,
             fake_driver, libvirt, notifications):
    _mod.register_opts(CONF)
