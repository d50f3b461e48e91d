"""Read and check a targets file (the format of ``clinical_targets.csv``).

A missing required column is a whole-file error (:class:`TargetsFileError`); every other problem
is a per-row :class:`RowError` (line number, field, what is allowed) and the row is left out of
the comparison while the valid rows still run.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cartsim.errors import CartsimError
from cartsim.validate.mapping import MappingTable, default_mapping, normalise_unit

REQUIRED_COLUMNS = ("study", "disease", "n", "arm_or_subgroup", "endpoint", "timepoint", "value",
                    "ci_low", "ci_high", "unit", "grading_scale")
OPTIONAL_COLUMNS = ("citation", "product", "targets", "costim", "population", "notes")


class TargetsFileError(CartsimError):
    """The targets file cannot be used at all (unreadable, or a required column is missing)."""


@dataclass(frozen=True)
class RowError:
    line: int
    field: str
    message: str
    study: str = ""
    endpoint: str = ""

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


@dataclass(frozen=True)
class TargetRow:
    """One published figure. ``line`` is the line number in the file (header = line 1)."""

    line: int
    study: str
    disease: str
    n: int | None
    subgroup: str
    endpoint: str
    timepoint: str
    value: float
    ci_low: float | None
    ci_high: float | None
    unit: str
    grading_scale: str
    citation: str = ""
    costim: str = ""


@dataclass(frozen=True)
class Targets:
    path: str
    rows: list[TargetRow]
    errors: list[RowError]


#: Co-stimulation classes of the validation summary (``per_costim``).
COSTIM_CLASSES = ("CD28", "4-1BB", "other or not stated")


def costim_class(text: str) -> str:
    """The co-stimulation class of a targets row's ``costim`` text: "CD28" or "4-1BB" when the
    text names exactly one of them (a note such as "[not confirmed in retrieved text]" is kept
    with its domain), else "other or not stated" (mixed products, both, none, blank)."""
    t = text.upper().replace(" ", "")
    cd28, bb = "CD28" in t, "4-1BB" in t or "41BB" in t
    if cd28 != bb:
        return "CD28" if cd28 else "4-1BB"
    return COSTIM_CLASSES[2]


def default_targets_path() -> Path:
    """The reference set shipped with cartsim (``cartsim/data/validate/clinical_targets.csv``)."""
    return Path(str(resources.files("cartsim.data") / "validate" / "clinical_targets.csv"))


def _number(text: str) -> float | None:
    try:
        x = float(text)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _check_row(line: int, rec: dict[str, str], mapping: MappingTable
               ) -> tuple[TargetRow | None, list[RowError]]:
    study, endpoint = rec["study"].strip(), rec["endpoint"].strip()
    errs: list[RowError] = []

    def err(field: str, msg: str) -> None:
        errs.append(RowError(line, field, msg, study, endpoint))

    if not study:
        err("study", "empty; allowed: the study name its spec serves (index.toml `study`)")
    if not endpoint:
        err("endpoint", "empty; allowed: a name of the endpoint mapping table")
    elif mapping.classify(endpoint) == "unknown":
        err("endpoint", f"unknown endpoint {endpoint!r}; allowed: one of the "
            f"{len(mapping.known_names())} names of cartsim/validate/endpoints.toml "
            "(docs/validation.md), or a baseline name "
            f"(starting with {', '.join(mapping.baseline_prefixes)})")
    value = _number(rec["value"].strip())
    if value is None:
        err("value", f"not a number: {rec['value']!r}; allowed: a finite number")
    ci: list[float | None] = []
    for f in ("ci_low", "ci_high"):
        text = rec[f].strip()
        x = _number(text) if text else None
        if text and x is None:
            err(f, f"not a number: {text!r}; allowed: a finite number or empty")
        ci.append(x)
    unit_text = rec["unit"].strip()
    unit, _ = normalise_unit(unit_text)
    if unit == "percent":
        for f, x in (("value", value), ("ci_low", ci[0]), ("ci_high", ci[1])):
            if x is not None and not 0.0 <= x <= 100.0:
                err(f, f"{x:g} outside 0-100; allowed: 0-100 for unit percent")
    lo, hi = ci
    if lo is not None and hi is not None and lo > hi:
        err("ci_low", f"ci_low {lo:g} > ci_high {hi:g}; allowed: ci_low <= ci_high")
    if value is not None and lo is not None and hi is not None and lo <= hi \
            and not lo <= value <= hi:
        err("value", f"{value:g} outside its CI [{lo:g}, {hi:g}]; allowed: ci_low <= value <= "
            "ci_high")
    n_text = rec["n"].strip()
    n: int | None = None
    if n_text:
        x = _number(n_text)
        if x is None or x < 1 or x != int(x):
            err("n", f"{n_text!r}; allowed: a whole number >= 1 or empty")
        else:
            n = int(x)
    if errs:
        return None, errs
    assert value is not None
    return TargetRow(line, study, rec["disease"].strip(), n, rec["arm_or_subgroup"].strip(),
                     endpoint, rec["timepoint"].strip(), value, lo, hi, unit_text,
                     rec["grading_scale"].strip(), rec.get("citation", "").strip(),
                     (rec.get("costim") or "").strip()), []


def read_targets(path: str | Path | None = None, mapping: MappingTable | None = None) -> Targets:
    """Read a targets CSV; per-row problems are returned in ``errors``, not raised.

    Raises:
        TargetsFileError: unreadable file or a missing required column (nothing is compared).
    """
    p = Path(path) if path is not None else default_targets_path()
    mapping = mapping or default_mapping()
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise TargetsFileError(f"targets file {p}: cannot read ({e})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise TargetsFileError(
            f"targets file {p}: missing required column(s) {', '.join(missing)}; required: "
            f"{', '.join(REQUIRED_COLUMNS)} (optional: {', '.join(OPTIONAL_COLUMNS)})")
    reader.fieldnames = header
    rows: list[TargetRow] = []
    errors: list[RowError] = []
    for i, rec in enumerate(reader):
        line = i + 2
        if any(v is None for v in rec.values()) or None in rec:
            errors.append(RowError(line, "row", f"{len([v for v in rec.values() if v is not None])}"
                                   f" fields; allowed: exactly {len(header)} (the header's)",
                                   (rec.get("study") or "").strip(),
                                   (rec.get("endpoint") or "").strip()))
            continue
        row, errs = _check_row(line, {k: (v or "") for k, v in rec.items()}, mapping)
        errors.extend(errs)
        if row is not None:
            rows.append(row)
    return Targets(str(p), rows, errors)
