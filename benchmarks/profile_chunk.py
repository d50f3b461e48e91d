"""CPU-time profile of one ELIANA trial chunk (simulation, clinic, stochastic layer,
endpoints, per-day table): where a chunk's time goes.

Usage: ``NUMBA_NUM_THREADS=1 python benchmarks/profile_chunk.py 1000`` (from the repository
root; one numba thread so that CPU time is not inflated by spinning worker threads). Prints
the cumulative profile; the top-level split is in the rows ``_dense_driver_template``
(solver), ``on_day_start`` (procedures + clinic), ``on_day_end`` (stochastic layer),
``record`` (daily readouts) and ``compute_endpoints``.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

from cartsim.trial.runner import simulate_chunk
from cartsim.trial.spec import validate_spec

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with open(ROOT / "examples" / "eliana.toml", "rb") as f:
        spec = validate_spec(tomllib.load(f))
    t = time.perf_counter()
    simulate_chunk(spec, 0, np.arange(4))
    print(f"warm-up (compile or cache load) {time.perf_counter() - t:.1f} s", flush=True)
    pr = cProfile.Profile(time.process_time)
    t, c0 = time.perf_counter(), time.process_time()
    pr.enable()
    simulate_chunk(spec, 0, np.arange(n))
    pr.disable()
    print(f"wall {time.perf_counter() - t:.1f} s, CPU {time.process_time() - c0:.1f} s")
    pstats.Stats(pr).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
