"""GET /limits: the project's absolute limits and usage."""

from novalite.api import common
from novalite.db import api as db


def show(req):
    ctx = req.context
    project_id = ctx.project_id
    if ctx.is_admin and common.single(req, 'tenant_id'):
        project_id = common.single(req, 'tenant_id')
    req.app.authorizer.authorize(ctx, 'os_compute_api:limits',
                                 {'project_id': project_id, 'user_id': ctx.user_id})
    limits = db.quota_get_all(project_id)
    usage = db.quota_usage(project_id)
    absolute = {
        'maxTotalCores': limits.get('cores', -1),
        'maxTotalRAMSize': limits.get('ram', -1),
        'maxTotalInstances': limits.get('instances', -1),
        'maxServerMeta': 128, 'maxImageMeta': 128, 'maxPersonality': 5,
        'maxPersonalitySize': 10240, 'maxTotalKeypairs': 100,
        'maxServerGroups': limits.get('server_groups', -1),
        'maxServerGroupMembers': limits.get('server_group_members', -1),
        'totalCoresUsed': usage.get('cores', 0), 'totalRAMUsed': usage.get('ram', 0),
        'totalInstancesUsed': usage.get('instances', 0),
        'totalServerGroupsUsed': usage.get('server_groups', 0),
    }
    if common.mv_at_least(req, '2.36'):
        for key in ('maxSecurityGroups', 'maxSecurityGroupRules', 'maxTotalFloatingIps'):
            absolute.pop(key, None)
    else:
        absolute.update({'maxSecurityGroups': 10, 'maxSecurityGroupRules': 20,
                         'maxTotalFloatingIps': 10, 'totalSecurityGroupsUsed': 0,
                         'totalFloatingIpsUsed': 0})
    if common.mv_at_least(req, '2.57'):
        for key in ('maxPersonality', 'maxPersonalitySize'):
            absolute.pop(key)
    return common.json_response({'limits': {'rate': [], 'absolute': absolute}})
