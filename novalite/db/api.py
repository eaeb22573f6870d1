"""The database API in one namespace: every table module's public functions.

Callers write ``from novalite.db import api as db``; the functions live in one module per
table (services, placement, flavors, images, instances, actions, migration_records,
quotas, server_groups, drains, steps).
"""

from novalite.db.actions import (  # noqa: F401
    action_event_finish,
    action_event_start,
    action_events_get,
    action_get_by_request_id,
    action_start,
    actions_get,
    fault_create,
    fault_get_latest,
)
from novalite.db.common import UNSET, as_list, coerce, to_dict  # noqa: F401
from novalite.db.drains import (  # noqa: F401
    drain_add_servers,
    drain_cancel,
    drain_create,
    drain_finish,
    drain_get,
    drain_get_all,
    drain_migrations_under_way,
    drain_server_update,
    drain_take,
)
from novalite.db.flavors import (  # noqa: F401
    DEFAULT_FLAVORS,
    ensure_default_flavors,
    flavor_create,
    flavor_destroy,
    flavor_extra_spec_delete,
    flavor_extra_specs_update,
    flavor_get,
    flavor_get_all,
    flavor_get_by_flavorid,
    flavor_projects,
    flavor_record,
    flavor_update,
)
from novalite.db.images import (  # noqa: F401
    image_create,
    image_delete,
    image_get,
    image_get_all,
)
from novalite.db.instances import (  # noqa: F401
    instance_create,
    instance_destroy,
    instance_get,
    instance_get_all_by_host,
    instance_get_all_filtered,
    instance_get_for_view,
    instance_update,
    request_spec_get,
)
from novalite.db.migration_records import (  # noqa: F401
    finished_cold_move,
    live_migrations_in_flight,
    migration_create,
    migration_get,
    migration_get_all,
    migration_log_append,
    migration_update,
)
from novalite.db.placement import (  # noqa: F401
    all_consumers,
    claim_resources,
    compute_node_get,
    compute_node_get_all,
    compute_node_get_by_host_and_node,
    compute_node_update,
    compute_nodes_update,
    delete_allocations,
    get_allocations,
    get_allocations_full,
    move_allocations,
    provider_inventories,
    provider_usages,
)
from novalite.db.quotas import (  # noqa: F401
    COUNTED_RESOURCES,
    DEFAULT_QUOTAS,
    QUOTA_RESOURCES,
    quota_check,
    quota_defaults,
    quota_delete_all,
    quota_get_all,
    quota_recheck,
    quota_set,
    quota_usage,
)
from novalite.db.server_groups import (  # noqa: F401
    check_host,
    group_add_members,
    group_count,
    group_create,
    group_delete,
    group_get,
    group_get_all,
    group_member_count,
    group_uuid_of,
)
from novalite.db.services import (  # noqa: F401
    compute_is_up,
    compute_node_and_up,
    service_create,
    service_delete,
    service_get,
    service_get_all,
    service_heartbeat,
    service_is_up,
    service_update,
)
