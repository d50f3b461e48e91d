"""Grade a whole simulated cohort at once: arrays of shape (patients, days)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from cartsim.clinic import ctcae
from cartsim.clinic.crs import astct_crs_course
from cartsim.clinic.hematotox import icaht_early_grade
from cartsim.clinic.icans import astct_icans_grade


def grade_cohort(
    days: ArrayLike,
    temperature_c: ArrayLike,
    hypotension: ArrayLike = False,
    vasopressors: ArrayLike = 0,
    vasopressin: ArrayLike = False,
    oxygen_device: ArrayLike = 0,
    anticytokine_given: ArrayLike = False,
    ice_score: ArrayLike = np.nan,
    capd_score: ArrayLike = np.nan,
    consciousness: ArrayLike = 0,
    seizure: ArrayLike = 0,
    motor_weakness: ArrayLike = 0,
    cerebral_edema: ArrayLike = 0,
    age_y: ArrayLike = np.nan,
    anc_per_ul: ArrayLike = np.nan,
    platelets_per_ul: ArrayLike = np.nan,
    hemoglobin_g_dl: ArrayLike = np.nan,
    ctcae_version: str = ctcae.DEFAULT_VERSION,
) -> dict[str, Any]:
    """Daily ASTCT CRS/ICANS and CTCAE cytopenia grades (patients × days), per-patient maxima
    and the early ICAHT grade. ``days`` is the 1-D day axis; ``age_y`` may be (patients, 1)."""
    t = np.atleast_2d(np.asarray(temperature_c, dtype=np.float64))
    course = astct_crs_course(t, hypotension, vasopressors, vasopressin, oxygen_device,
                              anticytokine_given=anticytokine_given)
    icans_grade = np.broadcast_to(
        astct_icans_grade(ice_score, consciousness, seizure, motor_weakness, cerebral_edema,
                          capd_score=capd_score, age_y=age_y), t.shape)
    anc = np.broadcast_to(np.asarray(anc_per_ul, dtype=np.float64), t.shape)
    out: dict[str, Any] = {
        "crs_grade": course.grade,
        "icans_grade": icans_grade,
        "neutropenia_grade": ctcae.neutrophil_grade(anc, version=ctcae_version),
        "thrombocytopenia_grade": ctcae.platelet_grade(platelets_per_ul, version=ctcae_version),
        "anemia_grade": ctcae.anemia_grade(hemoglobin_g_dl, version=ctcae_version),
    }
    out["crs_max_grade"] = course.grade.max(axis=-1)
    out["icans_max_grade"] = icans_grade.max(axis=-1)
    out["icaht_early_grade"] = icaht_early_grade(anc, days)
    return out
