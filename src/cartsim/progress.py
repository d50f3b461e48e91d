"""Progress reporting for the command line: a rich bar on a terminal, plain lines otherwise.

Batch jobs (stderr redirected to a file or a pipe) get one line per ~10 % of the work and a
final line, e.g. ``trial: 120/240 patients (50%), 0:00:42 elapsed`` — no carriage returns, no
escape codes, no redraws filling the log.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TextIO

#: Plain mode writes a line whenever this fraction of the total has been added since the last.
PLAIN_STEP = 0.10
#: ... or when this many seconds have passed since the last line (long, slow steps).
PLAIN_SECONDS = 60.0


class PlainProgress:
    """``update(done, total)`` writes ``label: done/total unit (p%), elapsed`` lines to
    ``stream`` at ~10 % steps (or every minute), and the final line once ``done == total``."""

    def __init__(self, label: str, unit: str, stream: TextIO,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.unit, self.stream, self.clock = label, unit, stream, clock
        self.t0 = clock()
        self.last_done = -1
        self.last_t = self.t0
        self.finished = False

    def update(self, done: int, total: int | None) -> None:
        now = self.clock()
        if self.finished:
            return
        final = total is not None and done >= total
        step = (total or 0) * PLAIN_STEP
        if not (final or self.last_done < 0 or done - self.last_done >= max(step, 1)
                or now - self.last_t >= PLAIN_SECONDS):
            return
        if done == self.last_done and not final:
            return
        elapsed = timedelta(seconds=int(now - self.t0))
        if total:
            line = f"{self.label}: {done:,}/{total:,} {self.unit} ({100 * done / total:.0f}%), "
        else:
            line = f"{self.label}: {done:,} {self.unit}, "
        self.stream.write(line + f"{elapsed} elapsed\n")
        self.stream.flush()
        self.last_done, self.last_t, self.finished = done, now, final


@contextmanager
def progress(label: str, unit: str, total: int | None, console: object,
             enabled: bool = True) -> Iterator[Callable[[int, int | None], None]]:
    """Yield ``update(done, total)``: a rich bar when ``console`` (a rich Console) writes to a
    terminal, :class:`PlainProgress` lines otherwise; a no-op when ``enabled`` is false."""
    if not enabled:
        yield lambda done, total=None: None
        return
    if getattr(console, "is_terminal", False):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        with Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn(unit), TimeElapsedColumn(), TimeRemainingColumn(),
                      console=console, transient=False) as bar:  # type: ignore[arg-type]
            task = bar.add_task(label, total=total)

            def update_bar(done: int, new_total: int | None = None) -> None:
                bar.update(task, completed=done, total=new_total if new_total else total)

            yield update_bar
        return
    plain = PlainProgress(label, unit, console.file)  # type: ignore[attr-defined]

    def update_plain(done: int, new_total: int | None = None) -> None:
        plain.update(done, new_total if new_total else total)

    yield update_plain
