"""Images: the compute images proxy (<= 2.35), a read-only Glance v2 subset, admin register."""

from novalite import exception
from novalite.api import common, faults, validation
from novalite.db import api as db

REGISTER = {
    'type': 'object',
    'properties': {'image': {
        'type': 'object',
        'properties': {
            'name': {'type': 'string', 'minLength': 1, 'maxLength': 255},
            'location': {'type': ['string', 'null'], 'maxLength': 65535},
            'size': {'type': 'integer', 'minimum': 0, 'maximum': 2 ** 63 - 1},
            'min_disk': {'type': 'integer', 'minimum': 0, 'maximum': 2 ** 31 - 1},
            'min_ram': {'type': 'integer', 'minimum': 0, 'maximum': 2 ** 31 - 1},
            'disk_format': {'type': 'string', 'enum': ['qcow2', 'raw', 'vmdk', 'vdi',
                                                      'iso', 'ami', 'ari', 'aki']},
            'container_format': {'type': 'string', 'enum': ['bare', 'ovf', 'ami', 'ari',
                                                           'aki', 'ova']},
            'id': {'type': 'string', 'format': 'uuid'},
            'visibility': {'type': 'string', 'enum': ['public', 'private']},
            'properties': {'type': 'object', 'additionalProperties': {'type': 'string'}},
        },
        'required': ['name'], 'additionalProperties': False}},
    'required': ['image'], 'additionalProperties': False,
}


def _visible(req, image: dict) -> bool:
    ctx = req.context
    return (ctx.is_admin or image.get('visibility') == 'public'
            or image.get('owner') == ctx.project_id)


def _get(req, image_id) -> dict:
    try:
        image = db.image_get(image_id)
    except exception.ImageNotFound:
        raise faults.not_found('Image not found.')
    if not _visible(req, image):
        raise faults.not_found('Image not found.')
    return image


# ---------------------------------------------------------------- /v2.1/images

def _compute_view(req, image: dict, detail: bool) -> dict:
    out = {'id': image['uuid'], 'name': image['name'],
           'links': common.links(req, 'images', image['uuid'])}
    if detail:
        out.update({
            'status': image['status'].upper(), 'minDisk': image['min_disk'],
            'minRam': image['min_ram'], 'progress': 100,
            'created': common.iso_z(image['created_at']),
            'updated': common.iso_z(image.get('updated_at') or image['created_at']),
            'metadata': dict(image.get('properties') or {}),
            'OS-EXT-IMG-SIZE:size': image['size'],
        })
    return out


def _compute_list(req, detail):
    images = [i for i in db.image_get_all() if _visible(req, i)]
    name = common.single(req, 'name')
    if name is not None:
        images = [i for i in images if i['name'] == name]
    return common.json_response({'images': [_compute_view(req, i, detail) for i in images]})


def compute_index(req):
    return _compute_list(req, detail=False)


def compute_detail(req):
    return _compute_list(req, detail=True)


def compute_show(req, image_id):
    return common.json_response({'image': _compute_view(req, _get(req, image_id), True)})


# ---------------------------------------------------------------- admin registration

def _glance_view(req, image: dict) -> dict:
    out = {
        'id': image['uuid'], 'name': image['name'], 'status': image['status'],
        'visibility': image['visibility'], 'size': image['size'],
        'min_disk': image['min_disk'], 'min_ram': image['min_ram'],
        'disk_format': image['disk_format'], 'container_format': image['container_format'],
        'owner': image.get('owner'), 'protected': False, 'tags': [],
        'created_at': common.iso_z(image['created_at']),
        'updated_at': common.iso_z(image.get('updated_at') or image['created_at']),
        'self': '/v2/images/%s' % image['uuid'], 'file': '/v2/images/%s/file' % image['uuid'],
        'schema': '/v2/schemas/image',
    }
    for key, value in (image.get('properties') or {}).items():
        out.setdefault(key, value)
    return out


def admin_index(req):
    req.app.authorizer.authorize(req.context, 'novalite:images:create')
    return common.json_response({'images': [_glance_view(req, i)
                                            for i in db.image_get_all()]})


def admin_create(req):
    body = validation.require_body(req)
    validation.validate(body, REGISTER)
    req.app.authorizer.authorize(req.context, 'novalite:images:create')
    spec = body['image']
    if spec.get('id'):
        try:
            db.image_get(spec['id'])
        except exception.ImageNotFound:
            pass
        else:
            raise faults.conflict('Image with identifier %s already exists.' % spec['id'])
    image = db.image_create(
        spec['name'], location=spec.get('location'), size=spec.get('size', 0),
        disk_format=spec.get('disk_format', 'qcow2'),
        container_format=spec.get('container_format', 'bare'),
        min_disk=spec.get('min_disk', 0), min_ram=spec.get('min_ram', 0),
        uuid=spec.get('id'), owner=req.context.project_id,
        visibility=spec.get('visibility', 'public'), properties=spec.get('properties'))
    return common.json_response({'image': _glance_view(req, image)}, status=201)


def admin_delete(req, image_id):
    req.app.authorizer.authorize(req.context, 'novalite:images:delete')
    db.image_delete(image_id)
    return common.empty_response(204)


# ---------------------------------------------------------------- /image (Glance v2 subset)

# Glance-style paths also answered on the compute endpoint (/v2.1/v2/images...).
GLANCE_ALIAS = '/v2/images'

def glance_versions(req):
    href = common.base_url(req, req.app.conf) + '/image/v2/'
    return common.json_response({'versions': [
        {'id': 'v2.16', 'status': 'CURRENT', 'links': [{'rel': 'self', 'href': href}]}]},
        status=200)


def glance_dispatch(req):
    if req.method != 'GET':
        raise faults.HTTPError(405, 'The method specified is not allowed for this '
                                    'resource.')
    prefix = req.environ.get('novalite.image_prefix', '/image')
    path = req.path_info[len(prefix):].rstrip('/')
    if path in ('/v2/images', '/v2/images/detail'):
        images = [i for i in db.image_get_all() if _visible(req, i)]
        for key in ('name', 'status', 'visibility'):
            value = common.single(req, key)
            if value is not None:
                images = [i for i in images if i[key] == value]
        ids = common.single(req, 'id')
        if ids is not None:
            wanted = set((ids[3:] if ids.startswith('in:') else ids).split(','))
            images = [i for i in images if i['uuid'] in wanted]
        return common.json_response({'images': [_glance_view(req, i) for i in images],
                                     'first': '/v2/images', 'schema': '/v2/schemas/images'})
    if path.startswith('/v2/images/') and path.count('/') == 3:
        return common.json_response(_glance_view(req, _get(req, path.rsplit('/', 1)[1])))
    raise faults.not_found('The resource could not be found.')
