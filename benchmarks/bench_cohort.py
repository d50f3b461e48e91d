"""Cohort throughput: patients × 365 days through cartsim.simulate, in patient-days per second.

Usage: python benchmarks/bench_cohort.py [--sizes 1000 10000 100000] [--days 365]
Compile time (first call) is reported separately. Throughput is also reported relative to a
SciPy LSODA reference (a Python loop of solve_ivp over the same model for a few patients,
measured in the same run), as the project's benchmarks are ratios against a reference.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from cartsim.model.state import N_STATES
from cartsim.model.system import rhs
from cartsim.population import Cohort, build
from cartsim.products import get_product
from cartsim.simulation import simulate


def cohort(n: int) -> Cohort:
    rng = np.random.default_rng(0)
    return Cohort("b-all", weight_kg=rng.uniform(10, 80, n), age_y=rng.uniform(2, 25, n),
                  marrow_blasts_pct=rng.uniform(5, 95, n))


def scipy_reference(n: int, days: int) -> float:
    """Patient-days/s of solve_ivp(LSODA) with daily restarts (no clinic, no stochastic layer)."""
    from scipy.integrate import solve_ivp

    prod = get_product("tisagenlecleucel")
    p, y = build(cohort(n), prod, seed=0)
    dy = np.empty(N_STATES)

    def f(t: float, yy: np.ndarray, pp: np.ndarray) -> np.ndarray:
        rhs(t, yy, pp, dy)
        return dy.copy()

    t0 = time.perf_counter()
    for i in range(n):
        yi = y[i].copy()
        for d in range(-5, days):
            yi = solve_ivp(f, (d, d + 1), yi, method="LSODA", rtol=1e-6, atol=1e-3,
                           args=(p[i],)).y[:, -1]
    return n * (days + 5) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--chunk", type=int, default=10_000, help="patients per simulate() call")
    ap.add_argument("--rtol", type=float, default=1e-5)
    a = ap.parse_args()
    prod = get_product("tisagenlecleucel")
    t0 = time.perf_counter()
    simulate(cohort(2), prod, days=2, seed=0)
    print(f"compile + first call: {time.perf_counter() - t0:.1f} s")
    ref = scipy_reference(5, a.days)
    print(f"reference SciPy LSODA loop: {ref:,.0f} patient-days/s")
    print(f"{'patients':>9} {'days':>5} {'wall s':>8} {'patients/s':>11} {'patient-days/s':>15}"
          f" {'× LSODA':>8} {'failed':>6} {'peak MiB':>9}")
    for n in a.sizes:
        t0 = time.perf_counter()
        failed = 0
        whole = cohort(n)
        for start in range(0, n, a.chunk):  # chunks keep memory bounded for 100,000 patients
            idx = np.arange(start, min(n, start + a.chunk))
            part = Cohort("b-all", weight_kg=whole.weight_kg[idx], age_y=whole.age_y[idx],
                          marrow_blasts_pct=whole.marrow_blasts_pct[idx],  # type: ignore[index]
                          patient_id=idx)
            r = simulate(part, prod, days=a.days, seed=0, rtol=a.rtol)
            failed += int((r.status != 0).sum())
            del r
        dt = time.perf_counter() - t0
        pd_s = n * (a.days + 5) / dt
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{n:>9,} {a.days:>5} {dt:>8.1f} {n / dt:>11,.0f} {pd_s:>15,.0f} {pd_s / ref:>8.1f}"
              f" {failed:>6} {rss:>9,.0f}")


if __name__ == "__main__":
    main()
