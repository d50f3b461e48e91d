"""IEC-HS (immune effector cell–associated HLH-like syndrome, Hines et al. 2023) and the
CTCAE "Fibrinogen decreased" grade.

Source: Hines MR, Knight TE, McNerney KO, et al. Transplant Cell Ther 2023;29(7):438.e1–16,
as summarised in clinical_standards.md §7.5 (content marked [R] there: the table text was not
retrieved, §10 item 5). Conventions chosen here are marked [I].

**Criteria** (:func:`iechs_criteria`), on a day:

1. ferritin > 2 × ULN, or > 2 × the value at infusion when that is higher (a patient who
   starts above the ULN must double [I: the reading of "> 2 × ULN or baseline"]), or rapidly
   rising (a clinician's judgement, passed as ``ferritin_rapidly_rising``);
2. onset as CRS resolves or after it, or a new inflammatory response after initial
   improvement (``timing_ok``; the simulator sets it from the CRS course);
3. and at least one of: new or worsening cytopenia, ALT/AST > 5 × ULN (or × baseline when
   abnormal at infusion), fibrinogen < 150 mg/dL (or < LLN), haemophagocytosis in marrow or
   tissue. LDH > ULN, hyperbilirubinaemia, splenomegaly, … are supportive and recorded by the
   caller; they do not make the diagnosis [I].

**Grade** (:func:`iechs_grade`), given the criteria are met: 1 asymptomatic or mild,
observation only; 2 needs intervention — IEC-HS-directed immunosuppression or transfusion
for hypofibrinogenaemia; 3 severe: coagulopathy with bleeding needing transfusion,
hospitalisation or its prolongation, organ dysfunction; 4 life-threatening: urgent
intervention (life-threatening bleeding or haemodynamic instability, ventilation, dialysis);
5 death. The clinician's findings are inputs; :func:`iechs_grade` takes the worst one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from cartsim.clinic._arrays import as_bool, as_float, result

FERRITIN_ULN_NG_ML = 400.0  # adult male ULN ≈ 300–400 ng/mL; pass the lab's own
FIBRINOGEN_LOW_MG_DL = 150.0
FIBRINOGEN_LLN_MG_DL = 200.0
TRANSAMINASE_FACTOR = 5.0


def ferritin_criterion(ferritin_ng_ml: ArrayLike, baseline_ng_ml: ArrayLike = np.nan,
                       uln_ng_ml: float = FERRITIN_ULN_NG_ML,
                       rapidly_rising: ArrayLike = False) -> Any:
    """Ferritin > 2 × max(ULN, value at infusion), or rapidly rising (NaN → not met)."""
    f = as_float("ferritin_ng_ml", ferritin_ng_ml, 0, 1e7)
    b = as_float("baseline_ng_ml", baseline_ng_ml, 0, 1e7)
    ref = np.fmax(np.asarray(uln_ng_ml, dtype=np.float64), b)
    with np.errstate(invalid="ignore"):
        met = (f > 2.0 * ref) | as_bool("ferritin_rapidly_rising", rapidly_rising)
    return result(np.asarray(met))


def iechs_criteria(
    ferritin_ng_ml: ArrayLike,
    *,
    ferritin_baseline_ng_ml: ArrayLike = np.nan,
    ferritin_uln_ng_ml: float = FERRITIN_ULN_NG_ML,
    ferritin_rapidly_rising: ArrayLike = False,
    timing_ok: ArrayLike = True,
    new_or_worsening_cytopenia: ArrayLike = False,
    transaminase_x_uln: ArrayLike = np.nan,
    fibrinogen_mg_dl: ArrayLike = np.nan,
    fibrinogen_lln_mg_dl: float | None = None,
    hemophagocytosis: ArrayLike = False,
) -> Any:
    """Whether the IEC-HS criteria are met (see the module docstring). ``transaminase_x_uln``
    is the worse of ALT/AST over its ULN (or baseline); ``fibrinogen_lln_mg_dl`` makes
    "< LLN" count as well as < 150 mg/dL."""
    fer = np.asarray(ferritin_criterion(ferritin_ng_ml, ferritin_baseline_ng_ml,
                                        ferritin_uln_ng_ml, ferritin_rapidly_rising))
    fib = as_float("fibrinogen_mg_dl", fibrinogen_mg_dl, 0, 2000)
    tx = as_float("transaminase_x_uln", transaminase_x_uln, 0, 1000)
    limit = FIBRINOGEN_LOW_MG_DL if fibrinogen_lln_mg_dl is None else max(
        FIBRINOGEN_LOW_MG_DL, float(fibrinogen_lln_mg_dl))
    with np.errstate(invalid="ignore"):
        other = (as_bool("new_or_worsening_cytopenia", new_or_worsening_cytopenia)
                 | (tx > TRANSAMINASE_FACTOR) | (fib < limit)
                 | as_bool("hemophagocytosis", hemophagocytosis))
    return result(np.asarray(fer & as_bool("timing_ok", timing_ok) & other))


def iechs_grade(
    criteria_met: ArrayLike,
    *,
    intervention: ArrayLike = False,
    severe: ArrayLike = False,
    life_threatening: ArrayLike = False,
    died: ArrayLike = False,
) -> Any:
    """IEC-HS grade 0–5: 0 without the criteria; else 1, raised to 2 by ``intervention``
    (IEC-HS-directed immunosuppression, or transfusion for hypofibrinogenaemia), 3 by
    ``severe`` (bleeding needing transfusion, hospitalisation, organ dysfunction), 4 by
    ``life_threatening`` (haemodynamic instability, ventilation, dialysis, life-threatening
    bleeding), 5 by ``died`` (of IEC-HS)."""
    met = as_bool("criteria_met", criteria_met)
    g = np.select([as_bool("died", died), as_bool("life_threatening", life_threatening),
                   as_bool("severe", severe), as_bool("intervention", intervention)],
                  [5, 4, 3, 2], 1)
    return result(np.asarray(np.where(met, g, 0), dtype=np.int8))


def fibrinogen_decreased_grade(fibrinogen_mg_dl: ArrayLike,
                               lln_mg_dl: float = FIBRINOGEN_LLN_MG_DL) -> Any:
    """CTCAE v5.0 "Fibrinogen decreased" (§4): < 1.0–0.75 × LLN → 1, < 0.75–0.5 → 2,
    < 0.5–0.25 → 3, < 0.25 × LLN or < 50 mg/dL → 4 (boundaries to the milder grade)."""
    f = as_float("fibrinogen_mg_dl", fibrinogen_mg_dl, 0, 2000)
    r = f / lln_mg_dl
    g = np.select([(r < 0.25) | (f < 50.0), r < 0.5, r < 0.75, r < 1.0], [4, 3, 2, 1], 0)
    return result(np.asarray(g, dtype=np.int8))


def iechs_course(
    days: ArrayLike,
    ferritin_ng_ml: ArrayLike,
    crs_grade: ArrayLike,
    *,
    fibrinogen_mg_dl: ArrayLike = np.nan,
    neutropenia_grade: ArrayLike = np.nan,
    thrombocytopenia_grade: ArrayLike = np.nan,
    transaminase_x_uln: ArrayLike = np.nan,
    hemophagocytosis: ArrayLike = False,
    ferritin_baseline_ng_ml: ArrayLike = np.nan,
    ferritin_uln_ng_ml: float = FERRITIN_ULN_NG_ML,
    fibrinogen_limit_mg_dl: float = FIBRINOGEN_LOW_MG_DL,
    lookback_days: float = 7.0,
    no_crs_from_day: float = 7.0,
) -> Any:
    """Days (last axis, ``days`` ascending) on which the IEC-HS criteria are met, the same rule
    for simulated courses and real records [I]:

    * timing: CRS grade 0 that day, after a CRS episode (or from ``no_crs_from_day`` without
      one) — "from CRS resolution on";
    * ferritin above 2 × max(ULN, ``ferritin_baseline_ng_ml``) and higher than its previous
      measured value ("worsening inflammatory response"; the first value after infusion is
      compared with the baseline);
    * and fibrinogen < ``fibrinogen_limit_mg_dl``, ALT/AST > 5 × ULN, haemophagocytosis, or a
      new cytopenia: neutrophil or platelet CTCAE grade ≥ 3 after a day at grade ≤ 2 within
      the previous ``lookback_days``.

    NaN values are "not measured" (never meet a criterion).
    """
    d = as_float("days", days, -3650, 3650, allow_nan=False)
    fer = as_float("ferritin_ng_ml", ferritin_ng_ml, 0, 1e7)
    crs = np.nan_to_num(as_float("crs_grade", crs_grade, 0, 5))
    shape = fer.shape
    b = np.broadcast_to(as_float("ferritin_baseline_ng_ml", ferritin_baseline_ng_ml, 0, 1e7),
                        shape[:-1] + (1,)) if fer.ndim else np.nan
    above = np.asarray(ferritin_criterion(np.nan_to_num(fer, nan=0.0), b, ferritin_uln_ng_ml))
    # previous measured ferritin (forward fill along the day axis), the baseline before that
    prev = np.empty(shape)
    last = np.broadcast_to(np.asarray(b, dtype=float), shape[:-1] + (1,))[..., 0].copy()
    for j in range(shape[-1]):
        prev[..., j] = last
        f = fer[..., j]
        last = np.where(np.isnan(f), last, f)
    with np.errstate(invalid="ignore"):
        rising = fer > np.nan_to_num(prev, nan=-np.inf)
    had_crs = np.maximum.accumulate(crs, axis=-1) >= 1
    timing = (crs == 0) & (had_crs | (d >= no_crs_from_day))
    fib = np.broadcast_to(as_float("fibrinogen_mg_dl", fibrinogen_mg_dl, 0, 2000), shape)
    tx = np.broadcast_to(as_float("transaminase_x_uln", transaminase_x_uln, 0, 1000), shape)
    new_cyto = np.zeros(shape, dtype=bool)
    for g in (neutropenia_grade, thrombocytopenia_grade):
        gg = np.broadcast_to(as_float("cytopenia grade", g, 0, 4), shape)
        for j in range(shape[-1]):
            w = (d >= d[j] - lookback_days) & (d < d[j])
            if w.any():
                with np.errstate(invalid="ignore"):
                    prior_ok = (np.where(np.isnan(gg[..., w]), 9, gg[..., w]) <= 2).any(axis=-1)
                    new_cyto[..., j] |= (gg[..., j] >= 3) & prior_ok
    with np.errstate(invalid="ignore"):
        other = (fib < fibrinogen_limit_mg_dl) | (tx > TRANSAMINASE_FACTOR) | new_cyto \
            | np.broadcast_to(as_bool("hemophagocytosis", hemophagocytosis), shape)
    return result(np.asarray(above & rising & timing & other))
