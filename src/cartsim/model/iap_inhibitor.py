"""IAP inhibitor (SMAC mimetic, e.g. birinapant): sensitises death-receptor killing (review B9).

SMAC mimetics degrade cIAP1/2, the ubiquitin ligases that keep TNF-family receptor signalling
pro-survival; without them FasL/TRAIL engagement kills through caspase-8 more readily. In the
model the drug raises the ``dr_sensitisation`` quantity, which multiplies every tumour clone's
death-receptor sensitivity in the killing mechanism (engaged and bystander kill). A clone that
has lost the route itself (FADD or CASP8 knockout, sensitivity 0) stays resistant: 0 × anything
is 0, as in the screens where IAP loss sensitises only FADD-intact cells.

Pharmacokinetics: a one-compartment amount ``IAPI`` (mg in the body) that decays with the
plasma half-life; doses are schedule items (``Dose("iap_inhibitor", day, mg)``). The effect
is an Emax function of the amount.
"""

from __future__ import annotations

from math import log

import numba
import numpy as np

from cartsim.model.mechanism import DoseRoute, Kernel, Mechanism, StateSpec, unbound
from cartsim.model.mechanism import param as _p

S = unbound("S")  # state layout, bound by the composition (add-on: per model)
P = unbound("P")  # parameter layout, bound by the composition (add-on: per model)
LN2 = log(2.0)

PARAMS = (
    _p("iapi_half_life", "d", 1.35, 0.05, 20.0,
       "Amaravadi 2015 Mol Cancer Ther 14:2569 (birinapant plasma t½ 30–35 h)",
       "IAP-inhibitor (SMAC mimetic) elimination half-life", 0.2, "drug"),
    _p("iapi_ec50", "mg", 20.0, 0.01, 1e4,
       "assumed (about a quarter of a 47 mg/m² birinapant dose, the phase 1 MTD of "
       "Amaravadi 2015, for half-maximal effect)",
       "IAP-inhibitor amount in the body for half-maximal death-receptor sensitisation",
       0.0, "drug"),
    _p("iapi_emax", "–", 0.4 / 0.6, 0.0, 10.0,
       "assumed: the BIRC2 (cIAP1) knockout of traits.GENE_TRAIT_EFFECTS (DR sensitivity "
       "× (1 + 0.4/0.6)); a SMAC mimetic degrades cIAP1/2",
       "maximal relative increase of death-receptor sensitivity by the IAP inhibitor",
       0.0, "drug"),
)


@numba.njit(inline="always")
def iapi(y: np.ndarray, p: np.ndarray, dy: np.ndarray) -> float:
    """Elimination of the IAP inhibitor; returns its death-receptor sensitisation (≥ 1)."""
    a = max(y[S.IAPI], 0.0)
    dy[S.IAPI] = -LN2 / p[P.iapi_half_life] * y[S.IAPI]
    return 1.0 + p[P.iapi_emax] * a / (a + p[P.iapi_ec50])


MECHANISM = Mechanism(
    name="iap_inhibitor",
    module=__name__,
    summary="IAP inhibitor (SMAC mimetic): one-compartment PK, raises death-receptor killing",
    states=(StateSpec("IAPI", "mg", "IAP inhibitor (SMAC mimetic) amount in the body"),),
    params=PARAMS,
    kernels=(Kernel(iapi, provides=("dr_sensitisation",)),),
    doses=(DoseRoute("iap_inhibitor", "IAPI", "mg", "IAP inhibitor (SMAC mimetic) dose"),),
)
