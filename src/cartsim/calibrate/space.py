"""The calibration space: which upstream quantities are fitted, their bounds and scale, and
which studies are fitted (calibration set) or only checked (held out). Format in
docs/calibration.md; the shipped space is ``cartsim/data/calibration/space.toml``.

Only upstream quantities can be named: a parameter's population default (median) or its IIV
sd, for parameters of the model, its add-on mechanisms or the patient builder
(:func:`cartsim.parameter_sets.known_specs`). Outcome rates are not parameters of cartsim, so
they cannot be fitted.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from cartsim.errors import CartsimError
from cartsim.parameter_sets import FIELDS, MAX_IIV_SD, ParameterSet, known_specs, per_patient

SCALES = ("log", "linear")


class SpaceError(CartsimError):
    """A calibration space file that cannot be used (the message names file and field)."""


@dataclass(frozen=True)
class Dimension:
    """One fitted quantity: ``field`` (default or iiv_sd) of parameter ``parameter``."""

    parameter: str
    field: str
    lower: float
    upper: float
    scale: str
    why: str = ""

    @property
    def key(self) -> str:
        return f"{self.parameter}.{self.field}"

    def model_value(self) -> float:
        """The value in the model today (before calibration), as it is."""
        spec = known_specs()[self.parameter]
        return float(spec.default if self.field == "default" else spec.iiv_sd)

    def current(self) -> float:
        """The value in the model today (before calibration), clipped to the bounds."""
        return min(max(self.model_value(), self.lower), self.upper)


@dataclass(frozen=True)
class Space:
    name: str
    path: str
    dimensions: tuple[Dimension, ...]
    studies: tuple[str, ...]
    held_out: tuple[str, ...]
    description: str = ""

    def parameter_set(self, values: dict[str, float], name: str, provenance: str,
                      meta: dict[str, Any] | None = None) -> ParameterSet:
        """A parameter set from ``{dimension key: value}``."""
        out: dict[str, dict[str, float]] = {}
        for d in self.dimensions:
            out.setdefault(d.parameter, {})[d.field] = float(values[d.key])
        return ParameterSet(name, provenance, out, dict(meta or {}))


def default_space_path() -> Path:
    return Path(str(resources.files("cartsim.data") / "calibration" / "space.toml"))


def _names(data: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    v = data.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
        raise SpaceError(f"{where}.{key}: a list of study names (spec names such as 'eliana' "
                         "or targets `study` values)")
    return tuple(x.strip() for x in v)


def parse_space(data: dict[str, Any], source: str) -> Space:
    """Check a space; the first problem raises :class:`SpaceError` naming the field."""
    head = data.get("space", {})
    if not isinstance(head, dict):
        raise SpaceError(f"{source}: [space]: a table (name, description)")
    cal = data.get("studies")
    if not isinstance(cal, dict):
        raise SpaceError(f"{source}: missing table [studies] (calibration = [...], "
                         "held_out = [...])")
    studies = _names(cal, "calibration", f"{source}: studies")
    held = _names(cal, "held_out", f"{source}: studies")
    if not studies:
        raise SpaceError(f"{source}: studies.calibration: at least one study is required")
    both = sorted(set(studies) & set(held))
    if both:
        raise SpaceError(f"{source}: studies.held_out: {', '.join(both)} also in "
                         "studies.calibration; a study is either fitted or held out")
    dims = data.get("parameter")
    if not isinstance(dims, list) or not dims:
        raise SpaceError(f"{source}: no [[parameter]] entries; at least one fitted quantity "
                         "is required")
    specs = known_specs()
    out: list[Dimension] = []
    for i, d in enumerate(dims):
        where = f"{source}: parameter[{i}]"
        if not isinstance(d, dict):
            raise SpaceError(f"{where}: a table")
        unknown = sorted(set(d) - {"name", "field", "lower", "upper", "scale", "why"})
        if unknown:
            raise SpaceError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: name, "
                             "field, lower, upper, scale, why")
        name = d.get("name")
        if not isinstance(name, str) or name not in specs:
            raise SpaceError(f"{where}.name: {name!r} is not a parameter of the model, its "
                             "add-on mechanisms or the patient builder (only upstream "
                             "parameters can be fitted; docs/model.md lists them)")
        where = f"{source}: parameter[{i}] ({name})"
        fld = d.get("field", "default")
        if fld not in FIELDS:
            raise SpaceError(f"{where}.field: {fld!r}; allowed: {', '.join(FIELDS)}")
        if fld == "iiv_sd" and not per_patient(name):
            raise SpaceError(f"{where}.field: iiv_sd, but {name} is a population constant "
                             "(not sampled per patient); allowed: default")
        scale = d.get("scale", "log" if fld == "default" else "linear")
        if scale not in SCALES:
            raise SpaceError(f"{where}.scale: {scale!r}; allowed: {', '.join(SCALES)}")
        bounds = []
        for b in ("lower", "upper"):
            x = d.get(b)
            if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
                raise SpaceError(f"{where}.{b}: {x!r}; a finite number is required")
            bounds.append(float(x))
        lo, hi = bounds
        if not lo < hi:
            raise SpaceError(f"{where}.lower: {lo:g} >= upper {hi:g}; allowed: lower < upper")
        if scale == "log" and lo <= 0:
            raise SpaceError(f"{where}.lower: {lo:g}; a log scale needs lower > 0")
        spec = specs[name]
        if fld == "default":
            for b, x in (("lower", lo), ("upper", hi)):
                if not spec.contains(x):
                    raise SpaceError(f"{where}.{b}: {x:g} outside the parameter's range "
                                     f"{spec.range_text()}")
        elif not (0.0 <= lo and hi <= MAX_IIV_SD):
            raise SpaceError(f"{where}: iiv_sd bounds [{lo:g}, {hi:g}] outside "
                             f"[0, {MAX_IIV_SD:g}]")
        why = d.get("why", "")
        if not isinstance(why, str):
            raise SpaceError(f"{where}.why: a string")
        dim = Dimension(name, fld, lo, hi, scale, why)
        if any(o.key == dim.key for o in out):
            raise SpaceError(f"{where}: {dim.key} is listed twice")
        out.append(dim)
    name = head.get("name", Path(source).stem)
    return Space(str(name), source, tuple(out), studies, held,
                 str(head.get("description", "")))


def load_space(path: str | Path | None = None) -> Space:
    p = Path(path) if path is not None else default_space_path()
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpaceError(f"calibration space {p}: no such file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise SpaceError(f"calibration space {p}: cannot read ({e})") from None
    return parse_space(data, str(p))
