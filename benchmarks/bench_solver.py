"""Throughput benchmark of cartsim.engine.solver on the 7-state CAR-T model.

The model and cohort are those of ``/work/shared/reference/performance.md`` section 2
(defined once in ``tests/engine/cart_model.py``). Every patient is simulated 0-365 days with
365 daily calls ``integrate(y, p, d, d + 1, ...)``, as the cohort simulator drives it, at
rtol 1e-6 and atol 1e-4 for all states; the daily state is copied into an (N, 366, 7) output
array inside the timed region. Compile time is measured separately (first call in this
process: a cold compile or a load from numba's on-disk cache).

For scale, SciPy ``solve_ivp(method="LSODA")`` in a Python loop (daily ``t_eval``) is timed
on 200 patients in the same run.

Usage::

    python benchmarks/bench_solver.py [--n 1000 10000] [--big] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np
from scipy.integrate import solve_ivp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "engine"))
from cart_model import N_STATES, cart_jac, cart_rhs, sample_cohort  # noqa: E402

from cartsim.engine.solver import STATUS_OK, make_integrator  # noqa: E402

RTOL = 1e-6
ATOL = 1e-4
DAYS = 365


def run_cohort(integ: Any, y0: np.ndarray, p: np.ndarray) -> tuple[float, np.ndarray,
                                                                     np.ndarray]:
    """Simulate the cohort with daily calls; return (seconds, nsteps, status)."""
    n = y0.shape[0]
    y = y0.copy()
    h = np.zeros(n)
    status = np.zeros(n, dtype=np.int32)
    nsteps = np.zeros(n, dtype=np.int64)
    atol = np.full(N_STATES, ATOL)
    out = np.empty((n, DAYS + 1, N_STATES))
    t = time.perf_counter()
    out[:, 0] = y
    for d in range(DAYS):
        integ(y, p, float(d), float(d + 1), h, RTOL, atol, 100_000, status, nsteps)
        out[:, d + 1] = y
    return time.perf_counter() - t, nsteps, status


def bench_lsoda(y0: np.ndarray, p: np.ndarray) -> float:
    """SciPy LSODA, Python rhs calling the compiled model, daily t_eval; patients/s."""
    t_eval = np.arange(DAYS + 1, dtype=float)
    t = time.perf_counter()
    for i in range(y0.shape[0]):
        pi = p[i]

        def f(tt: float, yy: np.ndarray, pi: np.ndarray = pi) -> np.ndarray:
            dy = np.empty(N_STATES)
            cart_rhs(tt, yy, pi, dy)
            return dy

        r = solve_ivp(f, (0.0, float(DAYS)), y0[i], method="LSODA", rtol=RTOL, atol=ATOL,
                      t_eval=t_eval)
        assert r.success
    return y0.shape[0] / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[1000, 10_000])
    ap.add_argument("--big", action="store_true", help="also run N = 100,000")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--methods", nargs="+", default=["rodas4", "rodas4+jac", "dp5"],
                    help="rodas4 (finite-difference Jacobian), rodas4+jac (analytic), dp5")
    ap.add_argument("--reps", type=int, default=1, help="repetitions; the best is reported")
    ap.add_argument("--lsoda-n", type=int, default=200)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    sizes = list(args.n) + ([100_000] if args.big else [])

    integrators = {}
    compile_s = {}
    y_w, p_w = sample_cohort(2)
    for m in args.methods:
        t = time.perf_counter()
        if m == "rodas4+jac":
            integ = make_integrator(cart_rhs, N_STATES, "rodas4", jac=cart_jac, autonomous=True)
        else:
            integ = make_integrator(cart_rhs, N_STATES, m, autonomous=True)
        integ(y_w.copy(), p_w, 0.0, 1.0, np.zeros(2), RTOL, np.full(N_STATES, ATOL), 1000,
              np.zeros(2, np.int32), np.zeros(2, np.int64))
        compile_s[m] = time.perf_counter() - t
        integrators[m] = integ

    y_l, p_l = sample_cohort(args.lsoda_n)
    lsoda = bench_lsoda(y_l, p_l)

    rows = []
    max_threads = numba.config.NUMBA_NUM_THREADS
    for n in sizes:
        y0, p = sample_cohort(n)
        for m in args.methods:
            for th in args.threads:
                if th > max_threads:
                    continue
                numba.set_num_threads(th)
                best = None
                for _ in range(args.reps):
                    sec, ns, st = run_cohort(integrators[m], y0, p)
                    best = sec if best is None else min(best, sec)
                assert best is not None
                rows.append({
                    "method": m, "n": n, "threads": th, "seconds": best,
                    "patients_per_s": n / best, "patient_days_per_s": n * DAYS / best,
                    "mean_steps": float(ns.mean()), "max_steps": int(ns.max()),
                    "failed": int((st != STATUS_OK).sum()),
                    "x_lsoda": n / best / lsoda,
                })
    numba.set_num_threads(max_threads)

    print(f"machine: {platform.processor() or platform.machine()}, "
          f"{max_threads} numba threads, numba {numba.__version__}")
    print("compile/load (first call in this process): "
          + ", ".join(f"{m} {s:.2f} s" for m, s in compile_s.items()))
    print(f"SciPy LSODA loop ({args.lsoda_n} patients): {lsoda:.1f} patients/s")
    hdr = (f"{'method':<11}{'N':>8}{'thr':>4}{'s':>9}{'patients/s':>12}"
           f"{'patient-days/s':>16}{'steps':>8}{'max':>6}{'fail':>5}{'x LSODA':>9}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r['method']:<11}{r['n']:>8}{r['threads']:>4}{r['seconds']:>9.3f}"
              f"{r['patients_per_s']:>12,.0f}{r['patient_days_per_s']:>16,.0f}"
              f"{r['mean_steps']:>8.0f}{r['max_steps']:>6}{r['failed']:>5}"
              f"{r['x_lsoda']:>9.0f}")
    if args.json is not None:
        args.json.write_text(json.dumps({
            "rtol": RTOL, "atol": ATOL, "days": DAYS, "numba": numba.__version__,
            "threads_available": max_threads, "compile_s": compile_s,
            "lsoda_patients_per_s": lsoda, "lsoda_n": args.lsoda_n, "rows": rows,
        }, indent=2))


if __name__ == "__main__":
    main()
