"""The live progress display of ``--poll``: a redrawn bar on a terminal, plain status
lines otherwise. Rendering is pure (snapshot -> text) so it can be tested alone."""

import dataclasses
import shutil
import sys
import time

from novalite.cli.formatting import human_bytes

# Rough position of each task_state inside its operation, for a bar that moves even
# when the server reports no numeric progress.
PHASES = {
    'scheduling': 0.10, 'block_device_mapping': 0.30, 'networking': 0.45, 'spawning': 0.70,
    'resize_prep': 0.10, 'resize_migrating': 0.35, 'resize_migrated': 0.65,
    'resize_finish': 0.85, 'resize_reverting': 0.50, 'resize_confirming': 0.50,
    'migrating': 0.05, 'powering-off': 0.50, 'powering-on': 0.50, 'rebooting': 0.30,
    'reboot_pending': 0.50, 'reboot_started': 0.80, 'rebooting_hard': 0.30,
    'reboot_pending_hard': 0.50, 'reboot_started_hard': 0.80, 'deleting': 0.50,
}
PLAIN_REPEAT_SECONDS = 5.0
BAR_WIDTH = 24


@dataclasses.dataclass
class Snapshot:
    """What one poll saw."""

    status: str
    task_state: str | None = None
    progress: int | None = None
    host: str | None = None
    migration: dict | None = None
    elapsed: float = 0.0


def migration_fraction(migration: dict | None) -> float | None:
    """Share of memory + disk already copied by a move (None if unknown)."""
    if not migration:
        return None
    total = (migration.get('memory_total_bytes') or 0) + (migration.get('disk_total_bytes')
                                                          or 0)
    if not total:
        return None
    done = ((migration.get('memory_processed_bytes') or 0)
            + (migration.get('disk_processed_bytes') or 0))
    return max(0.0, min(1.0, done / total))


def fraction(snap: Snapshot) -> float:
    """0..1 position of the bar: the best of reported progress and the phase guess."""
    guesses = [PHASES.get(snap.task_state or '', 0.0)]
    if snap.progress:
        guesses.append(snap.progress / 100.0)
    moved = migration_fraction(snap.migration)
    if moved is not None:
        # The copy is the bulk of a live migration: map it to 10%..95%.
        guesses.append(0.10 + 0.85 * moved)
    return max(0.0, min(1.0, max(guesses)))


def bar(value: float, width: int = BAR_WIDTH) -> str:
    filled = int(round(value * width))
    return '[' + '#' * filled + '-' * (width - filled) + ']'


def _amount(processed, total) -> str:
    if not total:
        return '-'
    return f'{human_bytes(processed or 0)}/{human_bytes(total)}'


def _bytes(mig: dict | None) -> str:
    """'memory 1.0 GiB/2.0 GiB, disk ...' of a live migration, 'disk ...' of a cold move
    ('' when unknown)."""
    if not mig or not (mig.get('memory_total_bytes') or mig.get('disk_total_bytes')):
        return ''
    disk = 'disk ' + _amount(mig.get('disk_processed_bytes'), mig.get('disk_total_bytes'))
    if not mig.get('memory_total_bytes'):
        return disk
    return ('memory ' + _amount(mig.get('memory_processed_bytes'), mig.get('memory_total_bytes'))
            + ', ' + disk)


def describe(snap: Snapshot, with_bytes: bool = True) -> str:
    """'RESIZE resize_migrating on compute1' plus live-migration detail."""
    parts = [snap.status]
    if snap.task_state:
        parts.append(snap.task_state)
    mig = snap.migration
    if mig:
        parts.append(f"{mig.get('source_compute') or '?'} -> {mig.get('dest_compute') or '?'}"
                     f" ({mig.get('status')})")
        if with_bytes and _bytes(mig):
            parts.append(_bytes(mig))
    elif snap.host:
        parts.append(f'on {snap.host}')
    return ' '.join(parts)


def eta(snap: Snapshot) -> float | None:
    """Seconds left of a move's copy at the rate seen so far (None until a rate is
    known)."""
    moved = migration_fraction(snap.migration)
    if not moved or moved >= 1.0 or snap.elapsed <= 0:
        return None
    return snap.elapsed * (1.0 - moved) / moved


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f'{seconds // 60}m{seconds % 60:02d}s' if seconds >= 60 else f'{seconds}s'


def render_bar_line(label: str, snap: Snapshot, width: int | None = None) -> str:
    """One line of the redrawn display, never longer than ``width`` - 1 columns (a line
    that wraps would leave a line behind at every redraw): the bar and the detail shrink
    first, then the label is cut."""
    value = fraction(snap)
    left = eta(snap)
    tail = f'  {snap.elapsed:.1f}s' + (f' ETA {_clock(left)}' if left is not None else '')
    pct = f'{value * 100:3.0f}%'
    bytes_only = _bytes(snap.migration)
    variants = [(BAR_WIDTH, describe(snap)), (10, describe(snap)),
                (10, f'{snap.status} {bytes_only}' if bytes_only else snap.status),
                (10, describe(snap, with_bytes=False)), (10, snap.status), (0, snap.status)]
    line = ''
    for bar_width, detail in variants:
        shown = f' {bar(value, bar_width)}' if bar_width else ''
        line = f'{label}{shown} {pct} {detail}{tail}'
        if width is None or len(line) < width:
            return line
    return line[:max(width - 2, 1)] + '…'


def render_plain_line(label: str, snap: Snapshot) -> str:
    value = fraction(snap)
    left = eta(snap)
    more = f', ETA {_clock(left)}' if left is not None else ''
    return f'[{snap.elapsed:7.1f}s] {label}: {describe(snap)} ({value * 100:.0f}%{more})'


class Reporter:
    """Shows snapshots on ``stream`` (stderr): redrawn in place on a TTY, else one
    line per change (and one every few seconds while nothing changes)."""

    def __init__(self, label: str, stream=None, tty: bool | None = None):
        self.label = label
        self.stream = stream or sys.stderr
        if tty is None:
            isatty = getattr(self.stream, 'isatty', None)
            tty = bool(isatty and isatty())
        self.tty = tty
        self._last_key = None
        self._last_time = 0.0
        self._drawn = False

    def update(self, snap: Snapshot):
        if self.tty:
            width = shutil.get_terminal_size(fallback=(80, 24)).columns
            self.stream.write('\r' + render_bar_line(self.label, snap, width) + '\x1b[K')
            self._drawn = True
            self.stream.flush()
            return
        # A new line when the state changes, or when byte figures first become known.
        mig = snap.migration or {}
        key = (describe(snap, with_bytes=False),
               bool(mig.get('memory_total_bytes') or mig.get('disk_total_bytes')))
        now = time.monotonic()
        if key != self._last_key or now - self._last_time >= PLAIN_REPEAT_SECONDS:
            self.stream.write(render_plain_line(self.label, snap) + '\n')
            self.stream.flush()
            self._last_key, self._last_time = key, now

    def finish(self, line: str):
        """Replace the bar (if any) by the final line."""
        if self.tty and self._drawn:
            self.stream.write('\r\x1b[K')
        self.stream.write(line + '\n')
        self.stream.flush()


def drain_line(drain: dict, elapsed: float, width: int | None = None) -> str:
    """One line of a host drain's progress: bar of servers done, counts, time and ETA
    (at the pace of the servers done so far), shortened to fit ``width``."""
    total = drain.get('total') or 0
    moved, failed = drain.get('moved', 0), drain.get('failed', 0)
    done = total - (drain.get('remaining') or 0)
    left = eta_of(done, total, elapsed)
    tail = f'  {elapsed:.1f}s' + (f' ETA {_clock(left)}' if left is not None else '')
    counts = (f"{moved}/{total} moved, {failed} failed, {drain.get('remaining', 0)} left"
              f" ({drain.get('moving', 0)} moving)")
    short = f'{moved}/{total} moved, {failed} failed'
    label = f"drain {drain.get('host', '?')} {drain.get('status', '?')}"
    value = done / total if total else 1.0
    line = ''
    for bar_width, detail in ((BAR_WIDTH, counts), (10, counts), (10, short), (0, short)):
        shown = f' {bar(value, bar_width)}' if bar_width else ''
        line = f'{label}{shown} {detail}{tail}'
        if width is None or len(line) < width:
            return line
    return line[:max(width - 2, 1)] + '…'


def eta_of(done: int, total: int, elapsed: float) -> float | None:
    """Seconds left when ``done`` of ``total`` items took ``elapsed`` (None until one
    is done)."""
    if done <= 0 or done >= total or elapsed <= 0:
        return None
    return elapsed * (total - done) / done
