"""Tumour clones, antigen engagement and the killing routes (MODEL.md §3; review B2–B12).

Engagement of a target by the CAR is an OR over the antigens the construct recognises, each a
saturating function of surface density scaled by binder affinity. Killing of an engaged target
is split over routes through :func:`cartsim.model.traits.route_kill_factor`, the kernel shared
with the CRISPR-screen simulator. Antigen-negative cells die only as death-receptor bystanders.
"""

from __future__ import annotations

import numba
import numpy as np

from cartsim.model.parameters import C, P, clone_param_index
from cartsim.model.state import N_CLONES, S
from cartsim.model.traits import route_kill_factor

_route = numba.njit(inline="always")(route_kill_factor)


@numba.njit(inline="always")
def engagement(p: np.ndarray, cd19: float, cd20: float, cd22: float) -> float:
    """Probability-like engagement (0–1) of a target with the given surface densities."""
    k = p[P.K_antigen] / p[P.affinity]
    miss = 1.0
    if p[P.product_cd19] > 0.0 and cd19 > 0.0:
        miss *= 1.0 - p[P.product_cd19] * cd19 / (cd19 + k)
    if p[P.product_cd20] > 0.0 and cd20 > 0.0:
        miss *= 1.0 - p[P.product_cd20] * cd20 / (cd20 + k)
    if p[P.product_cd22] > 0.0 and cd22 > 0.0:
        miss *= 1.0 - p[P.product_cd22] * cd22 / (cd22 + k)
    return 1.0 - miss


@numba.njit(inline="always")
def clone_engagement(p: np.ndarray, c: int) -> float:
    b = clone_param_index(c, 0)
    return engagement(
        p,
        p[b + C.cd19] * p[b + C.cd19_surface_fraction],
        p[b + C.cd20],
        p[b + C.cd22],
    )


@numba.njit(inline="always")
def clone_route_factor(p: np.ndarray, c: int) -> float:
    b = clone_param_index(c, 0)
    return _route(
        p[b + C.pfn_sensitivity],
        p[b + C.dr_sensitivity],
        p[b + C.ifng_sensitivity],
        p[b + C.synapse_quality],
        p[b + C.tp53_altered],
        p[P.w_pfn],
        p[P.w_dr],
        p[P.w_ifng],
    )


@numba.njit(inline="always")
def growth_rate(p: np.ndarray, c: int) -> float:
    b = clone_param_index(c, 0)
    tp = min(p[b + C.tp53_altered], 1.0)
    return p[P.r_tumour] * p[b + C.growth_mult] * (1.0 + (p[P.tp53_growth] - 1.0) * tp)


@numba.njit(inline="always")
def derivs(
    y: np.ndarray,
    p: np.ndarray,
    dy: np.ndarray,
    h0: float,
    h1: float,
    h2: float,
    hs: float,
    ld: float,
) -> None:
    """Growth, killing, lymphodepletion and sanctuary exchange; the stochastic-layer integrals.

    ``h0``, ``h1``, ``h2`` are the marrow clones' per-capita CAR-T kill hazards (1/d), ``hs``
    that of the dominant clone in the sanctuary site. Clone 0 seeds the sanctuary at
    ``cns_entry`` per cell and day and is reseeded from it at ``cns_exit``; both fluxes are
    also integrated (IMS, IMM) so the stochastic layer can add them as Poisson arrivals when the
    receiving population is small.
    """
    total = 0.0
    for c in range(N_CLONES):
        total += max(y[S.T0 + c], 0.0)
    crowd = 1.0 - total / p[P.tumour_cap_cells]
    if crowd < 0.0:
        crowd = 0.0
    bf = p[P.tumour_birth_frac]
    ts = y[S.TS]
    entry = p[P.cns_entry]
    exit_ = p[P.cns_exit]
    for c in range(N_CLONES):
        r = growth_rate(p, c)
        birth = bf * r * crowd
        hz = h0 if c == 0 else (h1 if c == 1 else h2)
        death = (bf - 1.0) * r + hz + p[P.ld_kill_tumour] * ld
        tc = y[S.T0 + c]
        if c == 0:
            death += entry
            dy[S.MUT] = p[P.mu_loss] * birth * max(tc, 0.0)
            dy[S.IMM] = exit_ * max(ts, 0.0)
            dy[S.IMS] = entry * max(tc, 0.0)
            dy[S.T0] = (birth - death) * tc + exit_ * ts
        else:
            dy[S.T0 + c] = (birth - death) * tc
        dy[S.HZ0 + c] = death
        dy[S.BR0 + c] = birth
    # sanctuary: the dominant clone's growth with its own crowding, poor CAR-T access
    r0 = growth_rate(p, 0)
    crowd_s = 1.0 - max(ts, 0.0) / p[P.cns_capacity]
    if crowd_s < 0.0:
        crowd_s = 0.0
    birth_s = bf * r0 * crowd_s
    death_s = (bf - 1.0) * r0 + hs + p[P.ld_kill_tumour] * ld + exit_
    dy[S.TS] = (birth_s - death_s) * ts + entry * max(y[S.T0], 0.0)
    dy[S.HZS] = death_s
    dy[S.BRS] = birth_s
