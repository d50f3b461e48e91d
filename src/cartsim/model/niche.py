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
    _p("ld_N_sat", "1/unit", 1.0, 0.0, 100.0,
       "structure (session 45): fludarabine/cyclophosphamide kill host lymphocytes with a "
       "saturating exposure-response (an Emax model, the default of pharmacometrics; outcomes "
       "level off above an optimal fludarabine exposure, Fabrizio 2022 Blood Adv 6:1961, Dekker "
       "2022 Blood Adv 6:1969). Value calibrated (session 45) among 0 (linear), 1 and 3.33 on "
       "the calibration studies whose courses differ from the reference (NCI CD19-28z, ZUMA-4: "
       "Flu 25 x3 + Cy 900 x1) with ZUMA-1 and ELIANA: deviance 188.0 / 187.9 / 196.3, headline "
       "rows 14 / 16 / 15 (`cartsim validate --studies nci_cd19_28z,zuma4,zuma1,eliana`); 0 = "
       "linear in exposure (the model before)",
       "saturation of the host T-cell kill: ld_kill_T · ld_N_gain · L / (1 + ld_N_sat · L), "
       "half-maximal at L = 1/ld_N_sat", 0.0, "niche"),
    _p("ld_N_gain", "–", 1.81, 0.0, 20.0,
       "structure (session 45): set with ld_N_sat so that the reference course still depletes "
       "≈ 98.6 % of host T cells (Kimmel 2021): the integral of the kill over the course's "
       "exposure (three daily units decaying at d_LD) equals the linear kill's 4.29; 1 with "
       "ld_N_sat 0",
       "gain of the saturating host T-cell kill relative to ld_kill_T", 0.0, "niche"),
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
    kill = p[P.ld_kill_T] * p[P.ld_N_gain] * ld / (1.0 + p[P.ld_N_sat] * ld)
    dy[S.N_T] = p[P.r_N] * n * (1.0 - (max(n, 0.0) + max(car_total, 0.0)) / p[P.K_N]) - (
        kill * n
    )


MECHANISM = Mechanism(
    name="niche",
    module=__name__,
    summary="normal T cells recovering into the lymphocyte niche",
    states=(StateSpec("N_T", "cells", "normal T cells (the lymphocyte niche)"),),
    params=PARAMS,
    kernels=(Kernel(niche_derivs, consumes=("car_total", "ld")),),
)
