"""Neutrophils, platelets and haemoglobin after lymphodepletion (MODEL.md §6).

Friberg 2002 transit-compartment myelosuppression for neutrophils and platelets: a
proliferating pool with feedback (baseline/count)^γ, three transit compartments and the
circulating pool. Lymphodepletion exposure and IFN-γ-driven inflammation inhibit proliferation
(prolonged and biphasic cytopenias, review A18); G-CSF boosts neutrophil proliferation.
"""

from __future__ import annotations

import numba
import numpy as np

from cartsim.model.parameters import P
from cartsim.model.state import S


@numba.njit(inline="always")
def _chain(y: np.ndarray, dy: np.ndarray, i0: int, ktr: float, drive: float, base: float,
           gamma: float) -> None:
    circ = max(y[i0 + 4], 1e-3)
    fb = (base / circ) ** gamma if base > 0.0 else 1.0
    dy[i0] = ktr * y[i0] * (drive * fb - 1.0)
    dy[i0 + 1] = ktr * (y[i0] - y[i0 + 1])
    dy[i0 + 2] = ktr * (y[i0 + 1] - y[i0 + 2])
    dy[i0 + 3] = ktr * (y[i0 + 2] - y[i0 + 3])
    dy[i0 + 4] = ktr * (y[i0 + 3] - y[i0 + 4])


@numba.njit(inline="always")
def derivs(y: np.ndarray, p: np.ndarray, dy: np.ndarray, ld: float, gcsf: float) -> None:
    ifng = max(y[S.IFNG], 0.0)
    inh_ld = 1.0 - p[P.ld_marrow] * ld / (ld + p[P.K_ld_marrow])
    inh_inf = 1.0 - p[P.infl_marrow] * ifng / (ifng + p[P.K_ifng])
    boost = 1.0 + p[P.gcsf_emax] * gcsf / (gcsf + p[P.K_gcsf])
    _chain(y, dy, S.NP, 4.0 / p[P.mtt_neut], inh_ld * inh_inf * boost, p[P.anc0],
           p[P.gamma_neut])
    _chain(y, dy, S.PP, 4.0 / p[P.mtt_plt], inh_ld * inh_inf, p[P.plt0], p[P.gamma_plt])
    dy[S.HB] = (p[P.hb0] * inh_ld * inh_inf - y[S.HB]) / p[P.tau_rbc]
