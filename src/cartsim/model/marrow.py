"""Neutrophils, platelets and haemoglobin after lymphodepletion (MODEL.md §6).

Friberg 2002 transit-compartment myelosuppression for neutrophils and platelets: a
proliferating pool with feedback (baseline/count)^γ, three transit compartments and the
circulating pool. Lymphodepletion exposure and IFN-γ-driven inflammation inhibit proliferation
(prolonged and biphasic cytopenias, review A18); G-CSF boosts neutrophil proliferation.
"""

from __future__ import annotations

import numba
import numpy as np

from cartsim.model.mechanism import Kernel, Mechanism, StateSpec, unbound
from cartsim.model.mechanism import param as _p

S = unbound("S")  # state layout, bound by cartsim.model.layout
P = unbound("P")  # parameter layout, bound by cartsim.model.layout

PARAMS = (
    _p("mtt_neut", "d", 4.5, 0.5, 30.0, "Friberg 2002 (MTT ≈ 89 h) order", "neutrophil mean "
       "transit time", 0.2, "marrow"),
    _p("gamma_neut", "–", 0.16, 0.0, 2.0, "Friberg 2002", "neutrophil feedback exponent", 0.0,
       "marrow"),
    _p("mtt_plt", "d", 8.0, 0.5, 30.0, "assumed (platelet maturation ≈ 8 d)",
       "platelet mean transit time", 0.2, "marrow"),
    _p("gamma_plt", "–", 0.2, 0.0, 2.0, "assumed", "platelet feedback exponent", 0.0, "marrow"),
    _p("ld_marrow", "–", 0.9, 0.0, 1.0, "assumed", "maximal inhibition of marrow "
       "proliferation by lymphodepletion", 0.1, "marrow"),
    _p("infl_marrow", "–", 0.5, 0.0, 1.0, "assumed (inflammatory marrow suppression, A18)",
       "maximal inhibition of marrow proliferation by IFN-γ", 0.4, "marrow"),
    _p("tau_rbc", "d", 60.0, 5.0, 200.0, "assumed (shortened red-cell survival)",
       "red-cell turnover time", 0.2, "marrow"),
    _p("gcsf_emax", "–", 2.0, 0.0, 20.0, "assumed", "maximal G-CSF boost of neutrophil "
       "proliferation", 0.0, "marrow"),
    _p("K_ld_marrow", "Flu/Cy day-equivalents", 0.3, 0.01, 10.0, "assumed",
       "lymphodepletion exposure giving half-maximal marrow inhibition", 0.0, "marrow"),
    _p("K_gcsf", "doses", 1.0, 0.01, 10.0, "assumed",
       "G-CSF exposure giving half of the maximal neutrophil boost", 0.0, "marrow"),
)


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


def _chain_states(prefix: str, what: str) -> tuple[StateSpec, ...]:
    return (
        StateSpec(f"{prefix}P", "cells/µL", f"{what} proliferating compartment"),
        *(StateSpec(f"{prefix}T{i}", "cells/µL", f"{what} transit {i}") for i in (1, 2, 3)),
    )


MECHANISM = Mechanism(
    name="marrow",
    module=__name__,
    summary="neutrophils, platelets (Friberg transit chains) and haemoglobin",
    states=(
        *_chain_states("N", "neutrophil"),
        StateSpec("NC", "cells/µL", "circulating neutrophils (ANC)"),
        *_chain_states("P", "platelet"),
        StateSpec("PC", "cells/µL", "circulating platelets"),
        StateSpec("HB", "g/dL", "haemoglobin"),
    ),
    params=PARAMS,
    kernels=(Kernel(derivs, consumes=("ld", "gcsf")),),
)
