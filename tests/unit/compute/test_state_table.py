"""The state table walked as a graph: every state reachable, every non-final state owned
and recoverable, every string in it declared once."""

import pytest

from novalite.compute import states

MS = states.MS


def _statuses():
    return {v for k, v in vars(MS).items() if k.isupper()}


@pytest.mark.parametrize('move', states.MOVES, ids=lambda m: m.name)
def test_every_step_is_well_formed(move):
    for step in move.steps + move.failures:
        assert step.owner in states.OWNERS, step
        assert step.recovery in states.RECOVERIES, step
        assert step.task_before, step
        for task in step.task_before + (step.task_after,):
            assert task is None or task in vars(states).values(), step
        for status in step.status_before + (step.status_after,) + step.status_choices:
            assert status is None or status in _statuses(), step
        for vm in step.vm_choices + step.vm_before:
            assert vm in states.VM_STATES, step
        assert step.allocations is None or step.allocations in states.ALLOCATION_CHANGES


def test_step_names_are_unique():
    names = [s.name for s in states.ALL_STEPS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize('move', states.MOVES, ids=lambda m: m.name)
def test_every_recorded_state_is_reachable_from_the_start(move):
    """Walk forward from the API's first step: every (task_state, status) pair a step
    expects must be written by an earlier step, or be the start."""
    start = move.steps[0]
    reached = {(task, status) for task in start.task_before for status in start.status_before}
    frontier = True
    while frontier:
        frontier = False
        for step in move.steps:
            if any((t, s) in reached for t in step.task_before for s in step.status_before):
                pair = (step.task_after, step.status_after)
                if pair not in reached:
                    reached.add(pair)
                    frontier = True
    for step in move.steps:
        assert any((t, s) in reached for t in step.task_before for s in step.status_before), \
            f'{step.name} can never start'
    for step in move.failures:
        assert any((t, s) in reached for t in step.task_before for s in step.status_before), \
            f'{step.name} can never be taken'


@pytest.mark.parametrize('move', states.MOVES, ids=lambda m: m.name)
def test_every_non_final_state_has_an_owner_and_a_recovery(move):
    for step in move.steps:
        if step.final:
            continue
        nxt = [s for s in move.steps if step.status_after in s.status_before and
               step.task_after in s.task_before]
        assert nxt, f'nothing leaves the state {step.name} records'
        # Whoever owns the next step can drive it, and the table says how to recover.
        for s in nxt:
            assert s.owner in states.OWNERS and s.recovery in states.RECOVERIES
        # Every non-final state can also fail into a final one.
        fails = [f for f in move.failures if step.status_after in f.status_before and
                 step.task_after in f.task_before]
        assert fails or step.status_after in (MS.FINISHED,), \
            f'no failure step leaves {step.name}'


@pytest.mark.parametrize('move', states.MOVES, ids=lambda m: m.name)
def test_cleanups_follow_a_final_step_and_touch_only_the_migration(move):
    finals = {s.status_after for s in move.steps if s.final}
    for step in move.cleanups:
        assert step.migration_only and step.owner in states.OWNERS, step
        assert set(step.status_before) <= finals, step
        assert step.status_after in states.MIGRATION_DONE, step
    for step in move.steps + move.failures + move.recoveries:
        assert not step.migration_only, step


def test_an_evacuation_owes_its_source_a_clean_up_only_once_it_is_done():
    evac = {'migration_type': states.EVACUATION}
    assert states.source_owes_cleanup(dict(evac, status=MS.DONE))
    for status in (MS.ACCEPTED, MS.PRE_MIGRATING, MS.FAILED, MS.ERROR, MS.COMPLETED):
        assert not states.source_owes_cleanup(dict(evac, status=status))
    assert not states.source_owes_cleanup({'migration_type': states.LIVE_MIGRATION,
                                           'status': MS.DONE})
    mig = dict(evac, status=MS.ACCEPTED, dest_compute='dst')
    inst = {'task_state': states.REBUILDING}
    assert states.pending_step(dict(mig, dest_compute=None), inst).owner == states.CONDUCTOR
    assert states.pending_step(mig, inst).name == 'evacuation_rebuilding'
    assert states.pending_step(dict(mig, status=MS.PRE_MIGRATING),
                               {'task_state': states.REBUILD_SPAWNING}).name == \
        'evacuation_done'


def test_failures_end_in_final_statuses():
    for move in states.MOVES:
        for step in move.failures:
            assert step.task_after is None
            for status in (step.status_after,) + step.status_choices:
                assert status in states.MIGRATION_DONE


def test_recorded_step_and_next_steps_agree():
    mig = {'migration_type': states.COLD_MIGRATION, 'status': MS.POST_MIGRATING}
    assert states.recorded_step(mig, states.RESIZE_MIGRATED).name == 'disks_moved'
    assert [s.name for s in states.next_steps(mig, states.RESIZE_MIGRATED)] == \
        ['finish_resize']
    live = {'migration_type': states.LIVE_MIGRATION, 'status': MS.QUEUED}
    # Queued is the conductor's (waiting for a slot) or the source's (on its executor).
    assert [s.name for s in states.next_steps(live, states.MIGRATING)] == \
        ['live_destination_chosen', 'live_migration_preparing']
    assert states.recorded_step({'migration_type': states.RESIZE,
                                 'status': MS.CONFIRMED}, None) is None


def test_api_allowed_states_come_from_the_moves():
    assert states.API_ALLOWED['resize']['vm_state'] == states.RESIZE_MOVE.start_vm_states
    assert states.API_ALLOWED['live_migrate']['vm_state'] == states.LIVE_MOVE.start_vm_states
    assert states.API_ALLOWED['evacuate']['vm_state'] == states.EVACUATE_MOVE.start_vm_states


@pytest.mark.parametrize('vm,task,status', [
    (states.ACTIVE, None, 'ACTIVE'), (states.ACTIVE, states.RESIZE_PREP, 'RESIZE'),
    (states.RESIZED, None, 'VERIFY_RESIZE'), (states.RESIZED, states.RESIZE_REVERTING,
                                              'REVERT_RESIZE'),
    (states.PAUSED, states.MIGRATING, 'MIGRATING'), (states.STOPPED, None, 'SHUTOFF'),
    (None, None, 'UNKNOWN'), ('bogus', None, 'UNKNOWN')])
def test_server_status_view(vm, task, status):
    assert states.status_from_state(vm, task) == status
    if status != 'UNKNOWN':
        assert status in states.ALL_STATUSES


def test_no_migration_status_literal_outside_the_state_module():
    """No module but compute/states.py spells a migration status as a string literal."""
    import ast
    import pathlib

    import novalite
    root = pathlib.Path(novalite.__file__).parent
    # These words are also a vm_state and notification phase ('error'), a task_state
    # ('migrating'), a power state and virt job state ('running') and virt job results
    # ('completed', 'cancelled', 'failed'); every other status is the table's alone.
    statuses = _statuses() - {'error', 'running', 'migrating', 'completed', 'cancelled',
                              'failed'}
    offenders = []
    for path in root.rglob('*.py'):
        if path.name == 'states.py' and path.parent.name == 'compute':
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in statuses:
                offenders.append(f'{path.relative_to(root)}:{node.lineno} {node.value!r}')
    assert not offenders, offenders


def test_a_queued_live_migration_is_the_conductors_while_it_drives_it():
    """Waiting for a slot under the policy's limits: the conductor's step (rolled back
    if that conductor dies); handed to the source: the source's."""
    mig = {'migration_type': states.LIVE_MIGRATION, 'status': MS.QUEUED,
           'dest_compute': 'b', 'source_compute': 'a'}
    waiting = {'task_state': states.MIGRATING, 'task_driver': 'conductor1'}
    handed = {'task_state': states.MIGRATING, 'task_driver': None}
    assert states.waiting_for_slot(mig, waiting) and not states.waiting_for_slot(mig, handed)
    step = states.pending_step(mig, waiting)
    assert step.name == 'live_destination_chosen' and step.owner == states.CONDUCTOR
    assert step.recovery == states.ROLLBACK
    assert states.owner_host(step, mig, waiting) is None
    step = states.pending_step(mig, handed)
    assert step.name == 'live_migration_preparing'
    assert states.owner_host(step, mig, handed) == 'a'
    assert MS.QUEUED in states.step('live_migration_failed').status_before
