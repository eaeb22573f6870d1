"""Flavors and their project access."""

import uuid as uuidlib

import sqlalchemy as sa
from sqlalchemy import select

from novalite import exception
from novalite.db import models
from novalite.db.common import to_dict
from novalite.db.retry import retry_on_transient
from novalite.db.session import connection_reader, reader, writer


def _flavor_dict(s, row) -> dict:
    d = to_dict(row)
    d['extra_specs'] = {e.key: e.value for e in s.scalars(
        select(models.FlavorExtraSpec).where(models.FlavorExtraSpec.flavor_id == row.id))}
    return d


@retry_on_transient
def flavor_create(name, memory_mb, vcpus, root_gb=0, flavorid=None, ephemeral_gb=0, swap=0,
                  rxtx_factor=1.0, is_public=True, description=None, extra_specs=None,
                  disabled=False) -> dict:
    flavorid = str(flavorid) if flavorid is not None else str(uuidlib.uuid4())
    with writer() as s:
        if s.scalars(select(models.Flavor).where(models.Flavor.flavorid == flavorid)).first():
            raise exception.FlavorExists(field='id', value=flavorid)
        if s.scalars(select(models.Flavor).where(models.Flavor.name == name)).first():
            raise exception.FlavorExists(field='name', value=name)
        row = models.Flavor(name=name, memory_mb=memory_mb, vcpus=vcpus, root_gb=root_gb,
                            flavorid=flavorid, ephemeral_gb=ephemeral_gb, swap=swap,
                            rxtx_factor=rxtx_factor, is_public=is_public,
                            description=description, disabled=disabled)
        s.add(row)
        s.flush()
        for k, v in (extra_specs or {}).items():
            s.add(models.FlavorExtraSpec(flavor_id=row.id, key=k, value=str(v)))
        s.flush()
        return _flavor_dict(s, row)


@retry_on_transient
def flavor_get_by_flavorid(flavorid, include_disabled=True) -> dict:
    with connection_reader() as conn:
        flavor = _one_flavor(conn, 'flavorid', str(flavorid))
    if flavor is None or (flavor['disabled'] and not include_disabled):
        raise exception.FlavorNotFound(flavor_id=flavorid)
    return flavor


@retry_on_transient
def flavor_get(flavor_db_id: int) -> dict:
    with connection_reader() as conn:
        flavor = _one_flavor(conn, 'id', flavor_db_id)
    if flavor is None:
        raise exception.FlavorNotFound(flavor_id=flavor_db_id)
    return flavor


_FLAVOR = models.Flavor.__table__
_SPEC = models.FlavorExtraSpec.__table__
_FLAVOR_COLUMNS = tuple(c.key for c in _FLAVOR.columns)
# Built once, by the column that picks the flavor: the flavor and its extra specs in one
# plain statement (every boot and resize reads one).
_FLAVOR_WITH_SPECS = {
    column: select(_FLAVOR, _SPEC.c.key.label('spec_key'), _SPEC.c.value.label('spec_value'))
    .outerjoin(_SPEC, _SPEC.c.flavor_id == _FLAVOR.c.id)
    .where(_FLAVOR.c[column] == sa.bindparam('w'))
    for column in ('id', 'flavorid')}


def _one_flavor(conn, column: str, value) -> dict | None:
    """The flavor whose ``column`` (id or flavorid) is ``value``, with its extra specs."""
    rows = conn.execute(_FLAVOR_WITH_SPECS[column], {'w': value}).all()
    if not rows:
        return None
    first = rows[0]._mapping
    flavor = {key: first[key] for key in _FLAVOR_COLUMNS}
    flavor['extra_specs'] = {r.spec_key: r.spec_value for r in rows if r.spec_key is not None}
    return flavor


@retry_on_transient
def flavor_get_all() -> list[dict]:
    with reader() as s:
        return with_extra_specs(s, list(s.scalars(
            select(models.Flavor).order_by(models.Flavor.flavorid))))


def with_extra_specs(s, rows) -> list[dict]:
    """Flavor rows as dicts with their extra specs, read in one query."""
    specs: dict[int, dict] = {}
    if rows:
        for e in s.scalars(select(models.FlavorExtraSpec).where(
                models.FlavorExtraSpec.flavor_id.in_([r.id for r in rows]))):
            specs.setdefault(e.flavor_id, {})[e.key] = e.value
    out = []
    for r in rows:
        d = to_dict(r)
        d['extra_specs'] = specs.get(r.id, {})
        out.append(d)
    return out


@retry_on_transient
def flavor_projects(flavor_db_id: int) -> list[str]:
    with reader() as s:
        return list(s.scalars(select(models.FlavorProject.project_id).where(
            models.FlavorProject.flavor_id == flavor_db_id)))


def _flavor_row(s, flavorid) -> models.Flavor:
    """The flavor row with this flavorid, or FlavorNotFound."""
    row = s.scalars(select(models.Flavor).where(
        models.Flavor.flavorid == str(flavorid))).first()
    if row is None:
        raise exception.FlavorNotFound(flavor_id=flavorid)
    return row


@retry_on_transient
def flavor_update(flavorid, **values) -> dict:
    with writer() as s:
        row = _flavor_row(s, flavorid)
        for k, v in values.items():
            setattr(row, k, v)
        s.flush()
        return _flavor_dict(s, row)


@retry_on_transient
def flavor_extra_specs_update(flavorid, specs: dict) -> dict:
    """Set (create or replace) extra specs of a flavor; its extra specs after."""
    with writer() as s:
        row = _flavor_row(s, flavorid)
        current = {e.key: e for e in s.scalars(select(models.FlavorExtraSpec).where(
            models.FlavorExtraSpec.flavor_id == row.id))}
        for key, value in specs.items():
            if key in current:
                current[key].value = str(value)
            else:
                s.add(models.FlavorExtraSpec(flavor_id=row.id, key=key, value=str(value)))
        s.flush()
        return _flavor_dict(s, row)['extra_specs']


@retry_on_transient
def flavor_extra_spec_delete(flavorid, key: str) -> None:
    with writer() as s:
        row = _flavor_row(s, flavorid)
        if not s.execute(sa.delete(models.FlavorExtraSpec).where(
                models.FlavorExtraSpec.flavor_id == row.id,
                models.FlavorExtraSpec.key == key)).rowcount:
            raise exception.FlavorExtraSpecNotFound(flavor_id=flavorid, key=key)


@retry_on_transient
def flavor_destroy(flavorid) -> None:
    with writer() as s:
        row = _flavor_row(s, flavorid)
        s.execute(sa.delete(models.FlavorExtraSpec).where(
            models.FlavorExtraSpec.flavor_id == row.id))
        s.execute(sa.delete(models.FlavorProject).where(
            models.FlavorProject.flavor_id == row.id))
        s.delete(row)


DEFAULT_FLAVORS = [
    # flavorid, name, memory_mb, vcpus, root_gb (devstack's m1 family)
    ('1', 'm1.tiny', 512, 1, 1),
    ('2', 'm1.small', 2048, 1, 20),
    ('3', 'm1.medium', 4096, 2, 40),
    ('4', 'm1.large', 8192, 4, 80),
    ('5', 'm1.xlarge', 16384, 8, 160),
]


@retry_on_transient
def ensure_default_flavors() -> int:
    """Create the m1.* flavors that are missing; returns how many were created."""
    existing = {f['flavorid'] for f in flavor_get_all()}
    n = 0
    for flavorid, name, ram, vcpus, disk in DEFAULT_FLAVORS:
        if flavorid not in existing:
            try:
                flavor_create(name, ram, vcpus, disk, flavorid=flavorid)
                n += 1
            except exception.FlavorExists:
                pass
    return n


def flavor_record(flavor: dict) -> dict:
    """The flavor as it is stored inside an instance (a self-contained snapshot)."""
    return {k: flavor.get(k) for k in ('id', 'flavorid', 'name', 'memory_mb', 'vcpus',
                                       'root_gb', 'ephemeral_gb', 'swap', 'rxtx_factor',
                                       'is_public', 'description')} | {
        'extra_specs': dict(flavor.get('extra_specs') or {})}
