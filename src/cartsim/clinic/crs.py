"""Cytokine release syndrome (CRS) grading: ASTCT 2019 and the older scales of published trials.

All functions are vectorised: every argument may be a scalar or an array (for example
patients × days) and arguments broadcast against each other. Rule IDs (``CRS-R1`` …) refer to
``clinical_standards.md`` §1 and §3; see ``docs/clinic.md`` for sources.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cartsim.clinic import ctcae
from cartsim.clinic._arrays import as_bool, as_code, as_float, check_choice, result

#: ASTCT oxygen-delivery vocabulary; the integer code of a device is its index here.
OXYGEN_DEVICES: tuple[str, ...] = (
    "none",
    "low_flow_nasal_cannula",
    "blow_by",
    "high_flow_nasal_cannula",
    "facemask",
    "nonrebreather",
    "venturi",
    "cpap",
    "bipap",
    "mechanical_ventilation",
)
DEVICE_CODE: dict[str, int] = {name: i for i, name in enumerate(OXYGEN_DEVICES)}
#: ASTCT hypoxia component of each device (CRS-R3..R5, §1.4 device map).
DEVICE_ASTCT_COMPONENT = np.array([0, 2, 2, 3, 3, 3, 3, 4, 4, 4], dtype=np.int8)
#: Typical FiO2 (%) of each device when none is recorded (used only by FiO2-based older scales).
DEVICE_DEFAULT_FIO2_PCT = np.array([21, 0, 30, 50, 40, 80, 40, 50, 50, 60], dtype=np.float64)
LOW_FLOW_MAX_L_MIN = 6.0

CRS_SCALES: tuple[str, ...] = (
    "astct", "lee2014", "penn", "cartox", "mskcc", "ctcae_v4.03", "ctcae_v5.0"
)


def device_code(name: str) -> int:
    """Integer code of an ASTCT oxygen device name (error lists the vocabulary)."""
    return DEVICE_CODE[check_choice("oxygen_device", name, OXYGEN_DEVICES)]


def oxygen_component(oxygen_device: ArrayLike, oxygen_flow_l_min: ArrayLike = np.nan) -> NDArray:
    """ASTCT hypoxia component (0, 2, 3, 4) from device code and flow (§1.4).

    A low-flow nasal cannula recorded above 6 L/min is high-flow (grade-3 component); exactly
    6 L/min is still low flow (CRS-05).
    """
    dev = as_code("oxygen_device", oxygen_device, range(len(OXYGEN_DEVICES)), OXYGEN_DEVICES)
    flow = as_float("oxygen_flow_l_min", oxygen_flow_l_min, 0.0, 80.0)
    comp = DEVICE_ASTCT_COMPONENT[dev]
    nc_high = (dev == DEVICE_CODE["low_flow_nasal_cannula"]) & (flow > LOW_FLOW_MAX_L_MIN)
    return np.where(nc_high, np.int8(3), comp).astype(np.int8)


def hypotension_component(
    hypotension: ArrayLike, vasopressors: ArrayLike = 0, vasopressin: ArrayLike = False
) -> NDArray:
    """ASTCT hypotension component (0, 2, 3, 4).

    ``vasopressors`` counts non-vasopressin agents given at the same time. Vasopressin never
    counts toward "multiple" (CRS-08); vasopressin alone counts as one vasopressor (§1.4).
    Any vasopressor implies hypotension.
    """
    hyp = as_bool("hypotension", hypotension)
    n = as_float("vasopressors", vasopressors, 0.0, 10.0, allow_nan=False)
    vp = as_bool("vasopressin", vasopressin)
    comp = np.where(n >= 2, 4, np.where((n >= 1) | vp, 3, np.where(hyp, 2, 0)))
    return comp.astype(np.int8)


def astct_crs_grade(
    temperature_c: ArrayLike,
    hypotension: ArrayLike = False,
    vasopressors: ArrayLike = 0,
    vasopressin: ArrayLike = False,
    oxygen_device: ArrayLike = 0,
    oxygen_flow_l_min: ArrayLike = np.nan,
    *,
    fever_other_cause: ArrayLike = False,
    hypotension_other_cause: ArrayLike = False,
    hypoxia_other_cause: ArrayLike = False,
    in_crs_episode: ArrayLike = False,
    after_anticytokine: ArrayLike = False,
    died_of_crs: ArrayLike = False,
    fever_threshold_c: float = 38.0,
) -> Any:
    """ASTCT consensus CRS grade (0–5) of one assessment time point (Lee et al. 2019).

    Fever ≥ ``fever_threshold_c`` not due to another cause is required at onset (CRS-R1). Once
    CRS is diagnosed (``in_crs_episode``) and tocilizumab or steroids were given
    (``after_anticytokine``), fever is no longer required (CRS-R7). The grade is the worse of the
    hypotension and hypoxia components (CRS-R6); organ toxicity is ignored (CRS-R8); support with
    another cause does not count (CRS-R10). ``temperature_c`` NaN means "not recorded".
    """
    t = as_float("temperature_c", temperature_c, 25.0, 45.0)
    fever = (t >= fever_threshold_c) & ~as_bool("fever_other_cause", fever_other_cause)
    masked = as_bool("in_crs_episode", in_crs_episode) & as_bool(
        "after_anticytokine", after_anticytokine
    )
    fever_ok = fever | masked
    hypo = hypotension_component(hypotension, vasopressors, vasopressin)
    hypo = np.where(as_bool("hypotension_other_cause", hypotension_other_cause), 0, hypo)
    oxy = oxygen_component(oxygen_device, oxygen_flow_l_min)
    oxy = np.where(as_bool("hypoxia_other_cause", hypoxia_other_cause), 0, oxy)
    grade = np.where(fever_ok, np.maximum(np.maximum(hypo, oxy), 1), 0)
    grade = np.where(as_bool("died_of_crs", died_of_crs), 5, grade)
    return result(np.asarray(grade, dtype=np.int8))


@dataclass
class CrsCourse:
    """Daily ASTCT CRS grades of a course (arrays patients × days)."""

    grade: NDArray[np.int8]
    fever_masked: NDArray[np.bool_]
    episode: NDArray[np.int16]


def astct_crs_course(
    temperature_c: ArrayLike,
    hypotension: ArrayLike = False,
    vasopressors: ArrayLike = 0,
    vasopressin: ArrayLike = False,
    oxygen_device: ArrayLike = 0,
    oxygen_flow_l_min: ArrayLike = np.nan,
    anticytokine_given: ArrayLike = False,
    *,
    fever_other_cause: ArrayLike = False,
    hypotension_other_cause: ArrayLike = False,
    hypoxia_other_cause: ArrayLike = False,
    fever_threshold_c: float = 38.0,
) -> CrsCourse:
    """Grade a course of daily time points (last axis = days), tracking CRS episodes.

    An episode starts with fever (CRS-R1). After tocilizumab or steroids (``anticytokine_given``
    on that day or earlier) fever is no longer needed while the episode lasts (CRS-R7). The
    episode resolves on the first time point with no fever, no CRS hypotension and no CRS
    oxygen; a later fever starts a new episode (biphasic CRS, §1.4). Loops over days only;
    patients are vectorised.
    """
    t = np.atleast_2d(as_float("temperature_c", temperature_c, 25.0, 45.0))
    shape = t.shape
    hyp_c = np.broadcast_to(hypotension_component(hypotension, vasopressors, vasopressin), shape)
    hyp_c = np.where(np.broadcast_to(as_bool("hypotension_other_cause", hypotension_other_cause),
                                     shape), 0, hyp_c)
    oxy_c = np.broadcast_to(oxygen_component(oxygen_device, oxygen_flow_l_min), shape)
    oxy_c = np.where(np.broadcast_to(as_bool("hypoxia_other_cause", hypoxia_other_cause), shape),
                     0, oxy_c)
    fever = (t >= fever_threshold_c) & ~np.broadcast_to(
        as_bool("fever_other_cause", fever_other_cause), shape
    )
    treated = np.logical_or.accumulate(
        np.broadcast_to(as_bool("anticytokine_given", anticytokine_given), shape), axis=-1
    )
    support = np.maximum(hyp_c, oxy_c)
    grade = np.zeros(shape, dtype=np.int8)
    masked = np.zeros(shape, dtype=bool)
    episode = np.zeros(shape, dtype=np.int16)
    in_ep = np.zeros(shape[:-1], dtype=bool)
    n_ep = np.zeros(shape[:-1], dtype=np.int16)
    for d in range(shape[-1]):
        f = fever[..., d]
        ok = f | (in_ep & treated[..., d])
        g = np.where(ok, np.maximum(support[..., d], 1), 0)
        n_ep = n_ep + (ok & ~in_ep)
        resolved = ~f & (support[..., d] == 0)
        in_ep = ok & ~resolved
        grade[..., d] = g
        masked[..., d] = ok & ~f
        episode[..., d] = np.where(ok, n_ep, 0)
    # A masked time point without hypotension or hypoxia grades 0 (§1.4 default).
    grade = np.where(masked & (support == 0), 0, grade).astype(np.int8)
    episode = np.where(grade > 0, episode, 0).astype(np.int16)
    return CrsCourse(grade=grade, fever_masked=masked, episode=episode)


# --------------------------------------------------------------------------------------------
# Vasopressor dose helpers (§1.6) and older scales (§3)
# --------------------------------------------------------------------------------------------


def norepinephrine_equivalent(
    norepinephrine_ug_min: ArrayLike = 0.0,
    dopamine_ug_kg_min: ArrayLike = 0.0,
    epinephrine_ug_min: ArrayLike = 0.0,
    phenylephrine_ug_min: ArrayLike = 0.0,
) -> Any:
    """Norepinephrine equivalent (µg/min) by the VASST equation (§1.6)."""
    ne = as_float("norepinephrine_ug_min", norepinephrine_ug_min, 0.0, 1e4, allow_nan=False)
    do = as_float("dopamine_ug_kg_min", dopamine_ug_kg_min, 0.0, 100.0, allow_nan=False)
    ep = as_float("epinephrine_ug_min", epinephrine_ug_min, 0.0, 1e4, allow_nan=False)
    ph = as_float("phenylephrine_ug_min", phenylephrine_ug_min, 0.0, 1e5, allow_nan=False)
    return result(ne + do / 2.0 + ep + ph / 10.0)


@dataclass
class CrsFeatures:
    """Raw CRS features of time points, from which every scale is re-derived (§0, §3).

    Each field is a scalar or an array; all broadcast together. Vasopressor doses are absolute
    µg/min except dopamine (µg/kg/min). ``vasopressor_hours`` is how long the current support has
    been needed. ``fio2_pct`` NaN means "not recorded" (a device default is used, §1.4).
    Organ-toxicity fields are CTCAE grades (0–4) of CRS-attributed organ toxicity.
    """

    fever: Any = False
    hypotension: Any = False
    fluid_boluses: Any = 0
    norepinephrine_ug_min: Any = 0.0
    dopamine_ug_kg_min: Any = 0.0
    epinephrine_ug_min: Any = 0.0
    phenylephrine_ug_min: Any = 0.0
    other_vasopressors: Any = 0
    vasopressin: Any = False
    vasopressor_hours: Any = np.inf
    oxygen_device: Any = 0
    oxygen_flow_l_min: Any = np.nan
    fio2_pct: Any = np.nan
    organ_toxicity_grade: Any = 0
    transaminitis_grade: Any = 0
    creatinine_grade: Any = 0
    coagulopathy_needing_products: Any = False
    hospitalised_for_crs: Any = False
    vasopressor_refractory: Any = False
    life_threatening: Any = False
    died_of_crs: Any = False

    def arrays(self) -> dict[str, NDArray[Any]]:
        """Validated, broadcast arrays of every field."""
        out: dict[str, NDArray[Any]] = {}
        bools = {"fever", "hypotension", "vasopressin", "coagulopathy_needing_products",
                 "hospitalised_for_crs", "vasopressor_refractory", "life_threatening",
                 "died_of_crs"}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in bools:
                out[f.name] = as_bool(f.name, v)
            elif f.name == "oxygen_device":
                out[f.name] = as_code(f.name, v, range(len(OXYGEN_DEVICES)), OXYGEN_DEVICES)
            elif f.name in ("organ_toxicity_grade", "transaminitis_grade", "creatinine_grade"):
                out[f.name] = as_code(f.name, v, range(5), [str(i) for i in range(5)])
            elif f.name == "fio2_pct":
                out[f.name] = as_float(f.name, v, 21.0, 100.0)
            elif f.name == "oxygen_flow_l_min":
                out[f.name] = as_float(f.name, v, 0.0, 80.0)
            elif f.name == "vasopressor_hours":
                out[f.name] = as_float(f.name, v, 0.0, None, allow_nan=False)
            else:
                out[f.name] = as_float(f.name, v, 0.0, None, allow_nan=False)
        b = np.broadcast_arrays(*out.values())
        return dict(zip(out.keys(), b, strict=True))


def _derived(f: CrsFeatures) -> dict[str, NDArray[Any]]:
    a = f.arrays()
    ne, do, ep, ph = (a["norepinephrine_ug_min"], a["dopamine_ug_kg_min"],
                      a["epinephrine_ug_min"], a["phenylephrine_ug_min"])
    n_non_vp = (ne > 0).astype(int) + (do > 0) + (ep > 0) + (ph > 0) + a["other_vasopressors"]
    vp = a["vasopressin"]
    n_all = n_non_vp + vp
    nee = ne + do / 2.0 + ep + ph / 10.0
    mono = n_non_vp == 1
    high = np.where(
        vp,
        nee >= 10.0,
        np.where(
            mono,
            (ne >= 20.0) | (do >= 10.0) | (ph >= 200.0) | (ep >= 10.0),
            nee >= 20.0,
        ),
    ) & (n_all > 0) & (a["vasopressor_hours"] >= 3.0)
    dev = a["oxygen_device"]
    flow = a["oxygen_flow_l_min"]
    nc_fio2 = 21.0 + 4.0 * np.where(np.isnan(flow), 4.0, flow)
    default_fio2 = np.where(dev == DEVICE_CODE["low_flow_nasal_cannula"], nc_fio2,
                            DEVICE_DEFAULT_FIO2_PCT[dev])
    fio2 = np.where(np.isnan(a["fio2_pct"]), default_fio2, a["fio2_pct"])
    a.update(
        n_vasopressors=n_non_vp,
        n_agents=n_all,
        high_dose=high,
        any_o2=dev > 0,
        fio2=np.where(dev > 0, fio2, 21.0),
        ventilated=dev == DEVICE_CODE["mechanical_ventilation"],
        positive_pressure=dev >= DEVICE_CODE["cpap"],
        hypotension_any=a["hypotension"] | (n_all > 0) | (a["fluid_boluses"] > 0),
    )
    return a


def _finish(a: dict[str, NDArray[Any]], grade: NDArray[Any]) -> Any:
    g = np.where(a["fever"], np.maximum(grade, 1), grade)
    g = np.where(a["died_of_crs"], 5, g)
    return result(g.astype(np.int8))


def _present(a: dict[str, NDArray[Any]]) -> NDArray[np.bool_]:
    return a["fever"]


def lee2014_crs_grade(f: CrsFeatures) -> Any:
    """Lee 2014 (NCI) CRS grade (§3.1). CRS must be present (fever); grade 0 otherwise.

    "Multiple vasopressors" counts every agent including vasopressin [I]; CPAP/BiPAP are graded
    by FiO2, only invasive ventilation is "ventilator support" (the cross-walk's ambiguity).
    """
    a = _derived(f)
    org, tx = a["organ_toxicity_grade"], a["transaminitis_grade"]
    g2 = (a["any_o2"] & (a["fio2"] < 40)) | (a["hypotension_any"] & ~a["high_dose"]) | (org == 2)
    g3 = (a["any_o2"] & (a["fio2"] >= 40)) | a["high_dose"] | (a["n_agents"] >= 2) | (org == 3) | (
        tx >= 4
    )
    g4 = a["ventilated"] | (org >= 4)
    g = np.select([g4, g3, g2], [4, 3, 2], 1)
    return _finish(a, np.where(_present(a), g, 0))


def cartox_crs_grade(f: CrsFeatures) -> Any:
    """CARTOX CRS grade (Neelapu 2018, §3.3): the most severe feature."""
    a = _derived(f)
    org, tx = a["organ_toxicity_grade"], a["transaminitis_grade"]
    g2 = (a["any_o2"] & (a["fio2"] < 40)) | (a["hypotension_any"] & ~a["high_dose"]) | (org == 2)
    g3 = (a["any_o2"] & (a["fio2"] >= 40)) | a["high_dose"] | (a["n_agents"] >= 2) | (org == 3) | (
        tx >= 4
    )
    g4 = a["ventilated"] | (org >= 4) | (a["life_threatening"] & a["hypotension_any"])
    g = np.select([g4, g3, g2], [4, 3, 2], 1)
    present = a["fever"] | (org >= 1)
    return _finish(a, np.where(present, g, 0))


def penn_crs_grade(f: CrsFeatures) -> Any:
    """Penn CRS grade (Porter 2018, §3.2).

    G2: hospitalisation for CRS symptoms / IV therapy (not fluids for hypotension), grade-2
    creatinine or grade-3 LFTs. G3: multiple fluid boluses or low-dose vasopressors, any
    supplemental oxygen, coagulopathy needing products, grade-4 LFTs or grade-3 creatinine.
    G4: high-dose vasopressors (≥ 3 h, §1.6) or mechanical ventilation.
    """
    a = _derived(f)
    cr, tx = a["creatinine_grade"], a["transaminitis_grade"]
    g2 = a["hospitalised_for_crs"] | (cr == 2) | (tx == 3)
    g3 = (a["fluid_boluses"] >= 2) | (a["n_agents"] > 0) | a["any_o2"] | a[
        "coagulopathy_needing_products"] | (tx >= 4) | (cr >= 3)
    g4 = a["high_dose"] | a["ventilated"]
    g = np.select([g4, g3, g2], [4, 3, 2], 1)
    return _finish(a, np.where(_present(a), g, 0))


def mskcc_crs_grade(f: CrsFeatures) -> Any:
    """MSKCC CRS grade (Park 2018, §3.4): vasopressor duration < or ≥ 24 h; O2 < or ≥ 40 %."""
    a = _derived(f)
    pressor = a["n_agents"] > 0
    g2 = (pressor & (a["vasopressor_hours"] < 24)) | (a["any_o2"] & (a["fio2"] < 40))
    g3 = (pressor & (a["vasopressor_hours"] >= 24)) | (a["any_o2"] & (a["fio2"] >= 40))
    g4 = (a["high_dose"] & a["vasopressor_refractory"]) | a["ventilated"]
    g = np.select([g4, g3, g2], [4, 3, 2], 1)
    return _finish(a, np.where(_present(a), g, 0))


def ctcae_crs_grade(f: CrsFeatures, version: str = "5.0") -> Any:
    """CTCAE "Cytokine release syndrome" grade, v5.0 (default) or v4.03 (§3.5).

    v5.0: G2 fluids or O2 < 40 %; G3 one pressor or O2 ≥ 40 %; G4 [I] two or more pressors,
    positive-pressure or invasive ventilation, or flagged life-threatening.
    v4.03: G2 responds to symptomatic treatment incl. IV fluids, or oxygen below 40 %; G3 [I]
    oxygen at FiO2 ≥ 40 % or organ toxicity ≥ 3 (v4.03's "hospitalisation indicated for
    clinical sequelae (renal impairment, pulmonary infiltrates)": grade 3 is where CTCAE v4.03
    itself indicates hospitalisation for an organ term, e.g. acute kidney injury, creatinine
    > 3 × baseline; v4.03 names no oxygen criterion, and the oxygen boundary is v5.0's, which
    rewrote the same term for CRS: hypoxia responding to < 40 % O2 is grade 2 there — until
    session 35 any oxygen was grade 3 here); G4 any pressor or ventilator support.
    """
    check_choice("ctcae_version", version, ("4.03", "5.0"))
    a = _derived(f)
    pressors = a["n_agents"]
    if version == "5.0":
        g2 = (a["hypotension_any"] & (pressors == 0)) | (a["any_o2"] & (a["fio2"] < 40))
        g3 = (pressors == 1) | (a["any_o2"] & (a["fio2"] >= 40))
        g4 = (a["n_vasopressors"] >= 2) | a["positive_pressure"] | a["life_threatening"]
    else:
        g2 = a["hypotension_any"] | a["hospitalised_for_crs"] | a["any_o2"]
        g3 = (a["any_o2"] & (a["fio2"] >= 40)) | (a["organ_toxicity_grade"] >= 3)
        g4 = (pressors > 0) | a["positive_pressure"] | a["life_threatening"]
    g = np.select([g4, g3, g2], [4, 3, 2], 1)
    return _finish(a, np.where(_present(a), g, 0))


def astct_crs_grade_from_features(f: CrsFeatures) -> Any:
    """ASTCT grade of the same raw features (for side-by-side regrading, §3.7)."""
    a = _derived(f)
    return astct_crs_grade(
        np.where(a["fever"], 38.5, 37.0),
        hypotension=a["hypotension_any"],
        vasopressors=a["n_vasopressors"],
        vasopressin=a["vasopressin"],
        oxygen_device=a["oxygen_device"],
        oxygen_flow_l_min=a["oxygen_flow_l_min"],
        died_of_crs=a["died_of_crs"],
    )


def support_features(fever: Any, hypotension: Any, n_vasopressors: Any, vasopressin: Any,
                     oxygen_device: Any, map_deficit_mmhg: Any,
                     norepinephrine_ug_min_per_mmhg: float) -> CrsFeatures:
    """CRS features from the support a (simulated) clinician chose: the first agent's
    norepinephrine-equivalent dose is ``norepinephrine_ug_min_per_mmhg`` × the MAP deficit it
    answers (at the default 2 µg/min per mmHg the older scales' "high dose", ≥ 20 µg/min,
    falls at a 10-mmHg deficit), every further agent is counted as another vasopressor."""
    n_vp = np.asarray(n_vasopressors)
    ne = np.where(n_vp > 0, norepinephrine_ug_min_per_mmhg * np.asarray(map_deficit_mmhg), 0.0)
    return CrsFeatures(fever=fever, hypotension=hypotension, norepinephrine_ug_min=ne,
                       other_vasopressors=np.maximum(n_vp - 1, 0), vasopressin=vasopressin,
                       oxygen_device=oxygen_device)


def episode_findings(crs_day: ArrayLike, creatinine_grade: ArrayLike, fibrinogen_mg_dl: ArrayLike,
                     anc_per_ul: ArrayLike, temperature_c: ArrayLike,
                     anticytokine_given: ArrayLike, transaminitis_grade: ArrayLike = 0,
                     fibrinogen_limit_mg_dl: float = 150.0) -> dict[str, NDArray[Any]]:
    """The :class:`CrsFeatures` fields besides fever, blood pressure and oxygen that the older
    scales read (organ toxicity, coagulopathy, admission for CRS), attributed to CRS only on the
    days of a CRS episode (``crs_day``): the CTCAE creatinine grade as organ toxicity and
    creatinine grade, the transaminase grade, fibrinogen below ``fibrinogen_limit_mg_dl`` as
    coagulopathy needing products (cryoprecipitate), and febrile neutropenia (CTCAE grade ≥ 3:
    ANC < 1000/µL with > 38.3 °C) or an anticytokine/steroid that day as admission for CRS
    (Penn grade 2). NaN labs count as normal. Shared by the simulated trials
    (trial.endpoints) and real records (clinic.records)."""
    day = np.asarray(crs_day, dtype=bool)
    organ = np.where(day, np.asarray(creatinine_grade, dtype=np.int64), 0)
    fib = np.nan_to_num(np.asarray(fibrinogen_mg_dl, dtype=float), nan=np.inf)
    anc = np.clip(np.nan_to_num(np.asarray(anc_per_ul, dtype=float), nan=1e5), 0.0, 1e6)
    temp = np.clip(np.nan_to_num(np.asarray(temperature_c, dtype=float), nan=36.8), 25.0, 45.0)
    fn = np.asarray(ctcae.febrile_neutropenia_grade(anc, temp)) >= 3
    return {
        "organ_toxicity_grade": organ,
        "creatinine_grade": organ,
        "transaminitis_grade": np.where(day, np.asarray(transaminitis_grade, dtype=np.int64), 0),
        "coagulopathy_needing_products": day & (fib < fibrinogen_limit_mg_dl),
        "hospitalised_for_crs": day & (fn | np.asarray(anticytokine_given, dtype=bool)),
    }


def support_flags(f: CrsFeatures) -> dict[str, NDArray[Any]]:
    """Per patient-day flags of the support the features record, as the papers count it:
    ``high_dose_vasopressor`` (the older scales' high-dose criterion, §3), ``oxygen`` (any
    device), ``ventilated`` (mechanical ventilation)."""
    a = _derived(f)
    return {"high_dose_vasopressor": a["high_dose"], "oxygen": a["any_o2"],
            "ventilated": a["ventilated"]}


def crs_grade_all_scales(f: CrsFeatures) -> dict[str, Any]:
    """Grade the same features on every scale in :data:`CRS_SCALES` (re-derivation, §3)."""
    return {
        "astct": astct_crs_grade_from_features(f),
        "lee2014": lee2014_crs_grade(f),
        "penn": penn_crs_grade(f),
        "cartox": cartox_crs_grade(f),
        "mskcc": mskcc_crs_grade(f),
        "ctcae_v4.03": ctcae_crs_grade(f, "4.03"),
        "ctcae_v5.0": ctcae_crs_grade(f, "5.0"),
    }


#: Published cross-walk figures (Pennisi 2020; Schuster 2020, §3.7) for sanity ranges only.
PUBLISHED_CROSSWALKS: dict[str, dict[str, float]] = {
    "pennisi2020": {
        "n_patients": 102,
        "same_grade_all_systems_crs": 0.25,
        "same_grade_all_systems_icans": 0.54,
        "presence_agreement_crs": 0.99,
        "presence_agreement_icans": 0.91,
        "astct_crs_incidence": 0.82,
        "astct_icans_incidence": 0.50,
    },
    "schuster2020_juliet": {
        "n_infused": 111,
        "crs_penn": 64,
        "crs_lee": 63,
        "crs_astct": 61,
        "lee_vs_penn_concordant": 39,
        "lee_vs_penn_lower": 20,
        "lee_vs_penn_higher": 5,
        "astct_vs_penn_concordant": 37,
        "astct_vs_penn_lower": 23,
        "astct_vs_penn_higher": 4,
        "tocilizumab_treated": 16,
    },
}


def carhlh_criteria_met(
    peak_ferritin_ng_ml: ArrayLike,
    liver_grade3: ArrayLike = False,
    renal_grade3: ArrayLike = False,
    pulmonary_edema_grade3: ArrayLike = False,
    hemophagocytosis: ArrayLike = False,
) -> Any:
    """CARTOX carHLH criteria (§3.3): peak ferritin > 10,000 ng/mL plus any two of four."""
    fer = as_float("peak_ferritin_ng_ml", peak_ferritin_ng_ml, 0.0, None)
    n = (
        as_bool("liver_grade3", liver_grade3).astype(int)
        + as_bool("renal_grade3", renal_grade3)
        + as_bool("pulmonary_edema_grade3", pulmonary_edema_grade3)
        + as_bool("hemophagocytosis", hemophagocytosis)
    )
    return result(np.asarray((fer > 10_000) & (n >= 2)))

