"""Tumour clones, antigen engagement and the killing routes (MODEL.md §3; review B2–B12).

Engagement of a target by the CAR is an OR over the antigens the construct recognises, each a
saturating function of surface density scaled by binder affinity. Killing of an engaged target
is split over routes through :func:`cartsim.model.traits.route_kill_factor`, the kernel shared
with the CRISPR-screen simulator. Antigen-negative cells die only as death-receptor bystanders.
"""

from __future__ import annotations

import numba
import numpy as np

from cartsim.model.clones import N_CLONE_FIELDS, N_CLONES, C
from cartsim.model.mechanism import Kernel, Mechanism, StateSpec, unbound
from cartsim.model.mechanism import param as _p
from cartsim.model.traits import route_kill_factor

S = unbound("S")  # state layout, bound by cartsim.model.layout
P = unbound("P")  # parameter layout, bound by cartsim.model.layout
CLONE_BASE = 0  # first per-clone parameter, bound by cartsim.model.layout

PARAMS = (
    _p("r_tumour", "1/d", 0.035, 0.0, 1.0, "León-Triana 2020 (ρ_L = 1/30 d⁻¹)",
       "net tumour growth rate (B-ALL); LBCL uses the lymphoma value", 0.35, "tumour"),
    _p("tumour_capacity", "× normal marrow", 30.0, 1.0, 1000.0, "assumed (≈97% blasts at capacity)",
       "tumour carrying capacity relative to normal marrow cellularity", 0.0, "tumour"),
    _p("ball_packing", "× normal marrow", 3.0, 0.0, 20.0,
       "structure (session 42, docs/validation.md 'Session 42'): a leukaemic marrow is packed "
       "(up to ≈ 100 % cellular against 50–80 % normally) and relapsed B-ALL adds blood, "
       "spleen and liver disease, while the whole body holds ~10¹² leukaemic cells at "
       "diagnosis (the classical estimate); 0 = the old mapping f / (1 − f) × marrow, which "
       "puts 1.6 × 10¹³ cells in the 99th percentile of the simulated ELIANA children. "
       "Value 3 chosen on the whole validation library (session 43: three root seeds, same "
       "mean pass count, lower deviance on every seed than 0; docs/validation.md 'Session 43')",
       "B-ALL: extra cellularity of a fully leukaemic marrow (× the normal marrow's cells); "
       "> 0: leukaemic cells = marrow × f (1 + ball_packing × f) at blast fraction f, "
       "read back the same way (model/burden.py; 100 % from (1 + ball_packing) × marrow "
       "on); 0: f / (1 − f) × marrow", 0.0, "tumour"),
    _p("marrow_cells_per_kg", "cells/kg", 1.1e10, 1e8, 1e12,
       "assumed order of magnitude (adult marrow ≈ 7.7e11 nucleated cells)",
       "normal nucleated marrow cells per kg (denominator of blast % and MRD)", 0.0, "tumour"),
    _p("K_antigen", "relative density", 0.15, 1e-4, 100.0,
       "assumed; FMC63 engages low-density CD19 (Majzner 2020 order)",
       "antigen density (relative to median B-ALL CD19) for half-maximal engagement", 0.0,
       "tumour"),
    _p("antigen_hill", "–", 2.0, 1.0, 8.0,
       "assumed size; CAR activation has an antigen-density threshold, so antigen-low cells "
       "escape (Majzner 2020 Cancer Discov; Hamieh 2019 Nature: trogocytosis-lowered density "
       "escapes); 1 = the plain saturating engagement",
       "Hill coefficient of engagement in antigen density (steepness of the activation "
       "threshold at K_antigen)", 0.0, "tumour"),
    _p("low_clone_cd19", "× dominant CD19", 0.07, 0.0, 1.0,
       "pre-existing CD19-low/-negative subclones and exon-2-skipped variants (Orlando 2018 "
       "Nat Med; Sotillo 2015 Cancer Discov); many escapes after CD19 CAR-T are CD19-low "
       "rather than negative (Majzner 2020 Cancer Discov; Spiegel 2021 Nat Med; Plaks 2021 "
       "Blood). Size hand-tuned against the CD19-negative share of relapses, session 5 "
       "(0.02 before; cartsim validate --studies zuma1,eliana,multicentre_cd19 --patients 60: "
       "ZUMA-1 59 -> 24 %, ELIANA 92 -> 68 %, Lamble 2023 83 -> 41 %); session 26: 0.1 -> "
       "0.07 with the CD28 construct's halved antigen threshold (products.py "
       "cd28_K_antigen_x), so a CD28 CAR engages the lymphoma escape subclone somewhat more "
       "than before and a 4-1BB CAR less (Majzner 2020: axi-cel's construct outperforms "
       "tisa-cel's against antigen-low lymphoma); whole library, 1,000/arm: 0.1 / 0.07 / "
       "0.05 gave 166 / 169 / 166 rows, deviance 786.9 / 770.6 / 768.3 (ZUMA-1 CR 67.5 / "
       "65.6 / 62.9 % against 54-58, CD19-negative share of its relapses 27.2 / 35.5 / "
       "44.3 % against 27-30; docs/validation.md 'Session 26'); 0 = antigen-negative",
       "median CD19 density of the pre-existing escape subclone (clone 1) relative to the "
       "dominant clone", 0.0, "tumour"),
    _p("low_clone_spread", "–", 1.0, 0.0, 3.0,
       "assumed (the escape subclone's density ranges from undetectable to near-normal; "
       "Majzner 2020 Cancer Discov)",
       "log-normal SD, between patients, of the escape subclone's relative CD19 density "
       "(capped at the dominant clone's)", 0.0, "tumour"),
    _p("cd19_spread", "–", 0.5, 0.0, 3.0,
       "assumed size; CD19 molecules per blast vary about tenfold between B-ALL patients "
       "(Majzner 2020 Cancer Discov, flow quantitation); 0 = every patient at the covariate",
       "log-normal SD of the dominant clone's CD19 density between patients, around the "
       "cd19_density covariate (population.build)", 0.0, "tumour"),
    _p("mu_loss", "1/division", 3e-14, 0.0, 1e-3,
       "assumed order; size hand-tuned, session 8, against ELIANA (3-year) EFS 36 months "
       "(44 %, clinical_targets.csv; ELIANA is in the calibration set, docs/calibration.md): "
       "at 3e-12 a B-ALL of ~1e12 cells made ~0.4 CD19-loss mutants a day around infusion, "
       "so nearly every high-burden responder relapsed CD19-negative in year 1-2 (EFS 36 mo "
       "23 %); `cartsim validate --studies eliana,zuma1,ensign,nci_cd19_28z,mskcc_19_28z "
       "--patients 60`: 51 -> 53 of 89 rows pass, ELIANA EFS 36 mo 23 -> 43 %, OS 36 mo "
       "42 -> 52 % (63), CD19-negative share of relapses 85 -> 54 % (74) (docs/model.md, "
       "'Cure as a chance event'); 3e-12 = the model before session 8. Session 16: 3e-13 -> "
       "3e-14 (a biallelic, two-hit loss is rarer than one mutation), hand-tuned against the "
       "same ELIANA 36-month rows (cartsim validate, 200/arm, every spec: ELIANA EFS 36 mo "
       "28.5 -> 35 %, OS 36 mo 46.5 -> 51.5 %, RFS censored 36.5 -> 44.9 %; 155 -> 158 of 225 "
       "rows pass, none lost; 0 gives the same 158, so the data do not bound it below)",
       "acquired CD19-loss (mutation/splicing) probability per tumour division", 1.0, "tumour"),
    _p("escape_lineage_cells", "cells", 3e5, 0.0, 1e14,
       "assumed direction: a pre-existing antigen-escape variant is a rare heritable event "
       "(CD19 exon mutation, splice variant), so the number of variant lineages present at "
       "infusion is Poisson in the tumour size (Luria-Delbruck; Orlando 2018 Nat Med: "
       "CD19-negative relapses carry heritable CD19 frameshift mutations; high "
       "pre-infusion burden predicts relapse after tisagenlecleucel, Schultz 2022 J Clin "
       "Oncol 40:945; high burden predicts CD19-negative relapse, Lamble 2023 Blood Adv). "
       "Size hand-tuned, session 11, with the B-ALL specs' pre-existing escape fraction "
       "(median ~6e-7) and ball_escape_cd19_scale (1e6; docs/validation.md 'Session 11'; the "
       "session-8 probes at 1e8-1e10, with the larger fractions of then, did not help), and "
       "again in session 12 once relapsed B-ALL regrew faster (ball_growth_factor 1.3): "
       "1e5 / 3e5 / 5e5 / 1e6 gave 69 / 73 / 72 / 70 of 118 B-ALL rows, deviance 662 / 570 / "
       "574 / 638 (docs/validation.md 'Session 12'). With 3e5 a burden of 1e12 cells at the "
       "median fraction holds an escape lineage with probability 1 - exp(-1.9) = 0.85; "
       "lymphoma escape fractions are large, so their subclone is present almost always. "
       "0 = the escape subclone is present in every patient (the model before session 11)",
       "CD19-negative/-low tumour cells per expected heritable escape lineage (1/per-cell "
       "frequency of a heritable variant among them): the escape subclone (clone 1) is "
       "present with probability 1 - exp(-T f/escape_lineage_cells), T the patient's tumour "
       "cells, f the cd19_negative_fraction covariate, a keyed per-patient draw "
       "(`escape_present`); absent, its share stays in the dominant clone", 0.0, "tumour"),
    _p("escape_cd20_loss", "probability", 0.1, 0.0, 1.0,
       "assumed size; CD20-negative/-dim re-biopsies after rituximab-containing therapy are a "
       "minority (Hiraga 2009 Blood 113:4885; review B3: relapses after CD19 CAR-T mostly keep "
       "CD20, CD22 or CD79a); 0 = the escape subclone keeps CD20",
       "chance, per patient, that the pre-existing CD19-low escape subclone (clone 1) has "
       "also lost CD20 (a keyed per-patient draw); escapes a CD19/CD20 CAR", 0.0, "tumour"),
    _p("escape_cd22_loss", "probability", 0.1, 0.0, 1.0,
       "assumed size, as escape_cd20_loss; CD22-negative/-low subclones (Fry 2018 Nat Med: "
       "CD22-low relapse after CD22 CAR-T; Shah 2020 J Clin Oncol); 0 = keeps CD22",
       "chance, per patient, that the escape subclone (clone 1) has also lost CD22 (an "
       "independent keyed draw); escapes a CD19/CD22 CAR", 0.0, "tumour"),
    _p("switch_frac", "fraction", 1e-3, 0.0, 0.1,
       "assumed size; KMT2A-rearranged B-ALL holds lineage-plastic, myeloid-primed cells that "
       "relapse as CD19-negative myeloid leukaemia under CD19 CAR-T (Gardner 2016 Blood "
       "127:2406; Jacoby 2016 Nat Commun 7:12320; Lamble 2023 Blood Adv: lineage switch 7.2 % "
       "of relapses in a mixed cohort); 0 = no lineage switch",
       "share of a KMT2A-rearranged patient's tumour that is lineage-switched (myeloid: no "
       "CD19, CD20 or CD22) at baseline, carried in clone 2 (in the patients drawn by "
       "switch_present)", 0.0, "tumour"),
    _p("switch_present", "probability", 0.3, 0.0, 1.0,
       "Gardner 2016 Blood 127:2406: of 7 patients with MLL (KMT2A)-rearranged B-ALL treated "
       "with CD19 CAR-T, all in marrow CR, 2 relapsed with clonally related AML within a "
       "month (2/7 = 0.29); Leahy 2022 Blood 139:2173: KMT2A-rearranged infant ALL no more "
       "likely to relapse after CTL019 (HR 0.70), a higher share of its relapses lineage "
       "switch. 1 = every KMT2A-rearranged patient carries a switched clone (the model "
       "before session 28: 88 % of the infant tisa-cel cohort's KMT2A patients relapsed "
       "myeloid, relapse-free survival 2 % at 24 months)",
       "chance, per KMT2A-rearranged patient, that the leukaemia holds a lineage-switched "
       "(myeloid-primed) clone at baseline (a keyed per-patient draw, `switch_present`)",
       0.0, "tumour"),
    _p("bystander", "–", 0.05, 0.0, 1.0,
       "assumed direction (review B8: FasL/TRAIL bystander killing); size hand-tuned, session "
       "11: at 0.15 the persisting CAR-T held antigen-negative escape clones for a year, so "
       "CD19-negative relapses came at a median of ~450 days (ELIANA responders relapse-free "
       "94 % at 6 months against 75 published); in vivo bystander kill of antigen-negative "
       "leukaemia does not stop CD19-negative relapse under persisting B-cell aplasia (88 % of "
       "those relapses, Dourthe 2021 Leukemia). 0.15 = the model before session 11",
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
    _p("regrowth_boost", "–", 1.0, 0.0, 20.0,
       "assumed size; direction: Gompertzian kinetics — a small residual tumour grows faster "
       "per cell than bulky disease, so regrowth after cytoreduction outpaces the bulk rate "
       "(Norton & Simon 1977 Cancer Treat Rep 61:1307). Size hand-tuned, session 6, against "
       "relapse timing: with 0 the residual disease left by CAR-T (10^4-10^7 cells) took "
       "~300 d to reach relapse after B-cell aplasia ended; `cartsim validate --studies "
       "eliana,zuma1 --patients 60`: 0 gave ELIANA EFS 12 mo 63 % (published 50), RFS 12 mo "
       "82 (64), ZUMA-1 PFS 15 mo 63 (41), OS 24 mo 62 (54); 2 gave 48, 51, 30, 33 and "
       "ELIANA EFS 36 mo 18 (44), CD19-negative share of relapses 86 (74): too few cures, "
       "so 1, which gives 55, 67, 43, 40, EFS 36 mo 20 and a CD19-negative share of 85 "
       "(with zuma4, nci_cd19_28z, china_an2020, tancar7: 62/129 rows pass against 59/129 "
       "at 0; the 2-3-year rows now undershoot: cures, not relapse timing, are what is "
       "missing there); raising r_tumour to 0.06 instead cut ELIANA CR/CRi 75 -> 62 %; "
       "0 = the bulk rate at every size (the model before session 6)",
       "extra per-capita net growth of the marrow/nodal tumour clones when the tumour is small: "
       "r × (1 + regrowth_boost · K/(K + T)), K = regrowth_cells × body_scale, T the summed "
       "clones; birth and death both scale, so the birth/death ratio is kept", 0.0, "tumour"),
    _p("regrowth_cells", "cells (70-kg reference; × body_scale)", 1e9, 1.0, 1e13,
       "assumed (≈ 1 mL of tumour; ≈ 0.1 % marrow blasts in an adult): below it the "
       "residual grows at the fast small-tumour rate",
       "tumour size at which the small-tumour growth boost is half its maximum", 0.0,
       "tumour"),
    _p("tp53_growth", "–", 1.25, 1.0, 5.0, "assumed (review B10)",
       "growth-rate multiplier of TP53-altered clones", 0.0, "tumour"),
    _p("kill_max", "1/d", 6.0, 0.1, 1000.0,
       "assumed structure (finite CAR-T search/handling time; Beddington–DeAngelis); size "
       "hand-tuned, session 11: at 4/d (a target's half-life >= 4 h however many effectors) "
       "39 % of simulated ELIANA responders were still 20-90 % leukaemic at day 28 and "
       "responded only at day 91, against CR by day 28 in 96 % of a tisa-cel cohort (Dourthe "
       "2021); whole library (`cartsim validate`, 200/arm) 4 / 6 / 8 / 12: 120 / 125 / 125 / 123 "
       "of ~202 rows passing, deviance 1143 / 1073 / 1077 / 1064 (docs/validation.md "
       "'Session 11'). 4 = the model before session 11",
       "ceiling of the per-target CAR-T kill hazard when effectors vastly outnumber targets",
       0.3, "tumour"),
    # ---------------- sanctuary site: CNS/testis (MODEL.md §1, §3; review A6, A7, A21) -------
    _p("cns_access", "–", 0.05, 0.0, 1.0,
       "assumed (CAR-T traffic to CSF, Mueller 2017, at levels below marrow; "
       "no quantitative CSF:blood ratio in shared/reference)",
       "CAR-T access to the sanctuary site relative to the marrow", 0.5, "sanctuary"),
    _p("cns_seed_frac", "–", 3e-5, 0.0, 1.0,
       "assumed order (occult CNS involvement in B-ALL: below what CSF cytology and "
       "examination detect in most patients, so that trials that excluded overt CNS disease "
       "are not mostly 'CNS-positive' at baseline): 3e-5 of a 10¹²-cell marrow load is "
       "3·10⁷ cells, under the detection level cns_positive_cells (5·10⁸) in 90 % of the "
       "simulated ELIANA patients; 1e-3 before session 13 put 91 % above the then 10⁸ "
       "detection level; cartsim validate (whole library, 200/arm): 1e-4 / 3e-5 gave 138 "
       "of 203 rows, deviance 926 / 930, against 137, 932 before (docs/validation.md "
       "'Session 13')",
       "occult sanctuary disease at baseline, fraction of marrow/nodal disease", 1.5,
       "sanctuary"),
    _p("lbcl_cns_seed_scale", "×", 1.0 / 3.0, 0.0, 1.0,
       "assumed size; occult CNS disease is far rarer in LBCL than in B-ALL: CNS relapse of "
       "DLBCL ≈ 5 % at 2 years, 0.6 / 3.4 / 10.2 % by CNS-IPI risk group (Schmitz 2016 J "
       "Clin Oncol 34:3150), against the occult CNS involvement all B-ALL therapy treats; "
       "1 = the B-ALL seeding (the model before session 5); 1/3 since session 13 keeps the "
       "LBCL seeding at 1e-5 of nodal disease (0.01 × the former cns_seed_frac 1e-3) when "
       "cns_seed_frac fell to 3e-5",
       "LBCL occult sanctuary disease at baseline relative to cns_seed_frac (the poorly "
       "reached reservoir that reseeds the nodes after CAR-T)", 0.0, "sanctuary"),
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
)

_route = numba.njit(inline="always")(route_kill_factor)


@numba.njit(inline="always")
def clone_param_index(clone: int, field: int) -> int:
    """Position of a clone field in the parameter vector."""
    return CLONE_BASE + clone * N_CLONE_FIELDS + field



@numba.njit(inline="always")
def engagement(p: np.ndarray, cd19: float, cd20: float, cd22: float) -> float:
    """Probability-like engagement (0–1) of a target with the given surface densities."""
    k = p[P.K_antigen] / p[P.affinity]
    h = p[P.antigen_hill]
    miss = 1.0
    if p[P.product_cd19] > 0.0 and cd19 > 0.0:
        miss *= 1.0 - p[P.product_cd19] * _occupancy(cd19, k, h)
    if p[P.product_cd20] > 0.0 and cd20 > 0.0:
        miss *= 1.0 - p[P.product_cd20] * _occupancy(cd20, k, h)
    if p[P.product_cd22] > 0.0 and cd22 > 0.0:
        miss *= 1.0 - p[P.product_cd22] * _occupancy(cd22, k, h)
    return 1.0 - miss


@numba.njit(inline="always")
def _occupancy(density: float, k: float, hill: float) -> float:
    """Share of targets with this antigen density that activate the CAR: a Hill function of
    density with half-activation at ``k`` (``hill == 1``: the plain saturating form)."""
    if hill == 1.0:
        return density / (density + k)
    x = (density / k) ** hill
    return x / (1.0 + x)


@numba.njit(inline="always")
def clone_engagement(p: np.ndarray, c: int, density_mult: float = 1.0,
                     cd22_mult: float = 1.0) -> float:
    """Engagement of clone c; ``density_mult`` scales every surface antigen density (the
    share left after trogocytosis, killing.trogocytosis_strip), ``cd22_mult`` the CD22
    density alone (raised by bryostatin, :mod:`cartsim.model.salvage_drugs`)."""
    b = clone_param_index(c, 0)
    return engagement(
        p,
        p[b + C.cd19] * p[b + C.cd19_surface_fraction] * density_mult,
        p[b + C.cd20] * density_mult,
        p[b + C.cd22] * density_mult * cd22_mult,
    )


@numba.njit(inline="always")
def clone_route_factor(p: np.ndarray, c: int, dr_mult: float, noxa: float = 0.0,
                       mito: float = 0.0) -> float:
    """Route kill factor of clone c; ``dr_mult`` multiplies its death-receptor sensitivity,
    ``noxa`` (0–1) restores that share of its lost perforin-route sensitivity (NOXA induced
    by an HDAC inhibitor) and ``mito`` (0–1) that share of its lost intrinsic apoptosis after
    the TP53 factor (BH3 mimetic); 0 = none (:mod:`cartsim.model.salvage_drugs`)."""
    b = clone_param_index(c, 0)
    pfn = p[b + C.pfn_sensitivity]
    return _route(
        pfn + noxa * (1.0 - pfn),
        p[b + C.dr_sensitivity] * dr_mult,
        p[b + C.ifng_sensitivity],
        p[b + C.synapse_quality],
        p[b + C.tp53_altered],
        p[P.w_pfn],
        p[P.w_dr],
        p[P.w_ifng],
        mito,
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
    kill_h0: float,
    kill_h1: float,
    kill_h2: float,
    kill_hs: float,
    ld: float,
) -> None:
    """Growth, killing, lymphodepletion and sanctuary exchange; the stochastic-layer integrals.

    ``kill_h0``, ``kill_h1``, ``kill_h2`` are the marrow clones' per-capita CAR-T kill hazards
    (1/d), ``kill_hs`` that of the dominant clone in the sanctuary site. Clone 0 seeds the
    sanctuary at ``cns_entry`` per cell and day and is reseeded from it at ``cns_exit``; both
    fluxes are also integrated (IMS, IMM) so the stochastic layer can add them as Poisson
    arrivals when the receiving population is small.
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
    # Gompertz-like small-tumour boost: residual disease regrows faster than bulk disease
    kreg = p[P.regrowth_cells] * p[P.body_scale]
    boost = 1.0 + p[P.regrowth_boost] * kreg / (kreg + total)
    for c in range(N_CLONES):
        r = growth_rate(p, c) * boost
        birth = bf * r * crowd
        hz = kill_h0 if c == 0 else (kill_h1 if c == 1 else kill_h2)
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
    death_s = (bf - 1.0) * r0 + kill_hs + p[P.ld_kill_tumour] * ld + exit_
    dy[S.TS] = (birth_s - death_s) * ts + entry * max(y[S.T0], 0.0)
    dy[S.HZS] = death_s
    dy[S.BRS] = birth_s


def _clone_states() -> tuple[StateSpec, ...]:
    return (
        StateSpec("T0", "cells", "tumour clone 0 (dominant)"),
        StateSpec("T1", "cells", "tumour clone 1 (pre-existing antigen-negative/low)"),
        StateSpec("T2", "cells", "tumour clone 2 (acquired antigen loss)"),
        StateSpec("TS", "cells",
                  "dominant clone in the sanctuary site (CNS/testis; limited CAR-T access)"),
    )


def _accumulators() -> tuple[StateSpec, ...]:
    acc = [StateSpec(f"HZ{c}", "–", f"∫ per-capita death hazard, clone {c} (daily)", True)
           for c in range(N_CLONES)]
    acc += [StateSpec(f"BR{c}", "–", f"∫ per-capita birth rate, clone {c} (daily)", True)
            for c in range(N_CLONES)]
    return (*acc,
            StateSpec("MUT", "cells", "∫ antigen-loss mutant production from clone 0 (daily)",
                      True),
            StateSpec("HZS", "–", "∫ per-capita death + exit hazard, sanctuary clone (daily)",
                      True),
            StateSpec("BRS", "–", "∫ per-capita birth rate, sanctuary clone (daily)", True),
            StateSpec("IMS", "cells", "∫ marrow → sanctuary seeding flux (daily)", True),
            StateSpec("IMM", "cells", "∫ sanctuary → marrow reseeding flux into clone 0 (daily)",
                      True))


MECHANISM = Mechanism(
    name="tumour",
    module=__name__,
    summary="tumour clones at the disease site and the sanctuary: growth, kill, migration",
    states=_clone_states() + _accumulators(),
    params=PARAMS,
    kernels=(Kernel(derivs, consumes=("kill_h0", "kill_h1", "kill_h2", "kill_hs", "ld")),),
)
