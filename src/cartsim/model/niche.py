"""Normal T cells: the lymphocyte niche that lymphodepletion empties (MODEL.md §2).

Normal T cells recover logistically into the niche (Kimmel 2021), sharing its capacity with
CAR-T cells; the niche's occupancy gates CAR-T homeostatic and antigen-driven growth
(:mod:`cartsim.model.cart`). Lymphodepletion kills them in proportion to its exposure.
"""

from __future__ import annotations

import numba
import numpy as np

from cartsim.model.mechanism import Kernel, Mechanism, StateSpec, unbound
from cartsim.model.mechanism import param as _p

S = unbound("S")  # state layout, bound by cartsim.model.layout
P = unbound("P")  # parameter layout, bound by cartsim.model.layout

PARAMS = (
    _p("K_N_per_kg", "cells/kg", 3.6e9, 1e7, 1e11,
       "Kimmel 2021 (K_N = 2.5e11 cells total body, 70 kg)",
       "lymphocyte niche capacity per kg", 0.3, "niche"),
    _p("r_N", "1/d", 0.1, 0.0, 2.0,
       "calibrated: Kimmel 2021 r_N 0.17/d is Gompertz; logistic equivalent for ~1 month "
       "lymphocyte recovery", "normal T-cell reconstitution rate", 0.3, "niche"),
    _p("N0_frac", "–", 0.5, 0.0, 1.0, "assumed (r/r patients are lymphopenic)",
       "normal T cells before lymphodepletion, fraction of niche capacity", 0.3, "niche"),
    _p("d_LD", "1/d", 0.7, 0.01, 20.0, "assumed (fludarabine t½ ≈ 20 h)",
       "clearance of lymphodepleting-chemotherapy exposure", 0.0, "niche"),
    _p("ld_kill_T", "1/(unit·d)", 1.0, 0.0, 20.0,
       "calibrated to Kimmel 2021 (≈ 98% T-cell depletion at infusion)",
       "lymphodepletion kill hazard on T cells per unit exposure", 0.2, "niche"),
    _p("ld_kill_B", "1/(unit·d)", 0.8, 0.0, 20.0, "assumed",
       "lymphodepletion kill hazard on B cells per unit exposure", 0.2, "niche"),
    _p("ld_kill_tumour", "1/(unit·d)", 0.15, 0.0, 20.0, "assumed (modest Flu/Cy log-kill)",
       "lymphodepletion kill hazard on tumour per unit exposure", 0.5, "niche"),
)


@numba.njit(inline="always")
def niche_derivs(y: np.ndarray, p: np.ndarray, dy: np.ndarray, car_total: float,
                 ld: float) -> None:
    """Normal T cells recover logistically into the niche that lymphodepletion emptied."""
    n = y[S.N_T]
    dy[S.N_T] = p[P.r_N] * n * (1.0 - (max(n, 0.0) + max(car_total, 0.0)) / p[P.K_N]) - (
        p[P.ld_kill_T] * ld * n
    )


MECHANISM = Mechanism(
    name="niche",
    module=__name__,
    summary="normal T cells recovering into the lymphocyte niche",
    states=(StateSpec("N_T", "cells", "normal T cells (the lymphocyte niche)"),),
    params=PARAMS,
    kernels=(Kernel(niche_derivs, consumes=("car_total", "ld")),),
)
