"""Solver structure and accuracy of the default tolerance on the full model.

Prints the Jacobian colouring and sparse-LU sizes the integrator uses, then simulates 100
variable B-ALL patients for 60 days at rtol 1e-6, 1e-5 and 1e-4 and reports the largest
relative difference from rtol 1e-8 in CAR-T peak, IL-6 peak and ANC nadir, and the largest
difference in CAR-T Tmax (days), with the mean solver steps per patient.

Usage: python benchmarks/solver_accuracy.py
"""

from __future__ import annotations

import numpy as np

from cartsim.engine.solver import column_groups, lu_plan
from cartsim.model.state import FIRST_ACCUMULATOR, N_STATES
from cartsim.population import Cohort
from cartsim.products import get_product
from cartsim.simulation import model_sparsity, simulate


def main() -> None:
    sp = model_sparsity()
    sp[:, FIRST_ACCUMULATOR:] = False
    groups = column_groups(sp)
    plan = lu_plan(sp[:FIRST_ACCUMULATOR, :FIRST_ACCUMULATOR])
    print(f"states {N_STATES}, fed back {FIRST_ACCUMULATOR}, Jacobian non-zeros {int(sp.sum())}, "
          f"colour groups {groups[0].size - 1}, sparse LU entries L {int(plan['lptr'][-1])} "
          f"U {int(plan['uptr'][-1])}")
    n = 100
    rng = np.random.default_rng(0)
    cohort = Cohort("b-all", weight_kg=rng.uniform(10, 80, n), age_y=rng.uniform(2, 25, n),
                    marrow_blasts_pct=rng.uniform(5, 95, n))
    prod = get_product("tisagenlecleucel")
    res = {}
    for rtol in (1e-8, 1e-6, 1e-5, 1e-4):
        r = simulate(cohort, prod, days=60, seed=1, rtol=rtol)
        t = r.trajectories
        g = t.groupby("patient_id")
        tmax = t.loc[g["cart_cells_per_ul"].idxmax(), "day"].to_numpy()
        res[rtol] = {"peak": g["cart_cells_per_ul"].max().to_numpy(),
                     "il6": g["il6_pg_ml"].max().to_numpy(),
                     "anc": g["anc_per_ul"].min().to_numpy(), "tmax": tmax,
                     "steps": r.steps.mean()}
    ref = res[1e-8]
    print(f"{'rtol':>7} {'steps/pt':>9} {'CAR-T peak':>11} {'IL-6 peak':>10} {'ANC nadir':>10}"
          f" {'Tmax d':>7}")
    for rtol in (1e-6, 1e-5, 1e-4):
        x = res[rtol]
        rel = {k: np.max(np.abs(x[k] / ref[k] - 1.0)) for k in ("peak", "il6", "anc")}
        print(f"{rtol:>7.0e} {x['steps']:>9.1f} {rel['peak']:>11.1e} {rel['il6']:>10.1e}"
              f" {rel['anc']:>10.1e} {int(np.max(np.abs(x['tmax'] - ref['tmax']))):>7}")


if __name__ == "__main__":
    main()
