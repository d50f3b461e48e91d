"""Parameter sets: versioned replacements of parameter population defaults and IIV spreads.

A parameter set is a TOML file (``cartsim/data/parameter_sets/<name>.toml`` or any path)::

    [parameter_set]
    name = "calibrated-2026-12-02"
    format = 1
    provenance = "calibrated to clinical_targets.csv, 2026-12-02, objective 123.4, command: ..."

    [parameters.rho_max]
    default = 1.3        # the population median (the spec's unit)
    iiv_sd = 0.45        # sd of log(value) across patients

Which set is in force (first that applies):

1. :func:`use` (a context manager; ``cartsim calibrate`` evaluates candidates in-process with it);
2. the ``CARTSIM_PARAMETER_SET`` environment variable: a shipped name, a path, or ``none`` (the
   model's own values). ``--parameter-set`` of ``cartsim trial run`` / ``validate`` /
   ``claims`` sets it, so that worker processes inherit it;
3. the installed default: ``default`` in ``cartsim/data/parameter_sets/index.toml`` (empty: the
   model's own values). ``cartsim calibrate --install NAME`` writes the set there.

:func:`effective` gives a parameter's spec with the set's values and provenance applied;
:func:`cartsim.population.build` samples every patient's parameters from it, and
:mod:`cartsim.provenance` reports the calibration status from it.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from cartsim.atomic import write_text_atomic
from cartsim.errors import CartsimError
from cartsim.params import ParameterSpec

FORMAT = 1
ENV_VAR = "CARTSIM_PARAMETER_SET"
#: The largest IIV sd (of log value) a set may give: exp(3) is a 20-fold spread per sd.
MAX_IIV_SD = 3.0
FIELDS = ("default", "iiv_sd")


class ParameterSetError(CartsimError):
    """A parameter set file that cannot be used (the message names the file and field)."""


@dataclass(frozen=True)
class ParameterSet:
    """Replacement values by parameter name: ``{"rho_max": {"default": 1.3, "iiv_sd": 0.4}}``."""

    name: str
    provenance: str
    values: dict[str, dict[str, float]]
    meta: dict[str, Any] = field(default_factory=dict)
    path: str = ""

    def digest(self) -> str:
        text = repr(sorted((k, sorted(v.items())) for k, v in self.values.items()))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def apply(self, spec: ParameterSpec) -> ParameterSpec:
        """``spec`` with this set's default and/or IIV sd and its provenance."""
        v = self.values.get(spec.name)
        if not v:
            return spec
        return replace(spec, default=v.get("default", spec.default),
                       iiv_sd=v.get("iiv_sd", spec.iiv_sd),
                       provenance=f"{self.provenance} (was: {spec.provenance})")


def shipped_dir() -> Path:
    return Path(str(resources.files("cartsim.data") / "parameter_sets"))


def known_specs() -> dict[str, ParameterSpec]:
    """Every parameter a set may replace: the core model's, the add-on mechanisms' and the
    patient builder's constants (:data:`cartsim.population.POPULATION_PARAMS`, default only),
    the lab readout layer's constants (:data:`cartsim.model.labs.LAB_PARAMS`, default
    only), the trial's death model (:data:`cartsim.trial.outcomes.DEATH_PARAMS`, default
    only), the salvage chemosensitivity distribution
    (:data:`cartsim.trial.outcomes.SALVAGE_PARAMS`, default only) and the weights of the
    patients' tumour-trait covariates (:data:`cartsim.model.traits.PATIENT_TRAIT_PARAMS`:
    what a NOXA-low, death-receptor-defective, IFN-γ-defective, CD58-lost or CD19-surface-lost
    tumour keeps; default only)."""
    from cartsim.model.labs import LAB_PARAMS
    from cartsim.model.layout import ADDONS
    from cartsim.model.parameters import MODEL_PARAMS
    from cartsim.model.traits import PATIENT_TRAIT_PARAMS
    from cartsim.population import POPULATION_PARAMS
    from cartsim.trial.outcomes import DEATH_PARAMS, SALVAGE_PARAMS

    out: dict[str, ParameterSpec] = {s.name: s for s in MODEL_PARAMS}
    for mech in ADDONS.values():
        out.update({s.name: s for s in mech.params})
    out.update({s.name: s for s in POPULATION_PARAMS})
    out.update({s.name: s for s in LAB_PARAMS})
    out.update({s.name: s for s in DEATH_PARAMS})
    out.update({s.name: s for s in SALVAGE_PARAMS})
    out.update({s.name: s for s in PATIENT_TRAIT_PARAMS})
    return out


def per_patient(name: str) -> bool:
    """Whether the parameter is sampled per patient (so it may carry an IIV sd)."""
    from cartsim.model.labs import LAB_PARAMS
    from cartsim.model.traits import PATIENT_TRAIT_PARAMS
    from cartsim.population import POPULATION_PARAMS
    from cartsim.trial.outcomes import DEATH_PARAMS, SALVAGE_PARAMS

    return name not in ({s.name for s in POPULATION_PARAMS} | set(LAB_PARAMS.names)
                        | set(DEATH_PARAMS.names) | set(SALVAGE_PARAMS.names)
                        | set(PATIENT_TRAIT_PARAMS.names))


def check_value(name: str, what: str, value: object, where: str,
                specs: Mapping[str, ParameterSpec] | None = None) -> float:
    """Validate one replacement value; the error names ``where`` and the allowed range."""
    specs = specs if specs is not None else known_specs()
    if name not in specs:
        raise ParameterSetError(f"{where}: unknown parameter {name!r}; allowed: a model, add-on "
                                "or population parameter (docs/model.md parameter tables)")
    if what not in FIELDS:
        raise ParameterSetError(f"{where}: unknown field {what!r}; allowed: "
                                f"{', '.join(FIELDS)}")
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value):
        raise ParameterSetError(f"{where}: {value!r} is not a finite number")
    x = float(value)
    spec = specs[name]
    if what == "default" and not spec.contains(x):
        raise ParameterSetError(f"{where}: {x:g} outside {spec.range_text()}")
    if what == "iiv_sd":
        if not per_patient(name):
            raise ParameterSetError(f"{where}: {name} is a population constant, not sampled "
                                    "per patient; allowed: default only")
        if not 0.0 <= x <= MAX_IIV_SD:
            raise ParameterSetError(f"{where}: {x:g} outside [0, {MAX_IIV_SD:g}] "
                                    "(sd of log value)")
    return x


def parse(data: Mapping[str, Any], source: str) -> ParameterSet:
    """A set from TOML data; every problem raises :class:`ParameterSetError` naming the field."""
    head = data.get("parameter_set")
    if not isinstance(head, Mapping):
        raise ParameterSetError(f"{source}: missing table [parameter_set] (name, format, "
                                "provenance)")
    for key in ("name", "provenance"):
        if not isinstance(head.get(key), str) or not head[key].strip():
            raise ParameterSetError(f"{source}: parameter_set.{key}: a non-empty string "
                                    "is required")
    if head.get("format", FORMAT) != FORMAT:
        raise ParameterSetError(f"{source}: parameter_set.format: {head.get('format')!r}; "
                                f"allowed: {FORMAT}")
    params = data.get("parameters", {})
    if not isinstance(params, Mapping):
        raise ParameterSetError(f"{source}: parameters: a table of [parameters.<name>] tables")
    specs = known_specs()
    values: dict[str, dict[str, float]] = {}
    for name, fields in params.items():
        if not isinstance(fields, Mapping) or not fields:
            raise ParameterSetError(f"{source}: parameters.{name}: a table with default and/or "
                                    "iiv_sd")
        values[name] = {what: check_value(name, what, v, f"{source}: parameters.{name}.{what}",
                                          specs)
                        for what, v in fields.items()}
    meta = {k: v for k, v in head.items() if k not in ("name", "provenance", "format")}
    return ParameterSet(head["name"].strip(), head["provenance"].strip(), values, meta,
                        source)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(float(v)) if isinstance(v, float) else str(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    s = str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{s}"'


def dumps(ps: ParameterSet) -> str:
    lines = ["# cartsim parameter set (docs/calibration.md)", "[parameter_set]",
             f"name = {_toml_value(ps.name)}", f"format = {FORMAT}",
             f"provenance = {_toml_value(ps.provenance)}"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in ps.meta.items()
              if isinstance(v, str | int | float | bool | list | tuple)]
    for name in sorted(ps.values):
        lines += ["", f"[parameters.{name}]"]
        lines += [f"{what} = {ps.values[name][what]!r}" for what in FIELDS
                  if what in ps.values[name]]
    return "\n".join(lines) + "\n"


def save(ps: ParameterSet, path: str | Path) -> Path:
    """Write ``ps`` atomically as TOML; it reads back equal (:func:`load`)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(p, dumps(ps))
    return p


def resolve_path(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    p = Path(text)
    if p.suffix == ".toml" or os.sep in text or p.is_file():
        return p
    return shipped_dir() / f"{text}.toml"


def available() -> list[str]:
    d = shipped_dir()
    return sorted(p.stem for p in d.glob("*.toml") if p.name != "index.toml") \
        if d.is_dir() else []


def load(name_or_path: str | Path) -> ParameterSet:
    """A shipped set by name or a TOML file by path."""
    p = resolve_path(name_or_path)
    if not p.is_file():
        names = ", ".join(available()) or "none shipped"
        raise ParameterSetError(f"parameter set {str(name_or_path)!r}: no such file {p}; "
                                f"allowed: a TOML path or a shipped name ({names}) or 'none'")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ParameterSetError(f"parameter set {p}: cannot read ({e})") from None
    return parse(data, str(p))


def installed_default() -> str:
    """The name in ``index.toml`` (empty: the model's own values)."""
    idx = shipped_dir() / "index.toml"
    if not idx.is_file():
        return ""
    try:
        data = tomllib.loads(idx.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ParameterSetError(f"{idx}: cannot read ({e})") from None
    name = data.get("default", "")
    if not isinstance(name, str):
        raise ParameterSetError(f"{idx}: default: a set name (string) or \"\"")
    return name.strip()


def install(ps: ParameterSet, name: str, make_default: bool = True) -> Path:
    """Write ``ps`` into the shipped directory as ``<name>.toml`` (and make it the default)."""
    if not name or any(c in name for c in "/\\. ") or name == "none":
        raise ParameterSetError(f"--install: {name!r}; allowed: a plain name (letters, digits, "
                                "- and _), not 'none'")
    path = save(replace(ps, name=name), shipped_dir() / f"{name}.toml")
    if make_default:
        write_text_atomic(shipped_dir() / "index.toml",
                          "# The parameter set in force by default (docs/calibration.md); "
                          "\"\" = the model's own values.\n"
                          f"default = {_toml_value(name)}\n")
    return path


_override: list[ParameterSet | None] = []
_cache: dict[tuple[str, float], ParameterSet] = {}


@contextlib.contextmanager
def use(ps: ParameterSet | None) -> Iterator[None]:
    """Put ``ps`` (``None``: the model's own values) in force in this process."""
    _override.append(ps)
    try:
        yield
    finally:
        _override.pop()


def _cached(name_or_path: str) -> ParameterSet:
    p = resolve_path(name_or_path)
    key = (str(p.resolve()), p.stat().st_mtime if p.is_file() else -1.0)
    if key not in _cache:
        _cache[key] = load(name_or_path)
    return _cache[key]


def active() -> ParameterSet | None:
    """The set in force (see the module docstring), or ``None`` for the model's own values."""
    if _override:
        return _override[-1]
    name = os.environ.get(ENV_VAR, "").strip()
    if not name:
        name = installed_default()
    if not name or name.lower() == "none":
        return None
    return _cached(name)


def select(name_or_path: str | None) -> ParameterSet | None:
    """Validate a ``--parameter-set`` choice and put it in force for this process and the
    worker processes it starts (through :data:`ENV_VAR`). ``None``: leave the default."""
    if name_or_path is None:
        return active()
    if name_or_path.strip().lower() == "none":
        os.environ[ENV_VAR] = "none"
        return None
    ps = load(name_or_path)
    os.environ[ENV_VAR] = str(resolve_path(name_or_path).resolve())
    return ps


def effective(spec: ParameterSpec, ps: ParameterSet | None = None) -> ParameterSpec:
    ps = ps if ps is not None else active()
    return spec if ps is None else ps.apply(spec)


def effective_specs(specs: Iterable[ParameterSpec]) -> list[ParameterSpec]:
    ps = active()
    return [effective(s, ps) for s in specs]


def describe() -> dict[str, Any]:
    """For manifests: the set in force (name, digest, source), or the model's own values."""
    ps = active()
    if ps is None:
        return {"name": "model defaults", "digest": None, "path": None}
    return {"name": ps.name, "digest": ps.digest(), "path": ps.path,
            "provenance": ps.provenance}
