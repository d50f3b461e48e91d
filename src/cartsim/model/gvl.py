"""Allogeneic graft after HSCT consolidation: donor immune reconstitution and
graft-versus-leukaemia (GVL) killing (review A1, A10; MODEL.md §7).

After myeloablative conditioning (applied as a day-start procedure, see
:class:`cartsim.trial.outcomes.HsctProcedure`) the donor graft engrafts and donor T and NK cells
reconstitute over weeks. Alloreactive donor cells recognise the leukaemia through minor
histocompatibility antigens, not CD19, so GVL kills every tumour clone, antigen-negative ones
included, and reaches the CNS/testis sanctuary only partly.

States: ``GRAFT`` (1 from the transplant day on: the graft is in) and ``GVL`` (donor alloreactive
activity, 0–1), which rises towards ``GRAFT`` with the reconstitution rate. The donor cells kill a
limited number of leukaemic cells a day (``gvl_sat_cells``, session 22): they hold a residue,
an overt relapse outgrows them. The mechanism
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
    _p("gvl_sat_cells", "cells (70-kg reference; × body_scale)", 1e10, 0.0, 1e14,
       "assumed size (≈ 1.3 % blasts of a 70-kg marrow); direction: graft-versus-leukaemia "
       "holds minimal residual disease but rarely an overt relapse of ALL — donor lymphocyte "
       "infusions put ≈ 1 in 6 relapsed ALL into remission against ≈ 60 % of relapsed CML "
       "(Collins 1997 J Clin Oncol 15:433) and ALL relapsing after allo-HSCT is mostly fatal "
       "(5-year OS ≈ 8 %, Spyridonidis 2012 Leukemia 26:1211). Without it (0, the model "
       "before session 22) a post-transplant relapse settled into a years-long equilibrium "
       "of 1-25 % marrow blasts under a constant GVL hazard and the patient never died (NCI "
       "CD19-28z median OS not reached at 72 months against 10.5). 1e10 against 1e11 on the "
       "22 B-ALL specs, three seeds: deviance 531.9 -> 519.7 / 528.8, rows 96.7 -> 96.0 / 96.0 "
       "(docs/validation.md 'Session 22')",
       "tumour cells at which the per-capita GVL hazard halves: gvl_kill · GVL / (1 + T / "
       "(gvl_sat_cells · body_scale)), T the tumour at the site (the sanctuary: its own); "
       "0 = no saturation", 0.0, "gvl"),
)


@numba.njit(inline="always")
def gvl(y: np.ndarray, p: np.ndarray, dy: np.ndarray) -> tuple[float, float]:
    """Donor reconstitution; returns the GVL kill hazards (1/d) at the disease site and in the
    sanctuary."""
    dy[S.GRAFT] = 0.0
    dy[S.GVL] = p[P.gvl_rise] * (y[S.GRAFT] - y[S.GVL])
    h = p[P.gvl_kill] * max(y[S.GVL], 0.0)
    hs = h * p[P.gvl_sanctuary]
    if p[P.gvl_sat_cells] > 0.0:
        # the alloreactive donor cells kill a limited number of leukaemic cells a day: they
        # hold a residue, an overt relapse outgrows them
        k = p[P.gvl_sat_cells] * p[P.body_scale]
        site = max(y[S.T0], 0.0) + max(y[S.T1], 0.0) + max(y[S.T2], 0.0)
        h = h / (1.0 + site / k)
        hs = hs / (1.0 + max(y[S.TS], 0.0) / k)
    return h, hs


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
