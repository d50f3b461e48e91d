"""Real patient records: the long CSV format, its validation, unit conversion and grading.

Format (``docs/records_format.md``): columns ``patient_id, day, measure, value, unit``; one
observation per row; ``day`` is days since infusion (fractional allowed, negative before
infusion). Invalid rows are rejected with a reason while every valid row is still graded.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cartsim.clinic import ctcae
from cartsim.clinic.crs import DEVICE_CODE, astct_crs_course, oxygen_component
from cartsim.clinic.hematotox import car_hematotox, easix, icaht_early_grade, icaht_late_grade
from cartsim.clinic.icans import (
    CONSCIOUSNESS_LEVELS,
    EDEMA_LEVELS,
    SEIZURE_LEVELS,
    astct_icans_grade,
    ice_not_assessable,
)
from cartsim.errors import InvalidInputError

REQUIRED_COLUMNS = ("patient_id", "day", "measure", "value", "unit")
DAY_RANGE = (-60.0, 3650.0)

#: Vasopressor agents counted by ASTCT (vasopressin is tracked separately, never counted).
COUNTED_VASOPRESSORS = ("norepinephrine", "epinephrine", "phenylephrine", "dopamine",
                        "angiotensin_ii")
NON_COUNTED_AGENTS = ("vasopressin", "dobutamine", "milrinone")
DEVICE_ALIASES = {"room_air": "none", "nasal_cannula": "low_flow_nasal_cannula",
                  "hfnc": "high_flow_nasal_cannula", "simple_facemask": "facemask",
                  "face_mask": "facemask", "non_rebreather": "nonrebreather",
                  "niv": "bipap", "intubated": "mechanical_ventilation"}


def _norm_unit(u: str) -> str:
    s = str(u).strip().lower().replace("µ", "u").replace("μ", "u").replace("°", "")
    s = s.replace(" ", "").replace("×", "x").replace("*", "x").replace("³", "3")
    return {"nan": "", "none": ""}.get(s, s)


def _affine(scale: float, offset: float = 0.0) -> Callable[[float], float]:
    return lambda v: v * scale + offset


_PER_UL = {"cells/ul": 1.0, "/ul": 1.0, "/mm3": 1.0, "cells/mm3": 1.0, "x10^9/l": 1000.0,
           "10^9/l": 1000.0, "g/l": 1000.0, "x10e9/l": 1000.0, "10e9/l": 1000.0,
           "k/ul": 1000.0, "x10^3/ul": 1000.0}
_FLAG_WORDS = {"0": 0.0, "1": 1.0, "no": 0.0, "yes": 1.0, "false": 0.0, "true": 1.0,
               "absent": 0.0, "present": 1.0}


@dataclass(frozen=True)
class Measure:
    """One vocabulary entry: allowed units (normalised) → converter to the canonical unit,
    the valid range in canonical units, or the allowed category words."""

    name: str
    canonical_unit: str
    units: dict[str, Callable[[float], float]] = field(default_factory=dict)
    lower: float = -math.inf
    upper: float = math.inf
    categories: tuple[str, ...] = ()
    integer: bool = False


def _units(mapping: dict[str, float]) -> dict[str, Callable[[float], float]]:
    return {k: _affine(v) for k, v in mapping.items()}


_FLAG_UNITS = {"": _affine(1.0), "flag": _affine(1.0)}
_CAT_UNITS = {"": _affine(1.0), "category": _affine(1.0), "code": _affine(1.0)}

VOCABULARY: dict[str, Measure] = {m.name: m for m in [
    Measure("temperature", "°C", {"c": _affine(1.0), "degc": _affine(1.0),
                                  "celsius": _affine(1.0), "f": _affine(5 / 9, -32 * 5 / 9),
                                  "degf": _affine(5 / 9, -32 * 5 / 9),
                                  "fahrenheit": _affine(5 / 9, -32 * 5 / 9)}, 25.0, 45.0),
    Measure("vasopressor", "agent name or count", {"": _affine(1.0), "agent": _affine(1.0),
                                                   "count": _affine(1.0)}, 0, 6,
            COUNTED_VASOPRESSORS + NON_COUNTED_AGENTS, integer=True),
    Measure("oxygen_device", "device", _CAT_UNITS, 0, 9,
            tuple(DEVICE_CODE) + tuple(DEVICE_ALIASES), integer=True),
    Measure("oxygen_flow", "L/min", _units({"l/min": 1.0, "lpm": 1.0}), 0.0, 80.0),
    Measure("spo2", "%", _units({"%": 1.0, "pct": 1.0}), 30.0, 100.0),
    Measure("map", "mmHg", _units({"mmhg": 1.0}), 10.0, 250.0),
    Measure("sbp", "mmHg", _units({"mmhg": 1.0}), 20.0, 300.0),
    Measure("hypotension", "flag", _FLAG_UNITS, 0, 1, integer=True),
    Measure("fluid_bolus", "mL", _units({"ml": 1.0, "l": 1000.0}), 0.0, 10_000.0),
    Measure("ice_score", "points", _units({"": 1.0, "points": 1.0}), 0, 10, integer=True),
    Measure("capd_score", "points", _units({"": 1.0, "points": 1.0}), 0, 32, integer=True),
    Measure("consciousness", "level", _CAT_UNITS, 0, 3, CONSCIOUSNESS_LEVELS, integer=True),
    Measure("seizure", "level", _CAT_UNITS, 0, 2, SEIZURE_LEVELS, integer=True),
    Measure("motor_weakness", "flag", _FLAG_UNITS, 0, 1, integer=True),
    Measure("cerebral_edema", "level", _CAT_UNITS, 0, 2, EDEMA_LEVELS, integer=True),
    Measure("sedated", "flag", _FLAG_UNITS, 0, 1, integer=True),
    Measure("anc", "cells/µL", _units(_PER_UL), 0.0, 1e6),
    Measure("platelets", "cells/µL", _units(_PER_UL), 0.0, 1e7),
    Measure("hemoglobin", "g/dL", _units({"g/dl": 1.0, "g/l": 0.1, "mmol/l": 1.611}), 1.0, 25.0),
    Measure("crp", "mg/L", _units({"mg/l": 1.0, "mg/dl": 10.0}), 0.0, 1000.0),
    Measure("ferritin", "ng/mL", _units({"ng/ml": 1.0, "ug/l": 1.0}), 0.0, 1e6),
    Measure("ldh", "U/L", _units({"u/l": 1.0, "iu/l": 1.0}), 0.0, 1e5),
    Measure("creatinine", "mg/dL", _units({"mg/dl": 1.0, "umol/l": 1 / 88.4}), 0.0, 30.0),
    Measure("igg", "mg/dL", _units({"mg/dl": 1.0, "g/l": 100.0}), 0.0, 1e4),
    Measure("il6", "pg/mL", _units({"pg/ml": 1.0, "ng/l": 1.0}), 0.0, 1e7),
    Measure("tocilizumab", "mg", _units({"mg": 1.0}), 0.0, 1200.0),
    Measure("dexamethasone", "mg", _units({"mg": 1.0}), 0.0, 500.0),
    Measure("methylprednisolone", "mg", _units({"mg": 1.0, "g": 1000.0}), 0.0, 3000.0),
    Measure("age", "years", _units({"y": 1.0, "yr": 1.0, "years": 1.0, "year": 1.0,
                                    "months": 1 / 12}), 0.0, 120.0),
    Measure("weight", "kg", _units({"kg": 1.0, "lb": 0.45359237, "lbs": 0.45359237}),
            0.5, 350.0),
]}


@dataclass
class ParsedRecords:
    """Valid observations in canonical units, and the rejected rows with reasons."""

    valid: pd.DataFrame
    rejected: pd.DataFrame
    n_rows: int


def read_records(path: Path) -> pd.DataFrame:
    """Read the CSV as strings; raise :class:`InvalidInputError` on a fatal problem."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise InvalidInputError("records", "an existing CSV file", str(path)) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
            IsADirectoryError, PermissionError) as exc:
        raise InvalidInputError("records", "a readable CSV file", str(path),
                                hint=str(exc)) from None
    df.columns = [str(c).strip().lower() for c in df.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise InvalidInputError("columns", ", ".join(REQUIRED_COLUMNS),
                                ", ".join(df.columns), hint="missing " + ", ".join(missing))
    if df.empty:
        raise InvalidInputError("records", "at least one data row", "0 rows")
    return df


def _parse_row(measure: str, raw_value: str, raw_unit: str) -> tuple[float, str] | str:
    """Canonical value and agent name, or the rejection reason."""
    m = VOCABULARY.get(measure)
    if m is None:
        return f"unknown measure {measure!r}"
    unit = _norm_unit(raw_unit)
    if unit not in m.units:
        allowed = ", ".join(repr(u) for u in m.units)
        return f"unknown unit {raw_unit!r} for {measure} (allowed: {allowed})"
    stripped = raw_value.strip()
    text = stripped if _is_number(stripped) else stripped.lower().replace(" ", "_").replace(
        "-", "_")
    agent = ""
    if m.categories and not _is_number(text):
        if measure == "vasopressor":
            if unit == "count":
                return f"vasopressor count must be a number, got {raw_value!r}"
            if text not in m.categories:
                return f"unknown vasopressor {raw_value!r} (allowed: {', '.join(m.categories)})"
            return 1.0, text
        if measure == "oxygen_device":
            dev = DEVICE_ALIASES.get(text, text)
            if dev not in DEVICE_CODE:
                return f"unknown oxygen_device {raw_value!r}"
            return float(DEVICE_CODE[dev]), text
        if text not in m.categories:
            return f"unknown {measure} {raw_value!r} (allowed: {', '.join(m.categories)})"
        return float(m.categories.index(text)), agent
    if measure in ("motor_weakness", "sedated", "hypotension") and text in _FLAG_WORDS:
        return _FLAG_WORDS[text], agent
    if measure == "vasopressor" and unit != "count":
        return f"vasopressor value must be an agent name or use unit 'count', got {raw_value!r}"
    try:
        v = float(text)
    except ValueError:
        return f"value {raw_value!r} is not a number"
    if not math.isfinite(v):
        return f"value {raw_value!r} is not finite"
    v = m.units[unit](v)
    if v < m.lower or v > m.upper:
        return (f"impossible {measure} {raw_value} {raw_unit}".rstrip()
                + f" (allowed {m.lower:g}–{m.upper:g} {m.canonical_unit})")
    if m.integer and v != round(v):
        return f"{measure} must be a whole number, got {raw_value!r}"
    return v, agent


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_records(df: pd.DataFrame) -> ParsedRecords:
    """Validate every row; rows are numbered as CSV lines (header = line 1)."""
    rows: list[tuple[int, str, float, str, float, str]] = []
    rejected: list[tuple[int, str, str, str]] = []
    for i, r in enumerate(df.itertuples(index=False)):
        line = i + 2
        d = r._asdict()
        pid = str(d["patient_id"]).strip()
        measure = str(d["measure"]).strip().lower()
        if not pid:
            rejected.append((line, pid, measure, "missing patient_id"))
            continue
        try:
            day = float(str(d["day"]).strip())
        except ValueError:
            rejected.append((line, pid, measure, f"day {d['day']!r} is not a number"))
            continue
        if not (DAY_RANGE[0] <= day <= DAY_RANGE[1]):
            rejected.append((line, pid, measure,
                             f"day {day:g} outside {DAY_RANGE[0]:g}–{DAY_RANGE[1]:g}"))
            continue
        parsed = _parse_row(measure, str(d["value"]), str(d["unit"]))
        if isinstance(parsed, str):
            rejected.append((line, pid, measure, parsed))
            continue
        rows.append((line, pid, day, measure, parsed[0], parsed[1]))
    valid = pd.DataFrame(rows, columns=["row", "patient_id", "day", "measure", "value", "agent"])
    rej = pd.DataFrame(rejected, columns=["row", "patient_id", "measure", "reason"])
    return ParsedRecords(valid=valid, rejected=rej, n_rows=len(df))


# --------------------------------------------------------------------------------------------
# Daily aggregation and grading
# --------------------------------------------------------------------------------------------

_DAILY_AGG = {
    "temperature": "max", "oxygen_flow": "max", "spo2": "min", "map": "min", "sbp": "min",
    "hypotension": "max", "fluid_bolus": "sum", "ice_score": "min", "capd_score": "max",
    "consciousness": "max", "seizure": "max", "motor_weakness": "max", "cerebral_edema": "max",
    "sedated": "max", "anc": "min", "platelets": "min", "hemoglobin": "min", "crp": "max",
    "ferritin": "max", "ldh": "max", "creatinine": "max", "igg": "min", "il6": "max",
    "tocilizumab": "sum", "dexamethasone": "sum", "methylprednisolone": "sum",
}


def daily_table(valid: pd.DataFrame) -> pd.DataFrame:
    """One row per patient and whole day (floor of ``day``) with the daily features."""
    v = valid.assign(day_int=np.floor(valid["day"]).astype(int))
    keys = ["patient_id", "day_int"]
    base = v[keys].drop_duplicates().set_index(keys).sort_index()
    num = v[v["measure"].isin(_DAILY_AGG)]
    for measure, how in _DAILY_AGG.items():
        sub = num[num["measure"] == measure].groupby(keys)["value"].agg(how)
        base[measure] = sub
    # oxygen: worst ASTCT component of the day's devices (flow decides for nasal cannula)
    dev = v[v["measure"] == "oxygen_device"].copy()
    if not dev.empty:
        dev["component"] = oxygen_component(dev["value"].to_numpy(dtype=int))
        worst = dev.sort_values("component").groupby(keys).tail(1).set_index(keys)["value"]
        base["oxygen_device"] = worst
    else:
        base["oxygen_device"] = np.nan
    vp = v[v["measure"] == "vasopressor"]
    named = vp[vp["agent"] != ""]
    counted = named[named["agent"].isin(COUNTED_VASOPRESSORS)].groupby(keys)["agent"].nunique()
    counts = vp[vp["agent"] == ""].groupby(keys)["value"].max()
    base["vasopressors"] = pd.concat([counted, counts], axis=1).max(axis=1)
    base["vasopressin"] = named[named["agent"] == "vasopressin"].groupby(keys)["agent"].size() > 0
    # patient-level constants
    for measure in ("age", "weight"):
        per_patient = v[v["measure"] == measure].groupby("patient_id")["value"].first()
        base[measure] = base.index.get_level_values(0).map(per_patient)
    base = base.reset_index().rename(columns={"day_int": "day"})
    for col in ("vasopressors", "fluid_bolus", "tocilizumab", "dexamethasone",
                "methylprednisolone"):
        base[col] = base[col].fillna(0.0)
    base["vasopressin"] = base["vasopressin"].astype("boolean").fillna(False).astype(bool)
    return base


def _hypotension(d: pd.DataFrame) -> np.ndarray:
    age = d["age"].to_numpy(dtype=float)
    sbp_limit = np.where(age < 1, 70.0, np.where(age < 10, 70.0 + 2.0 * age, 90.0))
    sbp_limit = np.where(np.isnan(age), 90.0, sbp_limit)
    sbp_low = d["sbp"].to_numpy(dtype=float) < sbp_limit
    map_low = (d["map"].to_numpy(dtype=float) < 65.0) & ~(age < 10)
    return (sbp_low | map_low | (d["fluid_bolus"].to_numpy() > 0)
            | (d["hypotension"].fillna(0).to_numpy() > 0) | (d["vasopressors"].to_numpy() > 0)
            | d["vasopressin"].to_numpy())


def _int_or_na(values: np.ndarray, missing: np.ndarray) -> pd.Series:
    s = pd.Series(values.astype("int64"), dtype="Int64")
    s[missing] = pd.NA
    return s


def grade_daily(daily: pd.DataFrame, ctcae_version: str = "5.0") -> pd.DataFrame:
    """Daily grades (ASTCT CRS course per patient, ASTCT ICANS, CTCAE cytopenias)."""
    d = daily.sort_values(["patient_id", "day"]).reset_index(drop=True)
    pos = d.groupby("patient_id").cumcount().to_numpy()
    pids, pidx = np.unique(d["patient_id"].to_numpy(), return_inverse=True)
    shape = (len(pids), int(pos.max()) + 1)

    def grid(values: np.ndarray, fill: Any) -> np.ndarray:
        g = np.full(shape, fill, dtype=np.asarray(values).dtype)
        g[pidx, pos] = values
        return g

    dev = d["oxygen_device"].fillna(0).to_numpy(dtype=int)
    course = astct_crs_course(
        grid(d["temperature"].to_numpy(dtype=float), np.nan),
        hypotension=grid(_hypotension(d), False),
        vasopressors=grid(d["vasopressors"].to_numpy(dtype=float), 0.0),
        vasopressin=grid(d["vasopressin"].to_numpy(dtype=bool), False),
        oxygen_device=grid(dev, 0),
        oxygen_flow_l_min=grid(d["oxygen_flow"].to_numpy(dtype=float), np.nan),
        anticytokine_given=grid(
            (d[["tocilizumab", "dexamethasone", "methylprednisolone"]].to_numpy() > 0).any(axis=1),
            False),
    )
    out = pd.DataFrame({"patient_id": d["patient_id"], "day": d["day"]})
    out["crs_grade_astct"] = course.grade[pidx, pos]
    out["crs_fever_masked"] = course.fever_masked[pidx, pos]
    icans_kw = dict(
        consciousness=d["consciousness"].fillna(0).to_numpy(),
        seizure=d["seizure"].fillna(0).to_numpy(),
        motor_weakness=d["motor_weakness"].fillna(0).to_numpy(),
        cerebral_edema=d["cerebral_edema"].fillna(0).to_numpy(),
    )
    out["icans_grade_astct"] = astct_icans_grade(
        d["ice_score"].to_numpy(dtype=float), **icans_kw,
        capd_score=d["capd_score"].to_numpy(dtype=float), age_y=d["age"].to_numpy(dtype=float),
        sedated=d["sedated"].fillna(0).to_numpy(),
    )
    neuro_obs = d[["ice_score", "capd_score", "consciousness", "seizure", "motor_weakness",
                   "cerebral_edema", "sedated"]].notna().any(axis=1).to_numpy()
    flag = ice_not_assessable(d["ice_score"].to_numpy(dtype=float),
                              d["capd_score"].to_numpy(dtype=float),
                              d["age"].to_numpy(dtype=float), d["sedated"].fillna(0).to_numpy(),
                              icans_kw["consciousness"])
    out["icans_ice_not_assessable"] = np.asarray(flag) & neuro_obs
    anc = d["anc"].to_numpy(dtype=float)
    plt = d["platelets"].to_numpy(dtype=float)
    hb = d["hemoglobin"].to_numpy(dtype=float)
    temp = d["temperature"].to_numpy(dtype=float)
    out["neutropenia_grade"] = _int_or_na(ctcae.neutrophil_grade(anc, version=ctcae_version),
                                          np.isnan(anc))
    out["thrombocytopenia_grade"] = _int_or_na(ctcae.platelet_grade(plt, version=ctcae_version),
                                               np.isnan(plt))
    out["anemia_grade"] = _int_or_na(ctcae.anemia_grade(hb, version=ctcae_version), np.isnan(hb))
    out["fever_grade_ctcae"] = _int_or_na(ctcae.fever_grade(temp), np.isnan(temp))
    out["febrile_neutropenia_grade"] = _int_or_na(
        ctcae.febrile_neutropenia_grade(anc, temp), np.isnan(anc) | np.isnan(temp))
    for col, src in (("temperature_max_c", "temperature"), ("vasopressors", "vasopressors"),
                     ("oxygen_device", "oxygen_device"), ("ice_score", "ice_score"),
                     ("anc_per_ul", "anc"), ("platelets_per_ul", "platelets"),
                     ("hemoglobin_g_dl", "hemoglobin")):
        out[col] = d[src].to_numpy()
    return out


def _episode_stats(days: np.ndarray, grades: np.ndarray) -> tuple[Any, Any, Any, int]:
    on = grades >= 1
    if not on.any():
        return 0, pd.NA, pd.NA, 0
    return int(grades.max()), float(days[on][0]), float(days[np.argmax(grades)]), int(on.sum())


def patient_summary(valid: pd.DataFrame, grades: pd.DataFrame) -> pd.DataFrame:
    """Per patient: max grades, onset day, day of max grade, duration (days graded ≥ 1),
    ICAHT early/late grades, and baseline CAR-HEMATOTOX and EASIX (latest values on day ≤ 0)."""
    out = []
    for pid, g in grades.groupby("patient_id", sort=True):
        days = g["day"].to_numpy(dtype=float)
        row: dict[str, Any] = {"patient_id": pid, "first_day": days.min(), "last_day": days.max()}
        for name, col in (("crs", "crs_grade_astct"), ("icans", "icans_grade_astct")):
            mx, onset, at_max, dur = _episode_stats(days, g[col].to_numpy())
            row.update({f"{name}_max_grade": mx, f"{name}_onset_day": onset,
                        f"{name}_max_grade_day": at_max, f"{name}_duration_days": dur})
        for col in ("neutropenia_grade", "thrombocytopenia_grade", "anemia_grade"):
            s = g[col].dropna()
            row[col.replace("_grade", "_max_grade")] = int(s.max()) if len(s) else pd.NA
        anc = g[["day", "anc_per_ul"]].dropna()
        early = anc[(anc["day"] >= 0) & (anc["day"] <= 30)]
        row["icaht_early_grade"] = (icaht_early_grade(early["anc_per_ul"].to_numpy(),
                                                      early["day"].to_numpy(dtype=float))
                                    if len(early) else pd.NA)
        late = anc[anc["day"] > 30]
        row["icaht_late_grade"] = (icaht_late_grade(late["anc_per_ul"].to_numpy(),
                                                    late["day"].to_numpy(dtype=float))
                                   if len(late) else pd.NA)
        base = valid[(valid["patient_id"] == pid) & (valid["day"] <= 0)].sort_values("day")
        latest = base.groupby("measure")["value"].last()

        def lab(name: str, latest: pd.Series = latest) -> float:
            return float(latest.get(name, np.nan))

        ht = car_hematotox(lab("platelets"), lab("anc"), lab("hemoglobin"), lab("crp"),
                           lab("ferritin"))
        row["car_hematotox_baseline"] = pd.NA if np.isnan(ht) else int(ht)
        ex = easix(lab("ldh"), lab("creatinine"), max(lab("platelets"), 1.0)
                   if not np.isnan(lab("platelets")) else np.nan)
        row["easix_baseline"] = pd.NA if np.isnan(ex) else round(float(ex), 3)
        out.append(row)
    df = pd.DataFrame(out)
    for col in df.columns:
        if col.endswith(("_grade", "_days", "_hematotox_baseline")):
            df[col] = df[col].astype("Int64")
    return df


def grade_records(
    path: Path, ctcae_version: str = "5.0"
) -> tuple[ParsedRecords, pd.DataFrame, pd.DataFrame]:
    """Read, validate and grade a records CSV: (parsed, daily grades, patient summary)."""
    ctcae.neutrophil_grade(1000.0, version=ctcae_version)  # validates the version name
    parsed = parse_records(read_records(path))
    if parsed.valid.empty:
        empty = pd.DataFrame(columns=["patient_id", "day", "crs_grade_astct",
                                      "icans_grade_astct"])
        return parsed, empty, pd.DataFrame(columns=["patient_id"])
    daily = daily_table(parsed.valid)
    grades = grade_daily(daily, ctcae_version)
    return parsed, grades, patient_summary(parsed.valid, grades)
