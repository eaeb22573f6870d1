"""Response body schemas (JSON Schema 2020-12) for the OpenAPI document.

They describe the representations the views build at the highest advertised
microversion; keys that depend on policy (admin-only attributes) or on state
(``progress``, ``fault``) are optional. Nested objects stay open
(``additionalProperties`` is not restricted) unless the shape is fixed everywhere.
"""

STR = {'type': 'string'}
STR_OR_NULL = {'type': ['string', 'null']}
INT = {'type': 'integer'}
INT_OR_NULL = {'type': ['integer', 'null']}
BOOL = {'type': 'boolean'}
OBJ = {'type': 'object'}
# Server timestamps end in Z; migrations/actions/services carry microseconds, no zone.
TIME_Z = {'type': 'string', 'pattern': r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$'}
TIME_MICRO = {'type': 'string', 'pattern': r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$'}
TIME_MICRO_OR_NULL = {'anyOf': [TIME_MICRO, {'type': 'null'}]}


def obj(props: dict, required=(), closed: bool = False) -> dict:
    out = {'type': 'object', 'properties': props, 'required': list(required)}
    if closed:
        out['additionalProperties'] = False
    return out


def array(items: dict) -> dict:
    return {'type': 'array', 'items': items}


LINK = obj({'rel': STR, 'href': STR, 'type': STR}, ['rel', 'href'])
LINKS = array(LINK)

FAULT_BODY = obj({'code': INT, 'message': STR, 'retryAfter': STR}, ['code', 'message'])
FAULT = {'type': 'object', 'minProperties': 1, 'maxProperties': 1,
         'additionalProperties': FAULT_BODY}

VERSION = obj({'id': STR, 'status': STR, 'version': STR, 'min_version': STR,
               'updated': STR, 'links': LINKS,
               'media-types': array(obj({'base': STR, 'type': STR}))},
              ['id', 'status', 'version', 'min_version', 'links'])
VERSION_DOC = obj({'version': VERSION}, ['version'])

# ------------------------------------------------------------------ servers

SERVER_BASIC = obj({'id': STR, 'name': STR, 'links': LINKS}, ['id', 'name', 'links'])

SERVER_FLAVOR = obj({'vcpus': INT, 'ram': INT, 'disk': INT, 'ephemeral': INT, 'swap': INT,
                     'original_name': STR, 'extra_specs': {
                         'type': 'object', 'additionalProperties': STR},
                     'id': STR, 'links': LINKS})
SERVER_IMAGE = {'anyOf': [
    obj({'id': STR, 'links': LINKS, 'properties': OBJ}, ['id']),
    {'type': 'string', 'maxLength': 0}]}
SERVER_FAULT = obj({'code': INT, 'created': TIME_Z, 'message': STR, 'details': STR},
                   ['code', 'created', 'message'])
ADDRESS = obj({'addr': STR, 'version': INT, 'OS-EXT-IPS:type': STR,
               'OS-EXT-IPS-MAC:mac_addr': STR}, ['addr', 'version'])

SERVER = obj({
    'id': STR, 'name': STR, 'links': LINKS, 'status': STR, 'tenant_id': STR,
    'user_id': STR, 'metadata': {'type': 'object', 'additionalProperties': STR},
    'hostId': STR, 'image': SERVER_IMAGE, 'flavor': SERVER_FLAVOR, 'created': TIME_Z,
    'updated': TIME_Z, 'addresses': {'type': 'object', 'additionalProperties': array(ADDRESS)},
    'accessIPv4': STR, 'accessIPv6': STR, 'key_name': STR_OR_NULL,
    'config_drive': STR, 'OS-DCF:diskConfig': {'enum': ['AUTO', 'MANUAL']},
    'OS-EXT-AZ:availability_zone': STR,
    'OS-SRV-USG:launched_at': TIME_MICRO_OR_NULL,
    'OS-SRV-USG:terminated_at': TIME_MICRO_OR_NULL,
    'security_groups': array(obj({'name': STR}, ['name'])),
    'OS-EXT-STS:vm_state': STR_OR_NULL, 'OS-EXT-STS:task_state': STR_OR_NULL,
    'OS-EXT-STS:power_state': INT,
    'os-extended-volumes:volumes_attached': array(obj({'id': STR}, ['id'])),
    'progress': INT, 'fault': SERVER_FAULT,
    'OS-EXT-SRV-ATTR:host': STR_OR_NULL, 'OS-EXT-SRV-ATTR:instance_name': STR,
    'OS-EXT-SRV-ATTR:hypervisor_hostname': STR_OR_NULL,
    'OS-EXT-SRV-ATTR:hostname': STR_OR_NULL, 'OS-EXT-SRV-ATTR:kernel_id': STR_OR_NULL,
    'OS-EXT-SRV-ATTR:launch_index': INT, 'OS-EXT-SRV-ATTR:ramdisk_id': STR_OR_NULL,
    'OS-EXT-SRV-ATTR:reservation_id': STR_OR_NULL,
    'OS-EXT-SRV-ATTR:root_device_name': STR_OR_NULL,
    'OS-EXT-SRV-ATTR:user_data': STR_OR_NULL,
    'locked': BOOL, 'host_status': STR, 'description': STR_OR_NULL, 'tags': array(STR),
    'trusted_image_certificates': {'type': ['array', 'null'], 'items': STR},
    'server_groups': array(STR), 'locked_reason': STR_OR_NULL,
    'pinned_availability_zone': STR_OR_NULL, 'scheduler_hints': OBJ,
}, ['id', 'name', 'links', 'status', 'tenant_id', 'user_id', 'metadata', 'hostId',
    'image', 'flavor', 'created', 'updated', 'addresses'])

SERVER_ONE = obj({'server': SERVER}, ['server'])
SERVERS_BASIC = obj({'servers': array(SERVER_BASIC), 'servers_links': LINKS}, ['servers'])
SERVERS_DETAIL = obj({'servers': array(SERVER), 'servers_links': LINKS}, ['servers'])
SERVER_CREATED = {'anyOf': [
    obj({'server': obj({'id': STR, 'links': LINKS, 'OS-DCF:diskConfig': STR,
                        'security_groups': array(obj({'name': STR})),
                        'adminPass': STR}, ['id', 'links'])}, ['server']),
    obj({'reservation_id': STR}, ['reservation_id'])]}

# ------------------------------------------------------------------ flavors

FLAVOR_BASIC = obj({'id': STR, 'name': STR, 'links': LINKS, 'description': STR_OR_NULL},
                   ['id', 'name', 'links'])
FLAVOR = obj(dict(FLAVOR_BASIC['properties'], **{
    'ram': INT, 'disk': INT, 'vcpus': INT, 'swap': {'type': ['integer', 'string']},
    'OS-FLV-EXT-DATA:ephemeral': INT, 'os-flavor-access:is_public': BOOL,
    'OS-FLV-DISABLED:disabled': BOOL, 'rxtx_factor': {'type': 'number'},
    'extra_specs': {'type': 'object', 'additionalProperties': STR}}),
    ['id', 'name', 'links', 'ram', 'disk', 'vcpus', 'swap', 'OS-FLV-EXT-DATA:ephemeral',
     'os-flavor-access:is_public'])
FLAVOR_ONE = obj({'flavor': FLAVOR}, ['flavor'])
FLAVORS_BASIC = obj({'flavors': array(FLAVOR_BASIC), 'flavors_links': LINKS}, ['flavors'])
FLAVORS_DETAIL = obj({'flavors': array(FLAVOR), 'flavors_links': LINKS}, ['flavors'])
EXTRA_SPECS = obj({'extra_specs': {'type': 'object', 'additionalProperties': STR}},
                  ['extra_specs'])
EXTRA_SPEC = {'type': 'object', 'minProperties': 1, 'maxProperties': 1,
              'additionalProperties': STR}

# ------------------------------------------------------------------ migrations

_MIG_COMMON = {
    'id': INT, 'status': STR, 'created_at': TIME_MICRO, 'updated_at': TIME_MICRO_OR_NULL,
    'source_compute': STR_OR_NULL, 'source_node': STR_OR_NULL, 'dest_compute': STR_OR_NULL,
    'dest_node': STR_OR_NULL, 'dest_host': STR_OR_NULL, 'uuid': STR,
    'user_id': STR_OR_NULL, 'project_id': STR_OR_NULL,
    # novalite's own: the live-migration policy applied and its decisions
    'policy': STR_OR_NULL,
    'policy_log': array(obj({'at': STR, 'decision': STR, 'detail': STR},
                            ['at', 'decision', 'detail'])),
}
MIGRATION = obj(dict(_MIG_COMMON, **{
    'instance_uuid': STR, 'old_instance_type_id': INT_OR_NULL,
    'new_instance_type_id': INT_OR_NULL, 'migration_type': STR, 'links': LINKS}),
    ['id', 'instance_uuid', 'status', 'created_at', 'old_instance_type_id',
     'new_instance_type_id'])
MIGRATIONS = obj({'migrations': array(MIGRATION), 'migrations_links': LINKS},
                 ['migrations'])
SERVER_MIGRATION = obj(dict(_MIG_COMMON, **{
    'server_uuid': STR, 'memory_total_bytes': INT_OR_NULL,
    'memory_processed_bytes': INT_OR_NULL, 'memory_remaining_bytes': INT_OR_NULL,
    'disk_total_bytes': INT_OR_NULL, 'disk_processed_bytes': INT_OR_NULL,
    'disk_remaining_bytes': INT_OR_NULL}), ['id', 'server_uuid', 'status', 'created_at'])
SERVER_MIGRATIONS = obj({'migrations': array(SERVER_MIGRATION)}, ['migrations'])
SERVER_MIGRATION_ONE = obj({'migration': SERVER_MIGRATION}, ['migration'])

# ------------------------------------------------------------------ instance actions

ACTION = obj({'action': STR, 'instance_uuid': STR, 'request_id': STR,
              'user_id': STR_OR_NULL, 'project_id': STR_OR_NULL, 'start_time': TIME_MICRO,
              'message': STR_OR_NULL, 'updated_at': TIME_MICRO_OR_NULL},
             ['action', 'instance_uuid', 'request_id', 'start_time'])
EVENT = obj({'event': STR, 'start_time': TIME_MICRO_OR_NULL,
             'finish_time': TIME_MICRO_OR_NULL, 'result': STR_OR_NULL,
             'traceback': STR_OR_NULL, 'hostId': STR, 'host': STR,
             'details': STR_OR_NULL}, ['event', 'start_time', 'finish_time', 'result'])
ACTIONS = obj({'instanceActions': array(ACTION), 'links': LINKS}, ['instanceActions'])
ACTION_ONE = obj({'instanceAction': obj(dict(ACTION['properties'], events=array(EVENT)),
                                        ACTION['required'])}, ['instanceAction'])

# ------------------------------------------------------------------ hypervisors, services

_HYP_ID = {'type': ['string', 'integer']}
HYPERVISOR_BASIC = obj({'id': _HYP_ID, 'hypervisor_hostname': STR,
                        'state': {'enum': ['up', 'down']},
                        'status': {'enum': ['enabled', 'disabled']},
                        'servers': array(obj({'uuid': STR, 'name': STR}))},
                       ['id', 'hypervisor_hostname', 'state', 'status'])
HYPERVISOR = obj(dict(HYPERVISOR_BASIC['properties'], **{
    'hypervisor_type': STR_OR_NULL, 'hypervisor_version': INT, 'host_ip': STR_OR_NULL,
    'service': obj({'id': _HYP_ID, 'host': STR, 'disabled_reason': STR_OR_NULL},
                   ['id', 'host']),
    'uptime': STR_OR_NULL, 'vcpus': INT, 'memory_mb': INT, 'local_gb': INT,
    'vcpus_used': INT, 'memory_mb_used': INT, 'local_gb_used': INT, 'free_ram_mb': INT,
    'free_disk_gb': INT, 'current_workload': INT, 'running_vms': INT,
    'disk_available_least': INT_OR_NULL, 'cpu_info': {'type': ['object', 'string']}}),
    HYPERVISOR_BASIC['required'] + ['hypervisor_type', 'hypervisor_version', 'host_ip',
                                    'service'])
HYPERVISORS_BASIC = obj({'hypervisors': array(HYPERVISOR_BASIC),
                         'hypervisors_links': LINKS}, ['hypervisors'])
HYPERVISORS_DETAIL = obj({'hypervisors': array(HYPERVISOR), 'hypervisors_links': LINKS},
                         ['hypervisors'])
HYPERVISOR_ONE = obj({'hypervisor': HYPERVISOR}, ['hypervisor'])
HYPERVISOR_UPTIME = obj({'hypervisor': obj(dict(HYPERVISOR_BASIC['properties'],
                                                uptime=STR_OR_NULL),
                                           HYPERVISOR_BASIC['required'] + ['uptime'])},
                        ['hypervisor'])
HYPERVISOR_STATISTICS = obj({'hypervisor_statistics': {
    'type': 'object', 'additionalProperties': INT}}, ['hypervisor_statistics'])

SERVICE = obj({'id': {'type': ['string', 'integer']}, 'binary': STR, 'host': STR,
               'zone': STR, 'status': {'enum': ['enabled', 'disabled']},
               'state': {'enum': ['up', 'down']}, 'updated_at': TIME_MICRO_OR_NULL,
               'disabled_reason': STR_OR_NULL, 'forced_down': BOOL},
              ['id', 'binary', 'host', 'zone', 'status', 'state', 'updated_at',
               'disabled_reason'])
SERVICES = obj({'services': array(SERVICE)}, ['services'])
SERVICE_ONE = obj({'service': OBJ}, ['service'])

LIMITS = obj({'limits': obj({'rate': array(OBJ), 'absolute': {
    'type': 'object', 'additionalProperties': INT}}, ['rate', 'absolute'])}, ['limits'])

QUOTA_SET = obj({'quota_set': {'type': 'object', 'properties': {'id': STR},
                                'additionalProperties': INT}}, ['quota_set'])
QUOTA_DETAIL = obj({'quota_set': {
    'type': 'object', 'properties': {'id': STR},
    'additionalProperties': obj({'limit': INT, 'in_use': INT, 'reserved': INT},
                                ['limit', 'in_use', 'reserved'])}}, ['quota_set'])

SERVER_GROUP = obj({'id': STR, 'name': STR, 'policy': STR,
                   'rules': obj({'max_server_per_host': INT}), 'policies': array(STR),
                   'metadata': OBJ, 'members': array(STR), 'project_id': STR,
                   'user_id': STR},
                  ['id', 'name', 'members'])
SERVER_GROUPS = obj({'server_groups': array(SERVER_GROUP)}, ['server_groups'])
SERVER_GROUP_ONE = obj({'server_group': SERVER_GROUP}, ['server_group'])

# ------------------------------------------------------------------ host drains

_DRAIN_PROGRESS = {'anyOf': [obj({
    'migration_status': STR, 'memory_total_bytes': INT_OR_NULL,
    'memory_processed_bytes': INT_OR_NULL, 'memory_remaining_bytes': INT_OR_NULL,
    'disk_total_bytes': INT_OR_NULL, 'disk_processed_bytes': INT_OR_NULL,
    'disk_remaining_bytes': INT_OR_NULL}, ['migration_status']), {'type': 'null'}]}
DRAIN_SERVER = obj({'server_id': STR, 'state': STR, 'move': STR_OR_NULL,
                    'attempts': INT, 'reason': STR_OR_NULL, 'migration_id': STR_OR_NULL,
                    'progress': _DRAIN_PROGRESS, 'updated_at': TIME_MICRO_OR_NULL},
                   ['server_id', 'state', 'attempts'])
_DRAIN_PROPS = {
    'id': STR, 'host': STR, 'mode': STR, 'max_parallel': INT, 'status': STR, 'total': INT,
    'moved': INT, 'moving': INT, 'failed': INT, 'gone': INT, 'cancelled': INT,
    'remaining': INT, 'conductor': STR_OR_NULL, 'created_at': TIME_MICRO,
    'updated_at': TIME_MICRO_OR_NULL, 'finished_at': TIME_MICRO_OR_NULL}
_DRAIN_REQUIRED = ['id', 'host', 'mode', 'status', 'total', 'moved', 'failed', 'remaining']
DRAIN = obj(dict(_DRAIN_PROPS, servers=array(DRAIN_SERVER)), _DRAIN_REQUIRED + ['servers'])
DRAIN_ONE = obj({'drain': DRAIN}, ['drain'])
DRAINS = obj({'drains': array(obj(_DRAIN_PROPS, _DRAIN_REQUIRED))}, ['drains'])

# ------------------------------------------------------------------ images

COMPUTE_IMAGE = obj({'id': STR, 'name': STR, 'links': LINKS, 'status': STR,
                     'minDisk': INT, 'minRam': INT, 'progress': INT, 'created': TIME_Z,
                     'updated': TIME_Z, 'metadata': OBJ, 'OS-EXT-IMG-SIZE:size': INT},
                    ['id', 'name', 'links'])
COMPUTE_IMAGES = obj({'images': array(COMPUTE_IMAGE)}, ['images'])
COMPUTE_IMAGE_ONE = obj({'image': COMPUTE_IMAGE}, ['image'])
GLANCE_IMAGE = obj({'id': STR, 'name': STR, 'status': STR, 'visibility': STR,
                    'size': INT_OR_NULL, 'min_disk': INT, 'min_ram': INT,
                    'disk_format': STR_OR_NULL, 'container_format': STR_OR_NULL,
                    'owner': STR_OR_NULL}, ['id', 'name', 'status'])
GLANCE_IMAGES = obj({'images': array(GLANCE_IMAGE)}, ['images'])
GLANCE_IMAGE_ONE = obj({'image': GLANCE_IMAGE}, ['image'])
