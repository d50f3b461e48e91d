"""CAR-T cells: memory M, effector E and exhausted X in blood and at the disease site.

Expansion is antigen-driven and saturable (stimulation ``stim`` = engaged target load over its
half-saturation), boosted while the lymphodepleted lymphocyte niche is empty (Kimmel 2021):
homeostatic growth fills the empty niche, and antigen-driven proliferation halves when host T
cells occupy ``K_help`` of it, so after immune reconstitution effectors are fed by memory recall
and persistence follows memory decay.
Effectors die (Stein α), convert to memory (Stein F_B), exhaust with antigen load, PD-L1 and
death-receptor-defective targets (review B9, B12). Memory decays slowly (Stein β) and is
recalled by antigen, including regenerating normal B cells; recall is self-renewing
(a stimulated stem-like memory cell yields effectors without leaving the memory pool).
Peak time and height emerge.
"""

from __future__ import annotations

import numba
import numpy as np

from cartsim.model.mechanism import Kernel, Mechanism, Quantity, StateSpec, unbound
from cartsim.model.mechanism import param as _p

S = unbound("S")  # state layout, bound by cartsim.model.layout
P = unbound("P")  # parameter layout, bound by cartsim.model.layout

PARAMS = (
    _p("rho_max", "1/d", 1.25, 0.0, 5.0,
       "calibrated to Stein 2019 (net expansion 0.89/d, Tmax 9.3 d)",
       "maximal antigen-driven proliferation rate of effector CAR-T", 0.25, "cart"),
    _p("K_stim", "cells (70-kg reference; × body_scale)", 1.0e9, 1e6, 1e13,
       "performance.md representative model (K_A); Chaudhury 2020 EC50 structure; a whole-body "
       "count, scaled per patient by weight / ref_weight_kg",
       "antigen-engaged target load giving half-maximal stimulation", 0.5, "cart"),
    _p("stim_competition", "targets/effector", 0.01, 0.0, 100.0,
       "assumed (ratio-dependent stimulation: effectors compete for engageable targets; "
       "De Boer & Perelson 1994 T-cell competition structure)",
       "engaged targets per site effector that halve stimulation beyond K_stim; bounds "
       "expansion when antigen is steady (regenerating B cells) and effectors outnumber it",
       0.0, "cart"),
    _p("k_kill", "1/d", 3.0, 0.0, 50.0,
       "calibrated to clearance by day 10–14 (performance.md model: 2/d; Kimmel γ_B 1.15/d)",
       "maximal kills per effector CAR-T per day", 0.3, "cart"),
    _p("K_kill", "cells (70-kg reference; × body_scale)", 1.0e9, 1e6, 1e13,
       "calibrated: B-cell aplasia maintained by ~10⁹ persisting CAR-T "
       "(performance.md K_s = 1e10 as prior); a whole-body count, scaled per patient by "
       "weight / ref_weight_kg",
       "target load at which killing per effector halves (ratio dependence)", 0.0, "cart"),
    _p("d_E", "1/d", 0.16, 0.0, 2.0, "Stein 2019 (α = 0.16/d, t½ 4.3 d)",
       "effector CAR-T death rate", 0.3, "cart"),
    _p("k_em", "1/d", 0.004, 0.0, 1.0,
       "calibrated to Stein 2019 F_B ≈ 0.8% (fraction of peak entering slow phase)",
       "effector → memory conversion rate", 0.5, "cart"),
    _p("k_recall", "1/d", 0.1, 0.0, 5.0,
       "assumed; structure from Kirouac 2023 / CARTmath (antigen-triggered recall)",
       "memory → effector recall rate at full stimulation", 0.3, "cart"),
    _p("d_M", "1/d", 0.0032, 0.0, 1.0, "Stein 2019 (β = 0.0032/d, t½ ≈ 217 d)",
       "memory CAR-T decay rate", 0.6, "cart"),
    _p("k_ex", "1/d", 0.03, 0.0, 5.0, "assumed; structure from Kirouac 2023",
       "effector → exhausted rate at full stimulation", 0.6, "cart"),
    _p("d_X", "1/d", 0.2, 0.0, 5.0, "performance.md representative model",
       "exhausted CAR-T death rate", 0.0, "cart"),
    _p("k_bt", "1/d", 1.71, 0.0, 50.0, "Singh 2021 (K12)",
       "CAR-T transfer blood → tissue/disease site", 0.0, "cart"),
    _p("k_tb", "1/d", 0.03, 0.0, 50.0,
       "calibrated to blood CAR-T peaks of 10²–10³/µL (Singh 2021 K21 = 0.176 as prior)",
       "CAR-T transfer tissue/disease site → blood", 0.0, "cart"),
    _p("r_homeo", "1/d", 0.15, 0.0, 2.0,
       "assumed; niche structure from Kimmel 2021 (b = 0.525/d scale)",
       "homeostatic CAR-T proliferation in an empty lymphocyte niche", 0.3, "cart"),
    _p("niche_car_frac", "–", 0.28, 0.01, 1.0, "Kimmel 2021 (K_C/K_N = 139/500 cells/µL)",
       "CAR-T share of the lymphocyte niche: homeostatic growth stops above it", 0.0, "cart"),
    _p("ex_pdl1", "–", 2.0, 0.0, 20.0, "assumed (review B12; León-Triana 2021 structure)",
       "extra exhaustion per unit PD-L1 on engaged targets", 0.0, "cart"),
    _p("ex_dr_defect", "–", 1.5, 0.0, 20.0, "assumed (review B9: DR-defective targets drive "
       "CAR-T dysfunction)", "extra exhaustion per unit death-receptor defect of targets",
       0.0, "cart"),
    _p("K_help", "–", 0.1, 1e-3, 100.0,
       "assumed; structure from Kimmel 2021 (immune reconstitution ends CAR-T growth)",
       "host T-cell niche occupancy at which antigen-driven CAR-T proliferation halves",
       0.0, "cart"),
    # ---- product fitness: one latent per-patient axis (population.build) --------------------
    _p("fit_rho", "–", 0.3, 0.0, 3.0,
       "assumed size; direction from Fraietta 2018 Nat Med (memory-like CD27+CD45RO− CD8 share "
       "of the product predicts expansion and CR in CLL), Locke 2020 Blood Adv (CCR7+CD45RA+ "
       "product T cells and durable response, ZUMA-1), Deng 2020 Nat Med (memory vs exhausted "
       "product signatures in LBCL CR vs PD)",
       "loading of the product-fitness latent z on proliferation: rho_max × exp(fit_rho·z); "
       "0 = no shared axis", 0.0, "cart"),
    _p("fit_ex", "–", 0.6, 0.0, 3.0,
       "assumed size; same sources as fit_rho (exhaustion signatures in non-responders' "
       "products, Fraietta 2018, Deng 2020)",
       "loading of the product-fitness latent on exhaustion: k_ex × exp(−fit_ex·z)", 0.0,
       "cart"),
    _p("fit_mem", "–", 0.6, 0.0, 3.0,
       "assumed size; stem-like/memory product share sets persistence (Fraietta 2018; "
       "Stein 2019 β IIV ω² 0.86 as the ceiling of its spread)",
       "loading of the product-fitness latent on memory decay: d_M × exp(−fit_mem·z)", 0.0,
       "cart"),
    # ---- host rejection of the murine-scFv construct (CD19+ relapse route) -------------------
    _p("k_reject", "1/d", 0.002, 0.0, 1.0,
       "assumed size; transgene-specific host T-cell responses against FMC63 (murine scFv) "
       "CAR-T that end persistence, mainly after recovery from lymphodepletion (Turtle 2016 "
       "J Clin Invest; Lamers 2011 Blood); 0 = no rejection",
       "extra CAR-T death rate from host anti-CAR immunity at full host T-cell reconstitution "
       "(median patient; small beside Stein's population β, a tail of strong rejectors)",
       2.0, "cart"),
    _p("reject_occ50", "–", 0.5, 1e-3, 10.0,
       "assumed (rejection needs a reconstituted host T-cell compartment; Turtle 2016: "
       "fludarabine lymphodepletion delays it)",
       "host T-cell niche occupancy at which anti-CAR rejection is half-maximal", 0.0, "cart"),
    # ---- cytokine competence: the infused product's secretory burst (session 25) -------------
    _p("k_qc", "1/d", 0.6, 0.0, 10.0,
       "structure: the infused product's activated, polyfunctional cells secrete most at "
       "their first antigen encounters (pre-infusion product polyfunctionality goes with "
       "CRS/neurotoxicity and response in ZUMA-1, Rossi 2018 Blood 132:804), and antigen "
       "engagement downregulates the CAR within hours (Li 2020 Immunity 53:456) while "
       "continued antigen exposure lowers CAR-T cytokine production (Good 2021 Cell "
       "184:6081), so CRS can start on day 1-3 (ZUMA-1 median onset day 2, ELIANA+ENSIGN day "
       "3; targets file) though the CAR-T peak comes in the second week; rate hand-tuned "
       "(session 25) with r_qc, K_my_car and cd28_K_my_car_x against the CRS onset and the "
       "CRS/neurotoxicity/supportive-care rows (calibration set): `cartsim validate` "
       "(1,000/arm) 167 -> 167 of 225 judged rows passing, deviance 794.7 -> 790.0, onset "
       "median ZUMA-1 5 "
       "-> 2 d, ELIANA+ENSIGN 5 -> 3 d (0.3/d gave onset 2 d in ELIANA+ENSIGN with "
       "the same rows; docs/validation.md 'Session 25')",
       "loss rate of the effectors' cytokine competence under full antigen stimulation: "
       "dQC/dt = −k_qc·stim·QC + r_qc·(1 − QC) once CAR-T cells are in the body; 0 = "
       "competence stays 1 (the model before it)", 0.0, "cart"),
    _p("r_qc", "1/d", 0.02, 0.0, 10.0,
       "assumed (slow: a rested effector regains its secretory capacity over weeks; "
       "0.05/d with k_qc 0.4 lost 42 of deviance, session 25)",
       "recovery rate of the effectors' cytokine competence (rested cells regain it)", 0.0,
       "cart"),
)


@numba.njit(inline="always")
def derivs(
    y: np.ndarray,
    p: np.ndarray,
    dy: np.ndarray,
    stim: float,
    stim_quality: float,
    ex_factor: float,
    steroid_effect: float,
    ld: float,
    fratricide: float,
    tcell_fitness: float,
) -> tuple[float, float]:
    """Write CAR-T derivatives; return the total CAR-T count (for the niche) and the
    effectors' cytokine competence (for inflammation).

    ``tcell_fitness`` (1 = neutral; raised by the BTK-inhibitor add-on of
    :mod:`cartsim.model.salvage_drugs`) multiplies antigen-driven proliferation and divides
    exhaustion."""
    mb, eb, xb = y[S.M_b], y[S.E_b], y[S.X_b]
    mt, et, xt = y[S.M_t], y[S.E_t], y[S.X_t]
    car = mb + eb + xb + mt + et + xt
    fill = (max(y[S.N_T], 0.0) + max(car, 0.0)) / (p[P.niche_car_frac] * p[P.K_N])
    homeo = p[P.r_homeo] * (1.0 - fill) if fill < 1.0 else 0.0
    occ = max(y[S.N_T], 0.0) / p[P.K_N]
    help_ = p[P.K_help] / (p[P.K_help] + occ)
    # host anti-CAR immunity needs reconstituted host T cells (Hill 2 in niche occupancy)
    rej = p[P.k_reject] * occ * occ / (occ * occ + p[P.reject_occ50] * p[P.reject_occ50])
    prolif = (p[P.rho_max] * stim * stim_quality * (1.0 - p[P.ster_prolif] * steroid_effect)
              * help_ * tcell_fitness)
    recall = p[P.k_recall] * stim * stim_quality
    exhaust = p[P.k_ex] * stim * ex_factor / tcell_fitness
    d_e = p[P.d_E] + p[P.k_em] + rej
    kbt, ktb = p[P.k_bt], p[P.k_tb]
    ldk = p[P.ld_kill_T] * ld
    dy[S.E_t] = ((prolif + homeo - d_e - exhaust - ktb - ldk - fratricide) * et + recall * mt
                 + kbt * eb)
    d_m = p[P.d_M] + rej
    d_x = p[P.d_X] + rej
    dy[S.M_t] = p[P.k_em] * et + (homeo - d_m - ktb - ldk) * mt + kbt * mb
    dy[S.X_t] = exhaust * et - (d_x + ktb + ldk) * xt + kbt * xb
    dy[S.E_b] = ktb * et - (kbt + d_e - homeo + ldk) * eb
    dy[S.M_b] = ktb * mt + p[P.k_em] * eb - (kbt + d_m - homeo + ldk) * mb
    dy[S.X_b] = ktb * xt - (kbt + d_x + ldk) * xb
    # cytokine competence of the effectors (population mean, 1 = as infused): the product's
    # activated, polyfunctional cells secrete most at their first antigen encounters, and
    # repeated stimulation (and the divisions it drives) lowers the secretion per cell; no
    # cells, no change (before the infusion the state keeps its initial 1)
    qc = min(max(y[S.QC], 0.0), 1.0)
    if car > 0.0:
        dy[S.QC] = -p[P.k_qc] * stim * qc + p[P.r_qc] * (1.0 - qc)
    else:
        dy[S.QC] = 0.0
    return car, qc


MECHANISM = Mechanism(
    name="cart",
    module=__name__,
    summary="CAR-T memory, effector and exhausted cells in blood and at the disease site",
    states=(
        StateSpec("M_b", "cells", "memory/stem-like CAR-T, blood"),
        StateSpec("E_b", "cells", "effector CAR-T, blood"),
        StateSpec("X_b", "cells", "exhausted CAR-T, blood"),
        StateSpec("M_t", "cells", "memory CAR-T, tissue/disease site"),
        StateSpec("E_t", "cells", "effector CAR-T, tissue/disease site"),
        StateSpec("X_t", "cells", "exhausted CAR-T, tissue/disease site"),
        StateSpec("QC", "–", "cytokine competence of effector CAR-T (population mean; 1 = as "
                  "infused)", initial=1.0),
    ),
    params=PARAMS,
    quantities=(Quantity("car_total", "cells", "all CAR-T cells, blood and tissue"),
                Quantity("cyto_competence", "–",
                         "cytokine competence of the effector CAR-T (1 = as infused): × the "
                         "engaged concentration in their contact (CD40L/GM-CSF) activation of "
                         "myeloid cells"),
                Quantity("tcell_fitness", "–",
                         "CAR-T fitness multiplier: × antigen-driven proliferation, ÷ "
                         "exhaustion (BTK-inhibitor add-on)", neutral=1.0)),
    kernels=(
        Kernel(derivs, consumes=("stim", "stim_quality", "ex_factor", "steroid_effect", "ld",
                                 "fratricide", "tcell_fitness"),
               provides=("car_total", "cyto_competence")),
    ),
)
