"""Normal B-cell lineage and IgG (MODEL.md §4; León-Triana 2020, review A17).

Marrow progenitors (CD19+) mature into B cells (τ_I ≈ 6 d; lifetime τ_B ≈ 60 d). CD19-directed
CAR-T cells kill both with the tumour's kernel, and both restimulate CAR-T cells. Progenitor
output recovers after prior chemotherapy and lymphodepletion. IgG falls towards its
B-cell-independent (long-lived plasma cell) share during aplasia.
"""

from __future__ import annotations

import numba
import numpy as np

from cartsim.model.parameters import P
from cartsim.model.state import S


@numba.njit(inline="always")
def derivs(y: np.ndarray, p: np.ndarray, dy: np.ndarray, g_prog: float, g_b: float,
           ld: float) -> None:
    out = y[S.B_out]
    ldk = p[P.ld_kill_B] * ld
    dy[S.B_out] = p[P.marrow_recovery_B] * (1.0 - out) - ldk * out
    source = max(out, 0.0) * p[P.B_ss] / p[P.tau_B]
    bp, b = y[S.B_prog], y[S.B]
    mature = bp / p[P.tau_I]
    dy[S.B_prog] = source - mature - (g_prog + ldk) * bp
    dy[S.B] = mature - b / p[P.tau_B] - (g_b + ldk) * b
    frac = max(b, 0.0) / p[P.B_ss]
    target = p[P.igg0] * (p[P.IgG_llpc] + (1.0 - p[P.IgG_llpc]) * min(frac, 1.0))
    dy[S.IgG] = (target - y[S.IgG]) / p[P.IgG_tau]
