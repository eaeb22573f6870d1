"""Option listing for oslo-config-generator (entry point oslo.config.opts: novalite)."""

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


def list_opts():
    groups = {}
    for mod in (default, api, database, scheduler, compute, conductor, all_in_one,
                fake_driver, libvirt, migration, notifications, quota):
        for group, opts in mod.list_opts().items():
            groups.setdefault(group, []).extend(opts)
    return sorted(groups.items(), key=lambda kv: (kv[0] != 'DEFAULT', kv[0]))
