"""Normal B-cell lineage and IgG (MODEL.md §4; León-Triana 2020, review A17).

Marrow progenitors (CD19+) mature into B cells (τ_I ≈ 6 d; lifetime τ_B ≈ 60 d). CD19-directed
CAR-T cells kill both with the tumour's kernel, and both restimulate CAR-T cells. Progenitor
output recovers after prior chemotherapy and lymphodepletion. IgG falls towards its
B-cell-independent (long-lived plasma cell) share during aplasia.
"""

from __future__ import annotations

import numba
import numpy as np

from cartsim.model.mechanism import Kernel, Mechanism, StateSpec, unbound
from cartsim.model.mechanism import param as _p

S = unbound("S")  # state layout, bound by cartsim.model.layout
P = unbound("P")  # parameter layout, bound by cartsim.model.layout

PARAMS = (
    _p("B_per_kg", "cells/kg", 3.6e8, 1e5, 1e10, "León-Triana 2020 (2.5e10 cells, 70 kg)",
       "normal mature B cells per kg at steady state", 0.4, "bcell"),
    _p("tau_B", "d", 60.0, 1.0, 1000.0, "León-Triana 2020", "mature B-cell lifetime", 0.0,
       "bcell"),
    _p("tau_I", "d", 6.0, 0.5, 100.0, "León-Triana 2020", "B-progenitor maturation time", 0.0,
       "bcell"),
    _p("B_antigen", "relative density", 1.0, 0.0, 100.0, "assumed (CD19 on B cells ≈ blasts)",
       "CD19 density of normal B cells", 0.0, "bcell"),
    _p("marrow_recovery_B", "1/d", 0.15, 0.0, 1.0,
       "session 29 (0.02 before, 'recovers over ~2 months', assumed): normal B-cell "
       "precursors regenerate in children's marrow within the 2-week rests after "
       "consolidation and re-induction blocks (van Wering 2000 Br J Haematol 110:139), "
       "i.e. the output recovers with t½ of days (0.15/d: 4.6 d); size chosen among 0.06 / "
       "0.1 / 0.15 on the whole library (`cartsim validate`, 1,000/arm): 174 / 173 / 174 of "
       "229 rows passing against 172, deviance 757.4 / 751.8 / 748.1 against 772.3 — the "
       "regenerating B lineage is antigen that lets the CAR-T of an MRD-level leukaemia "
       "expand and persist (Wang 2024 MRD re-emergent OS at 48 months 57.0 -> 63.1 %, "
       "published 70.6; docs/validation.md 'Session 29')",
       "recovery rate of B-progenitor output", 0.3, "bcell"),
    _p("IgG_tau", "d", 21.0, 1.0, 100.0, "IgG half-life ≈ 21 d (textbook)",
       "IgG turnover time", 0.0, "bcell"),
    _p("IgG_llpc", "–", 0.5, 0.0, 1.0, "assumed (long-lived plasma cells are CD19-negative)",
       "fraction of IgG made independently of B cells", 0.3, "bcell"),
)


@numba.njit(inline="always")
def derivs(y: np.ndarray, p: np.ndarray, dy: np.ndarray, kill_prog: float, kill_b: float,
           ld: float) -> None:
    out = y[S.B_out]
    ldk = p[P.ld_kill_B] * ld
    dy[S.B_out] = p[P.marrow_recovery_B] * (1.0 - out) - ldk * out
    source = max(out, 0.0) * p[P.B_ss] / p[P.tau_B]
    bp, b = y[S.B_prog], y[S.B]
    mature = bp / p[P.tau_I]
    dy[S.B_prog] = source - mature - (kill_prog + ldk) * bp
    dy[S.B] = mature - b / p[P.tau_B] - (kill_b + ldk) * b
    frac = max(b, 0.0) / p[P.B_ss]
    target = p[P.igg0] * (p[P.IgG_llpc] + (1.0 - p[P.IgG_llpc]) * min(frac, 1.0))
    dy[S.IgG] = (target - y[S.IgG]) / p[P.IgG_tau]


MECHANISM = Mechanism(
    name="bcells",
    module=__name__,
    summary="normal B-cell lineage (progenitors, mature B cells) and serum IgG",
    states=(
        StateSpec("B_out", "–", "B-progenitor output, fraction of normal"),
        StateSpec("B_prog", "cells", "CD19+ B progenitors (marrow)"),
        StateSpec("B", "cells", "mature B cells"),
        StateSpec("IgG", "mg/dL", "serum IgG"),
    ),
    params=PARAMS,
    kernels=(Kernel(derivs, consumes=("kill_prog", "kill_b", "ld")),),
)
