"""Real patient records: the long CSV format, its validation, unit conversion and grading.

Format (``docs/records_format.md``): columns ``patient_id, day, measure, value, unit``; one
observation per row; ``day`` is days since infusion (fractional allowed, negative before
infusion). Invalid rows are rejected with a reason while every valid row is still graded.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cartsim.clinic import ctcae
from cartsim.clinic.crs import (
    DEVICE_CODE,
    CrsFeatures,
    astct_crs_course,
    cartox_crs_grade,
    episode_findings,
    lee2014_crs_grade,
    oxygen_component,
    penn_crs_grade,
)
from cartsim.clinic.hematotox import car_hematotox, easix, icaht_early_grade, icaht_late_grade
from cartsim.clinic.icans import (
    CONSCIOUSNESS_LEVELS,
    EDEMA_LEVELS,
    SEIZURE_LEVELS,
    astct_icans_grade,
    ice_not_assessable,
)
from cartsim.clinic.iechs import (
    FIBRINOGEN_LOW_MG_DL,
    fibrinogen_decreased_grade,
    iechs_course,
    iechs_grade,
)
from cartsim.clinic.neurotox import ctcae_neuro_grade
from cartsim.clinic.tls import (
    WINDOW_DAYS,
    cairo_bishop_grade,
    creatinine_uln_mg_dl,
    creatinine_uln_mg_dl_default,
    laboratory_tls,
    tls_lab_criteria,
)
from cartsim.errors import InvalidInputError

REQUIRED_COLUMNS = ("patient_id", "day", "measure", "value", "unit")
DAY_RANGE = (-60.0, 3650.0)

#: Vasopressor agents counted by ASTCT (vasopressin is tracked separately, never counted).
COUNTED_VASOPRESSORS = ("norepinephrine", "epinephrine", "phenylephrine", "dopamine",
                        "angiotensin_ii")
NON_COUNTED_AGENTS = ("vasopressin", "dobutamine", "milrinone")
#: Device words charts use → ASTCT device. A nasal cannula is recorded as low-flow; its flow
#: decides (> 6 L/min is high-flow, ASTCT CRS-R3/R4), so give the flow when it is known.
DEVICE_ALIASES = {
    "room_air": "none", "ra": "none", "no_oxygen": "none",
    "nasal_cannula": "low_flow_nasal_cannula", "nc": "low_flow_nasal_cannula",
    "nasal_prongs": "low_flow_nasal_cannula", "lfnc": "low_flow_nasal_cannula",
    "low_flow": "low_flow_nasal_cannula", "low_flow_nc": "low_flow_nasal_cannula",
    "hfnc": "high_flow_nasal_cannula", "high_flow": "high_flow_nasal_cannula",
    "high_flow_nc": "high_flow_nasal_cannula", "heated_high_flow": "high_flow_nasal_cannula",
    "optiflow": "high_flow_nasal_cannula", "airvo": "high_flow_nasal_cannula",
    "simple_facemask": "facemask", "face_mask": "facemask", "simple_face_mask": "facemask",
    "simple_mask": "facemask", "mask": "facemask", "oxygen_mask": "facemask",
    "non_rebreather": "nonrebreather", "nrb": "nonrebreather",
    "non_rebreather_mask": "nonrebreather", "nonrebreather_mask": "nonrebreather",
    "venturi_mask": "venturi", "blowby": "blow_by",
    "niv": "bipap", "nippv": "bipap", "bilevel": "bipap",
    "intubated": "mechanical_ventilation", "ventilated": "mechanical_ventilation",
    "ventilator": "mechanical_ventilation", "imv": "mechanical_ventilation",
    "invasive_ventilation": "mechanical_ventilation",
}
#: Seizure descriptions → ASTCT ICANS seizure level. Any clinical seizure, focal or
#: generalised, that resolves, or non-convulsive seizures on EEG that respond to treatment, is
#: the grade-3 finding; status epilepticus, a seizure > 5 min or repetitive seizures without
#: return to baseline are the grade-4 finding (clinical_standards.md §2.2, ICANS-05/12).
SEIZURE_ALIASES = {
    **{w: "self_limiting" for w in (
        "focal", "focal_seizure", "partial", "partial_seizure", "simple_partial",
        "complex_partial", "generalised", "generalized", "generalised_seizure",
        "generalized_seizure", "tonic_clonic", "generalised_tonic_clonic",
        "generalized_tonic_clonic", "gtc", "gtcs", "seizure", "clinical_seizure",
        "non_convulsive_on_eeg", "nonconvulsive_on_eeg", "non_convulsive",
        "nonconvulsive", "non_convulsive_seizure", "nonconvulsive_seizure",
        "eeg_seizure", "electrographic", "electrographic_seizure", "subclinical_on_eeg",
        "resolved", "brief", "self_limited", "yes")},
    **{w: "prolonged_or_repetitive" for w in (
        "status_epilepticus", "convulsive_status_epilepticus",
        "non_convulsive_status_epilepticus", "nonconvulsive_status_epilepticus", "ncse",
        "prolonged", "prolonged_seizure", "repetitive", "repetitive_seizures", "recurrent")},
    **{w: "none" for w in ("no", "absent", "no_seizure", "nil")},
}
#: Vasopressor names charts use → the agent the grader counts.
AGENT_ALIASES = {"noradrenaline": "norepinephrine", "levophed": "norepinephrine",
                 "ne": "norepinephrine", "adrenaline": "epinephrine",
                 "neosynephrine": "phenylephrine", "neo_synephrine": "phenylephrine",
                 "angiotensin": "angiotensin_ii", "giapreza": "angiotensin_ii",
                 "ang_ii": "angiotensin_ii", "adh": "vasopressin"}
_FLOW_UNITS = r"(?:l/min|l/m|lpm|l|litres?/min|liters?/min|litres?|liters?)"
_DEVICE_FLOW = re.compile(r"^(?P<dev>[^\d]+?)\s*(?:at\s*|@\s*)?(?P<flow>\d+(?:\.\d+)?)\s*"
                          + _FLOW_UNITS + r"?\s*$")
_FLOW_DEVICE = re.compile(r"^(?P<flow>\d+(?:\.\d+)?)\s*" + _FLOW_UNITS
                          + r"\s*(?:via\s+|by\s+)?(?P<dev>[^\d]+)$")
_AGENT_DOSE = re.compile(r"^(?P<agent>[^\d]+?)\s*(?P<dose>\d+(?:\.\d+)?)?\s*"
                         r"(?P<unit>(?:mcg|µg|μg|ug|mg|units?|u|ng)(?:/kg)?/(?:min|h|hr))?\s*$")


def chart_word(text: str) -> str:
    """Normalise a chart word: lower case, runs of spaces, hyphens and slashes → ``_``."""
    return re.sub(r"[\s\-/]+", "_", str(text).strip().lower()).strip("_")


def expand_chart_text(measure: str, value: str) -> list[tuple[str, str, str]] | None:
    """Free text a chart uses in one cell → (measure, value, unit) observations, or None when
    the cell is not such text. ``oxygen_device`` = "nasal cannula 4 L/min" gives the device and
    an ``oxygen_flow`` of 4 L/min; ``vasopressor`` = "norepinephrine 0.1 µg/kg/min" gives the
    agent (ASTCT counts agents, not doses); ``seizure`` = "focal", "generalised",
    "non-convulsive on EEG", "status epilepticus" … gives the ASTCT seizure level."""
    text = str(value).strip().lower()
    if not text:
        return None
    if measure == "oxygen_device":
        m = _DEVICE_FLOW.match(text) or _FLOW_DEVICE.match(text)
        if m:
            dev = chart_word(m.group("dev"))
            return [("oxygen_device", DEVICE_ALIASES.get(dev, dev), ""),
                    ("oxygen_flow", m.group("flow"), "L/min")]
        dev = chart_word(text)
        return [("oxygen_device", DEVICE_ALIASES.get(dev, dev), "")] if dev in DEVICE_ALIASES \
            else None
    if measure == "vasopressor":
        m = _AGENT_DOSE.match(text.replace("μ", "µ"))
        if m and (m.group("dose") or m.group("unit")
                  or chart_word(m.group("agent")) in AGENT_ALIASES):
            agent = chart_word(m.group("agent"))
            return [("vasopressor", AGENT_ALIASES.get(agent, agent), "")]
        return None
    if measure == "seizure":
        word = chart_word(text)
        return [("seizure", SEIZURE_ALIASES[word], "")] if word in SEIZURE_ALIASES else None
    return None


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
    Measure("fibrinogen", "mg/dL", _units({"mg/dl": 1.0, "g/l": 100.0}), 0.0, 2000.0),
    Measure("urate", "mg/dL", _units({"mg/dl": 1.0, "umol/l": 1 / 59.48}), 0.0, 100.0),
    Measure("potassium", "mmol/L", _units({"mmol/l": 1.0, "meq/l": 1.0}), 0.5, 15.0),
    Measure("phosphate", "mg/dL", _units({"mg/dl": 1.0, "mmol/l": 3.097}), 0.0, 50.0),
    Measure("calcium", "mg/dL", _units({"mg/dl": 1.0, "mmol/l": 4.008}), 1.0, 25.0),
    Measure("alt", "U/L", _units({"u/l": 1.0, "iu/l": 1.0}), 0.0, 1e5),
    Measure("ast", "U/L", _units({"u/l": 1.0, "iu/l": 1.0}), 0.0, 1e5),
    Measure("hemophagocytosis", "flag", _FLAG_UNITS, 0, 1, integer=True),
    Measure("tremor", "CTCAE grade", _units({"": 1.0, "grade": 1.0}), 0, 3, integer=True),
    Measure("headache", "CTCAE grade", _units({"": 1.0, "grade": 1.0}), 0, 3, integer=True),
    Measure("arrhythmia", "CTCAE grade", _units({"": 1.0, "grade": 1.0}), 0, 4, integer=True),
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
    """Valid observations in canonical units, the rejected rows with reasons, and warnings
    (rows repaired or decoded, conflicting baseline values) that lost no data."""

    valid: pd.DataFrame
    rejected: pd.DataFrame
    n_rows: int
    warnings: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["row", "patient_id", "measure", "warning"]))


#: Column of :func:`read_records` output with the row's problem ("" = none) and its line.
PROBLEM, LINE, SOURCE_COLUMN = "_problem", "_line", "_source"
_UNDEFINED_CP1252 = {0x81, 0x8D, 0x8F, 0x90, 0x9D}


def _decode_lines(data: bytes) -> tuple[list[str], dict[int, str]]:
    """Split a file into text lines. A UTF-8 file (with or without byte-order mark) decodes as
    is; otherwise each line that is not UTF-8 is decoded as Windows-1252 (Excel's "CSV" on
    Western Windows: ``°F`` is byte 0xB0), with a note per line, and a line with bytes that
    Windows-1252 does not define is marked as undecodable. Returns (lines, {line number:
    note}); line numbers count from 1."""
    try:
        return data.decode("utf-8-sig").splitlines(), {}
    except UnicodeDecodeError:
        pass
    lines, notes = [], {}
    raw = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    for i, b in enumerate(raw.splitlines(), start=1):
        try:
            lines.append(b.decode("utf-8"))
            continue
        except UnicodeDecodeError:
            pass
        if any(c in _UNDEFINED_CP1252 for c in b):
            lines.append(b.decode("cp1252", errors="replace"))
            notes[i] = "undecodable: neither UTF-8 nor Windows-1252 text"
        else:
            lines.append(b.decode("cp1252"))
            notes[i] = "decoded as Windows-1252 (not UTF-8)"
    return lines, notes


def read_records(path: Path) -> pd.DataFrame:
    """Read the long CSV as strings, one output row per data line; raise
    :class:`InvalidInputError` on a fatal problem (missing, unreadable, no header columns, no
    rows).

    Structural problems stay per row, never shifting other rows: a line with more cells than
    the header whose extra cells are all empty (Excel's trailing commas) is repaired; other
    ragged lines and undecodable lines get a reason in column ``_problem``; ``_line`` is the
    CSV line number (header = 1). Non-UTF-8 lines are decoded as Windows-1252 and noted in
    column ``_note``.
    """
    p = Path(path)
    if not p.exists():
        raise InvalidInputError("records", "an existing CSV file", str(p))
    if not p.is_file():
        raise InvalidInputError("records", "a CSV file, not a directory", str(p))
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InvalidInputError("records", "a readable CSV file", str(p),
                                hint=exc.strerror or "") from None
    if b"\x00" in data[:4096]:
        raise InvalidInputError("records", "a text CSV file", str(p),
                                hint="binary content (NUL bytes); UTF-16 is not supported")
    lines, notes = _decode_lines(data)
    starts: list[int] = []
    rows: list[list[str]] = []
    reader = csv.reader(_numbered(lines, starts), skipinitialspace=True)
    try:
        for cells in reader:
            rows.append(cells)
    except csv.Error as exc:
        raise InvalidInputError("records", "a readable CSV file", str(p),
                                hint=f"line {reader.line_num}: {exc}") from None
    header_i = next((i for i, r in enumerate(rows) if any(c.strip() for c in r)), None)
    if header_i is None:
        raise InvalidInputError("records", "a header line and at least one data row",
                                "an empty file")
    header = [c.strip().lower().lstrip("\ufeff") for c in rows[header_i]]
    while header and header[-1] == "":
        header.pop()  # Excel's trailing comma on the header line
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise InvalidInputError("columns", ", ".join(REQUIRED_COLUMNS), ", ".join(header),
                                hint="missing " + ", ".join(missing))
    n = len(header)
    out: list[list[str]] = []
    for cells, line in zip(rows[header_i + 1:], starts[header_i + 1:], strict=True):
        if not any(c.strip() for c in cells):
            continue  # blank line
        problem, note = "", notes.get(line, "")
        if note.startswith("undecodable"):
            problem = f"line is {note}"
        elif len(cells) > n:
            if any(c.strip() for c in cells[n:]):
                problem = (f"ragged row: {len(cells)} cells but the header has {n} "
                           "(an unquoted comma in a value?)")
            else:
                cells = cells[:n]
                note = (note + "; " if note else "") + "trailing empty cells removed"
        elif len(cells) < n:
            problem = f"ragged row: {len(cells)} cells but the header has {n}"
        cells = (cells + [""] * n)[:n]
        out.append([*cells, problem, note, str(line)])
    if not out:
        raise InvalidInputError("records", "at least one data row", "0 rows")
    df = pd.DataFrame(out, columns=[*header, PROBLEM, "_note", LINE])
    return df.loc[:, ~df.columns.duplicated()]


def _numbered(lines: list[str], starts: list[int]) -> Iterator[str]:
    """Feed lines to ``csv.reader`` and record the line on which each record starts."""
    pending = True
    for i, line in enumerate(lines, start=1):
        if pending:
            starts.append(i)
        # a record continues on the next line only inside an open quoted field
        pending = line.count('"') % 2 == 0 if pending else line.count('"') % 2 == 1
        yield line
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
    """Validate every row; rows are numbered as CSV lines (header = line 1).

    Besides per-value checks, a row identical to an earlier one (same patient, day, measure,
    value and unit) is rejected as a duplicate (it would count a dose or a fluid bolus twice),
    and a patient with two different ages or weights gets a warning on each conflicting row
    (the earliest value is used).
    """
    n = len(df)

    def col(name: str, default: str = "") -> list[str]:
        return [str(v) for v in df[name]] if name in df.columns else [default] * n

    lines = ([int(v) for v in df[LINE]] if LINE in df.columns else list(range(2, n + 2)))
    sources = col(SOURCE_COLUMN) if SOURCE_COLUMN in df.columns else None
    problems, notes = col(PROBLEM), col("_note")
    pids, days, measures, values, units = (col(c) for c in REQUIRED_COLUMNS)
    rows: list[tuple[int, str, float, str, float, str]] = []
    rejected: list[tuple[int, str, str, str]] = []
    rej_src: list[int] = []
    warnings: list[tuple[int, str, str, str]] = []
    seen: dict[tuple[str, float, str, str, str], int] = {}
    for i in range(n):
        line = lines[i]
        pid = pids[i].strip()
        measure = measures[i].strip().lower()
        if notes[i]:
            warnings.append((line, pid, measure, notes[i]))
        if problems[i]:
            rej_src.append(i)
            rejected.append((line, pid, measure, problems[i]))
            continue
        if not pid:
            rej_src.append(i)
            rejected.append((line, pid, measure, "missing patient_id"))
            continue
        try:
            day = float(days[i].strip())
        except ValueError:
            rej_src.append(i)
            rejected.append((line, pid, measure, f"day {days[i]!r} is not a number"))
            continue
        if not (DAY_RANGE[0] <= day <= DAY_RANGE[1]):
            rej_src.append(i)
            rejected.append((line, pid, measure,
                             f"day {day:g} outside {DAY_RANGE[0]:g}–{DAY_RANGE[1]:g}"))
            continue
        key = (pid, day, measure, values[i].strip().lower(), _norm_unit(units[i]))
        if key in seen:
            rej_src.append(i)
            rejected.append((line, pid, measure, f"duplicate of line {seen[key]}"))
            continue
        seen[key] = line
        items = expand_chart_text(measure, values[i]) if _norm_unit(units[i]) in (
            "", "category", "agent", "text") else None
        obs = []
        for m_, v_, u_ in items or [(measure, values[i], units[i])]:
            parsed = _parse_row(m_, v_, u_)
            if isinstance(parsed, str):
                break
            obs.append((line, pid, day, m_, parsed[0], parsed[1]))
        if isinstance(parsed, str):
            rej_src.append(i)
            rejected.append((line, pid, measure, parsed))
            continue
        rows += obs
    valid = pd.DataFrame(rows, columns=["row", "patient_id", "day", "measure", "value", "agent"])
    warnings += _baseline_conflicts(valid)
    rej = pd.DataFrame(rejected, columns=["row", "patient_id", "measure", "reason"])
    warn = pd.DataFrame(warnings, columns=["row", "patient_id", "measure", "warning"])
    if sources is not None and len(set(sources)) > 1:  # several files: name each row's
        rej.insert(0, "source", [sources[k] for k in rej_src])
    return ParsedRecords(valid=valid, rejected=rej, n_rows=n,
                         warnings=warn.sort_values("row", kind="stable").reset_index(drop=True))


#: Patient-level constants: one value per patient is expected.
BASELINE_MEASURES = ("age", "weight")


def _baseline_conflicts(valid: pd.DataFrame) -> list[tuple[int, str, str, str]]:
    """A warning for each row whose age/weight differs from the patient's first value."""
    out = []
    base = valid[valid["measure"].isin(BASELINE_MEASURES)].sort_values(["day", "row"])
    for (pid, measure), g in base.groupby(["patient_id", "measure"], sort=False):
        first = g.iloc[0]
        unit = VOCABULARY[str(measure)].canonical_unit
        for r in g.iloc[1:].itertuples(index=False):
            if not math.isclose(r.value, first["value"], rel_tol=1e-6, abs_tol=1e-9):
                out.append((int(r.row), str(pid), str(measure),
                            f"conflicting {measure}: {r.value:g} {unit} here, "
                            f"{first['value']:g} {unit} on line {int(first['row'])}; "
                            "the first value is used"))
    return out


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
    "fibrinogen": "min", "urate": "max", "potassium": "max", "phosphate": "max",
    "calcium": "min", "alt": "max", "ast": "max", "hemophagocytosis": "max", "tremor": "max",
    "headache": "max", "arrhythmia": "max",
}
#: Upper limits of normal used for ALT/AST (IEC-HS transaminitis, > 5 × ULN) [I: common adult
#: reference values; the records carry no lab-specific ULN].
ALT_ULN_U_L = 40.0
AST_ULN_U_L = 40.0


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
        per_patient = (v[v["measure"] == measure].sort_values(["day", "row"])
                       .groupby("patient_id")["value"].first())
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


def _older_crs_scales(d: pd.DataFrame, out: pd.DataFrame, tx_uln: np.ndarray, anc: np.ndarray,
                      temp: np.ndarray) -> dict[str, np.ndarray]:
    """Lee 2014, Penn and CARTOX CRS grades of each day from the same findings the simulated
    trials feed them (trial.endpoints): fever ≥ 38.0 °C, hypotension, any fluid bolus (one: the
    records give the day's volume, not the number of boluses), vasopressor agents and
    vasopressin, oxygen device and flow; on days of an ASTCT CRS episode also the creatinine and
    transaminase grades (organ toxicity), fibrinogen < 150 mg/dL (coagulopathy needing products)
    and febrile neutropenia or an anticytokine/steroid (admission for CRS). The records carry
    vasopressor agents, not doses, so the older scales' high-dose criterion is never met: where
    vasopressors were given these grades are lower bounds."""
    crs_day = out["crs_grade_astct"].to_numpy() > 0
    drugs = (d[["tocilizumab", "dexamethasone", "methylprednisolone"]].to_numpy() > 0).any(axis=1)
    f = CrsFeatures(
        fever=np.nan_to_num(temp, nan=0.0) >= 38.0,
        hypotension=_hypotension(d),
        fluid_boluses=(d["fluid_bolus"].to_numpy(dtype=float) > 0).astype(int),
        other_vasopressors=d["vasopressors"].to_numpy(dtype=float).astype(int),
        vasopressin=d["vasopressin"].to_numpy(dtype=bool),
        oxygen_device=d["oxygen_device"].fillna(0).to_numpy(dtype=int),
        oxygen_flow_l_min=d["oxygen_flow"].to_numpy(dtype=float),
        **episode_findings(crs_day, out["creatinine_increased_grade"].fillna(0).to_numpy(
            dtype=int), d["fibrinogen"].to_numpy(dtype=float), anc, temp, drugs,
            transaminitis_grade=np.asarray(ctcae.transaminase_increased_grade(tx_uln)),
            fibrinogen_limit_mg_dl=FIBRINOGEN_LOW_MG_DL))
    return {"lee2014": np.asarray(lee2014_crs_grade(f)), "penn": np.asarray(penn_crs_grade(f)),
            "cartox": np.asarray(cartox_crs_grade(f))}


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
    tx = np.fmax(d["alt"].to_numpy(dtype=float) / ALT_ULN_U_L,
                 d["ast"].to_numpy(dtype=float) / AST_ULN_U_L)
    out["transaminase_x_uln"] = tx
    neuro_version = "4.03" if ctcae_version == "4.03" else "5.0"  # v6 keeps the v5 terms
    neuro = ctcae_neuro_grade(
        d["ice_score"].to_numpy(dtype=float), **icans_kw,
        capd_score=d["capd_score"].to_numpy(dtype=float), age_y=d["age"].to_numpy(dtype=float),
        tremor_grade=d["tremor"].fillna(0).to_numpy(),
        headache_grade=d["headache"].fillna(0).to_numpy(),
        sedated=d["sedated"].fillna(0).to_numpy(), version=neuro_version)
    out["neuro_ctcae_grade"] = _int_or_na(np.asarray(neuro), ~neuro_obs & d[
        ["tremor", "headache"]].isna().all(axis=1).to_numpy())
    fib = d["fibrinogen"].to_numpy(dtype=float)
    out["fibrinogen_decreased_grade"] = _int_or_na(
        np.asarray(fibrinogen_decreased_grade(np.nan_to_num(fib, nan=1e3))), np.isnan(fib))
    cr = d["creatinine"].to_numpy(dtype=float)
    # baseline: the patient's latest creatinine on or before day 0 (NaN: the ULN bands alone)
    pre = d[(d["day"] <= 0) & d["creatinine"].notna()]
    base = d["patient_id"].map(pre.groupby("patient_id")["creatinine"].last()).to_numpy(
        dtype=float)
    out["creatinine_increased_grade"] = _int_or_na(np.asarray(ctcae.creatinine_increased_grade(
        np.clip(np.nan_to_num(cr, nan=0.0), 0.0, 100.0),
        np.asarray(creatinine_uln_mg_dl_default(d["age"].to_numpy(dtype=float)), dtype=float),
        np.where(base > 0.01, base, np.nan))), np.isnan(cr))
    anc = d["anc"].to_numpy(dtype=float)
    plt = d["platelets"].to_numpy(dtype=float)
    hb = d["hemoglobin"].to_numpy(dtype=float)
    temp = d["temperature"].to_numpy(dtype=float)
    for scale, grades in _older_crs_scales(d, out, tx, anc, temp).items():
        out[f"crs_grade_{scale}"] = grades
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
                     ("hemoglobin_g_dl", "hemoglobin"), ("ferritin_ng_ml", "ferritin"),
                     ("fibrinogen_mg_dl", "fibrinogen"), ("urate_mg_dl", "urate"),
                     ("potassium_mmol_l", "potassium"), ("phosphate_mg_dl", "phosphate"),
                     ("calcium_mg_dl", "calcium"), ("creatinine_mg_dl", "creatinine"),
                     ("arrhythmia_grade", "arrhythmia"),
                     ("hemophagocytosis", "hemophagocytosis"), ("age", "age")):
        out[col] = d[src].to_numpy()
    return out


def _episode_stats(days: np.ndarray, grades: np.ndarray) -> tuple[Any, Any, Any, int]:
    on = grades >= 1
    if not on.any():
        return 0, pd.NA, pd.NA, 0
    return int(grades.max()), float(days[on][0]), float(days[np.argmax(grades)]), int(on.sum())


def _hlh_tls_summary(g: pd.DataFrame, days: np.ndarray) -> dict[str, Any]:
    """IEC-HS (Hines 2023, :func:`cartsim.clinic.iechs.iechs_course` — the rule of the
    simulated trials) and Cairo–Bishop TLS of one patient's daily grades."""
    row: dict[str, Any] = {}
    fer = g["ferritin_ng_ml"].to_numpy(dtype=float)
    pre = (days <= 0) & ~np.isnan(fer)
    fer0 = fer[pre][-1] if pre.any() else np.nan
    post = days >= 0
    if np.isnan(fer[post]).all():
        row.update(iechs=pd.NA, iechs_max_grade=pd.NA, iechs_onset_day=pd.NA)
    else:
        met = np.asarray(iechs_course(
            days[post], fer[post], g["crs_grade_astct"].to_numpy(dtype=float)[post],
            fibrinogen_mg_dl=g["fibrinogen_mg_dl"].to_numpy(dtype=float)[post],
            neutropenia_grade=g["neutropenia_grade"].to_numpy(dtype=float, na_value=np.nan)[post],
            thrombocytopenia_grade=g["thrombocytopenia_grade"].to_numpy(
                dtype=float, na_value=np.nan)[post],
            transaminase_x_uln=g["transaminase_x_uln"].to_numpy(dtype=float)[post],
            hemophagocytosis=g["hemophagocytosis"].fillna(0).to_numpy()[post] > 0,
            ferritin_baseline_ng_ml=fer0), dtype=bool)
        fib = g["fibrinogen_mg_dl"].to_numpy(dtype=float)[post]
        cr = g["creatinine_mg_dl"].to_numpy(dtype=float)
        cr0 = cr[(days <= 0) & ~np.isnan(cr)][-1] if ((days <= 0) & ~np.isnan(cr)).any() \
            else np.nan
        age = float(g["age"].iloc[0]) if "age" in g and not pd.isna(g["age"].iloc[0]) else 30.0
        uln = float(creatinine_uln_mg_dl(age))
        with np.errstate(invalid="ignore"):
            severe = cr[post] > 3.0 * np.fmax(cr0, uln)
            life = (g["vasopressors"].to_numpy(dtype=float)[post] > 0) | (
                g["oxygen_device"].fillna(0).to_numpy(dtype=float)[post] >= 9) | (
                cr[post] > 6.0 * uln)
            grade = np.asarray(iechs_grade(met, intervention=fib < FIBRINOGEN_LOW_MG_DL,
                                           severe=severe, life_threatening=life))
        row.update(iechs=int(met.any()), iechs_max_grade=int(grade.max()),
                   iechs_onset_day=float(days[post][met][0]) if met.any() else pd.NA)
    labs = ("urate_mg_dl", "potassium_mmol_l", "phosphate_mg_dl", "calcium_mg_dl")
    if g[list(labs)].isna().all().all():
        row.update(tls_laboratory=pd.NA, tls_max_grade=pd.NA)
        return row
    base = {}
    for k in labs:  # baseline: the first value of the record [I]
        v = g[k].to_numpy(dtype=float)
        base[k] = v[~np.isnan(v)][0] if (~np.isnan(v)).any() else np.nan
    age = float(g["age"].iloc[0]) if "age" in g and not pd.isna(g["age"].iloc[0]) else np.nan
    crit = tls_lab_criteria(*(g[k].to_numpy(dtype=float) for k in labs), age_y=age,
                            baseline=base)
    lab = bool(laboratory_tls(crit, days))
    w = (days >= WINDOW_DAYS[0]) & (days <= WINDOW_DAYS[1])
    cr = g["creatinine_mg_dl"].to_numpy(dtype=float)[w]
    arr = g["arrhythmia_grade"].fillna(0).to_numpy(dtype=float)[w]
    grade = cairo_bishop_grade(lab, np.nanmax(cr) if (~np.isnan(cr)).any() else np.nan,
                               age_y=np.nan if np.isnan(age) else age,
                               arrhythmia_grade=arr.max() if arr.size else 0.0)
    row.update(tls_laboratory=int(lab), tls_max_grade=int(grade))
    return row


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
        for col in ("neutropenia_grade", "thrombocytopenia_grade", "anemia_grade",
                    "neuro_ctcae_grade", "fibrinogen_decreased_grade",
                    "creatinine_increased_grade", "crs_grade_lee2014", "crs_grade_penn",
                    "crs_grade_cartox"):
            s = g[col].dropna()
            row[col.replace("_grade", "_max_grade")] = int(s.max()) if len(s) else pd.NA
        row.update(_hlh_tls_summary(g, days))
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
    path: Path | list[Path], ctcae_version: str = "5.0"
) -> tuple[ParsedRecords, pd.DataFrame, pd.DataFrame]:
    """Read, validate and grade records — the long CSV, SDTM domains (CSV/XPT files or a
    directory) or an Excel workbook (:func:`cartsim.clinic.sdtm.load_records`): (parsed,
    daily grades, patient summary)."""
    ctcae.neutrophil_grade(1000.0, version=ctcae_version)  # validates the version name
    from cartsim.clinic.sdtm import load_records

    table, notes = load_records(path)
    parsed = parse_records(table)
    if notes:
        extra = pd.DataFrame(notes, columns=["row", "patient_id", "measure", "warning"])
        parsed.warnings = pd.concat([parsed.warnings, extra], ignore_index=True)
    if parsed.valid.empty:
        empty = pd.DataFrame(columns=["patient_id", "day", "crs_grade_astct",
                                      "icans_grade_astct"])
        return parsed, empty, pd.DataFrame(columns=["patient_id"])
    daily = daily_table(parsed.valid)
    grades = grade_daily(daily, ctcae_version)
    return parsed, grades, patient_summary(parsed.valid, grades)
