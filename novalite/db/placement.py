"""Compute nodes and the small in-database placement: providers, inventories and atomic claims."""

import hashlib
import re
import uuid as uuidlib
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy import func, select, update

from novalite import exception
from novalite.db import models, server_groups
from novalite.db.common import to_dict
from novalite.db.models import utcnow
from novalite.db.retry import retry_on_transient
from novalite.db.session import reader, writer
from novalite.group_policies import HARD_POLICIES

_NODE_COLUMNS = ('hypervisor_type', 'hypervisor_version', 'host_ip', 'vcpus', 'memory_mb',
                 'local_gb', 'vcpus_used', 'memory_mb_used', 'local_gb_used', 'running_vms',
                 'cpu_info', 'uptime')


@retry_on_transient
def compute_node_update(host: str, nodename: str, resources: dict, allocation_ratios: dict,
                        reserved: dict, traits: Iterable[str] = ()) -> dict:
    """Create or refresh a compute node and its resource provider inventory.

    Inventory totals come from the hypervisor; allocation ratios and reserved amounts
    from configuration. The provider generation moves on every inventory change so a
    concurrent claim notices.
    """
    return compute_nodes_update(host, [dict(
        nodename=nodename, resources=resources, allocation_ratios=allocation_ratios,
        reserved=reserved, traits=traits)])[0]


@retry_on_transient
def compute_nodes_update(host: str, reports: list[dict]) -> list[dict]:
    """compute_node_update for several nodes of one host in one transaction, with one
    read per table for the whole batch (a multi-node host reports thousands of nodes).
    Each report: nodename, resources, allocation_ratios, reserved, traits. Returns the
    compute nodes in the order of ``reports``."""
    names = [r['nodename'] for r in reports]
    with writer() as s:
        svc_id = s.scalar(select(models.Service.id).where(
            models.Service.host == host, models.Service.binary == 'novalite-compute'))
        nodes = {cn.hypervisor_hostname: cn for cn in s.scalars(
            select(models.ComputeNode).where(models.ComputeNode.host == host,
                                             models.ComputeNode.hypervisor_hostname.in_(names)))}
        new = []
        for r in reports:
            if r['nodename'] not in nodes:
                cn = nodes[r['nodename']] = models.ComputeNode(
                    uuid=str(uuidlib.uuid4()), host=host, hypervisor_hostname=r['nodename'],
                    hypervisor_type=r['resources'].get('hypervisor_type', 'fake'))
                new.append(cn)
        s.add_all(new)
        now = utcnow()
        for r in reports:
            cn, resources, ratios = nodes[r['nodename']], r['resources'], r['allocation_ratios']
            cn.service_id = svc_id
            for key in _NODE_COLUMNS:
                if key in resources:
                    setattr(cn, key, resources[key])
            cn.cpu_allocation_ratio = ratios['VCPU']
            cn.ram_allocation_ratio = ratios['MEMORY_MB']
            cn.disk_allocation_ratio = ratios['DISK_GB']
            cn.traits = sorted(set(r.get('traits') or ()))
            cn.updated_at = now
        s.flush()
        uuids = [nodes[n].uuid for n in names]
        rps = {rp.uuid: rp for rp in s.scalars(select(models.ResourceProvider).where(
            models.ResourceProvider.uuid.in_(uuids)))}
        missing = [models.ResourceProvider(uuid=nodes[n].uuid, name=n, generation=0)
                   for n in names if nodes[n].uuid not in rps]
        if missing:
            s.add_all(missing)
            s.flush()
            rps.update((rp.uuid, rp) for rp in missing)
        existing: dict[int, dict[str, models.Inventory]] = {}
        for inv in s.scalars(select(models.Inventory).where(
                models.Inventory.resource_provider_id.in_([rp.id for rp in rps.values()]))):
            existing.setdefault(inv.resource_provider_id, {})[inv.resource_class] = inv
        for r in reports:
            rp = rps[nodes[r['nodename']].uuid]
            if _set_inventory(s, rp, existing.get(rp.id, {}), r['resources'],
                              r['allocation_ratios'], r['reserved']):
                rp.generation += 1
        s.flush()
        return [to_dict(nodes[n]) for n in names]


def _set_inventory(s, rp, existing, resources, allocation_ratios, reserved) -> bool:
    """Bring a provider's inventories to the reported totals; True when any changed."""
    totals = {'VCPU': resources['vcpus'], 'MEMORY_MB': resources['memory_mb'],
              'DISK_GB': resources['local_gb']}
    changed = False
    for rc, total in totals.items():
        inv = existing.get(rc)
        want = dict(total=int(total), reserved=int(reserved.get(rc, 0)),
                    max_unit=int(total), allocation_ratio=float(allocation_ratios[rc]))
        if inv is None:
            s.add(models.Inventory(resource_provider_id=rp.id, resource_class=rc, **want))
            changed = True
        elif any(getattr(inv, k) != v for k, v in want.items()):
            for k, v in want.items():
                setattr(inv, k, v)
            changed = True
    return changed


@retry_on_transient
def compute_node_get_all(host=None) -> list[dict]:
    with reader() as s:
        q = select(models.ComputeNode).order_by(models.ComputeNode.id)
        if host is not None:
            q = q.where(models.ComputeNode.host == host)
        return [to_dict(r) for r in s.scalars(q)]


@retry_on_transient
def compute_node_get(node_id) -> dict:
    with reader() as s:
        col = models.ComputeNode.uuid if isinstance(node_id, str) else models.ComputeNode.id
        row = s.scalars(select(models.ComputeNode).where(col == node_id)).first()
        if row is None:
            raise exception.ComputeNodeNotFound(node=node_id)
        return to_dict(row)


@retry_on_transient
def compute_node_get_by_host_and_node(host: str, nodename: str | None = None) -> dict:
    with reader() as s:
        q = select(models.ComputeNode).where(models.ComputeNode.host == host)
        if nodename:
            q = q.where(models.ComputeNode.hypervisor_hostname == nodename)
        row = s.scalars(q).first()
        if row is None:
            raise exception.ComputeHostNotFound(host=host)
        return to_dict(row)


def _usage(s, rp_id: int) -> dict[str, int]:
    rows = s.execute(select(models.Allocation.resource_class, func.sum(models.Allocation.used))
                     .where(models.Allocation.resource_provider_id == rp_id)
                     .group_by(models.Allocation.resource_class))
    return {rc: int(used or 0) for rc, used in rows}


def _capacities(s, rp_uuids: list[str]) -> dict[str, tuple]:
    """Provider uuid -> (id, name, generation, {class: (inventory row, used)}) in one
    read: each inventory with what is allocated of it now."""
    rp, inv, alloc = models.ResourceProvider, models.Inventory, models.Allocation
    used = (select(func.coalesce(func.sum(alloc.used), 0))
            .where(alloc.resource_provider_id == rp.id,
                   alloc.resource_class == inv.resource_class)
            .scalar_subquery())
    rows = s.execute(select(rp.id, rp.uuid, rp.name, rp.generation, inv.resource_class,
                            inv.total, inv.reserved, inv.allocation_ratio, inv.max_unit,
                            used.label('used'))
                     .outerjoin(inv, inv.resource_provider_id == rp.id)
                     .where(rp.uuid.in_(rp_uuids)))
    out: dict[str, tuple] = {}
    for row in rows:
        entry = out.setdefault(row.uuid, (row.id, row.name, row.generation, {}))
        if row.resource_class is not None:
            entry[3][row.resource_class] = (row, int(row.used or 0))
    for u in rp_uuids:
        if u not in out:
            raise exception.ResourceProviderNotFound(uuid=u)
    return out


def _write_allocations(s, consumer_id, requests, project_id, user_id, replace):
    """Check capacity and write allocations for one consumer; the caller retries races.

    A consumer in a server group with a hard policy has the policy checked first, in
    this same transaction (GroupPolicyViolation, ServerGroupGenerationConflict)."""
    # First: it may wait for a concurrent claim of the same group, and everything read
    # after it must be what that claim committed.
    server_groups.check_claim(s, consumer_id, list(requests))
    if replace:
        s.execute(sa.delete(models.Allocation).where(
            models.Allocation.consumer_id == consumer_id))
    providers = _capacities(s, list(requests))
    now = utcnow()
    rows = []
    for rp_uuid, resources in requests.items():
        rp_id, rp_name, generation, inventories = providers[rp_uuid]
        for rc, amount in resources.items():
            if not amount:
                continue
            inv, used = inventories.get(rc, (None, 0))
            if inv is None:
                raise exception.InsufficientResources(amount=amount, resource_class=rc,
                                                      provider=rp_name, free=0)
            capacity = int((inv.total - inv.reserved) * inv.allocation_ratio)
            free = capacity - used
            if amount > free or amount > inv.max_unit:
                raise exception.InsufficientResources(amount=amount, resource_class=rc,
                                                      provider=rp_name, free=max(free, 0))
            rows.append({'resource_provider_id': rp_id, 'consumer_id': consumer_id,
                         'resource_class': rc, 'used': int(amount),
                         'project_id': project_id, 'user_id': user_id, 'created_at': now})
    # Generation compare-and-swap, provider by provider in the order asked: a
    # concurrent claim on any of them makes one of us retry.
    rp = models.ResourceProvider
    for rp_uuid in requests:
        rp_id, _, generation, _ = providers[rp_uuid]
        res = s.execute(update(rp).where(rp.id == rp_id, rp.generation == generation)
                        .values(generation=generation + 1))
        if res.rowcount != 1:
            raise exception.ResourceProviderGenerationConflict(uuid=rp_uuid)
    if rows:
        # One multi-row INSERT: one round trip, whatever the number of providers.
        s.execute(sa.insert(models.Allocation).values(rows))


# The fast claim's SQL, one per shape of request: (dialect, classes asked of each
# provider, replace). Written once, then only its parameters change.
_FAST_SQL: dict[tuple, tuple] = {}
_HARD_MEMBER = (
    'EXISTS (SELECT 1 FROM server_group_members m JOIN server_groups g '
    'ON g.id = m.group_id WHERE g.policy IN (:hard0, :hard1) AND '
    '(m.instance_uuid = :consumer OR m.instance_uuid IN '
    '(SELECT mg.instance_uuid FROM migrations mg WHERE mg.uuid = :consumer)))')
_ALLOC_COLUMNS = ('resource_provider_id, consumer_id, resource_class, used, project_id, '
                  'user_id, created_at')


def _typed(sql: str) -> sa.TextClause:
    return sa.text(sql).bindparams(sa.bindparam('now', type_=sa.DateTime()))


def _fast_sql(dialect: str, shape: tuple[tuple[str, ...], ...], replace: bool) -> tuple:
    """(update, delete, insert) statements for the fast claim; on PostgreSQL one
    statement doing all three (data-modifying WITH), the others None."""
    key = (dialect, shape, replace)
    if key in _FAST_SQL:
        return _FAST_SQL[key]
    own = ' AND a.consumer_id <> :consumer' if replace else ''
    cases, picks, amounts = [], [], []
    for i, classes in enumerate(shape):
        fits = ' AND '.join(
            'EXISTS (SELECT 1 FROM inventories inv WHERE inv.resource_provider_id = '
            'resource_providers.id AND inv.resource_class = :rc_%(i)d_%(j)d AND '
            'inv.max_unit >= :a_%(i)d_%(j)d AND (inv.total - inv.reserved) * '
            'inv.allocation_ratio >= :a_%(i)d_%(j)d + (SELECT COALESCE(SUM(a.used), 0) '
            'FROM allocations a WHERE a.resource_provider_id = inv.resource_provider_id '
            'AND a.resource_class = inv.resource_class%(own)s))'
            % {'i': i, 'j': j, 'own': own} for j in range(len(classes)))
        cases.append('(resource_providers.uuid = :u_%d AND resource_providers.generation '
                     '= :g_%d AND %s)' % (i, i, fits))
        picks.append('(p.uuid = :u_%d AND inv.resource_class IN (%s))' % (
            i, ', '.join(':rc_%d_%d' % (i, j) for j in range(len(classes)))))
        amounts += ['WHEN p.uuid = :u_%d AND inv.resource_class = :rc_%d_%d THEN :a_%d_%d'
                    % (i, i, j, i, j) for j in range(len(classes))]
    bump = ('UPDATE resource_providers SET generation = generation + 1, updated_at = :now '
            'WHERE (%s) AND NOT %s' % (' OR '.join(cases), _HARD_MEMBER))
    rows = ('SELECT p.id, :consumer, inv.resource_class, CASE %s END, :project, :user, '
            ':now FROM %%s JOIN inventories inv ON inv.resource_provider_id = p.id '
            'WHERE (%s)' % (' '.join(amounts), ' OR '.join(picks)))
    drop = 'DELETE FROM allocations WHERE consumer_id = :consumer'
    if dialect == 'postgresql':
        every = '(SELECT COUNT(*) FROM bumped) = %d' % len(shape)
        sql = 'WITH bumped AS (%s RETURNING id, uuid)' % bump
        if replace:
            sql += ', dropped AS (%s AND %s)' % (drop, every)
        sql += ' INSERT INTO allocations (%s) %s AND %s' % (
            _ALLOC_COLUMNS, rows % 'bumped p', every)
        out = (_Prepared('novalite_claim_' + hashlib.sha1(sql.encode()).hexdigest()[:20], sql),
               None, None)
    else:
        out = (_typed(bump), sa.text(drop) if replace else None,
               _typed('INSERT INTO allocations (%s) %s' % (
                   _ALLOC_COLUMNS, rows % 'resource_providers p')))
    _FAST_SQL[key] = out
    return out


class _Prepared:
    """A statement PostgreSQL plans once per connection (PREPARE), then only runs
    (EXECUTE). Planning the fast claim costs several times running it: 1.6 ms against
    0.35 ms at 1,000 hosts, as EXPLAIN ANALYZE shows."""

    _PARAM = re.compile(r'(?<![:\w]):([a-z]\w*)')

    def __init__(self, name: str, sql: str):
        self.name = name
        self.order: list[str] = []
        for param in self._PARAM.findall(sql):
            if param not in self.order:
                self.order.append(param)
        positional = self._PARAM.sub(lambda m: '$%d' % (self.order.index(m.group(1)) + 1),
                                     sql)
        self.prepare = 'PREPARE %s (%s) AS %s' % (
            name, ', '.join(map(_pg_type, self.order)), positional)
        self.execute = 'EXECUTE %s (%s)' % (
            name, ', '.join('%%(%s)s' % p for p in self.order))

    def run(self, conn: sa.Connection, params: dict) -> int:
        """Run on ``conn`` (preparing it first on a connection that has not); the rows
        it wrote. A prepared statement lives as long as its connection, and a failed
        PREPARE leaves nothing behind."""
        prepared = conn.connection.info.setdefault('novalite_prepared', set())
        if self.name not in prepared:
            conn.exec_driver_sql(self.prepare)
            prepared.add(self.name)
        return conn.exec_driver_sql(self.execute, params).rowcount


def _pg_type(param: str) -> str:
    if param == 'now':
        return 'timestamp'
    return 'integer' if param[:2] in ('g_', 'a_') else 'text'


def _fast_claim(s, consumer_id, requests, generations, project_id, user_id,
                replace) -> bool:
    """The claim without reading anything back, for a caller that knows the providers'
    generations: one UPDATE that, for every provider of the request at once, checks
    the room left (in SQL, from inventories and allocations) and moves the generation
    by compare-and-swap against ``generations``; the DELETE of the consumer's old
    allocations (with ``replace``); one INSERT .. SELECT of every allocation row. On
    PostgreSQL the three are one statement (one round trip).

    False when it did not apply: a generation moved since the caller saw it, a
    provider lacks room or is gone, or the consumer is in a hard-policy server group.
    Nothing is allocated then (a generation may have moved: harmless, it only means
    "look again"); the caller claims the reading way, in the same transaction, which
    tells these cases apart. Why this is an atomic compare-and-swap: claim_resources.
    """
    shape = tuple(tuple(sorted(rc for rc, a in requests[u].items() if a)) for u in requests)
    if not all(shape):
        return False
    params = {'consumer': consumer_id, 'project': project_id, 'user': user_id,
              'now': utcnow(), 'hard0': HARD_POLICIES[0], 'hard1': HARD_POLICIES[1]}
    for i, (u, classes) in enumerate(zip(requests, shape, strict=True)):
        params['u_%d' % i] = u
        params['g_%d' % i] = int(generations[u])
        for j, rc in enumerate(classes):
            params['rc_%d_%d' % (i, j)] = rc
            params['a_%d_%d' % (i, j)] = int(requests[u][rc])
    rows = sum(len(classes) for classes in shape)
    conn = s.connection()
    bump, drop, insert = _fast_sql(conn.dialect.name, shape, replace)
    if isinstance(bump, _Prepared):
        return bump.run(conn, params) == rows
    if conn.execute(bump, params).rowcount != len(shape):
        return False
    if drop is not None:
        conn.execute(drop, {'consumer': consumer_id})
    if conn.execute(insert, params).rowcount != rows:
        # An inventory went away between the two statements: start over, reading.
        raise exception.ResourceProviderGenerationConflict(uuid=', '.join(requests))
    return True


@retry_on_transient
def claim_resources(consumer_id: str, requests: dict[str, dict[str, int]], project_id=None,
                    user_id=None, replace: bool = False, retries: int = 10,
                    generations: dict[str, int] | None = None) -> None:
    """Atomically allocate resources on providers for a consumer.

    ``requests`` maps provider uuid -> {resource class: amount}. With ``replace`` the
    consumer's existing allocations are dropped first in the same transaction. Raises
    InsufficientResources when any provider lacks room, GroupPolicyViolation when the
    consumer's server group forbids the host; nothing is written then.

    ``generations`` (provider uuid -> the generation the caller last saw, e.g. the
    scheduler's host cache) lets the claim go without reading anything back: one
    UPDATE checks the room in SQL and swaps the generations (_fast_claim). It is a
    compare-and-swap: it applies only where the provider's generation, as the UPDATE
    finds it once it holds the row's lock (PostgreSQL and InnoDB check a row they
    waited for again on its latest committed version), is still the one given; and
    every transaction that adds allocations to a provider moves that provider's
    generation in the same transaction. So a claim committed since the given
    generation was set has moved it (no row matches, nothing is written), and one
    still running holds the row's lock until it ends, having moved it. A given
    generation must be one the caller saw committed, never ahead of the database (as
    HostCache.generation): then whoever set it committed before the UPDATE began, and
    its allocations are in what the UPDATE reads. When the UPDATE does not apply, the
    claim is made the reading way in the same transaction: read the room and the
    generations, check in Python (naming what lacks), then the same compare-and-swap.
    Two scheduler processes racing this way: tests/integration/test_scheduler_claim_race.py.
    """
    fast = bool(generations) and bool(requests) and all(u in generations
                                                        for u in requests)
    for attempt in range(retries):
        try:
            with writer() as s:
                if not (fast and _fast_claim(s, consumer_id, requests, generations,
                                             project_id, user_id, replace)):
                    _write_allocations(s, consumer_id, requests, project_id, user_id,
                                       replace)
            return
        except (exception.ResourceProviderGenerationConflict,
                exception.ServerGroupGenerationConflict):
            fast = False
            if attempt == retries - 1:
                raise


@retry_on_transient
def get_allocations(consumer_id: str) -> dict[str, dict[str, int]]:
    """Provider uuid -> {resource class: amount} of one consumer."""
    with reader() as s:
        rows = s.execute(select(models.ResourceProvider.uuid, models.Allocation.resource_class,
                                models.Allocation.used)
                         .join(models.ResourceProvider,
                               models.ResourceProvider.id ==
                               models.Allocation.resource_provider_id)
                         .where(models.Allocation.consumer_id == consumer_id))
        out: dict[str, dict[str, int]] = {}
        for rp_uuid, rc, used in rows:
            out.setdefault(rp_uuid, {})[rc] = out.get(rp_uuid, {}).get(rc, 0) + used
        return out


@retry_on_transient
def get_allocations_full(consumer_id: str) -> dict:
    """Allocations plus the owning project/user, for moving them to another consumer."""
    with reader() as s:
        row = s.scalars(select(models.Allocation).where(
            models.Allocation.consumer_id == consumer_id)).first()
    return {'allocations': get_allocations(consumer_id),
            'project_id': row.project_id if row else None,
            'user_id': row.user_id if row else None}


@retry_on_transient
def delete_allocations(consumer_id: str, rp_uuid: str | None = None) -> int:
    """Drop a consumer's allocations (on one provider only when ``rp_uuid`` is given)."""
    with writer() as s:
        return drop_allocations(s, consumer_id, rp_uuid)


def drop_allocations(s, consumer_id: str, rp_uuid: str | None = None) -> int:
    """``delete_allocations`` inside the caller's transaction ``s``."""
    q = sa.delete(models.Allocation).where(models.Allocation.consumer_id == consumer_id)
    if rp_uuid is not None:
        rp = s.scalars(select(models.ResourceProvider).where(
            models.ResourceProvider.uuid == rp_uuid)).first()
        if rp is None:
            return 0
        q = q.where(models.Allocation.resource_provider_id == rp.id)
    if s.connection().dialect.delete_returning:
        # The deleted rows name their providers: one statement, nothing read first.
        deleted = s.execute(q.returning(models.Allocation.resource_provider_id)).scalars().all()
        rps, n = list(dict.fromkeys(deleted)), len(deleted)
    else:
        rps = [r for (r,) in s.execute(select(models.Allocation.resource_provider_id).where(
            models.Allocation.consumer_id == consumer_id).distinct())]
        n = s.execute(q).rowcount
    if rps:
        s.execute(update(models.ResourceProvider).where(
            models.ResourceProvider.id.in_(rps)).values(
            generation=models.ResourceProvider.generation + 1))
    return n


@retry_on_transient
def move_allocations(source_consumer: str, target_consumer: str) -> None:
    """Hand every allocation of one consumer to another (e.g. instance -> migration).

    The target's own allocations are replaced. When the source holds nothing (a move
    that already happened, run again after a crash) nothing changes.
    """
    with writer() as s:
        hand_over_allocations(s, source_consumer, target_consumer)


def hand_over_allocations(s, source_consumer: str, target_consumer: str) -> bool:
    """``move_allocations`` inside the caller's transaction ``s``; False when the source
    held nothing (the target's allocations are kept then)."""
    A = models.Allocation
    held = select(A.id).where(A.consumer_id == source_consumer).limit(1)
    if s.connection().dialect.name == 'mysql':
        # MariaDB refuses a DELETE whose subquery reads the table it deletes from.
        if s.scalars(held).first() is None:
            return False
        s.execute(sa.delete(A).where(A.consumer_id == target_consumer))
    else:
        s.execute(sa.delete(A).where(A.consumer_id == target_consumer, sa.exists(held))
                  .execution_options(synchronize_session=False))
    moved = s.execute(update(A).where(A.consumer_id == source_consumer).values(
        consumer_id=target_consumer).execution_options(synchronize_session=False))
    return moved.rowcount > 0


def _provider(s, rp_uuid: str) -> models.ResourceProvider:
    rp = s.scalars(select(models.ResourceProvider).where(
        models.ResourceProvider.uuid == rp_uuid)).first()
    if rp is None:
        raise exception.ResourceProviderNotFound(uuid=rp_uuid)
    return rp


@retry_on_transient
def provider_usages(rp_uuid: str) -> dict[str, int]:
    with reader() as s:
        return _usage(s, _provider(s, rp_uuid).id)


@retry_on_transient
def provider_inventories(rp_uuid: str) -> dict[str, dict]:
    with reader() as s:
        rp = _provider(s, rp_uuid)
        return {inv.resource_class: to_dict(inv) for inv in s.scalars(
            select(models.Inventory).where(models.Inventory.resource_provider_id == rp.id))}


@retry_on_transient
def all_consumers() -> set[str]:
    with reader() as s:
        return set(s.scalars(select(models.Allocation.consumer_id).distinct()))
