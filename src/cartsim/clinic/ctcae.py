"""CTCAE grades of cytopenias and related terms, with the CTCAE version as a setting.

Counts are per µL (= per mm³), haemoglobin in g/dL. Interval convention (§4): CTCAE writes
"< A – B"; a value exactly on a boundary falls in the milder grade (ANC 1500 is grade 1, ANC 500
is grade 3). Grade 1 needs a value below the lower limit of normal (LLN), passed per lab.
NaN (not measured) gives grade 0 and should be treated as missing by the caller.

Versions: ``"5.0"`` (default), ``"4.03"`` (same haematology bands as 5.0), ``"6.0"``
(neutrophils < 1500/1000/500/100 and platelets G3 < 50,000–10,000, G4 < 10,000; from a
third-party compilation, §4 — verify before relying on it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from cartsim.clinic._arrays import as_bool, as_float, check_choice, result

CTCAE_VERSIONS: tuple[str, ...] = ("4.03", "5.0", "6.0")
DEFAULT_VERSION = "5.0"

#: Default lower limits of normal (adult reference ranges; pass lab-specific values).
DEFAULT_LLN = {
    "anc_per_ul": 1800.0,
    "platelets_per_ul": 150_000.0,
    "lymphocytes_per_ul": 1000.0,
    "wbc_per_ul": 4000.0,
    "hemoglobin_g_dl": 12.0,
}


def _banded(x: np.ndarray, lln: float, cuts: tuple[float, float, float]) -> np.ndarray:
    """Grade 1–4 with "< cut" boundaries; grade 1 needs x < LLN."""
    c2, c3, c4 = cuts
    g = np.select([x < c4, x < c3, x < c2, x < lln], [4, 3, 2, 1], 0)
    return g.astype(np.int8)


#: Upper bounds of the count graders' domains (a count above one is rejected as invalid input;
#: the trial's endpoints cap simulated counts at them, trial/endpoints.py).
COUNT_UPPER_BOUNDS: dict[str, float] = {
    "anc_per_ul": 1e6, "platelets_per_ul": 1e7, "lymphocytes_per_ul": 1e7, "wbc_per_ul": 1e7,
    "hemoglobin_g_dl": 30}


def neutrophil_grade(
    anc_per_ul: ArrayLike, lln: float = DEFAULT_LLN["anc_per_ul"], version: str = DEFAULT_VERSION
) -> Any:
    """"Neutrophil count decreased" grade (v5: < LLN–1500, < 1500–1000, < 1000–500, < 500)."""
    check_choice("ctcae_version", version, CTCAE_VERSIONS)
    x = as_float("anc_per_ul", anc_per_ul, 0, COUNT_UPPER_BOUNDS["anc_per_ul"])
    if version == "6.0":
        g = np.select([x < 100, x < 500, x < 1000, x < 1500], [4, 3, 2, 1], 0).astype(np.int8)
    else:
        g = _banded(x, lln, (1500.0, 1000.0, 500.0))
    return result(g)


def platelet_grade(
    platelets_per_ul: ArrayLike,
    lln: float = DEFAULT_LLN["platelets_per_ul"],
    version: str = DEFAULT_VERSION,
) -> Any:
    """"Platelet count decreased" grade (v5: < LLN–75k, < 75k–50k, < 50k–25k, < 25k)."""
    check_choice("ctcae_version", version, CTCAE_VERSIONS)
    x = as_float("platelets_per_ul", platelets_per_ul, 0,
                 COUNT_UPPER_BOUNDS["platelets_per_ul"])
    if version == "6.0":
        g = np.select([x < 10_000, x < 50_000, x < 75_000, x < lln], [4, 3, 2, 1], 0)
        return result(g.astype(np.int8))
    return result(_banded(x, lln, (75_000.0, 50_000.0, 25_000.0)))


def lymphocyte_grade(
    lymphocytes_per_ul: ArrayLike,
    lln: float = DEFAULT_LLN["lymphocytes_per_ul"],
    version: str = DEFAULT_VERSION,
) -> Any:
    """"Lymphocyte count decreased" grade (< LLN–800, < 800–500, < 500–200, < 200)."""
    check_choice("ctcae_version", version, CTCAE_VERSIONS)
    x = as_float("lymphocytes_per_ul", lymphocytes_per_ul, 0,
                 COUNT_UPPER_BOUNDS["lymphocytes_per_ul"])
    return result(_banded(x, lln, (800.0, 500.0, 200.0)))


def wbc_grade(
    wbc_per_ul: ArrayLike, lln: float = DEFAULT_LLN["wbc_per_ul"], version: str = DEFAULT_VERSION
) -> Any:
    """"White blood cell decreased" grade (< LLN–3000, < 3000–2000, < 2000–1000, < 1000)."""
    check_choice("ctcae_version", version, CTCAE_VERSIONS)
    x = as_float("wbc_per_ul", wbc_per_ul, 0, COUNT_UPPER_BOUNDS["wbc_per_ul"])
    return result(_banded(x, lln, (3000.0, 2000.0, 1000.0)))


def anemia_grade(
    hemoglobin_g_dl: ArrayLike,
    lln: float = DEFAULT_LLN["hemoglobin_g_dl"],
    version: str = DEFAULT_VERSION,
    life_threatening: ArrayLike = False,
) -> Any:
    """"Anemia" grade: < LLN–10.0 → 1, < 10.0–8.0 → 2, < 8.0 → 3; grade 4 only when flagged
    life-threatening (clinical, not numeric). v4.03 used 8.0–6.5 for grade 3 and has no numeric
    grade 4 either, so the result is the same."""
    check_choice("ctcae_version", version, CTCAE_VERSIONS)
    x = as_float("hemoglobin_g_dl", hemoglobin_g_dl, 0, COUNT_UPPER_BOUNDS["hemoglobin_g_dl"])
    g = np.select([x < 8.0, x < 10.0, x < lln], [3, 2, 1], 0)
    g = np.where(as_bool("life_threatening", life_threatening), 4, g)
    return result(np.asarray(g, dtype=np.int8))


def febrile_neutropenia_grade(
    anc_per_ul: ArrayLike,
    temperature_max_c: ArrayLike,
    fever_38_duration_h: ArrayLike = 0.0,
    life_threatening: ArrayLike = False,
) -> Any:
    """Febrile neutropenia: grade 3 when ANC < 1000 and either a single temperature > 38.3 °C
    (strict) or ≥ 38.0 °C sustained for more than 1 h; grade 4 if also life-threatening."""
    anc = as_float("anc_per_ul", anc_per_ul, 0, COUNT_UPPER_BOUNDS["anc_per_ul"])
    t = as_float("temperature_max_c", temperature_max_c, 25, 45)
    dur = as_float("fever_38_duration_h", fever_38_duration_h, 0, None, allow_nan=False)
    fn = (anc < 1000) & ((t > 38.3) | ((t >= 38.0) & (dur > 1.0)))
    g = np.where(fn, np.where(as_bool("life_threatening", life_threatening), 4, 3), 0)
    return result(np.asarray(g, dtype=np.int8))


def fever_grade(temperature_max_c: ArrayLike, above_40_duration_h: ArrayLike = 0.0) -> Any:
    """CTCAE "Fever": 38.0–39.0 → 1; > 39.0–40.0 → 2; > 40.0 → 3, or 4 when > 40.0 °C for
    more than 24 h."""
    t = as_float("temperature_max_c", temperature_max_c, 25, 45)
    dur = as_float("above_40_duration_h", above_40_duration_h, 0, None, allow_nan=False)
    g = np.select([(t > 40.0) & (dur > 24.0), t > 40.0, t > 39.0, t >= 38.0], [4, 3, 2, 1], 0)
    return result(g.astype(np.int8))


def creatinine_increased_grade(
    creatinine_mg_dl: ArrayLike, uln_mg_dl: ArrayLike, baseline_mg_dl: ArrayLike = np.nan
) -> Any:
    """"Creatinine increased" (v5.0, §4): > ULN–1.5 × ULN → 1; > 1.5–3.0 × baseline or ULN
    → 2; > 3.0 × baseline or > 3.0–6.0 × ULN → 3; > 6.0 × ULN → 4. A NaN baseline uses the
    ULN bands alone."""
    cr = as_float("creatinine_mg_dl", creatinine_mg_dl, 0, 100)
    uln = as_float("uln_mg_dl", uln_mg_dl, 0.05, 20, allow_nan=False)
    base = as_float("baseline_mg_dl", baseline_mg_dl, 0.01, 100)
    by_uln = np.select([cr > 6.0 * uln, cr > 3.0 * uln, cr > 1.5 * uln, cr > uln], [4, 3, 2, 1], 0)
    with np.errstate(invalid="ignore"):
        by_base = np.select([cr > 3.0 * base, cr > 1.5 * base], [3, 2], 0)
    return result(np.maximum(by_uln, by_base).astype(np.int8))


def transaminase_increased_grade(x_uln: ArrayLike) -> Any:
    """"ALT/AST increased" (v5.0, §4, normal baseline) from the value × ULN (pass the worse of
    ALT and AST): > ULN–3 × ULN → 1; > 3–5 × → 2; > 5–20 × → 3; > 20 × → 4. NaN → 0."""
    x = np.nan_to_num(as_float("x_uln", x_uln, 0, None), nan=0.0)
    return result(np.select([x > 20.0, x > 5.0, x > 3.0, x > 1.0], [4, 3, 2, 1], 0)
                  .astype(np.int8))


def hypoxia_grade(
    spo2_pct: ArrayLike,
    at_rest: ArrayLike = True,
    life_threatening: ArrayLike = False,
    threshold_pct: float = 88.0,
) -> Any:
    """CTCAE "Hypoxia": SpO2 below ``threshold_pct`` at rest → 3, only with exercise → 2,
    life-threatening airway compromise → 4."""
    s = as_float("spo2_pct", spo2_pct, 0, 100)
    low = s < threshold_pct
    rest = as_bool("at_rest", at_rest)
    g = np.select([as_bool("life_threatening", life_threatening), low & rest, low], [4, 3, 2], 0)
    return result(g.astype(np.int8))
