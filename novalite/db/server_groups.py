"""Server groups: records, members, and the policy check every claim of a member runs.

Where a member is comes from placement, not from ``instances.host``: a member holds an
allocation from the moment it is claimed (before its host is recorded), and during a
move its migration holds the source allocation while the instance holds the
destination's. So a member counts on every host where it, or a migration of it, holds
an allocation.

A claim for a member of a group with a hard policy (affinity, anti-affinity) checks the
policy inside the claim's own transaction, after locking the group's row, and moves the
group's ``generation`` by compare-and-swap. Concurrent claims for one group thus run one
after the other, each seeing the allocations of the ones before it; a claim the policy
refuses writes nothing and the scheduler tries its next host.
"""

import dataclasses
import uuid as uuidlib

import sqlalchemy as sa
from sqlalchemy import func, or_, select, update

from novalite import exception
from novalite.db import models
from novalite.db.retry import retry_on_transient
from novalite.db.session import connection_reader, reader, writer
from novalite.group_policies import (
    AFFINITY,
    ANTI_AFFINITY,
    HARD_POLICIES,
    POLICIES,
    max_per_host,
)

SG, MEMBER = models.ServerGroup, models.ServerGroupMember


def _record(row: models.ServerGroup, members: list[str]) -> dict:
    return {'uuid': row.uuid, 'name': row.name, 'project_id': row.project_id,
            'user_id': row.user_id, 'policy': row.policy, 'rules': dict(row.rules or {}),
            'members': members, 'created_at': row.created_at}


def _members(s, group_ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {gid: [] for gid in group_ids}
    if group_ids:
        for gid, inst in s.execute(select(MEMBER.group_id, MEMBER.instance_uuid)
                                   .where(MEMBER.group_id.in_(group_ids))
                                   .order_by(MEMBER.id)):
            out[gid].append(inst)
    return out


def _group_row(s, group_uuid: str) -> models.ServerGroup:
    row = s.scalars(select(SG).where(SG.uuid == group_uuid)).first()
    if row is None:
        raise exception.InstanceGroupNotFound(group_uuid=group_uuid)
    return row


def _count_groups(s, project_id: str) -> int:
    return int(s.scalar(select(func.count(SG.id)).where(SG.project_id == project_id)))


# ---------------------------------------------------------------- records

@retry_on_transient
def group_create(name: str, project_id: str, user_id: str, policy: str,
                 rules: dict | None = None, limit: int = -1) -> dict:
    """Create a group; OverQuota when the project already holds ``limit`` groups.

    The count is taken again after the insert (as the instance quota's recheck does):
    of two concurrent creates that both passed the first count, the one that finds the
    limit passed removes its own group and fails.
    """
    if policy not in POLICIES:
        raise exception.ValidationError(detail='Invalid policy %s' % policy)
    with writer() as s:
        used = _count_groups(s, project_id)
        if 0 <= limit < used + 1:
            raise exception.OverQuota(overs='server_groups', req=1, used=used,
                                      allowed=limit)
        row = SG(uuid=str(uuidlib.uuid4()), name=name, project_id=project_id,
                 user_id=user_id, policy=policy, rules=dict(rules or {}), generation=0)
        s.add(row)
        s.flush()
        record = _record(row, [])
    if limit >= 0:
        with writer() as s:
            used = _count_groups(s, project_id)
            if used > limit:
                s.execute(sa.delete(SG).where(SG.uuid == record['uuid']))
                raise exception.OverQuota(overs='server_groups', req=1, used=used - 1,
                                          allowed=limit)
    return record


@retry_on_transient
def group_get(group_uuid: str) -> dict:
    with reader() as s:
        row = _group_row(s, group_uuid)
        return _record(row, _members(s, [row.id])[row.id])


@retry_on_transient
def group_get_all(project_id: str | None = None) -> list[dict]:
    """Every group (of one project when ``project_id`` is given), oldest first."""
    with reader() as s:
        q = select(SG).order_by(SG.id)
        if project_id is not None:
            q = q.where(SG.project_id == project_id)
        rows = list(s.scalars(q))
        members = _members(s, [r.id for r in rows])
        return [_record(r, members[r.id]) for r in rows]


@retry_on_transient
def group_delete(group_uuid: str) -> None:
    """Delete a group; its servers stay and simply belong to no group any more."""
    with writer() as s:
        row = _group_row(s, group_uuid)
        s.execute(sa.delete(MEMBER).where(MEMBER.group_id == row.id))
        s.execute(sa.delete(SG).where(SG.id == row.id))


@retry_on_transient
def group_count(project_id: str) -> int:
    with reader() as s:
        return _count_groups(s, project_id)


def group_uuid_query(instance_uuid) -> sa.Select:
    """The uuid of the group of the instance ``instance_uuid`` (a value, a bound
    parameter or a column to correlate with)."""
    return select(SG.uuid).join(MEMBER, MEMBER.group_id == SG.id).where(
        MEMBER.instance_uuid == instance_uuid)


# Built once: every server GET from microversion 2.71 reads it.
_GROUP_OF = group_uuid_query(sa.bindparam('iu'))


@retry_on_transient
def group_uuid_of(instance_uuid: str) -> str | None:
    """The group a server belongs to, or None."""
    with connection_reader() as conn:
        return conn.execute(_GROUP_OF, {'iu': instance_uuid}).scalar()


def _count_members(s, group_id: int, user_id: str | None = None) -> int:
    """Members of a group; with ``user_id`` only that user's servers (the
    ``server_group_members`` quota counts per user, as Nova's does)."""
    q = select(func.count(MEMBER.id)).where(MEMBER.group_id == group_id)
    if user_id is not None:
        inst = models.Instance
        q = q.join(inst, inst.uuid == MEMBER.instance_uuid).where(
            inst.user_id == user_id, inst.deleted.is_(False))
    return int(s.scalar(q))


@retry_on_transient
def group_member_count(group_uuid: str, user_id: str) -> int:
    """The servers of ``user_id`` in a group (InstanceGroupNotFound when it is gone)."""
    with reader() as s:
        return _count_members(s, _group_row(s, group_uuid).id, user_id)


@retry_on_transient
def group_add_members(group_uuid: str, instance_uuids: list[str], limit: int = -1,
                      user_id: str | None = None) -> None:
    """Make servers members of a group; OverQuota when ``user_id`` would hold more
    than ``limit`` servers in it (InstanceGroupNotFound when the group is gone).

    The members are counted again once they are written (as the instance quota's
    recheck does): of two concurrent additions that both passed the first count, one
    that finds the limit passed takes its servers out again and fails. Adding members
    leaves the group's generation alone: a member holds no allocation yet, so it
    cannot change what a concurrent claim must check.
    """
    with writer() as s:
        row = _group_row(s, group_uuid)
        group_id, used = row.id, _count_members(s, row.id, user_id)
        if 0 <= limit < used + len(instance_uuids):
            raise exception.OverQuota(overs='server_group_members', req=len(instance_uuids),
                                      used=used, allowed=limit)
        s.execute(sa.insert(MEMBER).values([
            {'group_id': group_id, 'instance_uuid': u, 'created_at': models.utcnow()}
            for u in instance_uuids]))
    if limit < 0:
        return
    with writer() as s:
        used = _count_members(s, group_id, user_id)
        if used > limit:
            s.execute(sa.delete(MEMBER).where(MEMBER.instance_uuid.in_(instance_uuids)))
            raise exception.OverQuota(overs='server_group_members', req=len(instance_uuids),
                                      used=used - len(instance_uuids), allowed=limit)


def drop_membership(s, instance_uuid: str) -> None:
    """The server leaves its group (it is being deleted), in the caller's transaction."""
    s.execute(sa.delete(MEMBER).where(MEMBER.instance_uuid == instance_uuid))


def _bump(s, group_id: int, group_uuid: str, generation: int) -> None:
    res = s.execute(update(SG).where(SG.id == group_id, SG.generation == generation)
                    .values(generation=generation + 1))
    if res.rowcount != 1:
        raise exception.ServerGroupGenerationConflict(uuid=group_uuid)


# ---------------------------------------------------------------- placement of members

@dataclasses.dataclass
class Placement:
    """A group as the policy check sees it: where its other members hold allocations."""

    group_id: int
    uuid: str
    policy: str
    rules: dict
    generation: int
    instance_uuid: str
    # host -> the members (other than instance_uuid) holding allocations there
    hosts: dict[str, set[str]]

    @property
    def hard(self) -> bool:
        return self.policy in HARD_POLICIES

    def violation(self, host: str) -> str | None:
        """Why placing instance_uuid on ``host`` breaks a hard policy, or None."""
        if self.policy == ANTI_AFFINITY:
            here = len(self.hosts.get(host, ()))
            limit = max_per_host(self.rules)
            if here >= limit:
                return ('%s already holds %d member%s (max_server_per_host %d)'
                        % (host, here, '' if here == 1 else 's', limit))
        elif self.policy == AFFINITY:
            elsewhere = sorted(h for h in self.hosts if h != host)
            if elsewhere:
                return 'its members are on %s' % ', '.join(elsewhere)
        return None


def _member_hosts(s, group_id: int, exclude: list[str]) -> dict[str, set[str]]:
    """host -> members of the group (except ``exclude``) holding an allocation there,
    as the instance itself or through one of its migrations."""
    alloc, rp, cn, mig = (models.Allocation, models.ResourceProvider, models.ComputeNode,
                          models.Migration)
    members = select(MEMBER.instance_uuid).where(MEMBER.group_id == group_id)
    if exclude:
        members = members.where(MEMBER.instance_uuid.not_in(exclude))
    base = (select(cn.host, alloc.consumer_id)
            .join(rp, rp.id == alloc.resource_provider_id)
            .join(cn, cn.uuid == rp.uuid))
    own = base.where(alloc.consumer_id.in_(members))
    through_migration = (select(cn.host, mig.instance_uuid)
                         .select_from(alloc)
                         .join(rp, rp.id == alloc.resource_provider_id)
                         .join(cn, cn.uuid == rp.uuid)
                         .join(mig, mig.uuid == alloc.consumer_id)
                         .where(mig.instance_uuid.in_(members)))
    out: dict[str, set[str]] = {}
    for host, member in s.execute(sa.union(own, through_migration)):
        out.setdefault(host, set()).add(member)
    return out


# Built once: every scheduling request asks whether its servers are in a group.
_GROUP_OF_ANY = (select(SG.id, SG.uuid, SG.policy, SG.rules, SG.generation,
                        MEMBER.instance_uuid)
                 .join(MEMBER, MEMBER.group_id == SG.id)
                 .where(MEMBER.instance_uuid.in_(sa.bindparam('uuids', expanding=True)))
                 .limit(1))


def placement_of(s, instance_uuids: list[str]) -> Placement | None:
    """The group of the first of ``instance_uuids`` that has one (the servers of one
    request share it), with its other members' hosts; None for servers in no group."""
    if not instance_uuids:
        return None
    row = s.connection().execute(_GROUP_OF_ANY, {'uuids': list(instance_uuids)}).first()
    if row is None:
        return None
    return Placement(group_id=row.id, uuid=row.uuid, policy=row.policy,
                     rules=dict(row.rules or {}), generation=row.generation,
                     instance_uuid=row.instance_uuid,
                     hosts=_member_hosts(s, row.id, list(instance_uuids)))


def check_claim(s, consumer_id: str, rp_uuids: list[str]) -> None:
    """Inside a claim's transaction: raise GroupPolicyViolation when the consumer (an
    instance, or a migration of one) is a member of a hard-policy group and the
    providers' hosts would break the policy; otherwise move the group's generation.

    The group row is locked first (FOR NO KEY UPDATE): a concurrent claim for the same
    group waits here until this transaction ends, then counts with this claim's
    allocations in view (each statement reads what is committed under READ COMMITTED;
    SQLite runs one writer at a time). The compare-and-swap on the generation is the
    guard behind the lock: should a claim ever pass it unlocked, it fails with
    ServerGroupGenerationConflict and is retried on fresh data.
    """
    mig = models.Migration
    row = s.execute(select(SG.id, SG.policy, MEMBER.instance_uuid)
                    .join(MEMBER, MEMBER.group_id == SG.id)
                    .where(or_(MEMBER.instance_uuid == consumer_id,
                               MEMBER.instance_uuid.in_(
                                   select(mig.instance_uuid).where(mig.uuid == consumer_id))))
                    .limit(1)).first()
    if row is None or row.policy not in HARD_POLICIES:
        return
    group = s.execute(select(SG.uuid, SG.policy, SG.rules, SG.generation)
                      .where(SG.id == row.id)
                      .with_for_update(key_share=True)).first()
    if group is None:
        return  # deleted meanwhile: the server belongs to no group any more
    instance_uuid = row.instance_uuid
    placement = Placement(group_id=row.id, uuid=group.uuid, policy=group.policy,
                          rules=dict(group.rules or {}), generation=group.generation,
                          instance_uuid=instance_uuid,
                          hosts=_member_hosts(s, row.id, [instance_uuid]))
    hosts = sorted(set(s.scalars(select(models.ComputeNode.host)
                                 .where(models.ComputeNode.uuid.in_(list(rp_uuids))))))
    for host in hosts:
        reason = placement.violation(host)
        if reason:
            raise exception.GroupPolicyViolation(
                instance_uuid=instance_uuid, host=host, policy=placement.policy,
                group_uuid=placement.uuid, reason=reason)
    _bump(s, placement.group_id, placement.uuid, placement.generation)


@retry_on_transient
def check_host(instance_uuid: str, host: str) -> None:
    """Raise GroupPolicyViolation when placing the server on ``host`` breaks its
    group's hard policy (for moves that name a host). Advisory: the claim that follows
    checks again, atomically."""
    with reader() as s:
        placement = placement_of(s, [instance_uuid])
    if placement is None or not placement.hard:
        return
    reason = placement.violation(host)
    if reason:
        raise exception.GroupPolicyViolation(
            instance_uuid=instance_uuid, host=host, policy=placement.policy,
            group_uuid=placement.uuid, reason=reason)
