"""Admission of live migrations under their policies' limits: how many may leave one
host, enter one host and run in the whole cloud at once, and which waiting move takes a
slot that frees.

Admission is a function of recorded state only: the live migrations the database shows
holding a slot (handed to their source: ``instances.task_driver`` is None) and those
waiting for one (``queued`` while a conductor drives them), ordered by their policy's
priority, then drains' against users' moves as ``[migration] admission_order`` says,
then age. Every conductor computes the same order and starts only its own waiters, so
conductors agree on who goes next without talking to each other. Within one conductor
decisions are serialised; two fresh requests in two conductors at the same instant may
both start (one slot over a limit, briefly): limits pace moves, they are not a claim.
"""

import collections
import logging
import threading

from novalite.compute import states
from novalite.conductor import policies
from novalite.conf import CONF
from novalite.db import api as db
from novalite.virt.migration_tuning import utc_iso

LOG = logging.getLogger(__name__)

UNLIMITED = 2 ** 31 - 1   # live_slots_free() when no limit applies

# Decisions recorded in the migration's policy_log.
WAITING = 'waiting_for_slot'
ADMITTED = 'admitted'


class _Counts:
    """Live migrations holding a slot: out of each host, into each host, in all."""

    def __init__(self, holding=()):
        self.out = collections.Counter()
        self.into = collections.Counter()
        self.total = 0
        for m in holding:
            self.add(m['source_compute'], m['dest_compute'])

    def add(self, source, dest):
        self.out[source] += 1
        self.into[dest] += 1
        self.total += 1

    def blocked_by(self, policy, source, dest) -> str | None:
        """Which of ``policy``'s limits a move from ``source`` to ``dest`` would pass."""
        if policy.max_outbound_per_host and self.out[source] >= policy.max_outbound_per_host:
            return (f'{self.out[source]} live migration(s) leaving {source}, policy '
                    f'{policy.name} allows {policy.max_outbound_per_host}')
        if policy.max_inbound_per_host and self.into[dest] >= policy.max_inbound_per_host:
            return (f'{self.into[dest]} live migration(s) entering {dest}, policy '
                    f'{policy.name} allows {policy.max_inbound_per_host}')
        if policy.max_parallel and self.total >= policy.max_parallel:
            return (f'{self.total} live migration(s) in the cloud, policy {policy.name} '
                    f'allows {policy.max_parallel}')
        return None


def _policy_of(known: policies.Policies, name) -> policies.Policy:
    return known.get(name) or known.default_policy


def _order_key(known, migration):
    order = CONF.migration.admission_order
    drain = migration.get('drain_id') is not None
    if order == 'drains_first':
        group = 0 if drain else 1
    elif order == 'users_first':
        group = 1 if drain else 0
    else:
        group = 0
    return (-_policy_of(known, migration.get('policy')).priority, group, migration['id'])


def plan(in_flight: list, known: policies.Policies, candidate: dict | None = None):
    """Which waiting live migrations (and ``candidate``, a move about to start) may start
    now: ``(admitted ids, {id: why blocked}, counts once they started)``."""
    holding = [m for m in in_flight if not m.get('task_driver') and m.get('dest_compute')]
    waiting = [m for m in in_flight if states.waiting_for_slot(m, m)]
    if candidate is not None and candidate['id'] not in {m['id'] for m in waiting}:
        waiting.append(candidate)
    counts = _Counts(holding)
    admitted, blocked = set(), {}
    for m in sorted(waiting, key=lambda m: _order_key(known, m)):
        reason = counts.blocked_by(_policy_of(known, m.get('policy')),
                                   m['source_compute'], m['dest_compute'])
        if reason:
            blocked[m['id']] = reason
            continue
        counts.add(m['source_compute'], m['dest_compute'])
        admitted.add(m['id'])
    return admitted, blocked, counts


# One admission decision at a time in this process: a decision and the step write that
# records it (handed over, or waiting) go together, so concurrent requests to one
# conductor never both take the last slot.
deciding = threading.Lock()


def may_start(migration: dict, source: str, dest: str) -> tuple[bool, str | None]:
    """Whether ``migration`` (from ``source`` to ``dest``) may start now; if not, why.
    Call it holding ``deciding`` until the decision is recorded."""
    candidate = dict(migration, source_compute=source, dest_compute=dest)
    admitted, blocked, _ = plan(db.live_migrations_in_flight(), policies.current(),
                                candidate)
    return migration['id'] in admitted, blocked.get(migration['id'])


def live_slots_free(host: str, policy: str | None = None) -> int:
    """How many more live migrations out of ``host`` may start now under the outbound
    and cluster-wide limits of ``policy`` (a policy name; None or unknown: the default
    policy), after the moves already waiting for a slot took theirs and counting the
    moves still in pre-checks as holding one. ``UNLIMITED`` when
    neither limit is set. Inbound limits depend on the destination and are not counted;
    a compute's own max_concurrent_live_migrations queue is not either."""
    known = policies.current()
    pol = _policy_of(known, policy)
    in_flight = db.live_migrations_in_flight()
    _, _, counts = plan(in_flight, known)
    # Moves still in their conductor's pre-checks have asked for no slot yet, but will
    # in a moment: a drain that did not count them would start more than the limit and
    # leave the surplus waiting in a conductor.
    for m in in_flight:
        if m.get('task_driver') and not states.waiting_for_slot(m, m):
            counts.add(m['source_compute'], m.get('dest_compute'))
    free = UNLIMITED
    if pol.max_outbound_per_host:
        free = min(free, pol.max_outbound_per_host - counts.out[host])
    if pol.max_parallel:
        free = min(free, pol.max_parallel - counts.total)
    return max(free, 0)


def log(migration_uuid: str, decision: str, detail: str, earlier=(),
        values: dict | None = None) -> None:
    """Append a decision to the migration's policy_log, after the ``earlier`` entries
    not recorded yet, with ``values`` written in the same transaction."""
    db.migration_log_append(migration_uuid, list(earlier) + [
        {'at': utc_iso(), 'decision': decision, 'detail': detail}], values=values)


def wait_for_slot(manager, task, driving) -> threading.Thread:
    """Hold ``task`` (a LiveMigrationTask recorded as waiting) until admission lets it
    start, then hand it over; ``driving`` is the entered ``manager.driven`` context of
    its instance, kept until the wait ends so the reconciler knows this process still
    drives it."""
    thread = threading.Thread(target=_wait, args=(manager, task, driving), daemon=True,
                              name=f'admission-{task.instance_uuid}')
    thread.start()
    return thread


def _still_waiting(manager, task) -> bool:
    """The record still shows this conductor holding the move (an abort, a reconciler
    or a deletion may have ended it meanwhile)."""
    mig = db.migration_get(task.migration_uuid)
    inst = db.instance_get(task.instance_uuid)
    return states.waiting_for_slot(mig, inst) and inst.get('task_driver') == manager.host


def _wait(manager, task, driving):
    stop = manager.admission_stop
    try:
        while not stop.wait(CONF.migration.admission_interval):
            if not _still_waiting(manager, task):
                LOG.info('Live migration of %s no longer waits for a slot',
                         task.instance_uuid)
                return
            with deciding:
                mig = db.migration_get(task.migration_uuid)
                start, _ = may_start(mig, mig['source_compute'], mig['dest_compute'])
                if start:
                    task.record_hand_over(admitted=True)
            if start:
                task.cast_to_source()
                return
    except Exception as exc:
        LOG.info('Live migration of %s failed while waiting for a slot: %s',
                 task.instance_uuid, exc)
        task.rollback(exc)
    finally:
        driving.__exit__(None, None, None)
