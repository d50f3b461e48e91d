"""The endpoint mapping table (``endpoints.toml``) and the normalisation of a targets row's
free-text fields: unit, timepoint, grading scale and subgroup label.

Everything here is pure (no simulation): it decides *what* simulated quantity a published row is
compared with, or why none is.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

KINDS = ("rate", "daily_rate", "km", "km_median", "median", "geomean_ratio", "hazard_ratio",
         "density")
FAMILIES = ("response", "survival", "crs", "neurotox", "supportive", "cytopenia", "infection",
            "b_cells", "relapse_phenotype", "death", "hsct", "pk", "hlh_tls")
UNITS = ("percent", "count", "months", "days", "years", "ratio", "cells_per_ul", "per_100_days")
DAYS_PER_MONTH = 365.25 / 12.0
DAYS_PER_YEAR = 365.25
#: CRS scales with a ``crs_max_grade_<scale>`` column in patients.parquet.
CRS_COLUMNS = ("astct", "lee2014", "penn", "cartox", "mskcc", "ctcae_v4.03", "ctcae_v5.0")
#: Simulated neurotoxicity grades (docs/trial.md): ASTCT ICANS, and CTCAE neurological events
#: (worst term) on v4.03 and v5.0 from the same bedside findings.
NEURO_COLUMN = "icans_max_grade"
NEURO_CTCAE_COLUMNS = {"4.03": "neuro_max_grade_ctcae_v4.03", "5.0": "neuro_max_grade_ctcae_v5.0"}


class MappingTableError(ValueError):
    """The shipped or a user's mapping table is malformed (names the entry and field)."""


@dataclass(frozen=True)
class Quantity:
    """One simulated quantity of the mapping table (see the header of ``endpoints.toml``)."""

    endpoint: str
    family: str
    kind: str
    units: tuple[str, ...]
    event: str = ""
    among: str = ""
    column: str = ""
    group: str = ""
    day: str | int | None = None
    note: str = ""
    window: int | None = None
    #: (``rate`` only) a daily.parquet expression read on the row's day when the row gives a
    #: single time point ("day 30", "12 months"): the state on that day, not the worst ever.
    at_landmark: str = ""
    #: (``density`` only) patients.parquet column prefix of the days at risk; the events column
    #: is ``column``; both carry the row's window as ``_d<start>_<end>``.
    exposure: str = ""


@dataclass(frozen=True)
class ContextRule:
    """A row of ``endpoint`` for ``disease`` whose study reports none of ``absent`` is compared
    with ``use`` instead (``note`` says why), e.g. a B-ALL "CR" without a separate CRi row is a
    morphologic CR (with or without count recovery)."""

    endpoint: str
    disease: str
    absent: tuple[str, ...]
    use: str
    note: str


@dataclass(frozen=True)
class MappingTable:
    quantities: dict[str, Quantity]
    unmapped: dict[str, str]
    baseline_names: frozenset[str]
    baseline_prefixes: tuple[str, ...]
    context: tuple[ContextRule, ...] = ()

    def resolve(self, endpoint: str, disease: str, study_endpoints: set[str]
                ) -> tuple[str, str]:
        """The endpoint a row is compared as, given the other endpoints its study reports,
        and the note that says so ("" when the row's own endpoint is used)."""
        for r in self.context:
            if r.endpoint == endpoint and r.disease.lower() == disease.strip().lower() and \
                    not (set(r.absent) & study_endpoints):
                return r.use, r.note
        return endpoint, ""

    def classify(self, endpoint: str) -> str:
        """``compared``, ``baseline``, ``unmapped`` or ``unknown``."""
        if endpoint in self.quantities:
            return "compared"
        if endpoint in self.baseline_names or endpoint.startswith(self.baseline_prefixes):
            return "baseline"
        if endpoint in self.unmapped:
            return "unmapped"
        return "unknown"

    def known_names(self) -> list[str]:
        return sorted(set(self.quantities) | set(self.unmapped) | set(self.baseline_names))


def _quantity(name: str, raw: dict[str, Any], table: dict[str, Any], depth: int = 0
              ) -> Quantity:
    if depth > 10:
        raise MappingTableError(f"endpoint.{name}: same_as chain too long (cycle?)")
    if "same_as" in raw:
        target = raw["same_as"]
        if target not in table:
            raise MappingTableError(f"endpoint.{name}.same_as: unknown endpoint {target!r}")
        base = _quantity(target, table[target], table, depth + 1)
        note = raw.get("note", base.note)
        return Quantity(name, base.family, base.kind, base.units, base.event, base.among,
                        base.column, base.group, base.day, note, base.window, base.at_landmark,
                        base.exposure)
    kind = raw.get("kind")
    if kind not in KINDS:
        raise MappingTableError(f"endpoint.{name}.kind: got {kind!r}; allowed: {KINDS}")
    family = raw.get("family")
    if family not in FAMILIES:
        raise MappingTableError(f"endpoint.{name}.family: got {family!r}; allowed: {FAMILIES}")
    units = tuple(raw.get("units", ()))
    bad = [u for u in units if u not in UNITS]
    if not units or bad:
        raise MappingTableError(f"endpoint.{name}.units: got {list(units)}; allowed: {UNITS}")
    need = {"rate": ("event",), "daily_rate": ("event",), "km": ("column",),
            "km_median": ("column",), "median": ("column",), "geomean_ratio": ("column", "group"),
            "hazard_ratio": (), "density": ("column", "exposure")}
    for f in need[kind]:
        if not raw.get(f):
            raise MappingTableError(f"endpoint.{name}.{f}: required for kind {kind!r}")
    if raw.get("at_landmark") and kind not in ("rate", "hazard_ratio"):
        raise MappingTableError(f"endpoint.{name}.at_landmark: only for kinds 'rate' and "
                                "'hazard_ratio'")
    if kind == "hazard_ratio" and bool(raw.get("group")) == bool(raw.get("at_landmark")):
        raise MappingTableError(f"endpoint.{name}: a hazard_ratio needs exactly one of group "
                                "(patients.parquet) and at_landmark (daily.parquet)")
    return Quantity(name, family, kind, units, raw.get("event", ""), raw.get("among", ""),
                    raw.get("column", ""), raw.get("group", ""), raw.get("day"),
                    raw.get("note", ""), raw.get("window"), raw.get("at_landmark", ""),
                    raw.get("exposure", ""))


def _context(doc: dict[str, Any], quantities: dict[str, Quantity]) -> tuple[ContextRule, ...]:
    out = []
    for i, raw in enumerate(doc.get("context", [])):
        where = f"context[{i}]"
        for f in ("endpoint", "disease", "use", "note"):
            if not isinstance(raw.get(f), str) or not raw[f]:
                raise MappingTableError(f"{where}.{f}: a non-empty string is required")
        if raw["endpoint"] not in quantities or raw["use"] not in quantities:
            raise MappingTableError(f"{where}: endpoint {raw['endpoint']!r} and use "
                                    f"{raw['use']!r} must both be mapped endpoints")
        absent = raw.get("absent", [])
        if not isinstance(absent, list) or not all(isinstance(a, str) for a in absent):
            raise MappingTableError(f"{where}.absent: a list of endpoint names")
        out.append(ContextRule(raw["endpoint"], raw["disease"], tuple(absent), raw["use"],
                               raw["note"]))
    return tuple(out)


def parse_mapping(doc: dict[str, Any]) -> MappingTable:
    table = doc.get("endpoint", {})
    quantities = {name: _quantity(name, raw, table) for name, raw in table.items()}
    unmapped = {str(k): str(v) for k, v in doc.get("unmapped", {}).items()}
    both = sorted(set(quantities) & set(unmapped))
    if both:
        raise MappingTableError(f"endpoints both mapped and unmapped: {both}")
    base = doc.get("baseline", {})
    return MappingTable(quantities, unmapped, frozenset(base.get("names", ())),
                        tuple(base.get("prefixes", ())), _context(doc, quantities))


@lru_cache(maxsize=1)
def default_mapping() -> MappingTable:
    """The shipped table ``cartsim/validate/endpoints.toml``."""
    text = (resources.files("cartsim.validate") / "endpoints.toml").read_text(encoding="utf-8")
    return parse_mapping(tomllib.loads(text))


# ------------------------------------------------------------------------------- units
def normalise_unit(unit: str) -> tuple[str, int | None]:
    """(normalised unit or '', denominator of "count (of N)" or None)."""
    u = unit.strip().lower()
    m = re.fullmatch(r"count\s*\(of\s*(\d+)\)", u)
    if m:
        return "count", int(m.group(1))
    if u.startswith("percent"):
        return "percent", None
    for name in ("count", "months", "days", "years", "ratio"):
        if u == name or u.startswith(name + " "):
            return name, None
    if u == "hazard ratio":
        return "ratio", None
    if re.fullmatch(r"car-?t cells\s*/\s*[uµ]l", u):
        return "cells_per_ul", None
    if re.fullmatch(r"per 100 (?:patient-)?days(?: at risk)?", u):
        return "per_100_days", None
    return "", None


# ------------------------------------------------------------------------------- timepoints
@dataclass(frozen=True)
class Timepoint:
    """``kind``: ``none`` (not given), ``landmark`` (at ``end`` days), ``window`` (events in
    [``start``, ``end``] days), ``followup`` (the whole follow-up, or a landmark at ``end`` when
    the paper gives the median follow-up), ``unparsed``."""

    kind: str
    start: float = 0.0
    end: float = math.inf
    text: str = ""


_NUM = r"(\d+(?:\.\d+)?)"


def _span(value: str, unit: str) -> float:
    return float(value) * (DAYS_PER_YEAR if unit.startswith("y") else
                           DAYS_PER_MONTH if unit.startswith("m") else 1.0)


def parse_timepoint(text: str) -> Timepoint:
    """Parse e.g. "12 months", "day 28", "1 year", "within 3 months", "day 0-28",
    "median FU 15.4 months", "> 1 year", "first month", "at 5-year cut-off"."""
    t = " ".join(text.strip().lower().split())
    if not t:
        return Timepoint("none", text=text)
    unit = r"(days?|d|months?|mo|years?|y)"
    if m := re.fullmatch(rf"{_NUM}\s*{unit}", t):
        return Timepoint("landmark", 0.0, _span(m.group(1), m.group(2)), text)
    if m := re.fullmatch(rf"(?:at\s+)?{_NUM}-{unit}(?:\s+cut-?off)?", t):
        return Timepoint("landmark", 0.0, _span(m.group(1), m.group(2)), text)
    if m := re.fullmatch(rf"day\s*{_NUM}", t):
        return Timepoint("landmark", 0.0, float(m.group(1)), text)
    if m := re.fullmatch(rf"(?:within|by|up to)\s+{_NUM}\s*{unit}", t):
        return Timepoint("window", 0.0, _span(m.group(1), m.group(2)), text)
    if m := re.fullmatch(rf"days?\s*{_NUM}\s*(?:-|to|–)\s*{_NUM}", t):
        return Timepoint("window", float(m.group(1)), float(m.group(2)), text)
    if m := re.fullmatch(rf"(?:>|after)\s*{_NUM}\s*{unit}", t):
        return Timepoint("window", _span(m.group(1), m.group(2)), math.inf, text)
    if t == "first month":
        return Timepoint("window", 0.0, DAYS_PER_MONTH, text)
    if m := re.match(rf"median (?:fu|follow-?up)\s*(?:of\s*)?{_NUM}\s*{unit}", t):
        return Timepoint("followup", 0.0, _span(m.group(1), m.group(2)), text)
    if t in ("median follow-up", "median fu", "last follow-up", "primary analysis",
             "investigator, long-term", "end of follow-up"):
        return Timepoint("followup", 0.0, math.inf, text)
    return Timepoint("unparsed", text=text)


# ------------------------------------------------------------------------------- scales
def crs_scale(grading_scale: str, spec_scale: str) -> tuple[str, str]:
    """The ``crs_max_grade_<scale>`` suffix for a row's free-text grading scale, and a note.

    "Lee 2014 (modified) …" → lee2014, "Penn …" → penn, "CARTOX (CRES)" → cartox,
    "MSKCC/CTCAE" → mskcc, "CTCAE v5…" → ctcae_v5.0, other "CTCAE…" → ctcae_v4.03 (the version of
    the CAR-T trials before 2018), "ASTCT" → astct; empty, "mixed" or "not stated" → the study
    spec's ``crs_scale``.
    """
    t = grading_scale.strip().lower()
    guess = " (scale as stated in the targets row is uncertain)" if (
        "not stated" in t or "as cited" in t or "as listed" in t) else ""
    if "lee" in t:
        return "lee2014", "CRS on Lee 2014" + guess
    if "penn" in t:
        return "penn", "CRS on Penn" + guess
    if "cartox" in t or "cres" in t:
        return "cartox", "CRS on CARTOX" + guess
    if "mskcc" in t:
        return "mskcc", "CRS on MSKCC" + guess
    if "astct" in t or "asbmt" in t:
        return "astct", "CRS on ASTCT"
    if "ctcae" in t:
        if re.search(r"v\s*5", t):
            return "ctcae_v5.0", "CRS on CTCAE v5.0" + guess
        return "ctcae_v4.03", "CRS on CTCAE v4.03" + guess
    return spec_scale, f"scale {grading_scale.strip() or 'not given'}: the spec's crs_scale " \
                       f"({spec_scale}) used"


def neuro_scale(grading_scale: str, protocol_scale: str = "astct") -> tuple[str, str]:
    """The simulated neurotoxicity column for a row's free-text scale, and a note.

    "CTCAE v5…" → CTCAE v5.0 neurological events, other "CTCAE…" → v4.03 (the version of the
    CAR-T trials before 2018); ASTCT/ICANS, CARTOX/CRES or anything else → ASTCT ICANS. A row
    that names no scale is compared on the scale the trial's own management protocol grades
    neurotoxicity by (``protocol_scale``, the ``grading.neuro_scale`` of the spec's first arm:
    ``ctcae_4.03``/``ctcae_5.0`` for the pre-consensus trials, else ASTCT ICANS).
    """
    t = grading_scale.strip() or "not given"
    low = t.lower()
    if not grading_scale.strip() and protocol_scale.startswith("ctcae_"):
        version = protocol_scale.removeprefix("ctcae_")
        return (NEURO_CTCAE_COLUMNS[version],
                f"neurotoxicity: scale not given, the trial protocol's CTCAE v{version} "
                "neurological events (worst term)")
    if "ctcae" in low:
        version = "5.0" if re.search(r"v\s*5", low) else "4.03"
        guess = " (version not stated: v4.03 assumed)" if not re.search(r"v\s*[45]", low) \
            else ""
        return (NEURO_CTCAE_COLUMNS[version],
                f"neurotoxicity: CTCAE v{version} neurological events (worst term){guess}")
    if "astct" in low or "icans" in low:
        return NEURO_COLUMN, "neurotoxicity: ASTCT ICANS"
    return NEURO_COLUMN, (f"neurotoxicity on scale {t} compared with simulated ASTCT ICANS grade "
                          f"({NEURO_COLUMN}; the closest simulated neurotoxicity)")


# ------------------------------------------------------------------------------- subgroups
_WHOLE_WORDS = {"all", "infused", "treated", "enrolled", "itt", "patients", "phase", "1", "2",
                "1+2", "safety", "cohort", "r/r", "evaluable", "analysis", "population"}
#: Subgroups every study has, by their (lower-case) label.
BUILTIN_SUBGROUPS = {"responders": "responder == 1", "responder": "responder == 1"}


def is_whole_cohort(label: str) -> bool:
    """True for "all", "all infused", "treated", "ITT", "phase 2 treated", "infused (n not
    stated)", "phase 1+2 (some figures may be phase 2 only)", "" and alike."""
    t = re.sub(r"\([^)]*\)", " ", label.lower())
    words = t.replace(",", " ").split()
    return all(w in _WHOLE_WORDS for w in words)


@dataclass(frozen=True)
class SubgroupChoice:
    query: str | None  # None = the whole cohort
    note: str = ""
    error: str = ""  # non-empty: unmapped(subgroup)


#: Labels that only restate an endpoint's own denominator (its ``among``): regex → a word the
#: ``among`` expression must contain. "relapses with CD19 status" for a share among relapses.
DENOMINATOR_LABELS = (
    (re.compile(r"^(relapses?|progressions?|progressors|post-relapse)\b"), "relapse"),
    (re.compile(r"^patients with crs\b"), "crs"),
    (re.compile(r"^responders?\b"), "responder"),
)


def choose_subgroup(label: str, table: dict[str, str], first_arm: str, n_arms: int,
                    among: str = "") -> SubgroupChoice:
    """The spec's ``[study.subgroups]`` entry for ``label``, or the whole cohort (the first arm
    when the spec has several), the endpoint's own denominator, a built-in subgroup, or an
    error."""
    whole = SubgroupChoice(f"arm == {first_arm!r}",
                           f"whole cohort = the spec's first arm ({first_arm})") \
        if n_arms > 1 else SubgroupChoice(None)
    if label in table:
        q = table[label].strip()
        return SubgroupChoice(None if q.lower() == "all" else q, f"subgroup query: {q}")
    if is_whole_cohort(label):
        return whole
    low = label.strip().lower()
    for pattern, word in DENOMINATOR_LABELS:
        if pattern.match(low) and word in among.lower():
            note = f"subgroup {label!r} is the endpoint's own denominator ({among})"
            return SubgroupChoice(whole.query, "; ".join(n for n in (whole.note, note) if n))
    q = BUILTIN_SUBGROUPS.get(low)
    if q is not None:
        if n_arms > 1:
            q = f"(arm == {first_arm!r}) & ({q})"
        return SubgroupChoice(q, f"subgroup query: {q}")
    return SubgroupChoice(None, error=f"subgroup {label!r} has no query in the study's "
                                      "[study.subgroups] table")
