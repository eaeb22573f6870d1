"""/flavors: list, show, admin create/update/delete, extra specs (read-only)."""

from novalite import exception
from novalite.api import common, faults, validation
from novalite.api.schemas import flavors as schemas
from novalite.api.schemas import types
from novalite.api.views import flavors as views
from novalite.db import api as db
from novalite.db import listing

RULE = 'os_compute_api:os-flavor-manage:%s'
EXTRA_SPECS_RULE = 'os_compute_api:os-flavor-extra-specs:%s'
_PARAMS = {'limit', 'marker', 'sort_key', 'sort_dir', 'minRam', 'minDisk', 'is_public'}


def _show_extra_specs(req) -> bool:
    return req.app.authorizer.check(req.context, EXTRA_SPECS_RULE % 'index')


def _is_public_filter(req):
    """Admins choose with is_public (true/false/none); others see public + granted."""
    ctx = req.context
    if not ctx.is_admin:
        return True
    value = common.single(req, 'is_public')
    if value is None:
        return True
    # ASCII words in any case (the document's pattern); other scripts' case folding or
    # surrounding whitespace is a 400.
    low = value.lower() if value.isascii() else ''
    if low == 'none':
        return None
    if low in common.TRUE_STRINGS:
        return True
    if low in common.FALSE_STRINGS:
        return False
    raise faults.bad_request('Invalid is_public filter [%s]' % value)


def _min_param(req, name):
    value = common.single(req, name)
    if value is None:
        return None
    number = common.parse_int(value)
    # Beyond a 32-bit column the database itself would fail the query.
    if number is None or not 0 <= number <= types.MAX_INT:
        raise faults.bad_request('Invalid %s filter [%s]' % (name, value))
    return number


def _list(req, detail: bool):
    allowed = set(_PARAMS)
    if common.mv_at_least(req, '2.102'):
        allowed.add('name')
    if common.mv_at_least(req, '2.75'):
        common.check_params(req, allowed)
    ctx = req.context
    limit, marker = common.paging(req, req.app.conf)
    sort_key = common.single(req, 'sort_key', 'flavorid')
    sort_dir = common.single(req, 'sort_dir', 'asc')
    if sort_key not in listing.FLAVOR_SORT_KEYS:
        raise faults.bad_request('Invalid sort key: %s' % sort_key)
    if sort_dir not in ('asc', 'desc'):
        raise faults.bad_request('Invalid sort direction: %s' % sort_dir)
    is_public = _is_public_filter(req)
    with faults.remap({exception.Invalid: 400}):
        rows = listing.flavors(
            is_public=is_public, include_disabled=ctx.is_admin,
            project_id=None if ctx.is_admin else ctx.project_id,
            min_memory_mb=_min_param(req, 'minRam'), min_root_gb=_min_param(req, 'minDisk'),
            name=(common.single(req, 'name') if common.mv_at_least(req, '2.102') else None),
            sort_key=sort_key, sort_dir=sort_dir, limit=limit, marker=marker)
    if detail:
        show_specs = _show_extra_specs(req)
        items = [views.full(req, f, show_specs) for f in rows]
    else:
        items = [views.basic(req, f) for f in rows]
    body = {'flavors': items}
    link = common.next_link(req, 'flavors/detail' if detail else 'flavors', items, limit)
    if link:
        body['flavors_links'] = link
    return common.json_response(body)


def index(req):
    return _list(req, detail=False)


def detail(req):
    return _list(req, detail=True)


def _load(req, flavor_id) -> dict:
    ctx = req.context
    try:
        flavor = db.flavor_get_by_flavorid(flavor_id)
    except exception.FlavorNotFound:
        raise faults.not_found('Flavor %s could not be found.' % flavor_id)
    if (not flavor['is_public'] and not ctx.is_admin
            and not listing.flavor_has_access(flavor['id'], ctx.project_id)):
        raise faults.not_found('Flavor %s could not be found.' % flavor_id)
    return flavor


def show(req, flavor_id):
    flavor = _load(req, flavor_id)
    return common.json_response({'flavor': views.full(req, flavor, _show_extra_specs(req))})


def create(req):
    body = validation.require_body(req)
    validation.validate(body, schemas.create(req.mv))
    req.app.authorizer.authorize(req.context, RULE % 'create')
    spec = body['flavor']
    flavorid = spec.get('id')
    if flavorid is not None:
        flavorid = str(flavorid)
    with faults.remap({exception.FlavorExists: 409}):
        flavor = db.flavor_create(
            name=spec['name'], memory_mb=int(spec['ram']), vcpus=int(spec['vcpus']),
            root_gb=int(spec['disk']), flavorid=flavorid,
            ephemeral_gb=int(spec.get('OS-FLV-EXT-DATA:ephemeral', 0)),
            swap=int(spec.get('swap', 0)), rxtx_factor=float(spec.get('rxtx_factor', 1.0)),
            is_public=spec.get('os-flavor-access:is_public', True),
            description=spec.get('description'))
    return common.json_response({'flavor': views.full(req, flavor, _show_extra_specs(req))})


def update(req, flavor_id):
    body = validation.require_body(req)
    validation.validate(body, schemas.UPDATE)
    req.app.authorizer.authorize(req.context, RULE % 'update')
    with faults.remap({exception.FlavorNotFound: 404}):
        flavor = db.flavor_update(flavor_id, description=body['flavor']['description'])
    return common.json_response({'flavor': views.full(req, flavor, _show_extra_specs(req))})


def delete(req, flavor_id):
    req.app.authorizer.authorize(req.context, RULE % 'delete')
    db.flavor_destroy(flavor_id)
    return common.empty_response(202)


def extra_specs_index(req, flavor_id):
    flavor = _load(req, flavor_id)
    req.app.authorizer.authorize(req.context, EXTRA_SPECS_RULE % 'index')
    return common.json_response({'extra_specs': dict(flavor.get('extra_specs') or {})})


def extra_specs_show(req, flavor_id, key):
    flavor = _load(req, flavor_id)
    req.app.authorizer.authorize(req.context, EXTRA_SPECS_RULE % 'show')
    specs = flavor.get('extra_specs') or {}
    if key not in specs:
        raise faults.not_found('Flavor %s has no extra specs with key %s.'
                               % (flavor_id, key))
    return common.json_response({key: specs[key]})


def _spec_text(value) -> str:
    """An extra spec as stored: booleans as Nova writes them, numbers as written."""
    if isinstance(value, bool):
        return 'True' if value else 'False'
    return str(value)


def extra_specs_create(req, flavor_id):
    body = validation.require_body(req)
    validation.validate(body, schemas.EXTRA_SPECS_CREATE)
    req.app.authorizer.authorize(req.context, EXTRA_SPECS_RULE % 'create')
    specs = {k: _spec_text(v) for k, v in body['extra_specs'].items()}
    with faults.remap({exception.FlavorNotFound: 404}):
        db.flavor_extra_specs_update(flavor_id, specs)
    return common.json_response({'extra_specs': specs})


def extra_specs_update(req, flavor_id, key):
    body = validation.require_body(req)
    validation.validate(body, schemas.EXTRA_SPEC_UPDATE)
    req.app.authorizer.authorize(req.context, EXTRA_SPECS_RULE % 'update')
    if key not in body:
        raise faults.bad_request('Request body and URI mismatch')
    value = _spec_text(body[key])
    with faults.remap({exception.FlavorNotFound: 404}):
        db.flavor_extra_specs_update(flavor_id, {key: value})
    return common.json_response({key: value})


def extra_specs_delete(req, flavor_id, key):
    req.app.authorizer.authorize(req.context, EXTRA_SPECS_RULE % 'delete')
    with faults.remap({exception.FlavorNotFound: 404, exception.FlavorExtraSpecNotFound: 404}):
        db.flavor_extra_spec_delete(flavor_id, key)
    return common.empty_response(200)
