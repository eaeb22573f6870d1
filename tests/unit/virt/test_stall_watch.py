"""Stall detection of a live migration's memory copy, and the action a stall takes."""

from novalite.virt import driver


def _p(processed, remaining):
    return {'memory_processed': processed, 'memory_remaining': remaining}


def test_no_progress_for_the_stall_time_fires_once():
    watch = driver.StallWatch(10)
    assert not watch.update(_p(0, 100), 0)       # disks still copying: not counted
    assert not watch.update(_p(5, 100), 1)       # memory starts: lowest 100 at t=1
    assert not watch.update(_p(9, 90), 5)        # progress: lowest 90 at t=5
    assert not watch.update(_p(20, 95), 14)      # above the lowest, 9 s
    assert watch.update(_p(30, 91), 15)          # 10 s without going below 90
    assert not watch.update(_p(40, 91), 30)      # once only


def test_zero_seconds_never_stalls():
    watch = driver.StallWatch(0)
    assert not any(watch.update(_p(1, 100), t) for t in range(100))


def test_post_copy_needs_permission_else_pause():
    assert driver.stall_action({'stall_action': 'post_copy',
                                'permit_post_copy': True}) == driver.STALL_POST_COPY
    assert driver.stall_action({'stall_action': 'post_copy'}) == driver.STALL_PAUSE
    assert driver.stall_action({'stall_action': 'abort'}) == driver.STALL_ABORT
    assert driver.stall_action({'stall_action': 'pause',
                                'permit_post_copy': True}) == driver.STALL_PAUSE
