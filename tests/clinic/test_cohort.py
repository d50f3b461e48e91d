"""Grading a 10,000-patient × 60-day cohort array (timing is reported separately, not asserted)."""

from __future__ import annotations

import numpy as np

from cartsim.clinic.cohort import grade_cohort


def make_cohort(n: int = 10_000, d: int = 60, seed: int = 3) -> dict[str, np.ndarray]:
    """Random cohort arrays of shape (n, d)."""
    rng = np.random.default_rng(seed)
    return dict(
        days=np.arange(d, dtype=float),
        temperature_c=rng.normal(37.8, 0.9, (n, d)).clip(35, 42),
        hypotension=rng.random((n, d)) < 0.1,
        vasopressors=rng.choice(4, (n, d), p=[0.9, 0.06, 0.03, 0.01]),
        vasopressin=rng.random((n, d)) < 0.02,
        oxygen_device=rng.choice(10, (n, d), p=[0.82] + [0.02] * 9),
        anticytokine_given=rng.random((n, d)) < 0.05,
        ice_score=rng.integers(0, 11, (n, d)).astype(float),
        consciousness=rng.choice(4, (n, d), p=[0.9, 0.05, 0.03, 0.02]),
        seizure=rng.choice(3, (n, d), p=[0.98, 0.015, 0.005]),
        age_y=rng.uniform(1, 80, (n, 1)),
        capd_score=rng.integers(0, 20, (n, d)).astype(float),
        anc_per_ul=rng.lognormal(6.5, 1.5, (n, d)),
        platelets_per_ul=rng.lognormal(11, 0.8, (n, d)),
        hemoglobin_g_dl=rng.normal(10, 2, (n, d)).clip(4, 17),
    )


def test_grade_10000_by_60_completes() -> None:
    cohort = make_cohort()
    out = grade_cohort(**cohort)
    for key in ("crs_grade", "icans_grade", "neutropenia_grade", "thrombocytopenia_grade",
                "anemia_grade"):
        assert out[key].shape == (10_000, 60), key
        assert out[key].min() >= 0 and out[key].max() <= 4
    assert out["icaht_early_grade"].shape == (10_000,)
    assert (out["crs_max_grade"] == out["crs_grade"].max(axis=1)).all()
    # afebrile patient-days before any CRS are never graded
    assert (out["crs_grade"][:, 0][cohort["temperature_c"][:, 0] < 38.0] == 0).all()
    # children (< 12 y) are graded by CAPD: a child with CAPD ≥ 9 is at least grade 3
    child = (cohort["age_y"] < 12) & (cohort["capd_score"] >= 9)
    assert (out["icans_grade"][child] >= 3).all()
