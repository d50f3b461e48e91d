"""Assembles the patient's vector field from the subsystem modules.

``rhs(t, y, p, dy)`` is a numba function with the signature the engine's solver expects; it is
autonomous (schedules act as jumps between integration intervals, never inside the equations).
"""

from __future__ import annotations

import numba
import numpy as np

from cartsim.model import bcells, cart, drugs, inflammation, marrow, tumour
from cartsim.model.parameters import C, P, clone_param_index
from cartsim.model.state import N_CLONES, S

#: CD20/CD22 densities of normal B cells relative to blasts; progenitors are CD20-low.
_B_CD20, _B_CD22 = 1.0, 0.5
_PROG_CD20, _PROG_CD22 = 0.1, 0.5


@numba.njit(inline="always")
def site_activity(y: np.ndarray, p: np.ndarray):  # type: ignore[no-untyped-def]
    """Engagement, stimulation and killing at the disease site.

    Returns (stimulation, synapse-weighted quality, exhaustion factor, kills per day,
    antigen-engaged effectors, per-target hazard on B progenitors, on mature B cells, the
    per-capita CAR-T kill hazard of clones 0, 1, 2 and of the sanctuary clone).
    """
    access = p[P.cart_access]
    e_t = max(y[S.E_t], 0.0)
    e_b = tumour.engagement(p, p[P.B_antigen], _B_CD20, _B_CD22)
    e_p = tumour.engagement(p, p[P.B_antigen], _PROG_CD20, _PROG_CD22)
    bp, b = max(y[S.B_prog], 0.0), max(y[S.B], 0.0)
    load = e_b * b + e_p * bp
    qload = load
    pdl1_load = 0.0
    dr_load = 0.0
    for c in range(N_CLONES):
        tc = max(y[S.T0 + c], 0.0) * access
        ec = tumour.clone_engagement(p, c)
        base = clone_param_index(c, 0)
        load += ec * tc
        qload += ec * tc * p[base + C.synapse_quality]
        pdl1_load += ec * tc * p[base + C.pdl1]
        dr_load += ec * tc * max(0.0, 1.0 - p[base + C.dr_sensitivity])
    # the sanctuary clone engages the few CAR-T cells that reach it
    ts_eng = tumour.clone_engagement(p, 0) * max(y[S.TS], 0.0) * p[P.cns_access]
    load += ts_eng
    qload += ts_eng * p[clone_param_index(0, 0) + C.synapse_quality]
    # ratio-dependent: a target stimulates a limited number of effectors, so expansion on a
    # steady antigen source (regenerating B cells) saturates instead of growing without bound
    stim = load / (load + p[P.K_stim] + p[P.stim_competition] * e_t)
    quality = qload / load if load > 0.0 else 1.0
    ex_factor = 1.0
    if load > 0.0:
        ex_factor += (p[P.ex_pdl1] * pdl1_load + p[P.ex_dr_defect] * dr_load) / load
    # kills per target: ratio-dependent in the target load, saturating at kill_max when
    # effectors vastly outnumber targets (finite search/handling time per target)
    g_raw = p[P.k_kill] * e_t / (p[P.K_kill] + load)
    g = g_raw * p[P.kill_max] / (g_raw + p[P.kill_max])
    h0 = _clone_hazard(p, 0, access, g, stim)
    h1 = _clone_hazard(p, 1, access, g, stim)
    h2 = _clone_hazard(p, 2, access, g, stim)
    hs = _clone_hazard(p, 0, p[P.cns_access], g, stim)
    g_prog = g * e_p
    g_b = g * e_b
    kills = (h0 * max(y[S.T0], 0.0) + h1 * max(y[S.T1], 0.0) + h2 * max(y[S.T2], 0.0)
             + hs * max(y[S.TS], 0.0) + g_prog * bp + g_b * b)
    return stim, quality, ex_factor, kills, e_t * stim, g_prog, g_b, h0, h1, h2, hs


@numba.njit(inline="always")
def _clone_hazard(p: np.ndarray, c: int, access: float, g: float, stim: float) -> float:
    """Per-capita kill hazard of clone c: engaged routes plus death-receptor bystander kill."""
    ec = tumour.clone_engagement(p, c)
    base = clone_param_index(c, 0)
    route = tumour.clone_route_factor(p, c)
    by = p[P.bystander] * p[P.w_dr] * p[base + C.dr_sensitivity] * stim
    return access * g * (ec * route + by)


@numba.njit
def rhs(t: float, y: np.ndarray, p: np.ndarray, dy: np.ndarray) -> None:
    """d/dt of one patient's state. ``t`` in days (unused: the body is autonomous)."""
    ld, occ_t, occ_s, ster, anak, gcsf = drugs.effects(y, p)
    stim, quality, ex_factor, kills, engaged, g_prog, g_b, h0, h1, h2, hs = site_activity(y, p)
    car = cart.derivs(y, p, dy, stim, quality, ex_factor, ster, ld)
    cart.niche_derivs(y, p, dy, car, ld)
    tumour.derivs(y, p, dy, h0, h1, h2, hs, ld)
    bcells.derivs(y, p, dy, g_prog, g_b, ld)
    inflammation.derivs(y, p, dy, kills, engaged, occ_t, occ_s, ster, anak)
    marrow.derivs(y, p, dy, ld, gcsf)
    drugs.derivs(y, p, dy)
