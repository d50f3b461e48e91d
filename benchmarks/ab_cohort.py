"""Interleaved A/B cohort throughput of two source trees of cartsim (before/after a refactor).

Usage::

    git archive <old-commit> | tar -x -C /tmp/old
    python benchmarks/ab_cohort.py --a /tmp/old/src --b src --patients 1000 --pairs 2

Each run is a fresh process (``PYTHONPATH`` = the tree's ``src``) that compiles, then times
``simulate()`` of the same b-all cohort over 365 days (as ``bench_cohort.py``, without its LSODA
reference). Runs alternate A, B, A, B, ... so that a shared machine's load drifts hit both
sides; the ratio B/A of each pair and their geometric mean are printed, plus the total solver
steps (equal step counts mean identical trajectories took the same path).
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys

_CHILD = r"""
import sys, time
import numpy as np
from cartsim.population import Cohort
from cartsim.products import get_product
from cartsim.simulation import simulate
n = int(sys.argv[1])
rng = np.random.default_rng(0)
c = Cohort("b-all", weight_kg=rng.uniform(10, 80, n), age_y=rng.uniform(2, 25, n),
           marrow_blasts_pct=rng.uniform(5, 95, n))
prod = get_product("tisagenlecleucel")
simulate(Cohort("b-all", weight_kg=np.array([20.0, 30.0]), age_y=np.array([5.0, 9.0]),
                marrow_blasts_pct=np.array([50.0, 20.0])), prod, days=2, seed=0)
t0 = time.perf_counter()
r = simulate(c, prod, days=365, seed=0)
dt = time.perf_counter() - t0
print(n * 370 / dt, int(r.steps.sum()))
"""


def _run(src: str, n: int) -> tuple[float, int]:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(src))
    out = subprocess.run([sys.executable, "-c", _CHILD, str(n)], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[-2]), int(out[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="src directory of the reference tree")
    ap.add_argument("--b", required=True, help="src directory of the tree under test")
    ap.add_argument("--patients", type=int, default=1000)
    ap.add_argument("--pairs", type=int, default=2)
    a = ap.parse_args()
    ratios = []
    for i in range(a.pairs):
        ra, sa = _run(a.a, a.patients)
        rb, sb = _run(a.b, a.patients)
        ratios.append(rb / ra)
        print(f"pair {i + 1}: A {ra:,.0f}  B {rb:,.0f} patient-days/s  B/A {rb / ra:.3f}  "
              f"steps A {sa} B {sb}", flush=True)
    gm = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    print(f"geometric mean B/A over {len(ratios)} pairs: {gm:.3f}")


if __name__ == "__main__":
    main()
