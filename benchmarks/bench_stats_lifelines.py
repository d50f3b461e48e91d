"""cartsim.trial.stats against lifelines at trial scale: Kaplan–Meier, log-rank and Cox.

Usage: python benchmarks/bench_stats_lifelines.py [N]   (default N = 1_000_000 patients)

Two arms of N/2 patients with exponential event times (HR 0.7), 30 % censoring and times
rounded to whole days (as a trial's endpoints are), so there are many ties. Prints the best of
3 wall times of each fit and the largest difference between the two libraries' estimates.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd


def best_of(fn, k: int = 3) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    best, out = float("inf"), None
    for _ in range(k):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(n: int) -> None:
    from lifelines import CoxPHFitter, KaplanMeierFitter
    from lifelines.statistics import logrank_test as ll_logrank

    from cartsim.trial.stats import KaplanMeier, cox_ph, logrank_test

    rng = np.random.default_rng(1)
    arm = (np.arange(n) % 2).astype(float)
    t = np.ceil(rng.exponential(365.0 / np.where(arm == 1, 0.7, 1.0)))
    c = np.ceil(rng.uniform(0, 1500, n))
    time_ = np.minimum(t, c)
    event = (t <= c).astype(int)
    print(f"N = {n}, events {event.mean():.0%}, distinct times {np.unique(time_).size}")

    s_ours, km = best_of(lambda: KaplanMeier(conf_type="log-log").fit(time_, event))
    s_ll, kmf = best_of(lambda: KaplanMeierFitter().fit(time_, event))
    grid = np.arange(0, 1500, 30.0)
    ours_s = km.at(grid)["surv"].to_numpy()
    ll_s = kmf.survival_function_at_times(grid).to_numpy()
    ok = np.isfinite(ours_s)
    print(f"Kaplan–Meier fit: cartsim {s_ours:.3f} s, lifelines {s_ll:.3f} s; "
          f"max |ΔS| {np.max(np.abs(ours_s[ok] - ll_s[ok])):.2e}; "
          f"median {km.median_} vs {kmf.median_survival_time_}")

    a, b = arm == 0, arm == 1
    s_ours, lr = best_of(lambda: logrank_test(time_, event, arm))
    s_ll, llr = best_of(lambda: ll_logrank(time_[a], time_[b], event[a], event[b]))
    print(f"log-rank: cartsim {s_ours:.3f} s, lifelines {s_ll:.3f} s; "
          f"chisq {lr.chisq:.6f} vs {llr.test_statistic:.6f}")

    df = pd.DataFrame({"t": time_, "e": event, "arm": arm})
    s_ours, cx = best_of(lambda: cox_ph(time_, event, arm[:, None], names=["arm"]), k=1)
    s_ll, cph = best_of(lambda: CoxPHFitter().fit(df, "t", "e"), k=1)
    print(f"Cox (Efron ties): cartsim {s_ours:.3f} s, lifelines {s_ll:.3f} s; "
          f"coef {float(cx.coefficients['coef'].iloc[0]):.6f} vs {float(cph.params_['arm']):.6f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
