"""The daily loop: for each day, for all patients at once.

1. schedule items of the day act (jumps, vectorised over patients);
2. ``on_day_start`` (e.g. the clinic) observes and acts;
3. the compiled solver integrates every patient from day to day + 1 (parallel over patients;
   with a continuous-output integrator a patient whose state nobody changed continues its
   own steps across the boundary instead of stopping there);
4. ``on_day_end`` (e.g. the stochastic layer) updates the state;
5. ``record`` stores the day's observables.

The loop over days is Python (a few hundred iterations); there is no Python loop over patients
or solver steps. The engine knows nothing about CAR-T.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np

from cartsim.engine.schedule import ScheduleItem, items_on
from cartsim.engine.solver import dense_memory, set_error_mask

DayHook = Callable[[int, np.ndarray, np.ndarray], None]
EndHook = Callable[[int, np.ndarray, np.ndarray, np.ndarray], None]


@dataclass
class LoopStats:
    steps: np.ndarray
    status: np.ndarray


def run_daily(
    integrate: Callable[..., None],
    y: np.ndarray,
    p: np.ndarray,
    first_day: int,
    last_day: int,
    schedule: list[ScheduleItem],
    *,
    rtol: float,
    atol: np.ndarray,
    max_steps: int = 20_000,
    on_schedule: Callable[[int, ScheduleItem, np.ndarray], None] | None = None,
    on_day_start: DayHook | None = None,
    on_day_end: EndHook | None = None,
    record: DayHook | None = None,
    progress: Callable[[int], None] | None = None,
    dense: bool = False,
    jumps_next: Callable[[int, np.ndarray], np.ndarray] | None = None,
    overwritten: Callable[[int, np.ndarray], np.ndarray] | None = None,
) -> LoopStats:
    """Advance ``y`` in place from ``first_day`` to ``last_day``; returns step counts, status.

    With ``dense=True``, ``integrate`` is a continuous-output integrator
    (``make_integrator(..., dense=True)``): patients step across day boundaries and stop
    only on a day whose hooks or schedule changed their state. ``jumps_next(day, y)``
    (optional) flags the patients whose state the end-of-day hook will change: their steps
    land on the day's end instead of running past it and being discarded.
    ``overwritten(day, y)`` (optional, dense only) gives a (patients × states) bool mask of
    the states the end-of-day hook will replace whatever the solver returns (small clones
    the stochastic layer redraws): the solver's error control leaves them out for the day
    (:func:`cartsim.engine.solver.set_error_mask`).
    """
    n = y.shape[0]
    status = np.zeros(n, dtype=np.int32)
    steps = np.zeros(n, dtype=np.int64)
    if record is not None:
        record(first_day, y, status)
    # dynamic scheduling of the solver's blocks of patients over the threads: on most days
    # only some patients take steps (the rest interpolate), so an even static split of the
    # cohort would leave a thread idle
    old_chunk = numba.get_parallel_chunksize()
    numba.set_parallel_chunksize(1)
    try:
        _loop(integrate, y, p, first_day, last_day, schedule, rtol, atol, max_steps,
              on_schedule, on_day_start, on_day_end, record, progress, dense, jumps_next,
              overwritten, status, steps)
    finally:
        numba.set_parallel_chunksize(old_chunk)
    return LoopStats(steps=steps, status=status)


def _loop(integrate: Callable[..., None], y: np.ndarray, p: np.ndarray, first_day: int,
          last_day: int, schedule: list[ScheduleItem], rtol: float, atol: np.ndarray,
          max_steps: int, on_schedule: Callable[[int, ScheduleItem, np.ndarray], None] | None,
          on_day_start: DayHook | None, on_day_end: EndHook | None, record: DayHook | None,
          progress: Callable[[int], None] | None, dense: bool,
          jumps_next: Callable[[int, np.ndarray], np.ndarray] | None,
          overwritten: Callable[[int, np.ndarray], np.ndarray] | None, status: np.ndarray,
          steps: np.ndarray) -> None:
    n = y.shape[0]
    h = np.zeros(n)
    if dense:
        mem, tmem = dense_memory(n, y.shape[1])
    for day in range(first_day, last_day):
        active = status == 0
        for item in items_on(schedule, day):
            given = item.apply(y, active)
            if on_schedule is not None:
                on_schedule(day, item, given)
        if on_day_start is not None:
            on_day_start(day, y, status)
        y_start = y.copy()
        if dense:
            t_stop = np.full(n, float(last_day))
            if jumps_next is not None:
                t_stop[jumps_next(day, y)] = float(day + 1)
            if any(s.day == day + 1 for s in schedule):
                t_stop[:] = float(day + 1)
            if overwritten is not None:
                set_error_mask(mem, overwritten(day, y))
            integrate(y, p, float(day), float(day + 1), t_stop, h, rtol, atol,
                      max_steps, status, steps, mem, tmem)
        else:
            integrate(y, p, float(day), float(day + 1), h, rtol, atol, max_steps, status,
                      steps)
        if on_day_end is not None:
            on_day_end(day, y_start, y, status)
        if record is not None:
            record(day + 1, y, status)
        if progress is not None:
            progress(day + 1 - first_day)
