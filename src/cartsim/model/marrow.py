"""Neutrophils, platelets and haemoglobin after lymphodepletion (MODEL.md §6).

Friberg 2002 transit-compartment myelosuppression for neutrophils and platelets: a
proliferating pool with feedback (setpoint/count)^γ, three transit compartments and the
circulating pool. Lymphodepletion exposure and IFN-γ-driven inflammation inhibit proliferation;
G-CSF boosts neutrophil proliferation.

Two slower processes make cytopenias prolonged and biphasic and let counts recover above their
pre-treatment level (review A18, issue 14):

* **stem/progenitor reserve** ``MR`` (fraction of the pre-treatment output, 1 at day −5):
  damaged by lymphodepletion and by IFN-γ, it recovers towards 1 at ``stem_recovery`` ×
  reserve^``reserve_exp`` per day and multiplies the proliferation drive, so a patient whose
  reserve was hit stays cytopenic for weeks after the chemotherapy has gone, and a hyper-
  inflammatory CAR-T expansion can pull counts down a second time;
* **blast crowding**: marrow blasts suppress normal haematopoiesis by ``crowd_max`` × blast
  fraction; the neutrophil and platelet setpoints are the pre-treatment counts ×
  (1 − crowd_max·b(t)) / (1 − crowd_max·b₀), so these counts rise above their pre-treatment
  level once blasts clear (haemoglobin, with its months-long red-cell turnover, keeps its
  pre-treatment setpoint).

The patient's haematopoietic **reserve** (:func:`reserve`, 0–1) comes from the baseline
counts that make the CAR-HEMATOTOX score (Rejeski 2021), corrected for blast crowding.
With ``crowd_max = stem_ld_kill = stem_infl_kill = 0`` the reserve never moves and the
equations are exactly the previous ones (tested).

Red cells (session 44) have their own drive — the reserve weighed as MR^``ery_reserve_exp``,
lymphodepletion, IFN-γ, IL-6's iron restriction (hepcidin) — reaching the blood through a
first-order erythroid lag ``EO`` (``ery_mtt``), and IFN-γ-driven erythrophagocytosis shortens
their survival; ``ery_mtt = hepcidin_ery = rbc_infl_destroy = 0``, ``ery_reserve_exp = 1`` give
the earlier haemoglobin equation (tested).
"""

from __future__ import annotations

import numba
import numpy as np

from cartsim.model.burden import blast_fraction
from cartsim.model.mechanism import Kernel, Mechanism, StateSpec, unbound
from cartsim.model.mechanism import param as _p

S = unbound("S")  # state layout, bound by cartsim.model.layout
P = unbound("P")  # parameter layout, bound by cartsim.model.layout

#: Provenance shared by the nine marrow values switched on together in session 44 (probe E1).
_E1 = ("; set with the other marrow values of probe E1 in session 44 (docs/validation.md "
       "'Session 44'): over three root seeds of the whole library (`cartsim validate "
       "--replicates 3`) rows 181.3 → 180.7 of 234 and deviance 961.5 → 823.8 (every seed "
       "lower); held-out trials 52 → 52 of 100, deviance 3111.0 → 2606.0")

PARAMS = (
    _p("mtt_neut", "d", 4.5, 0.5, 30.0, "Friberg 2002 (MTT ≈ 89 h) order", "neutrophil mean "
       "transit time", 0.2, "marrow"),
    _p("gamma_neut", "–", 0.16, 0.0, 2.0, "Friberg 2002", "neutrophil feedback exponent", 0.0,
       "marrow"),
    _p("mtt_plt", "d", 6.0, 0.5, 30.0,
       "megakaryocyte-to-platelet transit ≈ 5–7 d (megakaryocyte maturation ≈ 5 d, Harker & "
       "Finch 1969); hand-tuned within it against the ZUMA-1 prolonged thrombocytopenia row "
       "(calibration set), session 8: 8 d gave ~40 % against a published 24 %",
       "platelet mean transit time", 0.2, "marrow"),
    _p("gamma_plt", "–", 0.2, 0.0, 2.0, "assumed", "platelet feedback exponent", 0.0, "marrow"),
    _p("plt_tx_lifetime", "d", 3.0, 0.5, 15.0,
       "assumed order: transfused platelets circulate a few days in a thrombocytopenic "
       "patient, less than a normal platelet's 7-10 days (recovery and survival fall with "
       "fever, sepsis and splenomegaly), so prophylactic transfusions are repeated every few "
       "days",
       "mean lifetime of transfused platelets (first-order clearance of the PTX state)", 0.0,
       "marrow"),
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
    _p("crowd_max", "–", 0.9, 0.0, 0.99, "assumed (blast infiltration suppresses normal "
       "haematopoiesis beyond the space it takes; counts of B-ALL responders rise above their "
       "pre-treatment level, ELIANA CR with count recovery)",
       "fraction of normal haematopoiesis lost at 100 % marrow blasts", 0.0, "marrow"),
    _p("stem_ld_kill", "1/d", 0.10, 0.0, 5.0, "assumed (Flu/Cy injures stem and progenitor "
       "cells; prolonged cytopenia after lymphodepletion, Rejeski 2021/2023)",
       "maximal rate of lymphodepletion damage to the stem/progenitor reserve", 0.3, "marrow"),
    _p("stem_infl_kill", "1/d", 0.15, 0.0, 5.0, "assumed structure (IFN-γ-driven marrow "
       "suppression; biphasic cytopenia after CAR-T expansion, review A18); 0.06 before" + _E1,
       "maximal rate of IFN-γ damage to the stem/progenitor reserve", 0.5, "marrow"),
    _p("stem_recovery", "1/d", 0.03, 0.001, 2.0, "assumed structure (recovery of the "
       "stem/progenitor reserve over weeks; ICAHT late phase, Rejeski 2023); size hand-tuned, "
       "session 17, against the day-28/30 cytopenia rows of ZUMA-1 and the axi-cel "
       "haematotoxicity study (calibration set), all under-predicted at 0.07: ZUMA-1 grade ≥ 3 "
       "cytopenia / neutropenia / thrombocytopenia on day 28 28.4 / 18 / 20.1 → 38.7 / 27.3 / "
       "26.8 % (published 38 / 26 / 24), axi-cel neutropenia grade ≥ 3 at day 30 21.5 → "
       "31.3 % (30); 0.035 over-shoots (55.7 / 40.2 / 38.1 / 43.3); ELIANA CR with count "
       "recovery 58.5 → 55.5 % (60); whole library 159 → 159 rows, deviance 1024 → 995 "
       "(seed 1000003: 157 → 159, 1021 → 974; docs/validation.md 'Session 17'); 0.07 "
       "before; 0.05 → 0.03" + _E1,
       "recovery rate of the stem/progenitor reserve at full haematopoietic reserve", 0.5,
       "marrow"),
    _p("neut_reserve_drive_exp", "–", 0.5, 0.0, 2.0,
       "structure (session 43): with the Friberg feedback (base/count)^γ the quasi-steady "
       "count goes as drive^(1/γ), so a reserve entering the drive linearly costs "
       "MR^6.25 of the neutrophils; 1 = that (the model before session 44)" + _E1,
       "exponent of the stem/progenitor reserve in the neutrophil proliferation drive "
       "(quasi-steady ANC ∝ MR^(exp/γ))", 0.0, "marrow"),
    _p("plt_reserve_drive_exp", "–", 0.5, 0.0, 2.0,
       "structure (session 43): as neut_reserve_drive_exp; thrombopoietin rises steeply as "
       "platelets fall and expands the megakaryocyte progenitors, so a partial loss of stem "
       "output is compensated far more than MR^5; 1 = the model before session 44" + _E1,
       "exponent of the stem/progenitor reserve in the platelet proliferation drive "
       "(quasi-steady platelets ∝ MR^(exp/γ))", 0.0, "marrow"),
    _p("ld_marrow_plt_x", "–", 0.3, 0.0, 1.0,
       "structure (session 43): fludarabine/cyclophosphamide lymphodepletion spares "
       "megakaryopoiesis more than granulopoiesis (grade 3–4 neutropenia in 53–94 %, "
       "thrombocytopenia in 41–53 % of patients: the reviews' A18, shared/reference "
       "SEEDS.md); "
       "1 = the same inhibition as the neutrophils (the model before session 44)" + _E1,
       "lymphodepletion's maximal inhibition of megakaryocyte proliferation relative to "
       "ld_marrow", 0.0, "marrow"),
    _p("ery_mtt", "d", 5.0, 0.0, 30.0,
       "structure (session 44): erythroid progenitors take about a week from the CFU-E to "
       "the circulating reticulocyte (erythroblast maturation 5-7 d; the reticulocyte "
       "response to erythropoietin appears after 3-4 d), so red-cell production answers "
       "marrow injury with a delay; 0 = no delay, production reads the drive directly (the "
       "model before session 44)" + _E1,
       "mean delay of erythroid output (first-order lag of the EO state)", 0.0, "marrow"),
    _p("ery_reserve_exp", "–", 2.0, 0.0, 5.0,
       "structure (session 44): erythroid recovery lags the myeloid lineages after "
       "CAR-T (ICAHT late phase, Rejeski 2023); 1 = the reserve enters the red-cell "
       "production linearly (the model before session 44)" + _E1,
       "exponent of the stem/progenitor reserve in the erythroid drive", 0.0, "marrow"),
    _p("ld_marrow_ery_x", "–", 1.0, 0.0, 1.0,
       "structure (session 44): as ld_marrow_plt_x for the erythroid lineage; 1 = the same "
       "inhibition as the neutrophils (the model before session 44)",
       "lymphodepletion's maximal inhibition of erythropoiesis relative to ld_marrow", 0.0,
       "marrow"),
    _p("hepcidin_ery", "–", 0.5, 0.0, 1.0,
       "structure (session 44): IL-6 induces hepcidin within hours, which locks iron in "
       "macrophages and restricts erythropoiesis (anaemia of inflammation; Nemeth 2004 "
       "J Clin Invest 113:1271); 0 = none (the model before session 44)" + _E1,
       "maximal inhibition of erythropoiesis by IL-6 (iron restriction)", 0.0, "marrow"),
    _p("K_il6_ery", "pg/mL", 100.0, 1.0, 1e5, "assumed (CRS-range IL-6)",
       "serum IL-6 giving half of the maximal iron restriction", 0.0, "marrow"),
    _p("rbc_infl_destroy", "1/d", 0.02, 0.0, 1.0,
       "structure (session 44): IFN-γ makes macrophages phagocytose red cells "
       "(haemophagocytosis and anaemia in mice given IFN-γ alone, Zoller 2011 J Exp Med "
       "208:1203); 0 = none (the model before session 44)" + _E1,
       "extra red-cell destruction rate at maximal IFN-γ signal (K_ifng)", 0.0, "marrow"),
    _p("gamma_ery", "–", 0.0, 0.0, 2.0,
       "structure (session 44): erythropoietin rises as haemoglobin falls (blunted in "
       "inflammation); 0 = no feedback (the model before session 44)",
       "erythropoietin feedback exponent on the erythroid drive, (hb0/Hb)^γ", 0.0, "marrow"),
    _p("reserve_exp", "–", 1.0, 0.0, 10.0, "assumed (CAR-HEMATOTOX high risk: slower "
       "recovery, Rejeski 2021)",
       "exponent of the haematopoietic reserve on the stem recovery rate", 0.0, "marrow"),
    _p("plt_reserve_ref", "cells/µL", 175e3, 1e3, 1e6, "CAR-HEMATOTOX platelet cut-off "
       "(> 175 ×10⁹/L scores 0; Rejeski 2021)",
       "crowding-corrected baseline platelets at or above which the reserve is full", 0.0,
       "marrow"),
    _p("anc_reserve_ref", "cells/µL", 1200.0, 10.0, 1e5, "CAR-HEMATOTOX ANC cut-off "
       "(< 1200/µL scores 1; Rejeski 2021)",
       "crowding-corrected baseline ANC at or above which the reserve is full", 0.0, "marrow"),
)


@numba.njit(cache=True)
def reserve(anc0: float, plt0: float, blast_frac0: float, crowd_max: float,
            anc_ref: float, plt_ref: float) -> float:
    """Haematopoietic reserve (0–1): the geometric mean of the crowding-corrected baseline
    platelets and ANC relative to the CAR-HEMATOTOX cut-offs, each capped at 1."""
    c = 1.0 - crowd_max * blast_frac0
    rp = min(plt0 / c / plt_ref, 1.0)
    ra = min(anc0 / c / anc_ref, 1.0)
    return (max(rp, 0.0) * max(ra, 0.0)) ** 0.5


@numba.njit(inline="always")
def _crowding_ratio(y: np.ndarray, p: np.ndarray) -> float:
    """Normal haematopoiesis now relative to day −5: (1 − c·b(t)) / (1 − c·b₀)."""
    c = p[P.crowd_max]
    if c == 0.0 or p[P.disease_lbcl] > 0.5:
        return 1.0
    site = max(y[S.T0], 0.0) + max(y[S.T1], 0.0) + max(y[S.T2], 0.0)
    b = blast_fraction(site, p[P.marrow_cells], p[P.ball_packing])
    return (1.0 - c * b) / (1.0 - c * p[P.blast_frac0])


@numba.njit(inline="always")
def _reserve_power(mr: float, e: float) -> float:
    """The reserve as it enters a lineage's drive, MR^e: MR itself at e = 1 (bit for bit and
    without a power in the vector field); the floor keeps the power's derivative finite at a
    failed marrow."""
    return mr if e == 1.0 else max(mr, 1e-12) ** e


@numba.njit(inline="always")
def _chain(y: np.ndarray, dy: np.ndarray, i0: int, ktr: float, drive: float, base: float,
           gamma: float) -> None:
    circ = max(y[i0 + 4], 1e-3)
    fb = (base / circ) ** gamma if base > 0.0 else 1.0
    # only a non-negative pool proliferates: a solver's excursion below zero (the pool of a
    # patient whose marrow failed sits far below the absolute tolerance) decays back to zero
    # instead of being amplified by the feedback's growth rate. For a pool >= 0 the second
    # term is exactly 0.0 and the equation is the one before session 28, bit for bit.
    pool = max(y[i0], 0.0)
    dy[i0] = ktr * pool * (drive * fb - 1.0) + ktr * (pool - y[i0])
    dy[i0 + 1] = ktr * (y[i0] - y[i0 + 1])
    dy[i0 + 2] = ktr * (y[i0 + 1] - y[i0 + 2])
    dy[i0 + 3] = ktr * (y[i0 + 2] - y[i0 + 3])
    dy[i0 + 4] = ktr * (y[i0 + 3] - y[i0 + 4])


@numba.njit(inline="always")
def derivs(y: np.ndarray, p: np.ndarray, dy: np.ndarray, ld: float, gcsf: float) -> None:
    ifng = max(y[S.IFNG], 0.0)
    f_ld = ld / (ld + p[P.K_ld_marrow])
    f_inf = ifng / (ifng + p[P.K_ifng])
    inh_ld = 1.0 - p[P.ld_marrow] * f_ld
    inh_inf = 1.0 - p[P.infl_marrow] * f_inf
    boost = 1.0 + p[P.gcsf_emax] * gcsf / (gcsf + p[P.K_gcsf])
    # stem/progenitor reserve: damaged by Flu/Cy and IFN-γ, recovers at a reserve-set rate
    mr = max(y[S.MR], 0.0)
    res = reserve(p[P.anc0], p[P.plt0], p[P.blast_frac0], p[P.crowd_max],
                  p[P.anc_reserve_ref], p[P.plt_reserve_ref])
    k_rec = p[P.stem_recovery] * res ** p[P.reserve_exp]
    dy[S.MR] = k_rec * (1.0 - mr) - (p[P.stem_ld_kill] * f_ld
                                      + p[P.stem_infl_kill] * f_inf) * mr
    crowd = _crowding_ratio(y, p)
    # the reserve in each lineage's drive: MR^exp (_reserve_power)
    mr_n = _reserve_power(mr, p[P.neut_reserve_drive_exp])
    mr_p = _reserve_power(mr, p[P.plt_reserve_drive_exp])
    inh_ld_p = 1.0 - p[P.ld_marrow] * p[P.ld_marrow_plt_x] * f_ld
    _chain(y, dy, S.NP, 4.0 / p[P.mtt_neut], mr_n * inh_ld * inh_inf * boost,
           p[P.anc0] * crowd, p[P.gamma_neut])
    _chain(y, dy, S.PP, 4.0 / p[P.mtt_plt], mr_p * inh_ld_p * inh_inf, p[P.plt0] * crowd,
           p[P.gamma_plt])
    # red cells: production follows the erythroid drive (through the EO lag when ery_mtt >
    # 0), destruction is the turnover plus IFN-γ-driven erythrophagocytosis. With every
    # session-44 parameter neutral this is hb0 · MR · inh_ld · inh_inf relaxed at 1/tau_rbc,
    # the equation before session 44 (the EO state stays at 1).
    mr_e = _reserve_power(mr, p[P.ery_reserve_exp])
    inh_ld_e = 1.0 - p[P.ld_marrow] * p[P.ld_marrow_ery_x] * f_ld
    il6 = max(y[S.IL6], 0.0)
    inh_hep = 1.0 - p[P.hepcidin_ery] * il6 / (il6 + p[P.K_il6_ery])
    hb = max(y[S.HB], 1e-3)
    epo = 1.0 if p[P.gamma_ery] == 0.0 else (p[P.hb0] / hb) ** p[P.gamma_ery]
    drive_e = mr_e * inh_ld_e * inh_inf * inh_hep * epo
    if p[P.ery_mtt] > 0.0:
        dy[S.EO] = (drive_e - y[S.EO]) / p[P.ery_mtt]
        out_e = y[S.EO]
    else:
        dy[S.EO] = 0.0
        out_e = drive_e
    dy[S.HB] = ((p[P.hb0] * out_e - y[S.HB]) / p[P.tau_rbc]
                - p[P.rbc_infl_destroy] * f_inf * y[S.HB])
    # transfused platelets (the clinic's jumps) circulate and are cleared on their own; the
    # chain's feedback reads the patient's own platelets only (assumed: the fitted Friberg
    # homeostasis stands for endogenous thrombopoiesis, not for donor platelets)
    dy[S.PTX] = -y[S.PTX] / p[P.plt_tx_lifetime]


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
        StateSpec("PTX", "cells/µL", "circulating transfused platelets (outside the chain's "
                  "feedback)"),
        StateSpec("HB", "g/dL", "haemoglobin"),
        StateSpec("MR", "fraction", "haematopoietic stem/progenitor reserve (1 = pre-treatment "
                  "output)", initial=1.0),
        StateSpec("EO", "fraction", "erythroid output reaching the blood (1 = pre-treatment; "
                  "moves only when ery_mtt > 0)", initial=1.0),
    ),
    params=PARAMS,
    kernels=(Kernel(derivs, consumes=("ld", "gcsf")),),
)
