"""Trial-layer outcomes the model itself does not have: death, and HSCT consolidation.

Death is decided from the *simulated* state after the simulation, never from a published rate:

* **progression death** — the simulated tumour burden stays at or above a lethal level
  (B-ALL: marrow blasts ≥ ``lethal_blast_pct``; LBCL: tumour volume ≥ ``lethal_tumour_volume_ml``)
  on every day of a ``lethal_burden_days`` window; death on the last day of the window; and,
  in LBCL (MCL and FL: the same form with their own ``mcl_*``/``fl_*`` sizes), a hazard that
  follows the nodal burden actually reached,
  ``h(t) = lbcl_death_hazard × (V(t) / lbcl_death_ref_ml) ^ lbcl_death_exponent`` (V the
  simulated tumour volume, mL): the patient dies on the first day the cumulated hazard
  ``Σ h`` exceeds an Exp(1) draw keyed by (seed, patient) — organ failure from lymphoma comes
  sooner the larger the disease, at a rate set by survival after CAR-T failure. In B-ALL
  with ``ball_death_hazard`` > 0 a daily hazard on each day at ≥ ``lethal_blast_pct`` replaces
  the window (the same Exp(1) draw): a marrow replaced by leukaemia kills at a rate set by
  survival after relapse under the salvage care of the era, not on a fixed day;
* **toxicity death** — simulated circulatory or respiratory collapse: MAP below
  ``toxicity_map_fraction`` × the age-normal baseline MAP, or SpO2 on room air below
  ``toxicity_spo2_pct``, on ``toxicity_days`` consecutive days; death on the last of them;
* **infection death** — a daily hazard
  ``h = infection_base_hazard × (neutropenia_hazard_ratio if ANC < 500/µL) ×
  (hypogammaglobulinaemia_hazard_ratio if IgG < igg_low_mg_dl)``; on day ``d`` the patient dies
  if ``u(seed, patient, stream, d) < 1 − exp(−h)`` with the keyed counter-based generator, so the
  draw depends only on (seed, patient id, day), never on chunking.

The earliest of the three is the death day and cause.

Infection episodes of any severity (:func:`infection_course`, review A19) follow the same
structure with their own hazard ``infection_any_base_hazard`` ×
``infection_any_neutropenia_hazard_ratio`` (ANC < 500/µL) × the same IgG multiplier ×
``lymphopenia_hazard_ratio`` (blood T cells < ``lymphopenia_t_cells_per_ul``) ×
``steroid_infection_hazard_ratio`` within ``steroid_window_days`` after a
corticosteroid dose × ``severe_crs_infection_hazard_ratio`` from the first day of CRS grade
≥ 3 for ``severe_crs_window_days``: an episode starts on day ``d`` when the keyed draw falls
below ``1 − exp(−h)`` and no episode started in the previous ``infection_episode_days`` days.
Each episode is severe (CTCAE grade ≥ 3) when a second keyed draw on its onset day falls below
the probability whose odds are ``severe_infection_odds`` × ``severe_neutropenia_odds_ratio``
(ANC < 500/µL that day) × ``severe_steroid_odds_ratio`` (within the steroid window). Every
draw depends only on (seed, patient id, stream, day). Every number is a
:class:`~cartsim.params.ParameterSpec` with units and provenance; a spec's ``[death]`` table may
override them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cartsim.engine.rng import uniform_np
from cartsim.model.burden import blast_fraction_array
from cartsim.model.mechanism import Model
from cartsim.model.parameters import P
from cartsim.model.state import CART_BLOOD, CART_TISSUE, CLONE_STATES, S
from cartsim.params import ParameterSpec, ParameterTable
from cartsim.population import stream_id

#: The population distribution of salvage chemosensitivity (a ``salvage`` item without its own
#: ``log_kill``): a normal on the log10 kill truncated to [0, 8]; parameter sets may replace it.
SALVAGE_PARAMS = ParameterTable((
    ParameterSpec("salvage_log_kill_mean", "log10", 2.5, 0.0, 8.0,
                  "assumed size (no figure in the reference set): relapse after CAR-T is "
                  "treated with salvage chemo-/immunotherapy (inotuzumab, blinatumomab, "
                  "chemotherapy) and a transplant where a second remission allows; a 5 % "
                  "marrow relapse needs ≈ 2.7 log for MRD < 10⁻⁴. Hand-tuned, session 12, "
                  "with ball_growth_factor against the B-ALL survival rows of the study "
                  "library (docs/validation.md 'Session 12')",
                  "median log10 reduction of every tumour clone by a salvage course"),
    ParameterSpec("salvage_log_kill_sd", "log10", 1.5, 0.0, 5.0,
                  "assumed (chemosensitivity differs widely between relapsed leukaemias)",
                  "between-patient SD of the salvage log10 kill (normal, truncated to [0, 8])"),
    ParameterSpec("salvage_early_relapse_factor", "×", 0.1, 0.0, 1.0,
                  "direction: a relapse soon after CAR-T is the more refractory one — survival "
                  "after a post-CAR relapse is worse after a shorter remission (Wudhikarn 2021 "
                  "Blood 138:531, adults; Friedes 2023 ASPHO, children: relapse within 6 months "
                  "P < 0.0001); size fitted with ball_death_hazard, session 21 (0.1 and 0.3 "
                  "tried; docs/validation.md 'Session 21'); 1 = no difference (the model "
                  "before session 21)",
                  "multiplier of the salvage log10 kill when the salvage course starts within "
                  "salvage_early_relapse_days of the infusion"),
    ParameterSpec("salvage_early_relapse_days", "d", 180.0, 0.0, 3650.0,
                  "Friedes 2023 (the 6-month split of relapse timing)",
                  "days after the infusion within which a salvage course counts as early"),
))

DEATH_PARAMS = ParameterTable((
    ParameterSpec("lethal_blast_pct", "%", 90.0, 50.0, 100.0,
                  "assumed (near-total marrow replacement)",
                  "B-ALL marrow blasts at or above which the burden counts as lethal"),
    ParameterSpec("lethal_tumour_volume_ml", "mL", 500.0, 10.0, 1e4,
                  "assumed (≈ 5×10¹¹ lymphoma cells)",
                  "LBCL tumour volume at or above which the burden counts as lethal"),
    ParameterSpec("lethal_burden_days", "d", 30.0, 1.0, 365.0, "assumed",
                  "consecutive days of lethal burden before progression death"),
    ParameterSpec("ball_death_hazard", "1/d", 0.01, 0.0, 1.0,
                  "0.01 since session 21, fitted with salvage_early_relapse_factor on the 22 "
                  "B-ALL specs of the study library over three seeds (`cartsim validate "
                  "--replicates 3`: rows 96 -> 98 of 144, deviance 635.7 -> 608.0; 0.02 "
                  "killed children at a full marrow before their CAR-T cleared it, ELIANA+"
                  "ENSIGN deaths by day 30 2 / 2.5 / 2 -> 4.5 / 6 / 4.5 %; docs/validation.md "
                  "'Session 21'); Lamble "
                  "2023's median OS after relapse stays 11.0 / 16.3 / 12.9 months against 11.9. "
                  "Before: size hand-tuned, session 11, against the median OS after a post-CAR "
                  "relapse of B-ALL, 11.9 months (95 % CI 9-17; Lamble 2023 Blood Adv 7:575, "
                  "a row of the validation targets): 0.004 gave 14.9 months before the "
                  "session's escape retune, 0.005 after it 12.4 (`cartsim validate`, 100 "
                  "patients; 200: 11.7, docs/model.md 'Relapse timing in B-ALL'); the old "
                  "rule gave 7.3; Friedes 2023 (ASPHO, CHOP's five CART19 trials): median "
                  "15.3 months. 0 = off: death after lethal_burden_days consecutive days at "
                  "lethal_blast_pct (the model before session 11)",
                  "B-ALL progression-death hazard on each day with marrow blasts at or above "
                  "lethal_blast_pct (death with near-total marrow replacement, under the "
                  "salvage care of the era); > 0 replaces the consecutive-days rule for "
                  "B-ALL"),
    ParameterSpec("lbcl_death_hazard", "1/d", 0.004, 0.0, 1.0,
                  "calibrated to survival after LBCL progression following CAR-T: median OS "
                  "5.3 months (Spiegel 2021 Blood 137:1726, n = 150 axi-cel failures; Di Blasi "
                  "2022 Blood, DESCAR-T: 5.2 months), at the reference volume",
                  "LBCL progression-death hazard at lbcl_death_ref_ml of disease; 0 = off"),
    ParameterSpec("lymphoma_death_after_progression", "0/1", 1.0, 0.0, 1.0,
                  "its calibration source: lbcl_death_hazard (and the MCL/FL hazards) are "
                  "sized by survival after progression (Spiegel 2021, Di Blasi 2022, Martin "
                  "2016); before session 13 they ran from day 0 on the baseline burden, and "
                  "4–7.5 % of the simulated patients of the LBCL studies died of lymphoma "
                  "before the day-28 assessment (ZUMA-1 treated ECOG 0–1 patients expected to "
                  "live 12 weeks; its early deaths were toxic); 0 = from day 0 (the model "
                  "before)",
                  "1: the lymphoma burden hazard counts only from the day of Lugano progression "
                  "(tumour >= 1.5 × its nadir and >= 1 mL, the response endpoints' rule)"),
    ParameterSpec("lbcl_death_ref_ml", "mL", 100.0, 1.0, 1e4,
                  "assumed (a typical progressing nodal volume, ≈ 10¹¹ cells)",
                  "tumour volume at which the LBCL progression-death hazard is "
                  "lbcl_death_hazard"),
    ParameterSpec("lbcl_death_exponent", "–", 1.0, 0.5, 4.0,
                  "assumed (hazard proportional to burden; baseline metabolic tumour volume "
                  "predicts OS after CAR-T, Vercellino 2020 Blood Adv)",
                  "power of the tumour volume in the LBCL progression-death hazard"),
    ParameterSpec("mcl_death_hazard", "1/d", 0.008, 0.0, 1.0,
                  "from survival of progressing relapsed MCL: median OS 2.9 months after "
                  "ibrutinib failure (Martin 2016 Blood 127:1559, n = 114), ln 2 / 88 d, "
                  "taken at the reference volume (no CAR-T trial outcome used)",
                  "MCL progression-death hazard at mcl_death_ref_ml of disease; 0 = off"),
    ParameterSpec("mcl_death_ref_ml", "mL", 100.0, 1.0, 1e4,
                  "assumed as LBCL (a typical progressing nodal volume, ≈ 10¹¹ cells)",
                  "tumour volume at which the MCL progression-death hazard is "
                  "mcl_death_hazard"),
    ParameterSpec("fl_death_hazard", "1/d", 0.0004, 0.0, 1.0,
                  "from survival of FL progressing early: 5-year OS ≈ 50 % after progression "
                  "within 24 months of first chemoimmunotherapy (Casulo 2015 J Clin Oncol "
                  "33:2516), ln 2 / 1826 d, taken at the reference volume",
                  "FL progression-death hazard at fl_death_ref_ml of disease; 0 = off"),
    ParameterSpec("fl_death_ref_ml", "mL", 100.0, 1.0, 1e4,
                  "assumed as LBCL",
                  "tumour volume at which the FL progression-death hazard is fl_death_hazard"),
    ParameterSpec("mcl_fl_death_exponent", "–", 1.0, 0.5, 4.0,
                  "assumed as LBCL (hazard proportional to burden)",
                  "power of the tumour volume in the MCL and FL progression-death hazards"),
    ParameterSpec("toxicity_map_fraction", "× baseline MAP", 0.4, 0.1, 1.0,
                  "assumed (refractory shock, beyond the MAP of grade-4 support)",
                  "MAP below this fraction of the age-normal baseline counts as collapse"),
    ParameterSpec("toxicity_spo2_pct", "%", 50.0, 40.0, 95.0,
                  "assumed (refractory hypoxaemia: room-air SpO2 within 2 points of the "
                  "readout's floor, 48 %, maximal capillary leak, stands for hypoxaemia that "
                  "ventilation does not correct; 76 % with the old 74 % floor; at 80 % a "
                  "quarter of high-burden children died of hypoxia that oxygen treats)",
                  "SpO2 on room air below which oxygenation counts as collapsed"),
    ParameterSpec("toxicity_days", "d", 2.0, 1.0, 30.0, "assumed",
                  "consecutive days of collapse before toxicity death"),
    ParameterSpec("infection_base_hazard", "1/d", 2e-5, 0.0, 0.1,
                  "assumed (≈ 0.7 %/year background infection mortality)",
                  "daily infection-death hazard with normal ANC and IgG"),
    ParameterSpec("neutropenia_hazard_ratio", "–", 25.0, 1.0, 1000.0,
                  "assumed (order of magnitude of infection risk at ANC < 500/µL, "
                  "Bodey 1966)",
                  "hazard multiplier on days with ANC < 500/µL"),
    ParameterSpec("hypogammaglobulinaemia_hazard_ratio", "–", 3.0, 1.0, 100.0, "assumed",
                  "hazard multiplier on days with IgG below igg_low_mg_dl"),
    ParameterSpec("igg_low_mg_dl", "mg/dL", 400.0, 0.0, 2000.0,
                  "assumed (usual IVIG replacement threshold)",
                  "IgG below which hypogammaglobulinaemia raises the infection hazard"),
    ParameterSpec("infection_any_base_hazard", "1/d", 5e-4, 0.0, 0.5,
                  "assumed (≈ 17 %/year background infections of any grade in "
                  "heavily pre-treated patients)",
                  "daily hazard of a new infection episode with normal ANC and IgG"),
    ParameterSpec("infection_any_neutropenia_hazard_ratio", "–", 1.5, 1.0, 1000.0,
                  "hand-tuned with lymphopenia_hazard_ratio (session 13): on days when blood "
                  "T cells are also below 200/µL (nearly every neutropenic day after "
                  "lymphodepletion) the two multiply to 22.5, near the 25 used before alone. "
                  "Grid (lymphopenia, neutropenia) = (5, 5), (10, 3), (10, 2), (8, 2), (15, 1), "
                  "(20, 1), (15, 1.5) against Hill 2018 FHCRC (adults; a study outside the "
                  "validation library): 1.19 episodes per 100 days at risk on days 0–28, 0.67 "
                  "on days 29–90, 23 % infected by day 28, read on the ZUMA-1 spec's patients "
                  "as the adult proxy (here 1.20, 0.38, 33 %; (10, 3): 1.33, 0.31, 36 %), "
                  "with the library's four infection rows (all four pass at (15, 1.5) and "
                  "(10, 3)) and claim A19's ~23 % early infections in ELIANA (32 %; 38 % at "
                  "(10, 3)); docs/validation.md 'Session 13'",
                  "infection-episode hazard multiplier on days with ANC < 500/µL (the "
                  "infection-death hazard keeps neutropenia_hazard_ratio)"),
    ParameterSpec("lymphopenia_hazard_ratio", "–", 15.0, 1.0, 1000.0,
                  "hand-tuned with infection_any_neutropenia_hazard_ratio (session 13; see "
                  "there): lymphopenia after lymphodepletion and CAR-T (CD4 < 200/µL for "
                  "months) is a recognised driver of the infections of days 29–90, whose "
                  "density (0.67 per 100 days, Hill 2018) the neutropenia of the first weeks "
                  "cannot produce; 1 = none (the model before session 13)",
                  "infection-episode hazard multiplier on days with blood T cells below "
                  "lymphopenia_t_cells_per_ul"),
    ParameterSpec("lymphopenia_t_cells_per_ul", "cells/µL", 200.0, 0.0, 2000.0,
                  "the CD4 count below which opportunistic-infection risk is recognised "
                  "(CD4 < 200/µL); the model's blood T cells stand for it",
                  "blood T cells below which lymphopenia raises the infection-episode hazard"),
    ParameterSpec("infection_episode_days", "d", 14.0, 1.0, 90.0, "assumed",
                  "days after an episode starts during which no new episode is counted"),
    ParameterSpec("steroid_infection_hazard_ratio", "–", 2.0, 1.0, 100.0,
                  "assumed (corticosteroids are an infection risk factor after CAR-T, "
                  "review A19)",
                  "infection-episode hazard multiplier within steroid_window_days of a "
                  "corticosteroid dose"),
    ParameterSpec("steroid_window_days", "d", 14.0, 0.0, 120.0, "assumed",
                  "days after a corticosteroid dose during which the infection hazard is raised"),
    ParameterSpec("severe_crs_infection_hazard_ratio", "–", 2.0, 1.0, 100.0,
                  "assumed (CRS severity is an infection risk factor, review A19; "
                  "Hill 2018 FHCRC)",
                  "infection-episode hazard multiplier after CRS grade >= 3"),
    ParameterSpec("severe_crs_window_days", "d", 30.0, 0.0, 365.0, "assumed",
                  "days from the first CRS grade >= 3 during which the hazard is raised"),
    ParameterSpec("severe_infection_odds", "–", 0.25, 0.0, 100.0,
                  "assumed (about one infection in five is grade >= 3 with normal counts)",
                  "odds that an infection episode is severe (grade >= 3) at normal ANC, "
                  "no steroids"),
    ParameterSpec("severe_neutropenia_odds_ratio", "–", 3.0, 1.0, 100.0,
                  "assumed (neutropenic infections are more often bacteraemic/invasive)",
                  "odds ratio of a severe episode when ANC < 500/µL on its onset day"),
    ParameterSpec("severe_steroid_odds_ratio", "–", 2.0, 1.0, 100.0,
                  "assumed (invasive fungal infection after steroids, review A19)",
                  "odds ratio of a severe episode within steroid_window_days of a steroid dose"),
    ParameterSpec("trm_hazard", "1/d", 8e-4, 0.0, 0.1,
                  "Xu 2021 Front Oncol 11:651944 (meta-analysis of consolidative HSCT after "
                  "CD19 CAR-T for ALL, 19 studies, 690 patients): pooled transplant-related "
                  "mortality 8 % (95 % CI 2–15 %); with trm_decay_days 100 the cumulative "
                  "hazard is 0.08, 1 − e^−0.08 = 7.7 % up to trm_age_ref_y. 1.2e-3 (assumed: "
                  "10–20 % first-year non-relapse mortality after myeloablative allo-HSCT) "
                  "before session 46; on the study library (`cartsim validate`, 1,000 per arm, "
                  "specs' seeds), with trm_prior_hsct_factor 3 → 4.5, rows 180 → 180 of 234 "
                  "and deviance 781.4 → 782.1 (docs/validation.md 'Session 46')",
                  "transplant-related (GVHD, infection, organ toxicity) death hazard on the "
                  "day of allogeneic HSCT"),
    ParameterSpec("trm_decay_days", "d", 100.0, 1.0, 3650.0,
                  "assumed (non-relapse mortality concentrates in the first months)",
                  "e-folding time of the transplant-related death hazard after HSCT"),
    ParameterSpec("trm_age_per_decade", "per decade", 1.0, 0.0, 5.0,
                  "direction and order: after myeloablative allo-HCT for B-ALL, adolescents "
                  "and young adults (13–30 y) had a higher 1-year transplant-related "
                  "mortality than children under 13 (HR 2.23, 95 % CI 1.01–4.90; 136 patients "
                  "aged 0–30 at one institution, PMC3530019), while adolescents of 14–18 "
                  "transplanted in paediatric centres did not differ from children (Dini 2011 "
                  "Blood 118:6683): the rise starts near 20 y and continues through adulthood. "
                  "Size hand-tuned, session 22, on the 22 B-ALL specs of the study library, "
                  "three seeds (`cartsim validate --replicates 3`): 0.5 / 1.0 gave rows "
                  "95.7 / 96.7 of 144 against 94.3 and deviance 539.0 / 531.9 against 550.4 "
                  "(docs/validation.md 'Session 22'). With trm_decay_days 100 the cumulative "
                  "hazard is 0.12 × (1 + (age − 20)/10): non-relapse mortality ≈ 11 % to 20 y, "
                  "21 % at 30, 30 % at 40. 0 = no age dependence (the model before session 22)",
                  "fractional rise of the allogeneic transplant-related death hazard per "
                  "decade of age above trm_age_ref_y: trm_hazard × (1 + trm_age_per_decade · "
                  "max(age − trm_age_ref_y, 0)/10)"),
    ParameterSpec("trm_age_ref_y", "y", 20.0, 0.0, 100.0,
                  "assumed (Dini 2011: no excess transplant mortality in adolescents of 14–18)",
                  "age up to which the allogeneic transplant-related death hazard is "
                  "trm_hazard"),
    ParameterSpec("trm_prior_hsct_factor", "–", 4.5, 1.0, 10.0,
                  "literature range, size chosen on the library: a second allogeneic HSCT "
                  "carries more non-relapse mortality than a first: 18.8 ± 3.5 % in 171 "
                  "children with relapsed ALL (reported with the 2-year OS; Bone Marrow "
                  "Transplant 2012, doi:10.1038/bmt.2012.29) and 38.5 ± 3.8 % at 2 years in 199 "
                  "patients with haematological malignancies, median age 23, half of them after "
                  "CAR-T (Front Immunol 2022;13:1066748), against this model's first-transplant "
                  "1 − exp(−0.12) = 11.3 % (children) and 1 − exp(−0.156) = 14.4 % (age 23): "
                  "hazard ratios 1.74 and 3.12. Of 1 (none), 2 and 3 on the whole library "
                  "over three seeds (`cartsim validate --replicates 3`) 3 gave rows 177.3 of "
                  "230 and deviance 757.3 against 176.7 / 766.5 (1) and 177.0 / 760.5 (2) "
                  "(docs/validation.md 'Session 37'). Since session 46 4.5, so that "
                  "trm_hazard × this factor stays 3.6e-3/d when trm_hazard fell from 1.2e-3 "
                  "to 8e-4 (a first transplant's mortality from Xu 2021; a second one's as "
                  "before: the same cited figures give factors 2.6 and 4.7 against the new "
                  "first-transplant hazard)",
                  "factor on the allogeneic transplant-related death hazard of a second "
                  "transplant: that of a patient with a prior allogeneic HSCT (covariate "
                  "prior_hsct), and a salvage transplant after a consolidative one in the "
                  "course. 1 = no effect (the model before session 37)"),
    ParameterSpec("asct_trm_hazard", "1/d", 2e-4, 0.0, 0.1,
                  "assumed (order of the 2–5 % non-relapse mortality after BEAM-type "
                  "autologous SCT for relapsed lymphoma, lower than allo-HSCT: no GVHD; no "
                  "figure in shared/reference): with asct_trm_decay_days 100 the cumulative "
                  "hazard is 0.02",
                  "transplant-related death hazard on the day of autologous SCT "
                  "(schedule item kind 'asct')"),
    ParameterSpec("asct_trm_decay_days", "d", 100.0, 1.0, 3650.0,
                  "assumed (deaths after ASCT concentrate in the aplastic first months)",
                  "e-folding time of the transplant-related death hazard after ASCT"),
))
INFECTION_STREAM = stream_id("trial.death.infection")
PROGRESSION_STREAM = stream_id("trial.death.progression")
INFECTION_ANY_STREAM = stream_id("trial.infection.any")
INFECTION_SEVERITY_STREAM = stream_id("trial.infection.severity")
TRM_STREAM = stream_id("trial.death.transplant")
DEATH_CAUSES = ("progression", "toxicity", "infection", "transplant")


def death_params(overrides: dict[str, float] | None = None) -> dict[str, float]:
    """Defaults (those of the parameter set in force, :mod:`cartsim.parameter_sets`) updated
    with a spec's validated ``[death]`` overrides."""
    from cartsim.parameter_sets import effective_specs

    q = {s.name: s.default for s in effective_specs(DEATH_PARAMS)}
    q.update({k: DEATH_PARAMS[k].validate(v) for k, v in (overrides or {}).items()})
    return q


def baseline_map(age_y: np.ndarray) -> np.ndarray:
    """Age-normal MAP used by the model (:func:`cartsim.population.baseline_map`)."""
    from cartsim.population import baseline_map as _baseline_map

    return _baseline_map(age_y)


def _first_run_end(mask: np.ndarray, length: int) -> np.ndarray:
    """Index (along the last axis) of the day that completes the first run of ``length``
    consecutive True values, or -1."""
    n, d = mask.shape
    run = np.zeros(n, dtype=np.int64)
    out = np.full(n, -1, dtype=np.int64)
    for k in range(d):
        run = np.where(mask[:, k], run + 1, 0)
        hit = (run >= length) & (out < 0)
        out[hit] = k
    return out


@dataclass
class Deaths:
    day: np.ndarray  # float, NaN = alive at end of follow-up
    cause: np.ndarray  # object: "" when alive


def decide_deaths(
    days: np.ndarray,
    patient_id: np.ndarray,
    seed: int,
    disease: str,
    age_y: np.ndarray,
    marrow_blast_pct: np.ndarray,
    tumour_volume_ml: np.ndarray,
    map_mmhg: np.ndarray,
    spo2_pct: np.ndarray,
    anc_per_ul: np.ndarray,
    igg_mg_dl: np.ndarray,
    params: dict[str, float] | None = None,
    hsct_day: np.ndarray | None = None,
    asct_day: np.ndarray | None = None,
    progression_day: np.ndarray | None = None,
    prior_hsct: np.ndarray | None = None,
    hsct_day2: np.ndarray | None = None,
) -> Deaths:
    """Death day and cause per patient from daily simulated readouts (patients × days).

    ``days`` is the day axis (only days ≥ 0 are considered). NaN readouts (a failed solve)
    never cause death. ``hsct_day`` (NaN: none) starts the transplant-related death hazard
    ``trm_hazard × exp(−(day − hsct_day) / trm_decay_days)``, drawn like infection death;
    ``asct_day`` adds ``asct_trm_hazard × exp(−(day − asct_day) / asct_trm_decay_days)`` to it
    (both are the cause ``transplant``; the same keyed draw, so no ASCT changes nothing).
    ``progression_day`` (NaN: none; lymphomas) starts the lymphoma burden hazard when
    ``lymphoma_death_after_progression`` is 1 (without it the hazard runs from day 0).
    ``prior_hsct`` (0/1; None: none) multiplies a transplanted patient's allogeneic hazard by
    ``trm_prior_hsct_factor``: the second transplant of a patient who had one before.
    ``hsct_day2`` (NaN: none) is the day of a second allogeneic HSCT within the course (a
    salvage transplant after a consolidative one): its own hazard, always × the factor.
    """
    q = death_params(params)
    d = np.asarray(days)
    keep = d >= 0
    d = d[keep]
    n = len(patient_id)

    def cut(a: np.ndarray) -> np.ndarray:
        return np.asarray(a, dtype=np.float64)[:, keep]

    with np.errstate(invalid="ignore"):
        if disease == "b-all":
            burden = cut(marrow_blast_pct) >= q["lethal_blast_pct"]
            lethal = burden
            if q["ball_death_hazard"] > 0.0:
                burden = np.zeros_like(burden)  # the hazard below replaces the rule
        else:
            burden = cut(tumour_volume_ml) >= q["lethal_tumour_volume_ml"]
        collapse = (cut(map_mmhg) < q["toxicity_map_fraction"] * baseline_map(age_y)[:, None]) \
            | (cut(spo2_pct) < q["toxicity_spo2_pct"])
    h = infection_hazard(cut(anc_per_ul), cut(igg_mg_dl), q["infection_base_hazard"], q)
    u = uniform_np(seed, np.asarray(patient_id, dtype=np.uint64)[:, None], INFECTION_STREAM,
                   d.astype(np.uint64)[None, :])
    infected = u < -np.expm1(-h)
    candidates = np.full((n, len(DEATH_CAUSES)), np.inf)
    k_prog = _first_run_end(burden, int(q["lethal_burden_days"]))
    lymph_burden = np.zeros((n, d.size))
    if disease != "b-all":
        lymph_burden = cut(tumour_volume_ml)
        if progression_day is not None and q["lymphoma_death_after_progression"] > 0.5:
            started = d[None, :] >= np.nan_to_num(np.asarray(progression_day, dtype=float),
                                                  nan=np.inf)[:, None]
            lymph_burden = np.where(started, lymph_burden, 0.0)
    if disease == "lbcl" and q["lbcl_death_hazard"] > 0.0:
        k_haz = burden_death_day(d, lymph_burden, patient_id, seed,
                                 q["lbcl_death_hazard"], q["lbcl_death_ref_ml"],
                                 q["lbcl_death_exponent"])
        k_prog = np.where((k_haz >= 0) & ((k_prog < 0) | (k_haz < k_prog)), k_haz, k_prog)
    if disease == "b-all" and q["ball_death_hazard"] > 0.0:
        k_prog = burden_death_day(d, lethal, patient_id, seed, q["ball_death_hazard"])
    if disease in ("mcl", "fl") and q[f"{disease}_death_hazard"] > 0.0:
        # the same burden-following hazard with the disease's own size (cartsim.diseases)
        k_haz = burden_death_day(d, lymph_burden, patient_id, seed,
                                 q[f"{disease}_death_hazard"], q[f"{disease}_death_ref_ml"],
                                 q["mcl_fl_death_exponent"])
        k_prog = np.where((k_haz >= 0) & ((k_prog < 0) | (k_haz < k_prog)), k_haz, k_prog)
    k_tox = _first_run_end(collapse, int(q["toxicity_days"]))
    k_inf = np.where(infected.any(axis=1), np.argmax(infected, axis=1), -1)
    k_trm = np.full(n, -1, dtype=np.int64)
    if hsct_day is not None or asct_day is not None or hsct_day2 is not None:
        h_trm = np.zeros((n, d.size))
        prior = (None if prior_hsct is None
                 else np.asarray(prior_hsct, dtype=np.float64) > 0.5)
        for when, haz, decay, second in (
                (hsct_day, "trm_hazard", "trm_decay_days", prior),
                (hsct_day2, "trm_hazard", "trm_decay_days", np.ones(n, dtype=bool)),
                (asct_day, "asct_trm_hazard", "asct_trm_decay_days", None)):
            if when is None:
                continue
            since = d[None, :] - np.asarray(when, dtype=np.float64)[:, None]
            with np.errstate(invalid="ignore"):
                h = np.where(since >= 0, q[haz] * np.exp(-np.maximum(since, 0.0) / q[decay]),
                             0.0)
            if haz == "trm_hazard" and q["trm_age_per_decade"] > 0.0:
                # transplant-related mortality rises with age above trm_age_ref_y (session 22)
                older = np.maximum(np.asarray(age_y, dtype=np.float64) - q["trm_age_ref_y"], 0.0)
                h = h * (1.0 + q["trm_age_per_decade"] * older / 10.0)[:, None]
            if second is not None:
                # a second allogeneic transplant (session 37): after one before the CAR-T, or
                # a salvage transplant after a consolidative one in the course
                h = h * np.where(second, q["trm_prior_hsct_factor"], 1.0)[:, None]
            h_trm = h_trm + np.nan_to_num(h)
        u_trm = uniform_np(seed, np.asarray(patient_id, dtype=np.uint64)[:, None], TRM_STREAM,
                           d.astype(np.uint64)[None, :])
        trm = u_trm < -np.expm1(-h_trm)
        k_trm = np.where(trm.any(axis=1), np.argmax(trm, axis=1), -1)
    for j, k in enumerate((k_prog, k_tox, k_inf, k_trm)):
        candidates[:, j] = np.where(k >= 0, d[np.maximum(k, 0)], np.inf)
    first = np.argmin(candidates, axis=1)
    day = candidates[np.arange(n), first]
    died = np.isfinite(day)
    cause = np.where(died, np.asarray(DEATH_CAUSES, dtype=object)[first], "")
    return Deaths(np.where(died, day, np.nan), cause.astype(object))


def burden_death_day(days: np.ndarray, burden: np.ndarray, patient_id: np.ndarray,
                     seed: int, hazard: float, ref: float = 1.0,
                     exponent: float = 1.0) -> np.ndarray:
    """Index of the day on which the cumulated burden hazard
    ``hazard × (burden / ref) ^ exponent`` first exceeds the patient's Exp(1) draw, or -1.
    ``days`` (ascending, ≥ 0) and ``burden`` (patients × days: a tumour volume, or a 0/1 mask
    of days at lethal burden) are the simulated readouts; each day's hazard counts for the
    interval up to the next day."""
    v = np.nan_to_num(np.asarray(burden, dtype=np.float64), nan=0.0)
    h = hazard * (np.maximum(v, 0.0) / ref) ** exponent
    dt = np.diff(np.asarray(days, dtype=np.float64), append=float(days[-1]) + 1.0) \
        if len(days) else np.zeros(0)
    cum = np.cumsum(h * dt[None, :], axis=1)
    u = uniform_np(seed, np.asarray(patient_id, dtype=np.uint64), PROGRESSION_STREAM,
                   np.zeros(len(patient_id), dtype=np.uint64))
    threshold = -np.log(np.maximum(u, 1e-300))
    hit = cum >= threshold[:, None]
    return np.where(hit.any(axis=1), np.argmax(hit, axis=1), -1)


def infection_hazard(anc_per_ul: np.ndarray, igg_mg_dl: np.ndarray, base: float,
                     q: dict[str, float]) -> np.ndarray:
    """Daily hazard from simulated ANC and IgG (0 where either is missing)."""
    anc = np.asarray(anc_per_ul, dtype=np.float64)
    igg = np.asarray(igg_mg_dl, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        h = base * np.where(anc < 500.0, q["neutropenia_hazard_ratio"], 1.0)
        h = h * np.where(igg < q["igg_low_mg_dl"], q["hypogammaglobulinaemia_hazard_ratio"], 1.0)
    return np.where(np.isfinite(anc) & np.isfinite(igg), h, 0.0)


#: The periods of infection density reported after CAR-T (Hill 2018 Blood 131:121; Maron 2022
#: Front Oncol 12:845540): episodes per 100 days at risk in days 0–28 and 29–90.
INFECTION_WINDOWS: tuple[tuple[int, int], ...] = ((0, 28), (29, 90))


@dataclass
class Infections:
    """Per-patient infection episodes: count, first day, severe (grade >= 3) count and the first
    severe episode's day (NaN: none); per window of :data:`INFECTION_WINDOWS` the episodes that
    started in it and the days at risk in it (alive, on the simulated day grid)."""

    count: np.ndarray
    first_day: np.ndarray
    severe: np.ndarray
    first_severe_day: np.ndarray
    window_count: dict[tuple[int, int], np.ndarray] | None = None
    window_days: dict[tuple[int, int], np.ndarray] | None = None


def _recent(dosed: np.ndarray, window: float) -> np.ndarray:
    """Days within ``window`` days after (or on) a day with ``dosed`` True (last axis = days)."""
    n, d = dosed.shape
    last = np.full(n, -np.inf)
    out = np.zeros_like(dosed, dtype=bool)
    for k in range(d):  # loop over days, vectorised over patients
        last = np.where(dosed[:, k], float(k), last)
        out[:, k] = k - last <= window
    return out


def infection_course(
    days: np.ndarray,
    patient_id: np.ndarray,
    seed: int,
    anc_per_ul: np.ndarray,
    igg_mg_dl: np.ndarray,
    last_day: np.ndarray,
    params: dict[str, float] | None = None,
    steroid_dex_eq_mg: np.ndarray | None = None,
    crs_grade: np.ndarray | None = None,
    t_cells_per_ul: np.ndarray | None = None,
) -> Infections:
    """Infection episodes with severity from the simulated state (see the module docstring).

    ``anc_per_ul``/``igg_mg_dl`` are (patients × ``days``); ``steroid_dex_eq_mg`` and
    ``crs_grade`` (optional, NaN/absent = none) are (patients × days ≥ 0). Days after
    ``last_day`` (death or end of follow-up) are not at risk; only days ≥ 0 count.
    """
    q = death_params(params)
    d = np.asarray(days)
    keep = d >= 0
    d = d[keep]
    anc = np.asarray(anc_per_ul, dtype=np.float64)[:, keep]
    q_any = {**q, "neutropenia_hazard_ratio": q["infection_any_neutropenia_hazard_ratio"]}
    h = infection_hazard(anc, np.asarray(igg_mg_dl)[:, keep], q["infection_any_base_hazard"],
                         q_any)
    shape = h.shape
    if t_cells_per_ul is not None:
        lymph = np.asarray(t_cells_per_ul, dtype=np.float64)[:, keep]
        with np.errstate(invalid="ignore"):
            h = h * np.where(lymph < q["lymphopenia_t_cells_per_ul"],
                             q["lymphopenia_hazard_ratio"], 1.0)
    on_ster = np.zeros(shape, dtype=bool)
    if steroid_dex_eq_mg is not None:
        on_ster = _recent(np.nan_to_num(np.asarray(steroid_dex_eq_mg, float)) > 0,
                          q["steroid_window_days"])
        h = h * np.where(on_ster, q["steroid_infection_hazard_ratio"], 1.0)
    if crs_grade is not None:
        severe_crs = np.nan_to_num(np.asarray(crs_grade, float)) >= 3
        first = np.where(severe_crs.any(axis=1), np.argmax(severe_crs, axis=1), shape[1])
        k = np.arange(shape[1])[None, :]
        after = (k >= first[:, None]) & (k - first[:, None] <= q["severe_crs_window_days"])
        h = h * np.where(after, q["severe_crs_infection_hazard_ratio"], 1.0)
    ids = np.asarray(patient_id, dtype=np.uint64)[:, None]
    u = uniform_np(seed, ids, INFECTION_ANY_STREAM, d.astype(np.uint64)[None, :])
    onset = (u < -np.expm1(-h)) & (d[None, :] <= np.asarray(last_day, dtype=float)[:, None])
    with np.errstate(invalid="ignore"):
        odds = (q["severe_infection_odds"]
                * np.where(anc < 500.0, q["severe_neutropenia_odds_ratio"], 1.0)
                * np.where(on_ster, q["severe_steroid_odds_ratio"], 1.0))
    u_sev = uniform_np(seed, ids, INFECTION_SEVERITY_STREAM, d.astype(np.uint64)[None, :])
    severe_if = u_sev < odds / (1.0 + odds)
    n = onset.shape[0]
    at_risk = d[None, :] <= np.asarray(last_day, dtype=float)[:, None]
    win_count = {w: np.zeros(n, dtype=np.int64) for w in INFECTION_WINDOWS}
    win_days = {w: at_risk[:, (d >= w[0]) & (d <= w[1])].sum(axis=1).astype(np.int64)
                for w in INFECTION_WINDOWS}
    count = np.zeros(n, dtype=np.int64)
    n_sev = np.zeros(n, dtype=np.int64)
    first_day = np.full(n, np.nan)
    first_sev = np.full(n, np.nan)
    free_from = np.full(n, -np.inf)
    gap = q["infection_episode_days"]
    for k, day in enumerate(d):  # loop over days (vectorised over patients)
        new = onset[:, k] & (day >= free_from)
        sev = new & severe_if[:, k]
        count += new
        n_sev += sev
        for w in INFECTION_WINDOWS:
            if w[0] <= day <= w[1]:
                win_count[w] += new
        first_day = np.where(new & np.isnan(first_day), float(day), first_day)
        first_sev = np.where(sev & np.isnan(first_sev), float(day), first_sev)
        free_from = np.where(new, day + gap, free_from)
    return Infections(count, first_day, n_sev, first_sev, win_count, win_days)


def infection_episodes(
    days: np.ndarray,
    patient_id: np.ndarray,
    seed: int,
    anc_per_ul: np.ndarray,
    igg_mg_dl: np.ndarray,
    last_day: np.ndarray,
    params: dict[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Number of infection episodes and the first episode's day, per patient, from ANC and
    IgG alone (:func:`infection_course` without steroids and CRS)."""
    inf = infection_course(days, patient_id, seed, anc_per_ul, igg_mg_dl, last_day, params)
    return inf.count, inf.first_day


# ------------------------------------------------------------------------------ HSCT
#: Default log10 tumour kill of myeloablative conditioning, at every site (assumed).
HSCT_LOG_KILL = ParameterSpec("hsct_log_kill", "log10", 3.0, 0.0, 12.0,
                              "assumed (myeloablative TBI-based conditioning, which also reaches "
                              "the CNS/testis sanctuary)",
                              "log10 reduction of every tumour clone, at every site, at HSCT")


def site_tumour(y: np.ndarray) -> np.ndarray:
    """Leukaemic cells of the main site (the tumour clones, negatives read as 0)."""
    return np.maximum(y[:, list(CLONE_STATES)], 0.0).sum(axis=1)


def mrd_fraction(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The marrow blast fraction of the site tumour (model/burden.py's mapping, with the
    patient's ``ball_packing``): the ``mrd_fraction`` readout."""
    return blast_fraction_array(site_tumour(y), p[:, P.marrow_cells], p[:, P.ball_packing])


class HsctProcedure:
    """Allogeneic HSCT consolidation as a day-start :class:`~cartsim.simulation.Procedure`.

    On ``day``, running patients whose simulated MRD fraction (tumour / (tumour + marrow))
    is below ``if_mrd_below`` are transplanted:

    * conditioning reduces every tumour clone by ``log_kill`` log10 at *every* site (marrow or
      nodes and the CNS/testis sanctuary);
    * if ``ablate_cart``, conditioning removes all (autologous) CAR-T cells;
    * the graft is given (dose route ``hsct_graft`` of the :mod:`cartsim.model.gvl` add-on):
      donor reconstitution then builds graft-versus-leukaemia killing of every clone.

    Transplant-related mortality is a death cause of the trial layer
    (:func:`decide_deaths`, ``trm_*`` parameters). The event ``hsct`` (flag) lands in the
    events table.
    """

    addons = ("gvl",)

    def __init__(self, day: int, if_mrd_below: float = 1e-4,
                 log_kill: float = HSCT_LOG_KILL.default, ablate_cart: bool = True,
                 graft: bool = True) -> None:
        self.day = int(day)
        self.if_mrd_below = float(if_mrd_below)
        self.log_kill = HSCT_LOG_KILL.validate(log_kill, "hsct.log_kill")
        self.ablate_cart = ablate_cart
        self.graft = graft
        self._graft_state: int | None = None

    def bind(self, model: Model) -> None:
        """Learn where the graft state sits in the composed model's state vector."""
        has = any(m.name == "gvl" for m in model.addons)
        self._graft_state = int(model.S["GRAFT"]) if has else None

    def eligible(self, y: np.ndarray, p: np.ndarray, status: np.ndarray) -> np.ndarray:
        return (status == 0) & (mrd_fraction(y, p) < self.if_mrd_below)

    def apply(
        self, day: int, y: np.ndarray, p: np.ndarray, status: np.ndarray
    ) -> dict[str, tuple[np.ndarray, str]]:
        n = y.shape[0]
        if day != self.day:
            return {"hsct": (np.zeros(n), "flag")}
        go = self.eligible(y, p, status)
        kill = 10.0 ** (-self.log_kill)
        for s in (*CLONE_STATES, int(S.TS)):
            y[go, s] *= kill
        if self.ablate_cart:
            for s in (*CART_BLOOD, *CART_TISSUE):
                y[go, s] = 0.0
        if self.graft and self._graft_state is not None:
            y[go, self._graft_state] = 1.0
        return {"hsct": (go.astype(np.float64), "flag")}
