"""The global configuration object with every novalite option group registered."""

from oslo_config import cfg
from oslo_middleware import sizelimit

from novalite.conf import (
    all_in_one,
    api,
    compute,
    conductor,
    database,
    default,
    fake_driver,
    libvirt,
    migration,
    notifications,
    quota,
    scheduler,
)

CONF = cfg.CONF

for _mod in (default, api, database, scheduler, compute, conductor, all_in_one,
             fake_driver, libvirt, migration, notifications, quota):
    _mod.register_opts(CONF)

# The API's body size limit ([oslo_middleware] max_request_body_size) is read by
# oslo.middleware; registered here too so it can be set before the API app exists.
CONF.register_opts(sizelimit.OPTS, group='oslo_middleware')
