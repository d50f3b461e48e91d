"""Haematotoxicity risk and grading: CAR-HEMATOTOX, the EASIX family and ICAHT (§5).

Units: counts per µL, haemoglobin g/dL, CRP mg/L (converted internally where a score is
defined in mg/dL), ferritin ng/mL, LDH U/L, creatinine mg/dL.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cartsim.clinic._arrays import as_float, result
from cartsim.errors import InvalidInputError

HEMATOTOX_HIGH_RISK_AT = 2
EASIX_KORELL_CUTOFF = 4.67


def car_hematotox(
    platelets_per_ul: ArrayLike,
    anc_per_ul: ArrayLike,
    hemoglobin_g_dl: ArrayLike,
    crp_mg_l: ArrayLike,
    ferritin_ng_ml: ArrayLike,
) -> Any:
    """CAR-HEMATOTOX score 0–7 (Rejeski 2021), measured before lymphodepletion.

    Platelets > 175 ×10⁹/L 0, 75–175 1, < 75 2; ANC < 1200/µL 1; Hb < 9.0 g/dL 1;
    CRP ≥ 3.0 mg/dL (30 mg/L) 1; ferritin 650–2000 ng/mL 1, > 2000 2. Boundary values follow the
    §5.1 convention (ANC 1200 → 0, Hb 9.0 → 0, CRP 3.0 → 1, ferritin 650/2000 → 1, platelets
    75/175 ×10⁹/L → 1). A missing input gives NaN. High risk is ≥ 2 (:func:`hematotox_high_risk`).
    """
    plt = as_float("platelets_per_ul", platelets_per_ul, 0, 1e7) / 1000.0
    anc = as_float("anc_per_ul", anc_per_ul, 0, 1e6)
    hb = as_float("hemoglobin_g_dl", hemoglobin_g_dl, 0, 30)
    crp = as_float("crp_mg_l", crp_mg_l, 0, 1000) / 10.0
    fer = as_float("ferritin_ng_ml", ferritin_ng_ml, 0, 1e7)
    pts = (
        np.select([plt < 75, plt <= 175], [2.0, 1.0], 0.0)
        + (anc < 1200)
        + (hb < 9.0)
        + (crp >= 3.0)
        + np.select([fer > 2000, fer >= 650], [2.0, 1.0], 0.0)
    )
    missing = np.isnan(plt) | np.isnan(anc) | np.isnan(hb) | np.isnan(crp) | np.isnan(fer)
    return result(np.where(missing, np.nan, pts))


def hematotox_high_risk(score: ArrayLike) -> Any:
    """CAR-HEMATOTOX high-risk flag (score ≥ 2)."""
    s = as_float("car_hematotox", score, 0, 7)
    return result(np.asarray(s >= HEMATOTOX_HIGH_RISK_AT))


def easix(ldh_u_l: ArrayLike, creatinine_mg_dl: ArrayLike, platelets_per_ul: ArrayLike) -> Any:
    """EASIX = LDH (U/L) × creatinine (mg/dL) / platelets (10⁹/L). Report log2 as well when
    comparing with papers; Korell 2022 pre-lymphodepletion cut-off is > 4.67."""
    ldh = as_float("ldh_u_l", ldh_u_l, 0, 1e5)
    cr = as_float("creatinine_mg_dl", creatinine_mg_dl, 0, 50)
    plt = as_float("platelets_per_ul", platelets_per_ul, 1, 1e7) / 1000.0
    return result(ldh * cr / plt)


def simplified_easix(ldh_u_l: ArrayLike, platelets_per_ul: ArrayLike) -> Any:
    """Simplified EASIX = LDH / platelets (10⁹/L)."""
    ldh = as_float("ldh_u_l", ldh_u_l, 0, 1e5)
    plt = as_float("platelets_per_ul", platelets_per_ul, 1, 1e7) / 1000.0
    return result(ldh / plt)


def m_easix(ldh_u_l: ArrayLike, crp_mg_l: ArrayLike, platelets_per_ul: ArrayLike) -> Any:
    """m-EASIX = LDH × CRP (mg/dL) / platelets (10⁹/L) (Pennisi 2021); CRP given in mg/L."""
    ldh = as_float("ldh_u_l", ldh_u_l, 0, 1e5)
    crp = as_float("crp_mg_l", crp_mg_l, 0, 1000) / 10.0
    plt = as_float("platelets_per_ul", platelets_per_ul, 1, 1e7) / 1000.0
    return result(ldh * crp / plt)


# --------------------------------------------------------------------------------------------
# ICAHT (Rejeski 2023)
# --------------------------------------------------------------------------------------------


def _prepare_anc(anc_per_ul: ArrayLike, days: ArrayLike) -> tuple[NDArray[Any], NDArray[Any]]:
    anc = np.atleast_2d(as_float("anc_per_ul", anc_per_ul, 0, 1e6))
    d = as_float("days", days, -60, 10_000, allow_nan=False)
    if d.ndim != 1 or d.shape[0] != anc.shape[-1]:
        raise InvalidInputError("days", f"a 1-D array of length {anc.shape[-1]}", d.shape)
    if np.any(np.diff(d) <= 0):
        raise InvalidInputError("days", "strictly increasing day numbers", d.tolist())
    # ICAHT-R4: carry a value forward by at most one day.
    prev = np.concatenate([np.full(anc.shape[:-1] + (1,), np.nan), anc[..., :-1]], axis=-1)
    gap1 = np.concatenate([[False], np.diff(d) <= 1])
    anc = np.where(np.isnan(anc) & gap1, prev, anc)
    return anc, d


def _bridged_low(low: NDArray[np.bool_], min_recovery_days: int) -> NDArray[np.bool_]:
    """Days below threshold, counting recoveries shorter than ``min_recovery_days`` between two
    low days as still low (ICAHT-R2)."""
    n = low.shape[-1]
    idx = np.arange(n)
    prev_low = np.maximum.accumulate(np.where(low, idx, -1), axis=-1)
    next_low = np.flip(
        np.minimum.accumulate(np.flip(np.where(low, idx, n), axis=-1), axis=-1), axis=-1
    )
    gap = (prev_low >= 0) & (next_low < n) & (next_low - prev_low - 1 < min_recovery_days)
    return low | gap


def icaht_early_grade(
    anc_per_ul: ArrayLike,
    days: ArrayLike,
    min_recovery_days: int = 3,
    grade4_onset_by_day: float = 3.0,
    window_end_day: float = 30.0,
) -> Any:
    """Early ICAHT grade (days 0 to +30) from daily ANC (last axis = days).

    Cumulative days ≤ 500/µL: 1–6 → 1, 7–13 → 2, ≥ 14 → 3; days ≤ 100/µL: ≥ 7 → 3, ≥ 14 → 4;
    grade 4 also when ANC ≤ 500 from day ``grade4_onset_by_day`` or earlier through day 30
    with no stable recovery ("never above 500", §5.3 [I]). Recoveries shorter than
    ``min_recovery_days`` consecutive days count as low days (ICAHT-R2). Use the daily minimum
    ANC; missing days are carried forward by one day (ICAHT-R4).
    """
    anc, d = _prepare_anc(anc_per_ul, days)
    win = (d >= 0) & (d <= window_end_day)
    a = anc[..., win]
    dw = d[win]
    low500 = _bridged_low(a <= 500, min_recovery_days)
    low100 = _bridged_low(a <= 100, min_recovery_days)
    n500 = low500.sum(axis=-1)
    n100 = low100.sum(axis=-1)
    g = np.select([n500 >= 14, n500 >= 7, n500 >= 1], [3, 2, 1], 0)
    g = np.maximum(g, np.select([n100 >= 14, n100 >= 7], [4, 3], 0))
    if dw.size and dw[-1] >= window_end_day:
        after_onset = dw >= 0
        first = np.argmax(low500, axis=-1)
        started = low500.any(axis=-1) & (dw[first] <= grade4_onset_by_day)
        idx = np.arange(dw.size)
        through = np.all(low500 | (idx < first[..., None]) | ~after_onset, axis=-1)
        g = np.where(started & through, 4, g)
    return _shaped(g.astype(np.int8), anc_per_ul)


def icaht_late_grade(anc_per_ul: ArrayLike, days: ArrayLike, min_values: int = 2) -> Any:
    """Late ICAHT grade (after day +30): the deepest threshold (≤ 1500 → 1, ≤ 1000 → 2,
    ≤ 500 → 3, ≤ 100 → 4) met by at least ``min_values`` ANC values (non-transient, ICAHT-R3)."""
    anc, d = _prepare_anc(anc_per_ul, days)
    a = anc[..., d > 30]
    counts = [np.sum(a <= thr, axis=-1) >= min_values for thr in (100, 500, 1000, 1500)]
    return _shaped(np.select(counts, [4, 3, 2, 1], 0).astype(np.int8), anc_per_ul)


def _shaped(g: NDArray[Any], original: ArrayLike) -> Any:
    """One grade per course: a scalar for a 1-D input, shape[:-1] otherwise."""
    if np.ndim(original) <= 1:
        return g.reshape(-1)[0].item()
    return g.reshape(np.shape(original)[:-1])


#: Neutrophil recovery phenotypes after CAR-T (Rejeski 2021).
RECOVERY_PHENOTYPES: tuple[str, ...] = ("quick", "intermittent", "aplastic")


def neutrophil_recovery_phenotype(
    anc_per_ul: ArrayLike,
    days: ArrayLike,
    recovered_above: float = 1000.0,
    second_dip_from_day: float = 21.0,
    aplastic_below: float = 500.0,
    aplastic_days: int = 14,
) -> Any:
    """Neutrophil recovery phenotype from daily ANC after infusion (Rejeski 2021):
    ``"aplastic"`` — ANC < ``aplastic_below`` on at least ``aplastic_days`` consecutive days;
    ``"intermittent"`` (biphasic) — ANC recovered above ``recovered_above`` and fell below it
    again from day ``second_dip_from_day`` on; ``"quick"`` otherwise. Days before 0 are ignored;
    NaN days (after death) break runs and are neither low nor recovered."""
    anc, d = _prepare_anc(anc_per_ul, days)
    post = d >= 0
    a, dp = anc[..., post], d[post]
    low = a < aplastic_below
    n = a.shape[:-1]
    run = np.zeros(n, dtype=np.int64)
    longest = np.zeros(n, dtype=np.int64)
    recovered = np.zeros(n, dtype=bool)
    dipped = np.zeros(n, dtype=bool)
    for k in range(a.shape[-1]):  # loop over days, vectorised over courses
        run = np.where(low[..., k], run + 1, 0)
        longest = np.maximum(longest, run)
        below = a[..., k] < recovered_above
        dipped |= recovered & below & (dp[k] >= second_dip_from_day)
        recovered |= a[..., k] >= recovered_above
    out = np.where(longest >= aplastic_days, "aplastic",
                   np.where(dipped, "intermittent", "quick")).astype(object)
    if np.ndim(anc_per_ul) <= 1:
        return str(out.reshape(-1)[0])
    return out.reshape(np.shape(anc_per_ul)[:-1])
