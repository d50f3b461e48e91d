"""The claims file: every claim of the two source reviews as data (``data/claims/*.toml``).

A claim row names the review claim it tests (``id`` = ``A1``…``A22``, ``B1``…``B13``; ``part``
tells several rows of one claim apart), the experiment (a study-library spec, overrides common
to every arm, and one or two arms that differ in one factor), the endpoint it reads and the
published figure it is compared with. A claim that cannot be tested carries ``untestable`` (the
reason) instead of an experiment. :func:`load_claims` validates the whole file and raises one
:class:`ClaimsError` listing every bad field as ``claim A8/EFS: endpoint.event: ...``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cartsim.errors import InvalidInputError, pydantic_message

#: Every claim id of shared/reference/SEEDS.md (Review A: A1–A22, Review B: B1–B13).
SEED_IDS: tuple[str, ...] = tuple([f"A{i}" for i in range(1, 23)]
                                  + [f"B{i}" for i in range(1, 14)])
ID_RE = re.compile(r"^[AB][0-9]{1,2}$")
EVENTS = ("efs", "os", "pfs", "rfs", "dor")
#: Endpoint kinds: a rate (share of rows where ``expr`` holds), a Kaplan–Meier landmark, a Cox
#: hazard ratio arm a vs arm b, a ratio of geometric means a / b, a mean.
ENDPOINT_KINDS = ("rate", "km", "hr", "ratio", "mean")
#: Comparisons: ``value`` (one arm against a figure with its CI), ``a>b`` / ``a<b`` (direction,
#: with per-arm figures when given), ``similar`` (no effect within the tolerance).
COMPARISONS = ("value", "a>b", "a<b", "similar")
#: Points (percentage points for rates and landmarks) a figure may miss its CI by and still count.
TOLERANCE_POINTS = 10.0


class ClaimsError(InvalidInputError):
    """The claims file is invalid; ``issues`` lists every bad field, each naming its claim."""

    def __init__(self, issues: list[str], source: str) -> None:
        self.issues = issues
        self.field = "claims"
        self.allowed = "a valid claims file (see docs/claims.md)"
        self.value = source
        lines = "\n  ".join(issues)
        Exception.__init__(self, f"invalid claims file {source} ({len(issues)} problem"
                                 f"{'s' if len(issues) != 1 else ''}):\n  {lines}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Endpoint(_Model):
    """What an arm's patients table is reduced to.

    ``rate``: share of rows (after ``among``) where the pandas expression ``expr`` is true;
    ``km``: Kaplan–Meier ``event`` survival at ``day`` (``complement``: 1 − S, the cumulative
    incidence); ``hr``: Cox hazard ratio of ``event`` for arm a vs arm b; ``ratio``: geometric
    mean of ``column`` in arm a over arm b; ``mean``: mean of ``column``.
    """

    kind: Literal["rate", "km", "hr", "ratio", "mean"]
    expr: str | None = None
    among: str | None = None
    event: Literal["efs", "os", "pfs", "rfs", "dor"] | None = None
    day: float | None = None
    complement: bool = False
    column: str | None = None

    @model_validator(mode="after")
    def _need(self) -> Endpoint:
        need = {"rate": ("expr",), "km": ("event", "day"), "hr": ("event",),
                "ratio": ("column",), "mean": ("column",)}[self.kind]
        missing = [k for k in need if getattr(self, k) is None]
        if missing:
            raise ValueError(f"kind '{self.kind}' needs {', '.join(missing)}")
        if self.day is not None and not 0 < self.day <= 3650:
            raise ValueError(f"day must be in (0, 3650], got {self.day}")
        return self

    @property
    def percent(self) -> bool:
        """Rates and landmarks are reported in percent (and compared in points)."""
        return self.kind in ("rate", "km")

    def describe(self) -> str:
        if self.kind == "rate":
            s = f"% with {self.expr}"
        elif self.kind == "km":
            s = (f"{'1 − ' if self.complement else ''}KM {self.event.upper()}"  # type: ignore[union-attr]
                 f" at day {self.day:g}")
        elif self.kind == "hr":
            s = f"{self.event.upper()} hazard ratio a vs b"  # type: ignore[union-attr]
        elif self.kind == "ratio":
            s = f"geometric-mean {self.column} a / b"
        else:
            s = f"mean {self.column}"
        return s + (f" (among {self.among})" if self.among else "")


class ArmDef(_Model):
    """One arm: a label, overrides of the spec (deep-merged; ``arm`` merges into the trial arm)
    and an optional subgroup filter (``among``, a pandas query) on its patients table."""

    label: str
    overrides: dict[str, Any] = {}
    among: str | None = None


class Figure(_Model):
    """The published figure: ``value`` [``lower``, ``upper``] for one arm, ``a``/``b`` per arm
    (with optional ``a_lower`` … ``b_upper``), and free text (``text``: as the review gives it)."""

    text: str = ""
    value: float | None = None
    lower: float | None = None
    upper: float | None = None
    a: float | None = None
    a_lower: float | None = None
    a_upper: float | None = None
    b: float | None = None
    b_lower: float | None = None
    b_upper: float | None = None

    @model_validator(mode="after")
    def _order(self) -> Figure:
        for v, lo, hi in (("value", "lower", "upper"), ("a", "a_lower", "a_upper"),
                          ("b", "b_lower", "b_upper")):
            x, lo_, hi_ = getattr(self, v), getattr(self, lo), getattr(self, hi)
            if (lo_ is None) != (hi_ is None):
                raise ValueError(f"give both {lo} and {hi} or neither")
            if lo_ is not None and hi_ < lo_:
                raise ValueError(f"{hi} ({hi_}) must be ≥ {lo} ({lo_})")
            if x is not None and lo_ is not None and not lo_ <= x <= hi_:
                raise ValueError(f"{v} ({x}) must lie in [{lo}, {hi}] = [{lo_}, {hi_}]")
        return self


class Claim(_Model):
    """One row of the claims table (see the module docstring)."""

    id: str
    part: str = ""
    text: str
    ref: str
    untestable: str | None = None
    study: str | None = None
    follow_up_days: int | None = None
    overrides: dict[str, Any] = {}
    factor: str = ""
    arms: list[ArmDef] = Field(default_factory=list)
    endpoint: Endpoint | None = None
    comparison: Literal["value", "a>b", "a<b", "similar"] | None = None
    published: Figure = Figure()

    @property
    def key(self) -> str:
        return f"{self.id}/{self.part}" if self.part else self.id

    @model_validator(mode="after")
    def _check(self) -> Claim:
        if not ID_RE.match(self.id) or self.id not in SEED_IDS:
            raise ValueError(f"id must be a SEEDS.md claim id (A1–A22, B1–B13), got {self.id!r}")
        if self.untestable is not None:
            if not self.untestable.strip():
                raise ValueError("untestable must give the reason")
            if self.study or self.arms or self.endpoint or self.comparison:
                raise ValueError("an untestable claim has no study, arms, endpoint or comparison")
            return self
        missing = [k for k in ("study", "endpoint", "comparison") if getattr(self, k) is None]
        if missing or not self.arms:
            raise ValueError("a testable claim needs study, arms, endpoint and comparison "
                             f"(missing: {', '.join(missing + ([] if self.arms else ['arms']))})")
        two = self.comparison != "value"
        if two and len(self.arms) != 2:
            raise ValueError(f"comparison '{self.comparison}' needs exactly 2 arms (a, b), "
                             f"got {len(self.arms)}")
        if not two and len(self.arms) != 1:
            raise ValueError(f"comparison 'value' needs exactly 1 arm, got {len(self.arms)}")
        if self.endpoint.kind in ("hr", "ratio") and not two:  # type: ignore[union-attr]
            raise ValueError(f"endpoint kind '{self.endpoint.kind}' compares two arms; "  # type: ignore[union-attr]
                             "comparison must be a>b, a<b or similar")
        if self.comparison == "value" and self.published.value is None:
            raise ValueError("comparison 'value' needs published.value")
        if len({a.label for a in self.arms}) != len(self.arms):
            raise ValueError("arm labels must be unique")
        if self.follow_up_days is not None and not 28 <= self.follow_up_days <= 3650:
            raise ValueError(f"follow_up_days must be in [28, 3650], got {self.follow_up_days}")
        return self


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith(("function-", "literal[", "union[")):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out or "claim"


def validate_claims(raw: dict[str, Any], source: str = "claims") -> list[Claim]:
    """Validate a parsed claims file (``[[claim]]`` tables); every problem names its claim."""
    issues: list[str] = []
    extra = sorted(set(raw) - {"claim"})
    if extra:
        issues.append(f"top level: unknown table(s) {extra}; only [[claim]] is allowed")
    rows = raw.get("claim", [])
    if not isinstance(rows, list) or not rows:
        issues.append("top level: needs at least one [[claim]] table")
        rows = []
    claims: list[Claim] = []
    for i, row in enumerate(rows):
        name = (f"claim {row.get('id')}" + (f"/{row['part']}" if row.get("part") else "")
                if isinstance(row, dict) and row.get("id") else f"claim[{i}]")
        try:
            claims.append(Claim.model_validate(row))
        except ValidationError as e:
            for err in e.errors():
                msg = (str(err["msg"]).removeprefix("Value error, ")
                       if err["type"] == "value_error" else pydantic_message(dict(err)))
                issues.append(f"{name}: {_loc(tuple(err['loc']))}: {msg}")
    seen: dict[str, int] = {}
    for c in claims:
        seen[c.key] = seen.get(c.key, 0) + 1
    issues += [f"claim {k}: id/part: duplicated ({n} rows)" for k, n in seen.items() if n > 1]
    if issues:
        raise ClaimsError(issues, source)
    return claims


def default_claims_path() -> Path:
    return Path(__file__).resolve().parent.parent / "data" / "claims" / "claims.toml"


def load_claims(path: str | Path | None = None) -> list[Claim]:
    """Read and validate a claims file (default: the shipped ``data/claims/claims.toml``)."""
    p = default_claims_path() if path is None else Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError("claims", "an existing TOML file", str(p)) from None
    except tomllib.TOMLDecodeError as e:
        raise ClaimsError([f"TOML syntax: {e}"], str(p)) from None
    return validate_claims(raw, str(p))


def missing_ids(claims: list[Claim]) -> list[str]:
    """SEEDS.md claim ids without any row."""
    have = {c.id for c in claims}
    return [i for i in SEED_IDS if i not in have]
