"""Virtual-trial specification: a TOML file validated with pydantic.

A spec names one or more arms (product, dose, lymphodepletion, management protocol,
consolidation), a population (disease, size, covariate distributions), follow-up, assessment
days, endpoints and a seed. :func:`load_spec` reads and validates a file and raises one
:class:`SpecError` listing *every* bad field with its path (``arms[1].product: ...``) before
anything is simulated.

Covariates are sampled per patient with the counter-based generator keyed by (seed, patient id,
covariate name), so a patient's covariates never depend on chunking or worker count.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from scipy import stats as sps
from scipy.special import ndtri

from cartsim import covariates as _cov
from cartsim.diseases import DISEASES
from cartsim.engine.rng import uniform_np
from cartsim.errors import InvalidInputError, pydantic_message
from cartsim.lymphodepletion import LD_MAX_EXPOSURE, lymphodepletion_exposure
from cartsim.population import stream_id
from cartsim.products import KNOWN_ARMOUR, KNOWN_TARGETS, PRESETS, Construct, get_product

#: Per-patient endpoint names a spec may request (columns of patients.parquet are a superset).
ENDPOINTS: tuple[str, ...] = (
    "best_response", "response", "mrd", "relapse", "efs", "os", "pfs", "rfs", "dor", "crs",
    "icans", "tocilizumab", "steroids", "cytopenia", "icaht", "b_cell_aplasia", "pk",
    "hsct", "death", "infections",
)
#: Scales a trial may report CRS on (cross-walked from the same simulated features).
CRS_SCALES: tuple[str, ...] = ("astct", "lee2014", "penn", "cartox", "mskcc", "ctcae_v4.03",
                               "ctcae_v5.0")
DISTRIBUTION_KINDS = ("fixed", "normal", "lognormal", "uniform", "truncnormal", "bernoulli",
                      "beta", "choice")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class SpecError(InvalidInputError):
    """A trial spec is invalid; ``issues`` lists every bad field as ``path: message``."""

    def __init__(self, issues: list[str], source: str = "trial spec") -> None:
        self.issues = issues
        self.field = "spec"
        self.allowed = "a valid trial spec (see docs/trial.md)"
        self.value = source
        lines = "\n  ".join(issues)
        Exception.__init__(self, f"invalid {source} ({len(issues)} problem"
                                 f"{'s' if len(issues) != 1 else ''}):\n  {lines}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: A number: an int or float, never a bool or a string (``size = true`` and ``"1.5"`` are errors).
SFloat = Annotated[float, Strict()]


# ------------------------------------------------------------------------------ distributions
class Distribution(_Model):
    """A covariate distribution. Every kind accepts optional ``lower``/``upper`` bounds: draws
    are clipped into them (``truncnormal`` truncates instead of clipping)."""

    kind: Literal["fixed", "normal", "lognormal", "uniform", "truncnormal", "bernoulli", "beta",
                  "choice"]
    value: SFloat | None = None  # fixed
    mean: SFloat | None = None  # normal, truncnormal
    sd: SFloat | None = None  # normal, truncnormal (> 0)
    median: SFloat | None = None  # lognormal (> 0)
    sd_log: SFloat | None = None  # lognormal: SD of log(value) (> 0)
    low: SFloat | None = None  # uniform; beta (support start, default 0)
    high: SFloat | None = None  # uniform; beta (support end, default 1)
    p: SFloat | None = None  # bernoulli, in [0, 1]
    a: SFloat | None = None  # beta shape (> 0)
    b: SFloat | None = None  # beta shape (> 0)
    # choice: one of ``values``, drawn with probability ∝ ``weights`` (e.g. the dose levels of
    # a dose-escalation trial with the number of patients treated at each)
    values: list[SFloat] | None = None
    weights: list[SFloat] | None = None
    lower: SFloat | None = None
    upper: SFloat | None = None

    @model_validator(mode="after")
    def _check(self) -> Distribution:
        need = {
            "fixed": ("value",), "normal": ("mean", "sd"), "lognormal": ("median", "sd_log"),
            "uniform": ("low", "high"), "truncnormal": ("mean", "sd", "lower", "upper"),
            "bernoulli": ("p",), "beta": ("a", "b"), "choice": ("values", "weights"),
        }[self.kind]
        missing = [k for k in need if getattr(self, k) is None]
        if missing:
            raise ValueError(f"kind '{self.kind}' needs {', '.join(missing)}")
        for k in ("value", "mean", "sd", "median", "sd_log", "low", "high", "p", "a", "b",
                  "lower", "upper"):
            v = getattr(self, k)
            if v is not None and not math.isfinite(v):
                raise ValueError(f"{k} must be finite, got {v}")
        for k in ("sd", "sd_log", "a", "b"):
            v = getattr(self, k)
            if v is not None and v <= 0:
                raise ValueError(f"{k} must be > 0, got {v}")
        if self.kind == "lognormal" and self.median is not None and self.median <= 0:
            raise ValueError(f"median must be > 0, got {self.median}")
        if self.p is not None and not 0.0 <= self.p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {self.p}")
        if self.kind == "uniform" and self.low is not None and self.high is not None \
                and self.high < self.low:
            raise ValueError(f"high ({self.high}) must be ≥ low ({self.low})")
        if self.lower is not None and self.upper is not None and self.upper < self.lower:
            raise ValueError(f"upper ({self.upper}) must be ≥ lower ({self.lower})")
        if self.kind == "choice":
            vals, wts = self.values or [], self.weights or []
            if not vals or len(vals) != len(wts):
                raise ValueError("choice needs values and weights of the same, non-zero length, "
                                 f"got {len(vals)} values and {len(wts)} weights")
            if any(not math.isfinite(v) for v in vals + wts):
                raise ValueError("choice values and weights must be finite")
            if any(w < 0 for w in wts) or sum(wts) <= 0:
                raise ValueError(f"choice weights must be ≥ 0 with a positive sum, got {wts}")
        elif self.values is not None or self.weights is not None:
            raise ValueError(f"values/weights belong to kind 'choice', not '{self.kind}'")
        return self

    def support(self) -> tuple[float, float]:
        """The interval every draw lies in (after clipping)."""
        if self.kind == "fixed":
            lo = hi = float(self.value)  # type: ignore[arg-type]
        elif self.kind == "bernoulli":
            lo, hi = 0.0, 1.0
        elif self.kind == "uniform":
            lo, hi = float(self.low), float(self.high)  # type: ignore[arg-type]
        elif self.kind == "beta":
            lo = 0.0 if self.low is None else self.low
            hi = 1.0 if self.high is None else self.high
        elif self.kind == "lognormal":
            lo, hi = 0.0, math.inf
        elif self.kind == "choice":
            lo, hi = min(self.values), max(self.values)  # type: ignore[type-var, arg-type]
        else:
            lo, hi = -math.inf, math.inf
        if self.lower is not None:
            lo = max(lo, self.lower)
        if self.upper is not None:
            hi = min(hi, self.upper)
        return lo, hi

    def sample(self, seed: int, patient_id: np.ndarray, name: str) -> np.ndarray:
        """One draw per patient, keyed by (seed, patient id, ``name``) — chunk-independent."""
        pid = np.asarray(patient_id, dtype=np.int64)
        u = uniform_np(seed, pid.astype(np.uint64), stream_id("covariate." + name),
                       np.zeros(pid.shape[0], dtype=np.uint64))
        k = self.kind
        if k == "fixed":
            x = np.full(pid.shape[0], float(self.value))  # type: ignore[arg-type]
        elif k == "normal":
            x = self.mean + self.sd * ndtri(u)  # type: ignore[operator]
        elif k == "lognormal":
            x = self.median * np.exp(self.sd_log * ndtri(u))  # type: ignore[operator]
        elif k == "uniform":
            x = self.low + (self.high - self.low) * u  # type: ignore[operator]
        elif k == "truncnormal":
            a = (self.lower - self.mean) / self.sd  # type: ignore[operator]
            b = (self.upper - self.mean) / self.sd  # type: ignore[operator]
            x = sps.truncnorm.ppf(u, a, b, loc=self.mean, scale=self.sd)
        elif k == "bernoulli":
            x = (u < self.p).astype(np.float64)  # type: ignore[operator]
        elif k == "choice":
            w = np.asarray(self.weights, dtype=np.float64)
            edges = np.cumsum(w) / w.sum()
            idx = np.minimum(np.searchsorted(edges, u, side="right"), len(w) - 1)
            x = np.asarray(self.values, dtype=np.float64)[idx]
        else:  # beta
            lo = 0.0 if self.low is None else self.low
            hi = 1.0 if self.high is None else self.high
            x = lo + (hi - lo) * sps.beta.ppf(u, self.a, self.b)
        lo, hi = self.support()
        return np.clip(np.asarray(x, dtype=np.float64), lo, hi)


DistLike = SFloat | Distribution


def as_distribution(v: DistLike) -> Distribution:
    return v if isinstance(v, Distribution) else Distribution(kind="fixed", value=float(v))


#: Covariates of the population table (a view of :data:`cartsim.covariates.COVARIATES`):
#: name → (lower, upper, unit, default, meaning).
COVARIATES: dict[str, tuple[float, float, str, float, str]] = {
    c.name: (c.lower, c.upper, c.unit, c.default, c.description) for c in _cov.COVARIATES
}
BINARY_COVARIATES = _cov.BINARY
#: Log-normal spread of weight around the age-derived median when weight is not given (assumed).
WEIGHT_FROM_AGE_SD_LOG = 0.15


def weight_from_age(age_y: np.ndarray) -> np.ndarray:
    """Median body weight (kg) for age: APLS formulas (Luscombe & Owens, Arch Dis Child
    2007;92:412 — 2·age+8 for 1–5 y, 3·age+7 for 6–12 y), linear from 43 kg at 12 y to 70 kg at
    18 y, 70 kg for adults, and 3.5 + 6.5·age below 1 y."""
    a = np.asarray(age_y, dtype=np.float64)
    return np.select(
        [a < 1.0, a < 6.0, a <= 12.0, a < 18.0],
        [3.5 + 6.5 * a, 2.0 * a + 8.0, 3.0 * a + 7.0, 43.0 + (a - 12.0) * 27.0 / 6.0],
        70.0,
    )


class _PopulationBase(_Model):
    """Disease, size and pairing; the covariate fields are generated from the covariate table
    (:data:`cartsim.covariates.COVARIATES`), each a number or a :class:`Distribution`."""

    disease: Literal["b-all", "lbcl", "mcl", "fl"]  # cartsim.diseases.DISEASES (tested)
    size: StrictInt
    paired: StrictBool = False

    @field_validator("size")
    @classmethod
    def _size(cls, v: int) -> int:
        if not 0 < v <= 10_000_000:
            raise ValueError(f"must be > 0 and ≤ 10000000, got {v}")
        return v

    @field_validator(*COVARIATES, mode="after", check_fields=False)
    @classmethod
    def _in_range(cls, v: DistLike | None, info: Any) -> DistLike | None:
        if v is None:
            return v
        lo, hi, unit, _, _ = COVARIATES[info.field_name]
        d = as_distribution(v)
        s_lo, s_hi = d.support()
        if s_lo < lo or s_hi > hi:
            where = "value" if d.kind == "fixed" else "support"
            got = f"{s_lo:g}" if d.kind == "fixed" else f"[{s_lo:g}, {s_hi:g}]"
            raise ValueError(f"{where} must lie in [{lo:g}, {hi:g}] {unit}, got {got}; "
                             "add lower/upper bounds to an unbounded distribution")
        return v

    def sample(self, seed: int, patient_id: np.ndarray) -> dict[str, np.ndarray]:
        """Covariates per patient (each keyed by seed, patient id and covariate name)."""
        out: dict[str, np.ndarray] = {}
        for name in COVARIATES:
            if name == "weight_kg":
                continue
            out[name] = as_distribution(getattr(self, name)).sample(seed, patient_id, name)
        for name in BINARY_COVARIATES:
            out[name] = (out[name] >= 0.5).astype(np.float64)
        if self.weight_kg is None:
            z = ndtri(uniform_np(seed, np.asarray(patient_id, np.uint64),
                                 stream_id("covariate.weight_kg"),
                                 np.zeros(len(patient_id), dtype=np.uint64)))
            w = weight_from_age(out["age_y"]) * np.exp(WEIGHT_FROM_AGE_SD_LOG * z)
            out["weight_kg"] = np.clip(w, 2.0, 250.0)
        else:
            out["weight_kg"] = as_distribution(self.weight_kg).sample(seed, patient_id,
                                                                      "weight_kg")
        return out


Population = create_model(
    "Population", __base__=_PopulationBase, __module__=__name__,
    **{c.name: ((DistLike | None, None) if c.name == "weight_kg" else (DistLike, c.default))
       for c in _cov.COVARIATES},
)
Population.__doc__ = ("A trial population: disease, size, pairing and one field per covariate of "
                      ":data:`cartsim.covariates.COVARIATES` (a number or a distribution).")


# --------------------------------------------------------------------------------- arms
class InlineConstruct(_Model):
    name: str
    targets: tuple[str, ...] = ("CD19",)
    costim: Literal["CD28", "4-1BB", "CD28+4-1BB", "none"] = "4-1BB"
    generation: StrictInt = 2
    affinity: SFloat = 1.0
    format: Literal["single", "tandem", "bicistronic", "cocktail"] = "single"
    armour: tuple[str, ...] = ()
    memory_fraction: SFloat = 0.3

    @field_validator("targets")
    @classmethod
    def _targets(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [t for t in v if t not in KNOWN_TARGETS]
        if bad or not v:
            raise ValueError(f"unknown target(s) {bad or v}; allowed: {', '.join(KNOWN_TARGETS)}")
        return v

    @field_validator("armour")
    @classmethod
    def _armour(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [a for a in v if a not in KNOWN_ARMOUR]
        if bad:
            raise ValueError(f"unknown armour {bad}; allowed: {', '.join(KNOWN_ARMOUR)}")
        return v

    @model_validator(mode="after")
    def _construct(self) -> InlineConstruct:
        try:
            self.to_construct()
        except InvalidInputError as e:
            raise ValueError(str(e)) from None
        return self

    def to_construct(self) -> Construct:
        return Construct(self.name, tuple(self.targets), self.costim, self.generation,
                         self.affinity, self.format, tuple(self.armour), self.memory_fraction)


class DoseSpec(_Model):
    """CAR+ cells: ``per_kg`` up to ``max_weight_kg`` and ``flat`` above it (or ``flat`` only);
    ``per_kg``/``flat`` may be distributions (e.g. the dose actually delivered)."""

    per_kg: DistLike | None = None
    max_weight_kg: SFloat | None = None
    flat: DistLike | None = None
    cap: SFloat | None = None

    @model_validator(mode="after")
    def _check(self) -> DoseSpec:
        if self.per_kg is None and self.flat is None:
            raise ValueError("give per_kg, flat or both")
        if self.per_kg is not None:
            lo, hi = as_distribution(self.per_kg).support()
            if lo <= 0 or hi > 1e9:
                raise ValueError(f"per_kg must lie in (0, 1e9] cells/kg, got [{lo:g}, {hi:g}]")
        if self.flat is not None:
            lo, hi = as_distribution(self.flat).support()
            if lo <= 0 or hi > 1e11:
                raise ValueError(f"flat must lie in (0, 1e11] cells, got [{lo:g}, {hi:g}]")
        if self.max_weight_kg is not None and not 0 < self.max_weight_kg <= 300:
            raise ValueError(f"max_weight_kg must be in (0, 300], got {self.max_weight_kg}")
        if self.max_weight_kg is not None and self.flat is None:
            raise ValueError("max_weight_kg needs a flat dose for heavier patients")
        if self.cap is not None and not 0 < self.cap <= 1e11:
            raise ValueError(f"cap must be in (0, 1e11] cells, got {self.cap}")
        return self


class HsctSpec(_Model):
    """Allogeneic HSCT consolidation on ``day`` for patients whose simulated MRD fraction is
    below ``if_mrd_below`` (and who are alive and in morphological remission): conditioning
    kills ``log_kill`` log10 of tumour at every site, ablates CAR-T (``ablate_cart``), and the
    graft (``graft``) brings graft-versus-leukaemia killing (:mod:`cartsim.model.gvl`);
    transplant-related mortality follows the ``trm_*`` parameters of ``[death]``."""

    day: StrictInt
    if_mrd_below: SFloat = 1e-4
    log_kill: SFloat = 3.0
    ablate_cart: StrictBool = True
    graft: StrictBool = True

    @field_validator("day")
    @classmethod
    def _day(cls, v: int) -> int:
        if not 1 <= v <= 3650:
            raise ValueError(f"must be in [1, 3650], got {v}")
        return v

    @field_validator("if_mrd_below")
    @classmethod
    def _mrd(cls, v: float) -> float:
        if not 0 < v <= 1:
            raise ValueError(f"must be in (0, 1] (fraction of marrow cells), got {v}")
        return v

    @field_validator("log_kill")
    @classmethod
    def _kill(cls, v: float) -> float:
        if not 0 <= v <= 12:
            raise ValueError(f"must be in [0, 12] log10 units, got {v}")
        return v


class Consolidation(_Model):
    hsct: HsctSpec | None = None


# --------------------------------------------------------------------- schedule items
#: Schedule item kinds (``[[arms.schedule]]``) and triggers (docs/trial.md, "Schedule items").
SCHEDULE_KINDS = ("allo_hsct", "asct", "reinfusion", "salvage", "drug")
TRIGGERS = ("day", "mrd_negative_cr", "relapse")


class _ScheduleBase(_Model):
    """When a schedule item starts: ``trigger`` (``day``: on ``day``; ``mrd_negative_cr``: the
    first day in ``window`` with simulated MRD below ``mrd_below`` and no sanctuary disease;
    ``relapse``: relapse/progression read from the simulated burden), then ``delay_days``."""

    trigger: Literal["day", "mrd_negative_cr", "relapse"] = "day"
    day: StrictInt | None = None
    window: tuple[StrictInt, StrictInt] | None = None
    mrd_below: SFloat | None = None
    delay_days: StrictInt = 0

    @field_validator("day")
    @classmethod
    def _day(cls, v: int | None) -> int | None:
        if v is not None and not 0 <= v <= 3650:
            raise ValueError(f"must be in [0, 3650] days, got {v}")
        return v

    @field_validator("window")
    @classmethod
    def _window(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is not None and not 0 <= v[0] <= v[1] <= 3650:
            raise ValueError(f"must be [first, last] days with 0 ≤ first ≤ last ≤ 3650, got "
                             f"{list(v)}")
        return v

    @field_validator("mrd_below")
    @classmethod
    def _mrd(cls, v: float | None) -> float | None:
        if v is not None and not 0 < v <= 1:
            raise ValueError(f"must be in (0, 1] (fraction of marrow cells), got {v}")
        return v

    @field_validator("delay_days")
    @classmethod
    def _delay(cls, v: int) -> int:
        if not 0 <= v <= 365:
            raise ValueError(f"must be in [0, 365] days, got {v}")
        return v

    @model_validator(mode="after")
    def _trigger(self) -> _ScheduleBase:
        if self.trigger == "day" and self.day is None:
            raise ValueError("trigger 'day' needs day = D (days after infusion, 0–3650)")
        if self.trigger != "day" and self.day is not None:
            raise ValueError(f"day is only for trigger 'day' (trigger is {self.trigger!r})")
        if self.trigger == "mrd_negative_cr" and self.window is None:
            raise ValueError("trigger 'mrd_negative_cr' needs window = [first, last] days "
                             "(e.g. [28, 90])")
        if self.trigger != "mrd_negative_cr" and (self.window is not None
                                                 or self.mrd_below is not None):
            raise ValueError("window and mrd_below are only for trigger 'mrd_negative_cr'")
        return self

    def first_day(self) -> int:
        """The earliest day the item can act (for the follow-up check)."""
        if self.trigger == "day":
            return int(self.day) + self.delay_days  # type: ignore[arg-type]
        if self.trigger == "mrd_negative_cr":
            return int(self.window[0]) + self.delay_days  # type: ignore[index]
        return 1 + self.delay_days


def _log_kill(v: float | None) -> float | None:
    if v is not None and not 0 <= v <= 12:
        raise ValueError(f"must be in [0, 12] log10 units, got {v}")
    return v


class AlloHsctItem(_ScheduleBase):
    """Allogeneic HSCT: conditioning ``log_kill`` (default hsct_log_kill, 3) at every site,
    CAR-T ablation, donor graft with GVL; only patients with MRD below ``if_mrd_below``
    (default 1e-4; ``1`` = everyone) on the transplant day. B-ALL only."""

    kind: Literal["allo_hsct"]
    log_kill: SFloat | None = None
    ablate_cart: StrictBool = True
    graft: StrictBool = True
    if_mrd_below: SFloat = 1e-4

    @field_validator("log_kill")
    @classmethod
    def _kill(cls, v: float | None) -> float | None:
        return _log_kill(v)

    @field_validator("if_mrd_below")
    @classmethod
    def _if_mrd(cls, v: float) -> float:
        if not 0 < v <= 1:
            raise ValueError(f"must be in (0, 1] (fraction of marrow cells), got {v}")
        return v


class AsctItem(_ScheduleBase):
    """Autologous SCT: high-dose conditioning ``log_kill`` (default asct_log_kill, 2) at every
    site and CAR-T ablation (``ablate_cart``); no graft, no GVL; TRM ``asct_trm_*``."""

    kind: Literal["asct"]
    log_kill: SFloat | None = None
    ablate_cart: StrictBool = True

    @field_validator("log_kill")
    @classmethod
    def _kill(cls, v: float | None) -> float | None:
        return _log_kill(v)


class SalvageItem(_ScheduleBase):
    """Salvage cytoreduction (chemo-/immunotherapy, e.g. after relapse): every tumour clone at
    every site × 10^−``log_kill``; ``log_kill`` is a number or a distribution drawn per patient
    (chemosensitivity differs between patients; default: the population distribution
    ``salvage_log_kill_mean``/``_sd`` of :data:`cartsim.trial.outcomes.SALVAGE_PARAMS`);
    CAR-T removed if ``ablate_cart``. No graft and no transplant-related mortality."""

    kind: Literal["salvage"]
    log_kill: DistLike | None = None
    ablate_cart: StrictBool = False

    @field_validator("log_kill")
    @classmethod
    def _kill(cls, v: DistLike | None) -> DistLike | None:
        if v is None:
            return v
        lo, hi = as_distribution(v).support()
        if not 0 <= lo <= hi <= 12:
            raise ValueError(f"must lie in [0, 12] log10 units, got [{lo:g}, {hi:g}]")
        return v


class LymphodepletionRegimen(_Model):
    """A fludarabine/cyclophosphamide lymphodepletion course as the paper reports it: daily
    doses (mg/m²) and days of each agent. Its exposure relative to the reference course
    (fludarabine 30 and cyclophosphamide 500 mg/m² daily × 3, what ``lymphodepletion = true``
    gives) is :func:`cartsim.lymphodepletion.lymphodepletion_exposure` of the totals."""

    fludarabine_mg_m2: SFloat = 0.0
    fludarabine_days: StrictInt = 0
    cyclophosphamide_mg_m2: SFloat = 0.0
    cyclophosphamide_days: StrictInt = 0

    @field_validator("fludarabine_mg_m2")
    @classmethod
    def _flu(cls, v: float) -> float:
        if not (math.isfinite(v) and 0 <= v <= 60):
            raise ValueError(f"must be in [0, 60] mg/m² per day, got {v}")
        return v

    @field_validator("cyclophosphamide_mg_m2")
    @classmethod
    def _cy(cls, v: float) -> float:
        if not (math.isfinite(v) and 0 <= v <= 3000):
            raise ValueError(f"must be in [0, 3000] mg/m² per day, got {v}")
        return v

    @field_validator("fludarabine_days", "cyclophosphamide_days")
    @classmethod
    def _days(cls, v: int) -> int:
        if not 0 <= v <= 5:
            raise ValueError(f"must be in [0, 5] days, got {v}")
        return v

    @model_validator(mode="after")
    def _some_drug(self) -> LymphodepletionRegimen:
        if self.exposure() <= 0:
            raise ValueError("a lymphodepletion course needs a dose and days of fludarabine "
                             "or cyclophosphamide (for none: lymphodepletion = false in a spec, "
                             "--lymphodepletion none on the command line)")
        if self.exposure() > LD_MAX_EXPOSURE:
            raise ValueError(f"exposure {self.exposure():.2f} reference courses is above "
                             f"{LD_MAX_EXPOSURE:g} (reference: fludarabine 30 and "
                             "cyclophosphamide 500 mg/m² daily × 3)")
        return self

    def exposure(self) -> float:
        """The course's exposure in reference courses (1 = Flu 30 + Cy 500 mg/m² × 3)."""
        return lymphodepletion_exposure(self.fludarabine_mg_m2 * self.fludarabine_days,
                                        self.cyclophosphamide_mg_m2 * self.cyclophosphamide_days)


def ld_exposure(value: bool | LymphodepletionRegimen) -> float:
    """An arm's ``lymphodepletion`` as the simulator's exposure (reference courses)."""
    if isinstance(value, LymphodepletionRegimen):
        return value.exposure()
    return 1.0 if value else 0.0


def lymphodepletion_course(table: dict[str, Any]) -> LymphodepletionRegimen:
    """A course table as a :class:`LymphodepletionRegimen`; a bad one raises ``ValueError``
    naming its fields in cartsim's wording (:func:`_issues`), for a spec and the CLI alike."""
    try:
        return LymphodepletionRegimen.model_validate(table)
    except ValidationError as e:
        raise ValueError("; ".join(i.removeprefix("spec: ") for i in _issues(e))) from None


def _ld_field(v: Any) -> Any:
    """``true``/``false`` or a course table, validated here so a bad course is reported
    once, by its own fields (not also as "must be true or false")."""
    if isinstance(v, bool | LymphodepletionRegimen):
        return v
    if isinstance(v, dict):
        return lymphodepletion_course(v)
    raise ValueError("must be true, false or a course table {fludarabine_mg_m2, "
                     "fludarabine_days, cyclophosphamide_mg_m2, cyclophosphamide_days}, "
                     f"got {v!r}")


class ReinfusionItem(_ScheduleBase):
    """A second CAR-T infusion of the arm's product: ``dose`` (``"same"`` = the arm's dose per
    patient, or a dose table), with or without ``lymphodepletion``."""

    kind: Literal["reinfusion"]
    dose: Literal["same"] | DoseSpec = "same"
    lymphodepletion: StrictBool = True


#: Dose routes that are procedures, not drugs a schedule item may give.
_PROCEDURE_ROUTES = ("hsct_graft",)


def schedule_drugs() -> list[str]:
    """Drugs a ``kind = "drug"`` item may give: the add-on mechanisms' dose routes."""
    from cartsim.model import layout

    return sorted(d.name for m in layout.ADDONS.values() for d in m.doses
                  if d.name not in _PROCEDURE_ROUTES)


class DrugItem(_ScheduleBase):
    """``doses`` doses of ``amount`` (the dose route's unit) of ``drug`` every ``every_days``."""

    kind: Literal["drug"]
    drug: str
    amount: SFloat
    doses: StrictInt = 1
    every_days: StrictInt = 1

    @field_validator("drug")
    @classmethod
    def _drug(cls, v: str) -> str:

        allowed = schedule_drugs()
        if v not in allowed:
            raise ValueError(f"unknown drug {v!r}; allowed: {', '.join(allowed)} (dose routes "
                             "of the model's drug mechanisms)")
        return v

    @field_validator("amount")
    @classmethod
    def _amount(cls, v: float) -> float:
        if not (math.isfinite(v) and 0 < v <= 1e6):
            raise ValueError(f"must be in (0, 1e6] (the dose route's unit), got {v}")
        return v

    @field_validator("doses")
    @classmethod
    def _doses(cls, v: int) -> int:
        if not 1 <= v <= 365:
            raise ValueError(f"must be in [1, 365], got {v}")
        return v

    @field_validator("every_days")
    @classmethod
    def _every(cls, v: int) -> int:
        if not 1 <= v <= 365:
            raise ValueError(f"must be in [1, 365] days, got {v}")
        return v


ScheduleItemSpec = Annotated[AlloHsctItem | AsctItem | ReinfusionItem | SalvageItem | DrugItem,
                             Field(discriminator="kind")]


def resolve_protocol(value: str, base_dir: str | Path | None = None) -> str:
    """An arm's ``protocol``: a shipped protocol name (``cartsim.clinic.shipped_protocols``) or a
    TOML file. A relative file path is taken relative to ``base_dir`` (the directory of the
    spec file that names it) and returned absolute, so the validated spec runs from anywhere.
    The protocol is loaded once here, so a bad one is a spec error before anything runs."""
    from cartsim.clinic.protocol import load_protocol, shipped_protocols

    names = shipped_protocols()
    ref: str = value
    is_file = value.endswith(".toml") or "/" in value or "\\" in value
    if is_file:
        path = Path(value).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        if not path.is_file():
            raise ValueError(f"protocol file {value!r} not found (looked for {path}); give a "
                             "TOML file (relative to the spec file) or a shipped protocol: "
                             + ", ".join(names) + ", or 'none'")
        ref = str(path.resolve())
    elif value not in names:
        raise ValueError(f"unknown protocol {value!r}; shipped: " + ", ".join(names)
                         + ", 'none', or a TOML file path (relative to the spec file)")
    try:
        load_protocol(ref)
    except InvalidInputError as e:  # the protocol file itself is invalid
        raise ValueError(f"cannot load protocol {value!r}: {e}") from None
    return ref


class Arm(_Model):
    name: str
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    product: str | None = None
    inline_construct: InlineConstruct | None = Field(None, alias="construct")
    dose: Literal["label"] | DoseSpec = "label"
    lymphodepletion: bool | LymphodepletionRegimen = True
    protocol: str = "default"
    consolidation: Consolidation = Consolidation()
    schedule: tuple[ScheduleItemSpec, ...] = ()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(f"must be 1–64 letters, digits, '_', '-' or '.', got {v!r}")
        return v

    @field_validator("lymphodepletion", mode="before")
    @classmethod
    def _lymphodepletion(cls, v: Any) -> Any:
        return _ld_field(v)

    @field_validator("product")
    @classmethod
    def _product(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            get_product(v)
        except InvalidInputError:
            raise ValueError(f"unknown product {v!r}; allowed: "
                             + ", ".join(sorted(PRESETS))) from None
        return v

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, v: str, info: ValidationInfo) -> str:
        if v == "none":
            return v
        base_dir = (info.context or {}).get("base_dir")
        return resolve_protocol(v, base_dir)

    @model_validator(mode="after")
    def _what(self) -> Arm:
        if (self.product is None) == (self.inline_construct is None):
            raise ValueError("give exactly one of product (a preset) or construct (inline)")
        if self.inline_construct is not None and self.dose == "label":
            raise ValueError("an inline construct has no label dose: give dose = {...}")
        return self


class TrialSpec(_Model):
    name: str = "trial"
    seed: StrictInt = 0
    follow_up_days: StrictInt = 365
    assessment_days: tuple[StrictInt, ...] = (28, 91)
    endpoints: tuple[str, ...] = ENDPOINTS
    crs_scale: str = "astct"
    km_times: tuple[SFloat, ...] = (180.0, 365.0)
    arms: Annotated[list[Arm], Field(min_length=1)]
    population: Population
    death: dict[str, SFloat] = {}

    @field_validator("seed")
    @classmethod
    def _seed(cls, v: int) -> int:
        if not 0 <= v < 2**63:
            raise ValueError(f"must be a non-negative integer, got {v}")
        return v

    @field_validator("follow_up_days")
    @classmethod
    def _fu(cls, v: int) -> int:
        if not 28 <= v <= 3650:
            raise ValueError(f"must be in [28, 3650] days, got {v}")
        return v

    @field_validator("endpoints")
    @classmethod
    def _endpoints(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [e for e in v if e not in ENDPOINTS]
        if bad:
            raise ValueError(f"unknown endpoint(s) {', '.join(map(repr, bad))}; allowed: "
                             + ", ".join(ENDPOINTS))
        return v

    @field_validator("crs_scale")
    @classmethod
    def _scale(cls, v: str) -> str:
        if v not in CRS_SCALES:
            raise ValueError(f"unknown CRS scale {v!r}; allowed: {', '.join(CRS_SCALES)}")
        return v

    @field_validator("km_times")
    @classmethod
    def _km(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(not math.isfinite(t) or t <= 0 for t in v):
            raise ValueError(f"times must be finite and > 0, got {list(v)}")
        return v

    @field_validator("death")
    @classmethod
    def _death(cls, v: dict[str, float]) -> dict[str, float]:
        from cartsim.trial.outcomes import DEATH_PARAMS

        problems = []
        for k, x in v.items():
            if k not in DEATH_PARAMS.names:
                problems.append(f"unknown death parameter {k!r}; allowed: "
                                + ", ".join(DEATH_PARAMS.names))
                continue
            try:
                DEATH_PARAMS[k].validate(x, k)
            except InvalidInputError as e:
                problems.append(str(e))
        if problems:
            raise ValueError("; ".join(problems))
        return v

    @model_validator(mode="after")
    def _cross(self) -> TrialSpec:
        problems = cross_field_problems(
            self.follow_up_days, list(self.assessment_days),
            [(a.name, None if a.consolidation.hsct is None else a.consolidation.hsct.day)
             for a in self.arms], self.population.disease)
        problems += schedule_problems(self)
        if problems:
            raise ValueError(_CROSS_SEP.join(problems))
        return self

    # ------------------------------------------------------------------ helpers
    def canonical(self) -> dict[str, Any]:
        """A JSON-able dict (what the manifest stores and the hash covers)."""
        return self.model_dump(mode="json", by_alias=True)

    def digest(self) -> str:
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def with_overrides(self, size: int | None = None, seed: int | None = None) -> TrialSpec:
        data = self.canonical()
        if size is not None:
            data["population"]["size"] = size
        if seed is not None:
            data["seed"] = seed
        return validate_spec(data, "trial spec (with command-line overrides)")


_CROSS_SEP = "\n"  # cross-field problems travel in one ValueError, one per line


def schedule_problems(spec: TrialSpec) -> list[str]:
    """Rules that relate schedule items to the rest of the spec: each item can act within
    follow-up; allogeneic HSCT and the MRD trigger need B-ALL (MRD is a marrow readout)."""
    problems = []
    disease = spec.population.disease
    for i, arm in enumerate(spec.arms):
        for j, item in enumerate(arm.schedule):
            where = f"arms[{i}].schedule[{j}]"
            if item.first_day() > spec.follow_up_days:
                problems.append(f"{where} ({item.kind}) first acts on day {item.first_day()}, "
                                f"after follow_up_days ({spec.follow_up_days})")
            if item.trigger == "mrd_negative_cr" and item.window[1] > spec.follow_up_days:  # type: ignore[index]
                problems.append(f"{where}.window ({list(item.window)}) ends after "  # type: ignore[arg-type]
                                f"follow_up_days ({spec.follow_up_days})")
            if disease != "b-all" and item.kind == "allo_hsct":
                problems.append(f"{where}: kind 'allo_hsct' needs disease 'b-all' (MRD-guided "
                                "graft-versus-leukaemia); use kind 'asct' for lymphoma")
            if disease != "b-all" and item.trigger == "mrd_negative_cr":
                problems.append(f"{where}: trigger 'mrd_negative_cr' needs disease 'b-all' "
                                "(MRD is a marrow readout); use 'day' or 'relapse'")
    return problems


def cross_field_problems(follow_up_days: int | None, assessment_days: list[int] | None,
                         arms: list[tuple[str | None, int | None]],
                         disease: str | None) -> list[str]:
    """Rules that relate fields (assessment days within follow-up, unique arm names, HSCT
    timing and disease). ``None`` marks a value that is itself invalid (its rule is skipped)."""
    problems = []
    if follow_up_days is not None and assessment_days is not None:
        bad = [d for d in assessment_days if not 1 <= d <= follow_up_days]
        if bad or not assessment_days:
            problems.append(f"assessment_days must be non-empty and within [1, follow_up_days "
                            f"= {follow_up_days}], got {list(assessment_days)}")
    if assessment_days is not None and list(assessment_days) != sorted(set(assessment_days)):
        problems.append("assessment_days must be strictly increasing, got "
                        f"{list(assessment_days)}")
    names = [n for n, _ in arms if n is not None]
    if len(set(names)) != len(names):
        problems.append(f"arm names must be unique, got {names}")
    for i, (_, day) in enumerate(arms):
        if day is None:
            continue
        if follow_up_days is not None and day > follow_up_days:
            problems.append(f"arms[{i}].consolidation.hsct.day ({day}) is after "
                            f"follow_up_days ({follow_up_days})")
        if disease is not None and disease != "b-all":
            problems.append(f"arms[{i}].consolidation.hsct needs disease 'b-all' (MRD-guided)")
    return problems


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _raw_cross_field_problems(data: Any) -> list[str]:
    """:func:`cross_field_problems` on raw input whose other fields failed validation (the
    model-level rule does not run then), so one pass reports every problem."""
    if not isinstance(data, dict):
        return []
    fu = _int(data.get("follow_up_days", TrialSpec.model_fields["follow_up_days"].default))
    ad_raw = data.get("assessment_days", list(TrialSpec.model_fields["assessment_days"].default))
    ad = ([_int(d) for d in ad_raw] if isinstance(ad_raw, list | tuple) else None)
    if ad is not None and any(d is None for d in ad):
        ad = None
    arms = []
    for a in data.get("arms") or [] if isinstance(data.get("arms"), list) else []:
        if not isinstance(a, dict):
            continue
        name = a.get("name") if isinstance(a.get("name"), str) else None
        cons = a.get("consolidation")
        hsct = cons.get("hsct") if isinstance(cons, dict) else None
        arms.append((name, _int(hsct.get("day")) if isinstance(hsct, dict) else None))
    pop = data.get("population")
    disease = pop.get("disease") if isinstance(pop, dict) else None
    disease = disease if disease in DISEASES else None
    return cross_field_problems(fu, ad, arms, disease)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for k, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in SCHEDULE_KINDS and k >= 2 and loc[k - 2] == "schedule":
            continue  # the discriminator tag of a schedule item
        elif part in ("float", "Distribution", "DoseSpec", "literal['label']",
                      "function-after[_in_range(), union[float,Distribution]]") or \
                str(part).startswith(("function-", "union[", "literal[")):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out or "spec"


def _issues(err: ValidationError) -> list[str]:
    """One line per bad field; union branches of the same field are merged. Messages are
    cartsim's wording (:func:`cartsim.errors.pydantic_message`), never pydantic's raw text."""
    seen: dict[str, list[tuple[str, str]]] = {}
    for e in err.errors():
        path = _loc(tuple(e["loc"]))
        raw = str(e["msg"])
        if e["type"] == "value_error":  # our validators' words; cross-field rules one per line
            lines = raw.removeprefix("Value error, ").split(_CROSS_SEP)
        elif e["type"] in ("union_tag_invalid", "union_tag_not_found"):
            path = path + ".kind"
            lines = [f"must be one of {', '.join(SCHEDULE_KINDS)}"
                     + (f" (got {e['input'].get('kind')!r})" if isinstance(e["input"], dict)
                        and "kind" in e["input"] else "")]
        else:
            lines = [pydantic_message(dict(e))]
        seen.setdefault(path, [])
        for line in lines:
            if line not in [m for _, m in seen[path]]:
                seen[path].append((raw, line))
    out = []
    for path, msgs in seen.items():
        # for "number or table" fields keep the most specific message
        specific = [m for r, m in msgs if not r.startswith(("Input should be a valid",
                                                             "Input should be 'label'"))]
        if path == "spec":  # cross-field rules: one line each
            out += [f"{path}: {m}" for m in specific or [m for _, m in msgs]]
        else:
            out.append(f"{path}: {'; '.join(specific or [m for _, m in msgs])}")
    return out


def validate_spec(data: dict[str, Any], source: str = "trial spec",
                  base_dir: str | Path | None = None) -> TrialSpec:
    """Validate a spec dict; raise :class:`SpecError` naming every bad field. Relative protocol
    file paths are resolved against ``base_dir`` (the spec file's directory; default: the
    current directory)."""
    try:
        return TrialSpec.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as e:
        issues = _issues(e)
        for p in _raw_cross_field_problems(data):  # the model-level rule did not run
            if f"spec: {p}" not in issues:
                issues.append(f"spec: {p}")
        raise SpecError(issues, source) from None


def load_spec(path: str | Path) -> TrialSpec:
    """Read and validate a TOML trial spec."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError("spec", "an existing TOML file", str(p)) from None
    except IsADirectoryError:
        raise InvalidInputError("spec", "a TOML file, not a directory", str(p)) from None
    except UnicodeDecodeError as e:
        raise InvalidInputError("spec", "a UTF-8 encoded TOML file", str(p),
                                f"undecodable byte at offset {e.start}") from None
    except OSError as e:
        raise InvalidInputError("spec", "a readable TOML file", str(p), e.strerror or "") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError([f"TOML syntax: {e}"], str(p)) from None
    return validate_spec(raw, str(p), base_dir=p.parent)
