"""Declarative parameter specifications.

A :class:`ParameterSpec` carries name, unit, default, bounds and provenance. The same object
validates user input (with an error naming field, range and value), documents the model
(:func:`markdown_table`) and generates invalid-input tests.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cartsim.errors import InvalidInputError


@dataclass(frozen=True)
class ParameterSpec:
    """One model or input parameter.

    ``lower``/``upper`` are inclusive bounds unless ``*_open`` is set. ``iiv_sd`` is the standard
    deviation of log(value) across patients (0 = no inter-individual variability).
    """

    name: str
    unit: str
    default: float
    lower: float
    upper: float
    provenance: str
    description: str
    lower_open: bool = False
    upper_open: bool = False
    iiv_sd: float = 0.0
    group: str = "general"

    def __post_init__(self) -> None:
        if not self.provenance.strip():
            raise ValueError(f"parameter {self.name} has no provenance")
        if not self.contains(self.default):
            raise ValueError(f"default of {self.name} ({self.default}) is outside its bounds")

    def range_text(self) -> str:
        lo = "(" if self.lower_open else "["
        hi = ")" if self.upper_open else "]"
        return f"{lo}{_fmt(self.lower)}, {_fmt(self.upper)}{hi} {self.unit}".strip()

    def contains(self, value: float) -> bool:
        if not math.isfinite(value) and not (math.isinf(value) and math.isinf(self.upper)):
            return False
        if self.lower_open and value <= self.lower or value < self.lower:
            return False
        return not (self.upper_open and value >= self.upper or value > self.upper)

    def validate(self, value: object, field_name: str | None = None) -> float:
        """Return ``value`` as float, or raise :class:`InvalidInputError` naming the field."""
        name = field_name or self.name
        try:
            v = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InvalidInputError(name, "a number in " + self.range_text(), value) from None
        if not self.contains(v):
            raise InvalidInputError(name, self.range_text(), value)
        return v


def _fmt(x: float) -> str:
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if x != 0 and (abs(x) >= 1e4 or abs(x) < 1e-3):
        return f"{x:.3g}"
    return f"{x:g}"


@dataclass
class ParameterTable:
    """An ordered, named collection of specs with helpers to resolve user overrides."""

    specs: tuple[ParameterSpec, ...]
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = {}
        for i, s in enumerate(self.specs):
            if s.name in self._index:
                raise ValueError(f"duplicate parameter {s.name}")
            self._index[s.name] = i

    def __len__(self) -> int:
        return len(self.specs)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.specs)

    def __getitem__(self, name: str) -> ParameterSpec:
        try:
            return self.specs[self._index[name]]
        except KeyError:
            raise InvalidInputError(
                "parameter name", "one of " + ", ".join(self._index), name
            ) from None

    def index(self, name: str) -> int:
        self[name]
        return self._index[name]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.specs)

    def defaults(self) -> dict[str, float]:
        return {s.name: s.default for s in self.specs}

    def resolve(self, overrides: Mapping[str, object] | None = None) -> dict[str, float]:
        """Defaults updated by validated overrides; unknown names are errors."""
        values = self.defaults()
        for k, v in (overrides or {}).items():
            values[k] = self[k].validate(v)
        return values


def markdown_table(specs: Iterable[ParameterSpec]) -> str:
    """The parameter table for docs/model.md, generated from the specs themselves."""
    rows = [
        "| name | meaning | unit | default | range | IIV (SD log) | provenance |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in specs:
        iiv = f"{s.iiv_sd:g}" if s.iiv_sd else "–"
        rows.append(
            f"| `{s.name}` | {s.description} | {s.unit or '–'} | {_fmt(s.default)} | "
            f"{s.range_text()} | {iiv} | {s.provenance} |"
        )
    return "\n".join(rows)
