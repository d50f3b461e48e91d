"""Benchmark a virtual trial: N patients × 730 days, wall time and peak memory.

Usage: python benchmarks/bench_trial.py [N] [--chunk-size K] [--workers W] [--record]

Prints wall time, patients/s, peak RSS of this process (resource.getrusage) and the peak of
Python-level allocations (tracemalloc). With --record, appends a row to benchmarks/README.md.
Memory stays bounded as N grows: chunks stream to disk and the merge streams row groups.
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import tempfile
import time
import tracemalloc
from datetime import date
from pathlib import Path

from cartsim.trial.runner import run_trial
from cartsim.trial.spec import validate_spec

ROOT = Path(__file__).resolve().parents[1]


def spec(n: int) -> object:
    return validate_spec({
        "name": "bench", "seed": 1, "follow_up_days": 730, "assessment_days": [28, 91],
        "population": {"disease": "b-all", "size": n,
                       "age_y": {"kind": "uniform", "low": 3, "high": 25},
                       "marrow_blasts_pct": {"kind": "uniform", "low": 5, "high": 95}},
        "arms": [{"name": "tisa", "product": "tisagenlecleucel"}],
    })


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("n", type=int, nargs="?", default=20)
    ap.add_argument("--chunk-size", type=int, default=500)
    ap.add_argument("--tracemalloc", action="store_true",
                    help="also trace Python allocations (slows pandas-heavy code)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--record", action="store_true", help="append to benchmarks/README.md")
    a = ap.parse_args(argv)
    from cartsim.trial.runner import simulate_chunk

    t = time.perf_counter()
    simulate_chunk(spec(1), 0, [0])  # JIT-compile the model outside the timing
    compile_s = time.perf_counter() - t
    if a.tracemalloc:
        tracemalloc.start()
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        run_trial(spec(a.n), Path(d) / "out", chunk_size=a.chunk_size, workers=a.workers,
                  report=False)
        wall = time.perf_counter() - t0
    py_peak = 0
    if a.tracemalloc:
        _, py_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    line = (f"trial N={a.n} days=730 chunk={a.chunk_size} workers={a.workers}: "
            f"wall {wall:.1f} s ({a.n / wall:.2f} patients/s; warm-up incl. JIT "
            f"{compile_s:.1f} s excluded), peak RSS {rss_mb:.0f} MiB"
            + (f", peak Python allocations {py_peak / 2**20:.1f} MiB" if a.tracemalloc else ""))
    print(line)
    if a.record:
        readme = ROOT / "benchmarks" / "README.md"
        with readme.open("a", encoding="utf-8") as f:
            f.write(f"- {date.today().isoformat()} {platform.node()} "
                    f"({platform.processor() or platform.machine()}): {line}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
