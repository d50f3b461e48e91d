"""Model parameters: one :class:`~cartsim.params.ParameterSpec` per rate, capacity or gain.

The order of :data:`MODEL_PARAMS` defines the layout of the per-patient parameter vector; the
compiled right-hand side reads it through the :data:`P` IntEnum (``p[P.rho_max]``), so there are
no positional magic numbers. Per-patient values are ``default × product multiplier × exp(iiv_sd·z)``
(see :mod:`cartsim.population`). Docs tables are generated from this list
(``python -m cartsim.model.parameters > docs/parameters.md``).

Provenance tags: a citation where the number is taken from a publication (via
``shared/reference/models.md``), "calibrated to X" where the number was tuned so that an
emergent quantity lands on published kinetics, "assumed" where no source was found (these are
the first candidates for calibration).
"""

from __future__ import annotations

from enum import IntEnum
from math import log

import numba

from cartsim.model.traits import TRAIT_NAMES
from cartsim.params import ParameterSpec, ParameterTable, markdown_table

LN2 = log(2.0)


def _p(
    name: str,
    unit: str,
    default: float,
    lower: float,
    upper: float,
    provenance: str,
    description: str,
    iiv: float = 0.0,
    group: str = "",
) -> ParameterSpec:
    return ParameterSpec(
        name=name,
        unit=unit,
        default=default,
        lower=lower,
        upper=upper,
        provenance=provenance,
        description=description,
        iiv_sd=iiv,
        group=group,
    )


MODEL_PARAMS: tuple[ParameterSpec, ...] = (
    # ---------------- CAR-T kinetics (MODEL.md §1) ----------------
    _p("rho_max", "1/d", 1.25, 0.0, 5.0,
       "calibrated to Stein 2019 (net expansion 0.89/d, Tmax 9.3 d)",
       "maximal antigen-driven proliferation rate of effector CAR-T", 0.25, "cart"),
    _p("K_stim", "cells", 1.0e9, 1e6, 1e13,
       "performance.md representative model (K_A); Chaudhury 2020 EC50 structure",
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
    _p("K_kill", "cells", 1.0e9, 1e6, 1e13,
       "calibrated: B-cell aplasia maintained by ~10⁹ persisting CAR-T "
       "(performance.md K_s = 1e10 as prior)",
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
    # ---------------- normal T cells and lymphodepletion (MODEL.md §2) ----------------
    _p("K_N_per_kg", "cells/kg", 3.6e9, 1e7, 1e11,
       "Kimmel 2021 (K_N = 2.5e11 cells total body, 70 kg)",
       "lymphocyte niche capacity per kg", 0.3, "niche"),
    _p("r_N", "1/d", 0.1, 0.0, 2.0,
       "calibrated: Kimmel 2021 r_N 0.17/d is Gompertz; logistic equivalent for ~1 month "
       "lymphocyte recovery", "normal T-cell reconstitution rate", 0.3, "niche"),
    _p("N0_frac", "–", 0.5, 0.0, 1.0, "assumed (r/r patients are lymphopenic)",
       "normal T cells before lymphodepletion, fraction of niche capacity", 0.3, "niche"),
    _p("d_LD", "1/d", 0.7, 0.01, 20.0, "assumed (fludarabine t½ ≈ 20 h)",
       "clearance of lymphodepleting-chemotherapy exposure", 0.0, "niche"),
    _p("ld_kill_T", "1/(unit·d)", 1.0, 0.0, 20.0,
       "calibrated to Kimmel 2021 (≈ 98% T-cell depletion at infusion)",
       "lymphodepletion kill hazard on T cells per unit exposure", 0.2, "niche"),
    _p("ld_kill_B", "1/(unit·d)", 0.8, 0.0, 20.0, "assumed",
       "lymphodepletion kill hazard on B cells per unit exposure", 0.2, "niche"),
    _p("ld_kill_tumour", "1/(unit·d)", 0.15, 0.0, 20.0, "assumed (modest Flu/Cy log-kill)",
       "lymphodepletion kill hazard on tumour per unit exposure", 0.5, "niche"),
    # ---------------- tumour (MODEL.md §3) ----------------
    _p("r_tumour", "1/d", 0.035, 0.0, 1.0, "León-Triana 2020 (ρ_L = 1/30 d⁻¹)",
       "net tumour growth rate (B-ALL); LBCL uses the lymphoma value", 0.35, "tumour"),
    _p("tumour_capacity", "× normal marrow", 30.0, 1.0, 1000.0, "assumed (≈97% blasts at capacity)",
       "tumour carrying capacity relative to normal marrow cellularity", 0.0, "tumour"),
    _p("marrow_cells_per_kg", "cells/kg", 1.1e10, 1e8, 1e12,
       "assumed order of magnitude (adult marrow ≈ 7.7e11 nucleated cells)",
       "normal nucleated marrow cells per kg (denominator of blast % and MRD)", 0.0, "tumour"),
    _p("K_antigen", "relative density", 0.15, 1e-4, 100.0,
       "assumed; FMC63 engages low-density CD19 (Majzner 2020 order)",
       "antigen density (relative to median B-ALL CD19) for half-maximal engagement", 0.0,
       "tumour"),
    _p("mu_loss", "1/division", 3e-12, 0.0, 1e-3,
       "assumed; to calibrate against CD19-negative relapse share",
       "acquired CD19-loss (mutation/splicing) probability per tumour division", 1.0, "tumour"),
    _p("bystander", "–", 0.15, 0.0, 1.0, "assumed (review B8: FasL/TRAIL bystander killing)",
       "death-receptor kill of antigen-negative cells relative to engaged cells", 0.0, "tumour"),
    _p("stoch_threshold", "cells", 1000.0, 0.0, 1e6, "MODEL.md §3 (≈10³ cells); Kimmel 2021",
       "clones below this size follow a stochastic birth–death process", 0.0, "tumour"),
    _p("tumour_birth_frac", "–", 2.0, 1.0, 100.0,
       "assumed (birth = 2×net growth; turnover of leukaemic blasts)",
       "tumour birth rate relative to net growth rate", 0.0, "tumour"),
    _p("w_pfn", "–", 0.4, 0.0, 1.0, "traits.ROUTE_PRESETS['human_liquid']",
       "share of kill by perforin/granzyme route", 0.0, "tumour"),
    _p("w_dr", "–", 0.6, 0.0, 1.0, "traits.ROUTE_PRESETS['human_liquid']",
       "share of kill by death-receptor route", 0.0, "tumour"),
    _p("w_ifng", "–", 0.0, 0.0, 1.0, "traits.ROUTE_PRESETS['human_liquid'] (Larson 2022)",
       "share of kill by IFN-γ route", 0.0, "tumour"),
    _p("tp53_growth", "–", 1.25, 1.0, 5.0, "assumed (review B10)",
       "growth-rate multiplier of TP53-altered clones", 0.0, "tumour"),
    _p("kill_max", "1/d", 4.0, 0.1, 1000.0,
       "assumed (finite CAR-T search/handling time; Beddington–DeAngelis structure)",
       "ceiling of the per-target CAR-T kill hazard when effectors vastly outnumber targets",
       0.3, "tumour"),
    # ---------------- sanctuary site: CNS/testis (MODEL.md §1, §3; review A6, A7, A21) -------
    _p("cns_access", "–", 0.05, 0.0, 1.0,
       "assumed (CAR-T traffic to CSF, Mueller 2017, at levels below marrow; "
       "no quantitative CSF:blood ratio in shared/reference)",
       "CAR-T access to the sanctuary site relative to the marrow", 0.5, "sanctuary"),
    _p("cns_seed_frac", "–", 1e-3, 0.0, 1.0,
       "assumed (occult CNS involvement in B-ALL; to calibrate on CD19+ relapse share)",
       "occult sanctuary disease at baseline, fraction of marrow/nodal disease", 1.5,
       "sanctuary"),
    _p("cns_overt_cells", "cells", 1e9, 0.0, 1e11,
       "assumed (CNS3/testicular disease; Tan 2021 high-burden CNS leukaemia)",
       "extra sanctuary disease at baseline with overt CNS/testicular involvement", 0.5,
       "sanctuary"),
    _p("cns_exit", "1/d", 0.02, 0.0, 1.0, "assumed (sanctuary disease reseeds marrow over "
       "weeks; isolated CNS relapse precedes marrow relapse)",
       "per-capita migration sanctuary → marrow", 0.5, "sanctuary"),
    _p("cns_entry", "1/d", 1e-5, 0.0, 1.0, "assumed (slow seeding of CNS by marrow disease)",
       "per-capita migration marrow → sanctuary", 0.5, "sanctuary"),
    _p("cns_capacity", "cells", 1e11, 1e6, 1e13, "assumed (bulky CNS/testicular disease)",
       "tumour carrying capacity of the sanctuary site", 0.0, "sanctuary"),
    # ---------------- normal B cells (MODEL.md §4) ----------------
    _p("B_per_kg", "cells/kg", 3.6e8, 1e5, 1e10, "León-Triana 2020 (2.5e10 cells, 70 kg)",
       "normal mature B cells per kg at steady state", 0.4, "bcell"),
    _p("tau_B", "d", 60.0, 1.0, 1000.0, "León-Triana 2020", "mature B-cell lifetime", 0.0,
       "bcell"),
    _p("tau_I", "d", 6.0, 0.5, 100.0, "León-Triana 2020", "B-progenitor maturation time", 0.0,
       "bcell"),
    _p("B_antigen", "relative density", 1.0, 0.0, 100.0, "assumed (CD19 on B cells ≈ blasts)",
       "CD19 density of normal B cells", 0.0, "bcell"),
    _p("marrow_recovery_B", "1/d", 0.02, 0.0, 1.0,
       "assumed (B-progenitor output recovers over ~2 months after chemotherapy)",
       "recovery rate of B-progenitor output", 0.3, "bcell"),
    _p("IgG_tau", "d", 21.0, 1.0, 100.0, "IgG half-life ≈ 21 d (textbook)",
       "IgG turnover time", 0.0, "bcell"),
    _p("IgG_llpc", "–", 0.5, 0.0, 1.0, "assumed (long-lived plasma cells are CD19-negative)",
       "fraction of IgG made independently of B cells", 0.3, "bcell"),
    # ---------------- inflammation and physiology (MODEL.md §5) ----------------
    _p("il6_base", "pg/mL", 3.0, 0.0, 1e3, "typical healthy serum IL-6", "baseline IL-6", 0.3,
       "inflam"),
    _p("p_il6", "pg/mL/d per 1e9 kills/d", 0.5, 0.0, 1e4,
       "calibrated to CRS IL-6 peaks (Hardiansyah 2019 structure)",
       "IL-6 production per killing activity", 0.8, "inflam"),
    _p("d_il6", "1/d", 3.96, 0.1, 100.0, "Hardiansyah 2019", "IL-6 clearance", 0.0, "inflam"),
    _p("p_ifng", "pg/mL/d per 1e9 engaged", 1.0, 0.0, 1e4, "assumed (Hardiansyah 2019 structure)",
       "IFN-γ production per antigen-engaged effector", 0.6, "inflam"),
    _p("d_ifng", "1/d", 1.51, 0.1, 100.0, "Hardiansyah 2019", "IFN-γ clearance", 0.0, "inflam"),
    _p("k_my", "1/d", 0.6, 0.0, 10.0, "assumed (Santurio 2025 structure)",
       "myeloid activation rate", 0.4, "inflam"),
    _p("d_my", "1/d", 0.5, 0.01, 10.0, "assumed", "myeloid deactivation rate", 0.0, "inflam"),
    _p("a_my", "–", 4.0, 0.0, 100.0, "assumed (Santurio 2025: myeloid cells dominate IL-6)",
       "IL-6 amplification by fully activated myeloid cells", 0.3, "inflam"),
    _p("K_ifng", "pg/mL", 50.0, 0.01, 1e5, "assumed", "IFN-γ for half-maximal myeloid activation",
       0.0, "inflam"),
    _p("k_en", "1/d", 0.8, 0.0, 10.0, "assumed", "endothelial activation rate", 0.4, "inflam"),
    _p("d_en", "1/d", 0.35, 0.01, 10.0, "assumed (CRS resolves over days)",
       "endothelial recovery rate", 0.2, "inflam"),
    _p("K_en_il6", "pg/mL", 150.0, 0.01, 1e5, "assumed",
       "IL-6 signal for half-maximal endothelial activation", 0.5, "inflam"),
    _p("w_ifng_en", "–", 0.5, 0.0, 10.0, "assumed",
       "weight of IFN-γ saturation relative to the IL-6 term in endothelial activation",
       0.0, "inflam"),
    _p("K_my_kill", "10⁹ cells/d", 10.0, 0.01, 1e4,
       "assumed (tumour-cell death products activate myeloid cells; Liu 2020 pyroptosis)",
       "CAR-T kill rate giving half-maximal damage-driven myeloid activation", 0.0, "inflam"),
    _p("k_enc", "1/d", 0.6, 0.0, 10.0, "assumed", "encephalopathy onset rate", 0.5, "inflam"),
    _p("d_enc", "1/d", 0.4, 0.01, 10.0, "assumed (ICANS resolves over days)",
       "encephalopathy recovery rate", 0.2, "inflam"),
    _p("K_enc", "–", 1.2, 0.01, 100.0, "assumed", "endothelial activation for half-maximal "
       "encephalopathy drive", 0.4, "inflam"),
    _p("K_fever", "pg/mL", 25.0, 0.01, 1e5, "assumed (fever at IL-6 tens of pg/mL)",
       "IL-6 signal for half-maximal fever", 0.3, "inflam"),
    _p("map_drop", "–", 0.45, 0.0, 0.9, "assumed", "maximal fractional MAP fall", 0.0, "inflam"),
    _p("K_map", "–", 1.6, 0.01, 100.0, "assumed", "endothelial activation for half MAP drop",
       0.3, "inflam"),
    _p("K_ox", "–", 2.0, 0.01, 100.0, "assumed", "endothelial activation for half SpO₂ fall",
       0.3, "inflam"),
    # ---------------- marrow (MODEL.md §6): Friberg 2002 transit model ----------------
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
    # ---------------- drugs (MODEL.md §7) ----------------
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
    _p("ster_ec50", "mg dex-eq", 8.0, 0.01, 1e3, "assumed", "dexamethasone-equivalent amount for "
       "half-maximal effect", 0.0, "drug"),
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
    _p("anakinra_ec50", "mg", 50.0, 0.01, 1e4, "assumed", "anakinra amount for half effect",
       0.0, "drug"),
    _p("silt_half_life", "d", 20.0, 0.1, 100.0, "siltuximab label (t½ ≈ 20 d)",
       "siltuximab half-life", 0.0, "drug"),
    _p("silt_ec50", "µg/mL", 1.0, 1e-3, 1e3, "assumed", "siltuximab concentration for half "
       "IL-6 neutralisation", 0.0, "drug"),
    _p("gcsf_half_life", "d", 0.15, 0.01, 5.0, "filgrastim label (t½ ≈ 3.5 h)",
       "G-CSF half-life", 0.0, "drug"),
)

#: Patient-level quantities the population sampler sets per patient (not rates).
PATIENT_PARAMS: tuple[ParameterSpec, ...] = (
    _p("weight_kg", "kg", 30.0, 2.0, 300.0, "input", "body weight"),
    _p("age_y", "y", 10.0, 0.0, 100.0, "input", "age"),
    _p("blood_ul", "µL", 2.25e6, 1e4, 1e8, "75 mL/kg × weight", "blood volume"),
    _p("marrow_cells", "cells", 3.3e11, 1e8, 1e14, "marrow_cells_per_kg × weight",
       "normal nucleated marrow cells"),
    _p("K_N", "cells", 1.08e11, 1e6, 1e14, "K_N_per_kg × weight", "lymphocyte niche capacity"),
    _p("B_ss", "cells", 1.08e10, 1e4, 1e13, "B_per_kg × weight", "steady-state B cells"),
    _p("b_prog_out0", "–", 0.3, 0.0, 1.0, "assumed (prior chemotherapy)",
       "B-progenitor output at start, fraction of normal"),
    _p("igg0", "mg/dL", 700.0, 0.0, 5000.0, "assumed", "baseline IgG"),
    _p("anc0", "cells/µL", 1500.0, 0.0, 1e5, "input", "baseline ANC"),
    _p("plt0", "cells/µL", 100e3, 0.0, 2e6, "input", "baseline platelets"),
    _p("hb0", "g/dL", 10.0, 2.0, 25.0, "input", "baseline haemoglobin"),
    _p("map0", "mmHg", 80.0, 30.0, 150.0, "age-dependent normal", "baseline MAP"),
    _p("tumour_cap_cells", "cells", 1e13, 1e6, 1e15, "tumour_capacity × marrow cells (B-ALL); "
       "1e12 cells ≈ 1 L (LBCL)", "tumour carrying capacity"),
    _p("disease_lbcl", "0/1", 0.0, 0.0, 1.0, "input", "1 = LBCL (nodal site), 0 = B-ALL"),
    _p("cart_access", "–", 1.0, 0.0, 1.0, "assumed: 1 in marrow, lower in bulky nodes",
       "relative CAR-T access to the disease site"),
    _p("cns_disease", "0/1", 0.0, 0.0, 1.0, "input (Cohort.cns_disease)",
       "1 = overt CNS/testicular disease at baseline"),
    _p("product_cd19", "0/1", 1.0, 0.0, 1.0, "product", "CAR recognises CD19"),
    _p("product_cd20", "0/1", 0.0, 0.0, 1.0, "product", "CAR recognises CD20"),
    _p("product_cd22", "0/1", 0.0, 0.0, 1.0, "product", "CAR recognises CD22"),
    _p("affinity", "–", 1.0, 1e-3, 1e3, "product", "binder affinity relative to FMC63"),
)

ALL_PARAMS: tuple[ParameterSpec, ...] = MODEL_PARAMS + PATIENT_PARAMS
PARAMS = ParameterTable(ALL_PARAMS)

#: Named indices into the per-patient parameter vector (usable inside numba code).
P = IntEnum("P", {s.name: i for i, s in enumerate(ALL_PARAMS)})  # type: ignore[misc]

N_PARAMS_BASE = len(ALL_PARAMS)

# Clone-level parameters are appended after the scalar ones: per clone, its antigen densities,
# trait vector and growth multiplier (see cartsim.model.state.N_CLONES).
CLONE_FIELDS: tuple[str, ...] = ("cd19", "cd20", "cd22", *TRAIT_NAMES, "growth_mult")
C = IntEnum("C", {f: i for i, f in enumerate(CLONE_FIELDS)})  # type: ignore[misc]
N_CLONE_FIELDS = len(CLONE_FIELDS)


@numba.njit(inline="always")
def clone_param_index(clone: int, field: int) -> int:
    """Position of a clone field in the parameter vector."""
    return N_PARAMS_BASE + clone * N_CLONE_FIELDS + field


def main() -> None:  # pragma: no cover - documentation generator
    print("## Model parameters\n")
    print(markdown_table(MODEL_PARAMS))
    print("\n## Patient-level parameters\n")
    print(markdown_table(PATIENT_PARAMS))


if __name__ == "__main__":  # pragma: no cover
    main()
