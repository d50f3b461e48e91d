"""Allogeneic graft after HSCT consolidation: donor immune reconstitution and
graft-versus-leukaemia (GVL) killing (review A1, A10; MODEL.md §7).

After myeloablative conditioning (applied as a day-start procedure, see
:class:`cartsim.trial.outcomes.HsctProcedure`) the donor graft engrafts and donor T and NK cells
reconstitute over weeks. Alloreactive donor cells recognise the leukaemia through minor
histocompatibility antigens, not CD19, so GVL kills every tumour clone, antigen-negative ones
included, and reaches the CNS/testis sanctuary only partly.

States: ``GRAFT`` (1 from the transplant day on: the graft is in) and ``GVL`` (donor alloreactive
activity, 0–1), which rises towards ``GRAFT`` with the reconstitution rate. The mechanism
provides ``gvl_hazard`` and ``gvl_hazard_sanctuary`` (1/d), the per-capita GVL kill hazards at
the disease site and in the sanctuary, which the killing mechanism adds to every clone's
hazard. The transplant is a dose route (``hsct_graft``, amount 1) so a simulation without HSCT
is exactly the core model.
"""

from __future__ import annotations

import numba
import numpy as np

from cartsim.model.mechanism import DoseRoute, Kernel, Mechanism, StateSpec, unbound
from cartsim.model.mechanism import param as _p

S = unbound("S")  # state layout, bound by the composition (add-on: per model)
P = unbound("P")  # parameter layout, bound by the composition (add-on: per model)

PARAMS = (
    _p("gvl_kill", "1/d", 0.08, 0.0, 5.0,
       "assumed; order chosen so that allo-HSCT of MRD-negative B-ALL leaves the 20–30 % "
       "post-HSCT relapse of review A1 (a seed figure, not a validated study outcome)",
       "per-capita GVL kill hazard on tumour cells at full donor reconstitution", 0.5, "gvl"),
    _p("gvl_rise", "1/d", 1.0 / 30.0, 1e-3, 1.0,
       "assumed (donor T-cell reconstitution over ~1–3 months after allo-HSCT)",
       "rate at which donor alloreactive activity approaches its plateau", 0.3, "gvl"),
    _p("gvl_sanctuary", "–", 0.3, 0.0, 1.0,
       "assumed (donor T cells reach the CNS/testis less than the marrow; isolated CNS "
       "relapses occur after allo-HSCT)",
       "GVL hazard in the sanctuary site relative to the marrow", 0.0, "gvl"),
)


@numba.njit(inline="always")
def gvl(y: np.ndarray, p: np.ndarray, dy: np.ndarray) -> tuple[float, float]:
    """Donor reconstitution; returns the GVL kill hazards (1/d) at the disease site and in the
    sanctuary."""
    dy[S.GRAFT] = 0.0
    dy[S.GVL] = p[P.gvl_rise] * (y[S.GRAFT] - y[S.GVL])
    h = p[P.gvl_kill] * max(y[S.GVL], 0.0)
    return h, h * p[P.gvl_sanctuary]


MECHANISM = Mechanism(
    name="gvl",
    module=__name__,
    summary="allogeneic graft: donor reconstitution and graft-versus-leukaemia kill",
    states=(StateSpec("GRAFT", "–", "allogeneic graft in place (0/1)"),
            StateSpec("GVL", "–", "donor alloreactive (GVL) activity, 0–1")),
    params=PARAMS,
    kernels=(Kernel(gvl, provides=("gvl_hazard", "gvl_hazard_sanctuary")),),
    doses=(DoseRoute("hsct_graft", "GRAFT", "graft", "allogeneic HSCT graft (amount 1)"),),
)
