"""The routes table: URL + method (+ microversion range) -> handler function."""

import routes

from novalite.api import faults, microversion
from novalite.api.handlers import (
    flavors,
    host_drains,
    hypervisors,
    images,
    instance_actions,
    limits,
    migrations,
    quota_sets,
    server_actions,
    server_groups,
    server_migrations,
    servers,
    services,
    versions,
)

# path -> {method: handler | [(min, max, handler), ...]}. Order matters: literal
# segments (``/servers/detail``) must come before the ``{id}`` routes they shadow.
ROUTES = [
    ('', {'GET': versions.version_doc}),
    ('/', {'GET': versions.version_doc}),
    ('/servers', {'GET': servers.index, 'POST': servers.create}),
    ('/servers/detail', {'GET': servers.detail}),
    ('/servers/{server_id}', {'GET': servers.show, 'PUT': servers.update,
                              'DELETE': servers.delete}),
    ('/servers/{server_id}/action', {'POST': server_actions.dispatch}),
    ('/servers/{server_id}/migrations', {'GET': [('2.23', None, server_migrations.index)]}),
    ('/servers/{server_id}/migrations/{migration_id}', {
        'GET': [('2.23', None, server_migrations.show)],
        'DELETE': [('2.24', None, server_migrations.delete)]}),
    ('/servers/{server_id}/migrations/{migration_id}/action', {
        'POST': [('2.22', None, server_migrations.action)]}),
    ('/servers/{server_id}/os-instance-actions', {'GET': instance_actions.index}),
    ('/servers/{server_id}/os-instance-actions/{request_id}', {
        'GET': instance_actions.show}),
    ('/flavors', {'GET': flavors.index, 'POST': flavors.create}),
    ('/flavors/detail', {'GET': flavors.detail}),
    ('/flavors/{flavor_id}', {'GET': flavors.show, 'DELETE': flavors.delete,
                              'PUT': [('2.55', None, flavors.update)]}),
    ('/flavors/{flavor_id}/os-extra_specs', {'GET': flavors.extra_specs_index,
                                             'POST': flavors.extra_specs_create}),
    ('/flavors/{flavor_id}/os-extra_specs/{key}', {'GET': flavors.extra_specs_show,
                                                   'PUT': flavors.extra_specs_update,
                                                   'DELETE': flavors.extra_specs_delete}),
    ('/os-hypervisors', {'GET': hypervisors.index}),
    ('/os-hypervisors/detail', {'GET': hypervisors.detail}),
    ('/os-hypervisors/statistics', {'GET': [('2.1', '2.87', hypervisors.statistics)]}),
    ('/os-hypervisors/{hypervisor_id}', {'GET': hypervisors.show}),
    ('/os-hypervisors/{hypervisor_id}/uptime', {
        'GET': [('2.1', '2.87', hypervisors.uptime)]}),
    ('/os-hypervisors/{pattern}/search', {'GET': [('2.1', '2.52', hypervisors.search)]}),
    ('/os-hypervisors/{pattern}/servers', {'GET': [('2.1', '2.52', hypervisors.servers)]}),
    ('/os-services', {'GET': services.index}),
    ('/os-services/{service_id}', {'PUT': services.update, 'DELETE': services.delete}),
    ('/os-migrations', {'GET': migrations.index}),
    ('/os-server-groups', {'GET': server_groups.index, 'POST': server_groups.create}),
    ('/os-server-groups/{group_id}', {'GET': server_groups.show,
                                      'DELETE': server_groups.delete}),
    ('/limits', {'GET': limits.show}),
    ('/os-quota-sets/{project_id}/defaults', {'GET': quota_sets.defaults}),
    ('/os-quota-sets/{project_id}/detail', {'GET': quota_sets.detail}),
    ('/os-quota-sets/{project_id}', {'GET': quota_sets.show, 'PUT': quota_sets.update,
                                     'DELETE': quota_sets.delete}),
    ('/images', {'GET': [('2.1', '2.35', images.compute_index)]}),
    ('/images/detail', {'GET': [('2.1', '2.35', images.compute_detail)]}),
    ('/images/{image_id}', {'GET': [('2.1', '2.35', images.compute_show)]}),
    ('/os-novalite-images', {'GET': images.admin_index, 'POST': images.admin_create}),
    ('/os-novalite-images/{image_id}', {'DELETE': images.admin_delete}),
    ('/os-host-drains', {'GET': host_drains.index, 'POST': host_drains.create}),
    ('/os-host-drains/{drain_id}', {'GET': host_drains.show, 'DELETE': host_drains.delete}),
]

# First path segments that name a collection; anything else in that place is taken
# as a project id prefix (``/v2.1/{project_id}/servers``).
# ``v2`` is reserved too: clients probe Glance-style ``/v2.1/v2/images/..`` paths and
# must get a 404 for them, not a project mismatch.
TOP_LEVEL = {path.split('/')[1] for path, _ in ROUTES
             if path.count('/') >= 1 and path != '/'} | {'v2', 'v2.0', 'v2.1'}


def _parse_version(text):
    return microversion.parse(text) if text else None


class Router:
    def __init__(self, table=ROUTES):
        self.mapper = routes.Mapper(explicit=True)
        self.mapper.minimization = False
        self.methods: dict[str, dict] = {}
        for index, (path, methods) in enumerate(table):
            key = 'r%d' % index
            self.mapper.connect(key, path or '/_root_without_slash_', _route=key)
            self.methods[key] = {m: ([(_parse_version(lo), _parse_version(hi), fn)
                                      for lo, hi, fn in h] if isinstance(h, list)
                                     else [(None, None, h)])
                                 for m, h in methods.items()}

    def match(self, path: str):
        """(route key, path vars) or None."""
        if path == '':
            path = '/_root_without_slash_'
        result = self.mapper.match(path)
        if result is None:
            return None
        key = result.pop('_route')
        return key, result

    def handler(self, key: str, method: str, version):
        options = self.methods[key]
        if method not in options:
            raise faults.HTTPError(405, 'The method specified is not allowed for this '
                                        'resource.',
                                   headers={'Allow': ', '.join(sorted(options))})
        for low, high, fn in options[method]:
            if (low is None or version >= low) and (high is None or version <= high):
                return fn
        raise faults.not_found('The resource could not be found.')
