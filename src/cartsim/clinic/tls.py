"""Tumour lysis syndrome: Cairo–Bishop laboratory and clinical TLS with its grade.

Source: Cairo MS, Bishop M. *Tumour lysis syndrome: new therapeutic strategies and
classification.* Br J Haematol 2004;127(1):3–11 (not in clinical_standards.md; thresholds as
published there, the boundary conventions [I] below).

* **Laboratory TLS** (Table II): two or more of the following within 3 days before to 7 days
  after the start of therapy — urate ≥ 8.0 mg/dL (476 µmol/L) or a 25 % rise from baseline;
  potassium ≥ 6.0 mmol/L or a 25 % rise; phosphate ≥ 6.5 mg/dL (2.1 mmol/L) in children or
  ≥ 4.5 mg/dL (1.45 mmol/L) in adults, or a 25 % rise; calcium ≤ 7.0 mg/dL (1.75 mmol/L) or
  a 25 % fall. Cairo–Bishop do not require the criteria on the same day (Howard 2011 does:
  ``same_day=True``). The 25 % changes need a baseline; without one only the absolute limits
  count.
* **Clinical TLS** (Table III): laboratory TLS plus creatinine ≥ 1.5 × the age-adjusted ULN,
  a cardiac arrhythmia or sudden death, or a seizure.
* **Grade** (Table IV), the worst of: creatinine 1.5 × ULN → 1, > 1.5–3.0 → 2, > 3.0–6.0 → 3,
  > 6.0 → 4; arrhythmia (0–4: 1 intervention not indicated, 2 non-urgent medical
  intervention, 3 symptomatic, incompletely controlled or device, 4 life-threatening);
  seizure (0–4: 2 one brief generalised seizure or well-controlled, 3 consciousness altered
  or breakthrough, 4 prolonged, repetitive or status); death → 5. Grade 0 without
  laboratory TLS; laboratory TLS alone (no clinical component) is grade 0 too — report it
  with :func:`laboratory_tls`.

Age-adjusted creatinine ULN (Cairo–Bishop Table III footnote, mg/dL): < 1 month 0.4 (35
µmol/L), 1 month–< 1 year 0.4, 1–< 12 years 0.7 (61.6 µmol/L), 12–< 16 years 1.0 (88
µmol/L), ≥ 16 years 1.2 women (105.6 µmol/L) / 1.3 men (114.4 µmol/L); sex unknown → 1.2
[I, the lower: the more sensitive].
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cartsim.clinic._arrays import as_bool, as_float, result

URATE_LIMIT_MG_DL = 8.0
POTASSIUM_LIMIT_MMOL_L = 6.0
PHOSPHATE_LIMIT_CHILD_MG_DL = 6.5
PHOSPHATE_LIMIT_ADULT_MG_DL = 4.5
CALCIUM_LIMIT_MG_DL = 7.0
CHANGE_FRACTION = 0.25
CHILD_BELOW_AGE_Y = 18.0  # Cairo–Bishop's "children" [I: paediatric age]
WINDOW_DAYS = (-3.0, 7.0)


def creatinine_uln_mg_dl(age_y: ArrayLike, male: ArrayLike | None = None) -> Any:
    """Age- (and sex-) adjusted creatinine ULN of Cairo–Bishop, mg/dL."""
    age = as_float("age_y", age_y, 0, 130, allow_nan=False)
    adult = 1.2 if male is None else np.where(as_bool("male", male), 1.3, 1.2)
    u = np.select([age < 1.0, age < 12.0, age < 16.0], [0.4, 0.7, 1.0], 0.0)
    return result(np.where(age >= 16.0, adult, u).astype(np.float64))


def tls_lab_criteria(
    urate_mg_dl: ArrayLike = np.nan,
    potassium_mmol_l: ArrayLike = np.nan,
    phosphate_mg_dl: ArrayLike = np.nan,
    calcium_mg_dl: ArrayLike = np.nan,
    *,
    age_y: ArrayLike = np.nan,
    baseline: dict[str, ArrayLike] | None = None,
) -> dict[str, NDArray[np.bool_]]:
    """Which of the four Cairo–Bishop laboratory criteria each value meets (NaN → not met).

    ``baseline`` may give ``urate_mg_dl``, ``potassium_mmol_l``, ``phosphate_mg_dl`` and
    ``calcium_mg_dl`` before therapy for the 25 % changes (broadcast against the values);
    ``age_y`` NaN counts as adult.
    """
    ur = as_float("urate_mg_dl", urate_mg_dl, 0, 500)
    k = as_float("potassium_mmol_l", potassium_mmol_l, 0, 50)
    ph = as_float("phosphate_mg_dl", phosphate_mg_dl, 0, 500)
    ca = as_float("calcium_mg_dl", calcium_mg_dl, 0, 30)
    age = as_float("age_y", age_y, 0, 130)
    child = age < CHILD_BELOW_AGE_Y
    b = baseline or {}

    def base(name: str, lo: float, hi: float) -> np.ndarray:
        return as_float(f"baseline {name}", b.get(name, np.nan), lo, hi)

    up = 1.0 + CHANGE_FRACTION
    with np.errstate(invalid="ignore"):
        out = {
            "urate": (ur >= URATE_LIMIT_MG_DL) | (ur >= up * base("urate_mg_dl", 0, 500)),
            "potassium": (k >= POTASSIUM_LIMIT_MMOL_L)
            | (k >= up * base("potassium_mmol_l", 0, 50)),
            "phosphate": (ph >= np.where(child, PHOSPHATE_LIMIT_CHILD_MG_DL,
                                         PHOSPHATE_LIMIT_ADULT_MG_DL))
            | (ph >= up * base("phosphate_mg_dl", 0, 500)),
            "calcium": (ca <= CALCIUM_LIMIT_MG_DL)
            | (ca <= (1.0 - CHANGE_FRACTION) * base("calcium_mg_dl", 0, 30)),
        }
    return {key: np.asarray(v, dtype=bool) for key, v in out.items()}


def laboratory_tls(criteria: dict[str, NDArray[np.bool_]], days: ArrayLike,
                   window: tuple[float, float] = WINDOW_DAYS, same_day: bool = False) -> Any:
    """Laboratory TLS from daily criteria (arrays ``(…, days)``, last axis the day): ≥ 2
    different criteria met on days within ``window`` (relative to therapy start), on the same
    day when ``same_day``."""
    d = as_float("days", days, -3650, 3650, allow_nan=False)
    inside = (d >= window[0]) & (d <= window[1])
    stack = np.stack([np.asarray(criteria[k], dtype=bool) & inside
                      for k in ("urate", "potassium", "phosphate", "calcium")])
    if same_day:
        met = stack.sum(axis=0) >= 2
        return result(np.asarray(met.any(axis=-1)))
    return result(np.asarray(stack.any(axis=-1).sum(axis=0) >= 2))


def creatinine_component(creatinine_mg_dl: ArrayLike, uln_mg_dl: ArrayLike) -> Any:
    """Creatinine part of the Cairo–Bishop grade: < 1.5 × ULN → 0, 1.5 → 1, > 1.5–3.0 → 2,
    > 3.0–6.0 → 3, > 6.0 → 4 [I: exactly 1.5 × ULN is grade 1, the clinical-TLS limit]."""
    cr = as_float("creatinine_mg_dl", creatinine_mg_dl, 0, 100)
    uln = as_float("uln_mg_dl", uln_mg_dl, 0.01, 10, allow_nan=False)
    r = cr / uln
    g = np.select([r > 6.0, r > 3.0, r > 1.5, r >= 1.5], [4, 3, 2, 1], 0)
    return result(np.asarray(g, dtype=np.int8))


def cairo_bishop_grade(
    lab_tls: ArrayLike,
    creatinine_mg_dl: ArrayLike = np.nan,
    *,
    age_y: ArrayLike = 30.0,
    creatinine_uln_mg_dl: ArrayLike = np.nan,
    arrhythmia_grade: ArrayLike = 0,
    seizure_grade: ArrayLike = 0,
    died: ArrayLike = False,
) -> Any:
    """Cairo–Bishop clinical TLS grade (0–5). ``creatinine_uln_mg_dl`` NaN → the age table
    (:func:`creatinine_uln_mg_dl`). Clinical TLS is grade ≥ 1; without laboratory TLS the
    grade is 0 whatever the creatinine (the creatinine rise is then not TLS)."""
    lab = as_bool("lab_tls", lab_tls)
    uln = as_float("creatinine_uln_mg_dl", creatinine_uln_mg_dl, 0.01, 10)
    uln = np.where(np.isnan(uln), np.asarray(creatinine_uln_mg_dl_default(age_y)), uln)
    cr = np.asarray(creatinine_component(creatinine_mg_dl, uln))
    arr = as_float("arrhythmia_grade", arrhythmia_grade, 0, 4, allow_nan=False)
    sz = as_float("seizure_grade", seizure_grade, 0, 4, allow_nan=False)
    g = np.maximum(np.maximum(cr, arr), sz).astype(np.int8)
    g = np.where(as_bool("died", died) & (g >= 1), 5, g)
    return result(np.asarray(np.where(lab, g, 0), dtype=np.int8))


def creatinine_uln_mg_dl_default(age_y: ArrayLike) -> Any:
    """:func:`creatinine_uln_mg_dl` with sex unknown (NaN age → adult)."""
    age = np.nan_to_num(as_float("age_y", age_y, 0, 130), nan=30.0)
    return creatinine_uln_mg_dl(age)
