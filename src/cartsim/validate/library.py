"""The study library: ``index.toml`` in a specs directory (format in docs/validation.md).

```toml
[[study]]
study = ["ELIANA", "ELIANA (2018 update)"]   # exact values of the targets' `study` column
spec = "eliana.toml"                          # trial spec, relative to the index
sources = [2, 3, 4]                           # baseline rows (line numbers) used by the spec
unexpressed = ["bridging therapy: no spec field"]
[study.subgroups]                             # arm_or_subgroup label -> pandas query
"TP53 altered" = "tp53_altered == 1"

[[unexpressible]]
study = "NOXA and CAR-T resistance"
reason = "in vitro / no clinical cohort the model can express"
```
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from cartsim.errors import CartsimError

INDEX_NAME = "index.toml"


class LibraryError(CartsimError):
    """The study library (index.toml) is missing or malformed; lists every problem."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"study library {path} ({len(problems)} problem"
                         f"{'s' if len(problems) != 1 else ''}):\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class StudyEntry:
    """One ``[[study]]`` of the index: a spec serving one or more targets ``study`` values."""

    studies: tuple[str, ...]
    spec: Path
    sources: tuple[int, ...] = ()
    unexpressed: tuple[str, ...] = ()
    subgroups: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Short name (the spec file's stem), used for output files and ``--studies``."""
        return self.spec.stem


@dataclass(frozen=True)
class Library:
    path: Path
    entries: list[StudyEntry]
    unexpressible: dict[str, str]

    def entry_for(self, study: str) -> StudyEntry | None:
        for e in self.entries:
            if study in e.studies:
                return e
        return None


def default_specs_dir() -> Path:
    """The library shipped with cartsim (``cartsim/data/studies/``)."""
    return Path(str(resources.files("cartsim.data") / "studies"))


def external_dir() -> Path:
    """The external (held-out) library shipped with cartsim (``cartsim/data/external/``): pivotal
    trials outside the calibration set, their specs, ``index.toml`` and ``targets.csv``. Only a
    check of how the model generalises; never a calibration input (its README)."""
    return Path(str(resources.files("cartsim.data") / "external"))


def _strings(v: Any) -> tuple[str, ...] | None:
    if isinstance(v, str):
        return (v,)
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return tuple(v)
    return None


def load_library(specs_dir: str | Path) -> Library:
    """Read ``specs_dir/index.toml``; every problem is collected into one LibraryError."""
    d = Path(specs_dir)
    idx = d / INDEX_NAME
    if not idx.is_file():
        raise LibraryError(str(d), [f"no {INDEX_NAME} in {d}; pass --specs DIR with a study "
                                    "library (docs/validation.md describes index.toml)"])
    try:
        doc = tomllib.loads(idx.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise LibraryError(str(idx), [f"TOML syntax: {e}"]) from None
    problems: list[str] = []
    unknown = sorted(set(doc) - {"study", "unexpressible"})
    if unknown:
        problems.append(f"unknown top-level key(s) {unknown}; allowed: study, unexpressible")
    entries: list[StudyEntry] = []
    seen: dict[str, str] = {}
    for i, raw in enumerate(doc.get("study", [])):
        where = f"study[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{where}: must be a table")
            continue
        bad = sorted(set(raw) - {"study", "spec", "sources", "unexpressed", "subgroups"})
        if bad:
            problems.append(f"{where}: unknown key(s) {bad}; allowed: study, spec, sources, "
                            "unexpressed, subgroups")
        names = _strings(raw.get("study"))
        if not names:
            problems.append(f"{where}.study: a string or list of strings (targets' study values)")
            names = ()
        for nm in names:
            if nm in seen:
                problems.append(f"{where}.study: {nm!r} already served by {seen[nm]}")
            seen[nm] = where
        spec = raw.get("spec")
        if not isinstance(spec, str) or not spec:
            problems.append(f"{where}.spec: a TOML file name relative to {idx}")
            spec_path = d / "missing.toml"
        else:
            spec_path = (d / spec).resolve()
            if not spec_path.is_file():
                problems.append(f"{where}.spec: {spec_path} does not exist")
        sources = raw.get("sources", [])
        if not isinstance(sources, list) or not all(
                isinstance(x, int) and not isinstance(x, bool) and x >= 2 for x in sources):
            problems.append(f"{where}.sources: a list of line numbers >= 2 of the targets file")
            sources = []
        unexpressed = _strings(raw.get("unexpressed", []))
        if unexpressed is None:
            problems.append(f"{where}.unexpressed: a list of strings")
            unexpressed = ()
        subgroups = raw.get("subgroups", {})
        if not isinstance(subgroups, dict) or not all(
                isinstance(v, str) and v.strip() for v in subgroups.values()):
            problems.append(f"{where}.subgroups: a table of label = \"pandas query\" strings")
            subgroups = {}
        entries.append(StudyEntry(names, spec_path, tuple(sources), unexpressed,
                                  {str(k): str(v) for k, v in subgroups.items()}))
    unexpressible: dict[str, str] = {}
    for i, raw in enumerate(doc.get("unexpressible", [])):
        where = f"unexpressible[{i}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("study"), str) \
                or not isinstance(raw.get("reason"), str) or not raw["reason"].strip():
            problems.append(f"{where}: needs study = \"...\" and a non-empty reason = \"...\"")
            continue
        if raw["study"] in seen:
            problems.append(f"{where}.study: {raw['study']!r} also has a spec "
                            f"({seen[raw['study']]})")
        unexpressible[raw["study"]] = raw["reason"]
    keys = [e.key for e in entries]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        problems.append(f"spec file stems must be unique (output names): {dup}")
    if problems:
        raise LibraryError(str(idx), problems)
    return Library(d, entries, unexpressible)
