"""Pharmacology of lymphodepletion and the supportive/interventional drugs (MODEL.md §7).

Each drug is a first-order amount or concentration state; the schedule or the clinic adds
doses as jumps between days (data, not equations). Effects are Emax functions of the state.
G-CSF is the exception: its state is the daily dosing itself (1 while a course of one dose a
day runs, set by the clinic each day), and its exposure is the course's mean amount in the
body, dose × t½/ln 2: with a 3.5-hour half-life each day's dose is gone by the next, so the
day-to-day course, not the hour-to-hour sawtooth, is what the marrow sees.
"""

from __future__ import annotations

from math import log

import numba
import numpy as np

from cartsim.model.mechanism import Kernel, Mechanism, Quantity, StateSpec, unbound
from cartsim.model.mechanism import param as _p

S = unbound("S")  # state layout, bound by cartsim.model.layout
P = unbound("P")  # parameter layout, bound by cartsim.model.layout
LN2 = log(2.0)

PARAMS = (
    _p("toci_half_life", "d", 5.0, 0.1, 50.0, "tocilizumab label (concentration-dependent t½)",
       "tocilizumab elimination half-life", 0.2, "drug"),
    _p("toci_vd", "L/kg", 0.1, 0.01, 1.0, "tocilizumab label (Vd ≈ 6.4 L)",
       "tocilizumab volume of distribution", 0.0, "drug"),
    _p("toci_ec50", "µg/mL", 1.0, 1e-3, 1e3, "assumed", "tocilizumab concentration for half "
       "IL-6R blockade", 0.0, "drug"),
    _p("toci_clear_frac", "–", 0.6, 0.0, 1.0, "assumed (receptor-mediated IL-6 clearance; "
       "serum IL-6 rises after tocilizumab)", "fraction of IL-6 clearance through IL-6R", 0.0,
       "drug"),
    _p("ster_half_life", "d", 1.0, 0.05, 10.0, "assumed (dexamethasone PD effect)",
       "steroid effect half-life", 0.0, "drug"),
    _p("ster_ec50", "mg dex-eq (70-kg reference; × body_scale)", 8.0, 0.01, 1e3,
       "assumed; an amount, so scaled per patient by weight / ref_weight_kg (exposure is "
       "amount over a distribution volume proportional to weight)",
       "dexamethasone-equivalent amount for half-maximal effect", 0.0, "drug"),
    _p("ster_cyto", "–", 0.8, 0.0, 1.0, "assumed", "maximal steroid suppression of cytokine "
       "production", 0.0, "drug"),
    _p("ster_prolif", "–", 0.4, 0.0, 1.0, "assumed (Hanson 2016 efficacy–toxicity trade-off)",
       "maximal steroid suppression of CAR-T proliferation", 0.0, "drug"),
    _p("ster_my", "–", 0.8, 0.0, 1.0,
       "assumed (steroids damp monocyte/macrophage activation; Norelli 2018 mouse model)",
       "maximal steroid suppression of myeloid activation", 0.0, "drug"),
    _p("anak_my", "–", 0.7, 0.0, 1.0,
       "assumed (IL-1 blockade abrogates myeloid-driven CRS; Norelli 2018, Giavridis 2018)",
       "maximal anakinra suppression of myeloid activation", 0.0, "drug"),
    _p("ster_en", "–", 0.5, 0.0, 1.0, "assumed",
       "maximal steroid suppression of endothelial activation", 0.0, "drug"),
    _p("ster_enc", "–", 0.8, 0.0, 1.0,
       "assumed (dexamethasone is first-line for ICANS; ASCO 2021)",
       "maximal steroid suppression of encephalopathy onset", 0.0, "drug"),
    _p("anak_enc", "–", 0.3, 0.0, 1.0,
       "assumed (IL-1 blockade prevents neurotoxicity in mice; Norelli 2018)",
       "maximal anakinra suppression of encephalopathy onset", 0.0, "drug"),
    _p("anakinra_half_life", "d", 0.25, 0.01, 10.0, "anakinra label (t½ 4–6 h)",
       "anakinra half-life", 0.0, "drug"),
    _p("anakinra_ec50", "mg (70-kg reference; × body_scale)", 50.0, 0.01, 1e4,
       "assumed; an amount, so scaled per patient by weight / ref_weight_kg",
       "anakinra amount for half effect", 0.0, "drug"),
    _p("silt_half_life", "d", 20.0, 0.1, 100.0, "siltuximab label (t½ ≈ 20 d)",
       "siltuximab half-life", 0.0, "drug"),
    _p("silt_ec50", "µg/mL", 1.0, 1e-3, 1e3, "assumed", "siltuximab concentration for half "
       "IL-6 neutralisation", 0.0, "drug"),
    _p("gcsf_half_life", "d", 0.15, 0.01, 5.0, "filgrastim label (t½ ≈ 3.5 h)",
       "G-CSF half-life: sets the mean exposure of one dose a day, t½/ln 2 doses", 0.0,
       "drug"),
)


@numba.njit(inline="always")
def effects(y: np.ndarray, p: np.ndarray, dy: np.ndarray
            ) -> tuple[float, float, float, float, float, float]:
    """(LD exposure, tocilizumab IL-6R occupancy, siltuximab occupancy, steroid effect,
    anakinra effect, G-CSF exposure)."""
    ld = max(y[S.LD], 0.0)
    toci = max(y[S.TOCI], 0.0)
    silt = max(y[S.SILT], 0.0)
    ster = max(y[S.STER], 0.0)
    anak = max(y[S.ANAK], 0.0)
    occ_t = toci / (toci + p[P.toci_ec50])
    occ_s = silt / (silt + p[P.silt_ec50])
    bs = p[P.body_scale]  # amounts: half-effect amounts scale with the distribution volume
    e_st = ster / (ster + p[P.ster_ec50] * bs)
    e_an = anak / (anak + p[P.anakinra_ec50] * bs)
    # G-CSF: the course's mean amount in the body (one dose a day: AUC per day = t½/ln 2)
    gcsf = max(y[S.GCSF], 0.0) * p[P.gcsf_half_life] / LN2
    return ld, occ_t, occ_s, e_st, e_an, gcsf


@numba.njit(inline="always")
def derivs(y: np.ndarray, p: np.ndarray, dy: np.ndarray) -> None:
    dy[S.LD] = -p[P.d_LD] * y[S.LD]
    dy[S.TOCI] = -LN2 / p[P.toci_half_life] * y[S.TOCI]
    dy[S.STER] = -LN2 / p[P.ster_half_life] * y[S.STER]
    dy[S.ANAK] = -LN2 / p[P.anakinra_half_life] * y[S.ANAK]
    dy[S.SILT] = -LN2 / p[P.silt_half_life] * y[S.SILT]
    dy[S.GCSF] = 0.0  # the dosing course: held, set by the clinic day by day


MECHANISM = Mechanism(
    name="drugs",
    module=__name__,
    summary="lymphodepletion and the supportive drugs: first-order exposure and Emax effects",
    states=(
        StateSpec("LD", "unit",
                  "lymphodepleting chemotherapy exposure (1 unit = one day of Flu/Cy)"),
        StateSpec("TOCI", "µg/mL", "tocilizumab concentration"),
        StateSpec("STER", "mg dex-eq", "corticosteroid effect (dexamethasone equivalents)"),
        StateSpec("ANAK", "mg", "anakinra amount"),
        StateSpec("SILT", "µg/mL", "siltuximab concentration"),
        StateSpec("GCSF", "doses/d", "G-CSF course (1 = one dose a day being given)"),
    ),
    params=PARAMS,
    quantities=(
        Quantity("ld", "unit", "lymphodepletion exposure"),
        Quantity("toci_occupancy", "–", "IL-6 receptor occupancy by tocilizumab"),
        Quantity("silt_occupancy", "–", "IL-6 neutralisation by siltuximab"),
        Quantity("steroid_effect", "–", "corticosteroid Emax effect (0–1)"),
        Quantity("anakinra_effect", "–", "anakinra Emax effect (0–1)"),
        Quantity("gcsf", "doses", "G-CSF exposure (mean amount in the body)"),
    ),
    kernels=(
        Kernel(effects, provides=("ld", "toci_occupancy", "silt_occupancy", "steroid_effect",
                                  "anakinra_effect", "gcsf")),
        Kernel(derivs),
    ),
)
