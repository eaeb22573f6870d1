"""Records shaped like the ones the compute manager hands to virt drivers."""

import uuid


def make_flavor(name='small', vcpus=1, memory_mb=256, root_gb=1, ephemeral_gb=0, swap=0):
    return {'flavorid': name, 'name': name, 'vcpus': vcpus, 'memory_mb': memory_mb,
            'root_gb': root_gb, 'ephemeral_gb': ephemeral_gb, 'swap': swap,
            'extra_specs': {}}


def make_instance(host='host1', flavor=None, power=0):
    return {'uuid': str(uuid.uuid4()), 'display_name': 'vm', 'image_ref': 'img',
            'flavor': flavor or make_flavor(), 'vm_state': 'building', 'task_state': None,
            'power_state': power, 'host': host, 'node': host, 'system_metadata': {}}


IMAGE = {'uuid': 'img', 'name': 'cirros', 'size': 16 * 1024 * 1024, 'min_disk': 0,
         'min_ram': 0, 'disk_format': 'qcow2', 'location': None, 'properties': {}}
