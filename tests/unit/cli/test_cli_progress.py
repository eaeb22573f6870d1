"""Rendering of the --poll progress display."""

import io

from novalite.cli import progress
from novalite.cli.progress import Snapshot

MIGRATION = {'id': 1, 'status': 'running', 'source_compute': 'c1', 'dest_compute': 'c2',
             'memory_total_bytes': 1024 ** 3, 'memory_processed_bytes': 512 * 1024 ** 2,
             'disk_total_bytes': 1024 ** 3, 'disk_processed_bytes': 1024 ** 3}


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_bar():
    assert progress.bar(0.0, 4) == '[----]'
    assert progress.bar(0.5, 4) == '[##--]'
    assert progress.bar(1.0, 4) == '[####]'


def test_fraction_uses_phase_progress_and_copy():
    assert progress.fraction(Snapshot('RESIZE', 'resize_prep')) == 0.10
    assert progress.fraction(Snapshot('RESIZE', 'resize_migrating', progress=60)) == 0.60
    assert progress.fraction(Snapshot('ACTIVE')) == 0.0
    live = Snapshot('MIGRATING', 'migrating', migration=MIGRATION)
    assert abs(progress.fraction(live) - (0.10 + 0.85 * 0.75)) < 1e-9


def test_migration_fraction_without_totals():
    assert progress.migration_fraction(None) is None
    assert progress.migration_fraction({'memory_total_bytes': 0}) is None


def test_describe_live_migration():
    text = progress.describe(Snapshot('MIGRATING', 'migrating', migration=MIGRATION))
    assert text == ('MIGRATING migrating c1 -> c2 (running) memory 512.0 MiB/1.0 GiB, '
                    'disk 1.0 GiB/1.0 GiB')
    assert progress.describe(Snapshot('ACTIVE', host='c2')) == 'ACTIVE on c2'


def test_tty_redraws_in_place_and_finish_clears():
    out = _Tty()
    rep = progress.Reporter('resize vm', out)
    assert rep.tty
    rep.update(Snapshot('RESIZE', 'resize_prep', host='c1', elapsed=0.1))
    rep.update(Snapshot('RESIZE', 'resize_finish', host='c2', elapsed=0.2))
    rep.finish('vm: VERIFY_RESIZE on c2')
    text = out.getvalue()
    assert text.count('\r') == 3 and text.endswith('\r\x1b[Kvm: VERIFY_RESIZE on c2\n')
    assert 'resize vm [##---' in text and ' 85% RESIZE resize_finish on c2  0.2s' in text


def test_plain_prints_only_changes():
    out = io.StringIO()
    rep = progress.Reporter('boot vm', out)
    assert not rep.tty
    for _ in range(3):
        rep.update(Snapshot('BUILD', 'scheduling', elapsed=0.05))
    rep.update(Snapshot('BUILD', 'spawning', host='c1', elapsed=0.1))
    rep.finish('vm: ACTIVE')
    assert out.getvalue().splitlines() == [
        '[    0.1s] boot vm: BUILD scheduling (10%)',
        '[    0.1s] boot vm: BUILD spawning on c1 (70%)',
        'vm: ACTIVE']


def test_plain_live_migration_lines_ignore_byte_counts_for_change_detection():
    out = io.StringIO()
    rep = progress.Reporter('live-migration vm', out)
    rep.update(Snapshot('MIGRATING', 'migrating', migration=MIGRATION))
    rep.update(Snapshot('MIGRATING', 'migrating',
                        migration=dict(MIGRATION, memory_processed_bytes=1024 ** 3)))
    assert len(out.getvalue().splitlines()) == 1


def test_the_redrawn_line_fits_the_terminal():
    """A line as wide as the terminal wraps, and every redraw then leaves a line behind:
    at 80 and 120 columns the line stays shorter than the screen, bytes and ETA kept
    while they fit."""
    snap = Snapshot('MIGRATING', 'migrating', elapsed=43.2, migration=dict(
        MIGRATION, memory_total_bytes=2 * 1024 ** 3, memory_processed_bytes=0,
        disk_total_bytes=20 * 1024 ** 3, disk_processed_bytes=int(6.3 * 1024 ** 3)))
    wide = progress.render_bar_line('live-migration web-1', snap, 120)
    narrow = progress.render_bar_line('live-migration web-1', snap, 80)
    assert len(wide) < 120 and len(narrow) < 80
    assert 'disk 6.3 GiB/20.0 GiB' in wide and 'ETA 1m48s' in wide
    assert 'ETA 1m48s' in narrow and narrow.startswith('live-migration web-1 [')
    tiny = progress.render_bar_line('live-migration a-server-with-a-long-name', snap, 30)
    assert len(tiny) < 30 and tiny.endswith('…')
    assert progress.render_bar_line('x', snap) == progress.render_bar_line('x', snap, 10**4)


def test_eta_from_the_copy_rate():
    snap = Snapshot('MIGRATING', 'migrating', elapsed=10.0, migration=MIGRATION)
    assert abs(progress.eta(snap) - 10.0 * 0.25 / 0.75) < 1e-9
    assert progress.eta(Snapshot('MIGRATING', 'migrating', elapsed=10.0)) is None
    plain = progress.render_plain_line('lm', snap)
    assert plain.endswith('(74%, ETA 3s)')


def test_the_tty_display_uses_the_terminal_width(monkeypatch):
    import os
    monkeypatch.setattr(progress.shutil, 'get_terminal_size',
                        lambda fallback=None: os.terminal_size((40, 24)))
    out = _Tty()
    rep = progress.Reporter('live-migration web-1', out)
    rep.update(Snapshot('MIGRATING', 'migrating', elapsed=5.0, migration=MIGRATION))
    line = out.getvalue().split('\r')[-1].replace('\x1b[K', '')
    assert 0 < len(line) < 40


def test_drain_line_fits_and_estimates():
    drain = {'host': 'compute1', 'status': 'running', 'total': 10, 'moved': 3, 'failed': 1,
             'remaining': 6, 'moving': 2}
    line = progress.drain_line(drain, 8.0)
    # 4 of 10 done in 8 s: 12 s to go at that pace.
    assert '3/10 moved, 1 failed, 6 left (2 moving)' in line and 'ETA 12s' in line
    for width in (120, 80, 60, 40, 20):
        assert len(progress.drain_line(drain, 8.0, width)) < width
    assert progress.eta_of(0, 10, 5.0) is None and progress.eta_of(10, 10, 5.0) is None
    done = dict(drain, status='completed', moved=9, remaining=0, moving=0)
    assert 'ETA' not in progress.drain_line(done, 20.0)
