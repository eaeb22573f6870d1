"""The image records the image proxy and builds read."""

import uuid as uuidlib

import sqlalchemy as sa
from sqlalchemy import select

from novalite import exception
from novalite.db import models
from novalite.db.common import to_dict
from novalite.db.retry import retry_on_transient
from novalite.db.session import connection_reader, reader, writer


@retry_on_transient
def image_create(name, location=None, size=0, disk_format='qcow2', container_format='bare',
                 min_disk=0, min_ram=0, uuid=None, owner=None, visibility='public',
                 properties=None) -> dict:
    with writer() as s:
        row = models.Image(uuid=uuid or str(uuidlib.uuid4()), name=name, location=location,
                           size=size, disk_format=disk_format,
                           container_format=container_format, min_disk=min_disk,
                           min_ram=min_ram, owner=owner, visibility=visibility,
                           properties=properties or {}, status='active')
        s.add(row)
        s.flush()
        return to_dict(row)


# Built once: every boot and every server GET from 2.98 reads an image by uuid.
_IMAGE = select(models.Image.__table__).where(models.Image.__table__.c.uuid == sa.bindparam('u'))


@retry_on_transient
def image_get(image_uuid: str) -> dict:
    with connection_reader() as conn:
        row = conn.execute(_IMAGE, {'u': image_uuid}).first()
        if row is None:
            raise exception.ImageNotFound(image_id=image_uuid)
        return to_dict(row)


@retry_on_transient
def image_get_all() -> list[dict]:
    with reader() as s:
        return [to_dict(r) for r in s.scalars(select(models.Image).order_by(models.Image.id))]


@retry_on_transient
def image_delete(image_uuid: str) -> None:
    with writer() as s:
        n = s.execute(sa.delete(models.Image).where(models.Image.uuid == image_uuid)).rowcount
        if not n:
            raise exception.ImageNotFound(image_id=image_uuid)
