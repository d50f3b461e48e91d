"""Post-simulation part of a trial chunk (course, endpoints, per-day table): the new path
((patients x days) arrays, one-pass event matrices) against the path before issue 12's
session-5 work (long-table round trip, one event-matrix pass per event name), replayed on
the same simulated chunk, alternating, in CPU seconds; both must give equal tables.

Usage: ``python benchmarks/bench_chunk_post.py 300`` (run from the repository root).
"""

from __future__ import annotations

import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

import cartsim.simulation as sim
from cartsim.trial import endpoints as E
from cartsim.trial import runner
from cartsim.trial.spec import validate_spec

ROOT = Path(__file__).resolve().parents[1]


def _old_post_events(ctx: Any) -> dict[str, np.ndarray | None]:
    """Event matrices as before: one pass over the event table per event name."""
    if "events_post" not in ctx.shared:
        c = ctx.course
        post = c.days >= 0
        ctx.shared["events_post"] = {
            k: (None if (m := E.event_matrix(ctx.events, c.patient_id, c.days, k)) is None
                else m[:, post]) for k in E._EVENTS}
    return ctx.shared["events_post"]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    with open(ROOT / "examples" / "eliana.toml", "rb") as f:
        spec = validate_spec(tomllib.load(f))
    captured: dict[str, Any] = {}
    orig = sim.simulate

    def grab(*a: Any, **k: Any) -> Any:
        captured["res"] = orig(*a, **k)
        return captured["res"]

    sim.simulate = grab
    runner.simulate_chunk(spec, 0, np.arange(2))  # compile / load the cache
    t = time.perf_counter()
    table_new, daily_new = runner.simulate_chunk(spec, 0, np.arange(n))
    print(f"simulated {n} patients in {time.perf_counter() - t:.1f} s", flush=True)
    res = captured["res"]

    def post(old: bool) -> float:
        saved = (E.Course.__dict__["from_result"], E._post_events)
        if old:
            E.Course.from_result = classmethod(  # type: ignore[method-assign,assignment]
                lambda cls, r: cls.from_trajectories(r.trajectories))
            E._post_events = _old_post_events
            res._trajectories = None  # rebuilt by the old path, as before
        sim.simulate = lambda *a, **k: res
        c0 = time.process_time()
        table, daily = runner.simulate_chunk(spec, 0, np.arange(n))
        dt = time.process_time() - c0
        sim.simulate = grab
        E.Course.from_result, E._post_events = saved  # type: ignore[method-assign]
        assert table.equals(table_new) and daily.equals(daily_new), "outputs differ"
        return dt

    ts: dict[str, list[float]] = {"new": [], "old": []}
    for rep in range(3):
        for kind in (("old", "new") if rep % 2 else ("new", "old")):
            ts[kind].append(post(kind == "old"))
    print({k: [round(x, 3) for x in v] for k, v in ts.items()})
    print(f"post-simulation CPU s, median: old {np.median(ts['old']):.3f}, "
          f"new {np.median(ts['new']):.3f}, ratio old/new "
          f"{np.median(ts['old']) / np.median(ts['new']):.2f}")


if __name__ == "__main__":
    main()
