"""Run the claims table: one paired virtual experiment per testable claim, then the verdicts.

Each arm of a claim is a one-arm trial built from a study-library spec
(``cartsim/data/studies/<study>.toml``): the spec's first arm (or ``base_arm``), the claim's
common ``overrides`` and then the arm's own, deep-merged (a key written ``"=name"`` replaces
``name`` instead of merging into it, ``"-name"`` removes it; ``arm`` merges into the trial
arm). Both arms of a claim use the same seed, size and patient ids, so they treat the same
virtual patients and differ only in the factor. Identical arm specs (across claims, whatever
the claim) are simulated once.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from cartsim.claims.measure import (
    NOT_REPRODUCED,
    NOT_TESTABLE,
    Estimate,
    arm_estimate,
    effect_estimate,
    judge,
)
from cartsim.claims.schema import Claim
from cartsim.errors import InvalidInputError
from cartsim.trial.spec import TrialSpec, validate_spec

#: Virtual patients per arm: validate's default, so that a claim's verdict is the model's and
#: not its sample (session 41: at 200 per arm three hazard ratios had CIs that included 1
#: which at 1,000 exclude it — A8's OS, B4's antigen density, B12's anti-PD-1 salvage)
DEFAULT_PATIENTS = 1000


def studies_dir() -> Path:
    return Path(str(resources.files("cartsim.data") / "studies"))


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of ``over`` into a copy of ``base``; a key ``"=k"`` replaces ``k`` whole and
    ``"-k"`` removes ``k``."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if k.startswith("-"):
            out.pop(k[1:], None)
        elif k.startswith("="):
            out[k[1:]] = copy.deepcopy(v)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _combine(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Literal deep merge of two override layers (the claim's, then the arm's): keys keep their
    ``=``/``-`` markers for :func:`merge`."""
    out = copy.deepcopy(a)
    for k, v in b.items():
        out[k] = _combine(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) \
            else copy.deepcopy(v)
    return out


def arm_spec(claim: Claim, arm_index: int, patients: int, seed: int | None) -> TrialSpec:
    """The validated one-arm trial spec of ``claim``'s arm ``arm_index``."""
    path = studies_dir() / f"{claim.study}.toml"
    if not path.exists():
        known = sorted(p.stem for p in studies_dir().glob("*.toml") if p.stem != "index")
        raise InvalidInputError(f"claim {claim.key}: study", "one of " + ", ".join(known),
                                claim.study)
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    over = _combine(claim.overrides, claim.arms[arm_index].overrides)
    base_arm = over.pop("base_arm", None)
    arms = raw.get("arms", [])
    names = [a.get("name") for a in arms]
    if base_arm is not None and base_arm not in names:
        raise InvalidInputError(f"claim {claim.key}: base_arm", "one of " + ", ".join(names),
                                base_arm)
    trial_arm = arms[names.index(base_arm) if base_arm is not None else 0]
    arm_over = over.pop("arm", {})
    spec = merge(raw, over)
    spec["arms"] = [merge(trial_arm, arm_over)]
    # one name per study: arms that come out identical across claims share one simulation
    spec["name"] = f"claims_{claim.study}"[:64]
    spec.setdefault("population", {})["size"] = patients
    spec["population"]["paired"] = False
    if seed is not None:
        spec["seed"] = seed
    if claim.follow_up_days is not None:
        fu = claim.follow_up_days
        spec["follow_up_days"] = fu
        ad = [d for d in spec.get("assessment_days", [28, 91]) if d <= fu] or [min(28, fu)]
        spec["assessment_days"] = ad
        spec["km_times"] = [t for t in spec.get("km_times", [180, 365]) if t <= fu] or [fu]
    return validate_spec(spec, f"claim {claim.key} arm {claim.arms[arm_index].label!r}")


@dataclass
class ClaimResult:
    claim: Claim
    arms: list[Estimate] = field(default_factory=list)
    effect: Estimate | None = None
    verdict: str = NOT_TESTABLE
    reason: str = ""
    n: list[int] = field(default_factory=list)
    seconds: float = 0.0

    def record(self) -> dict[str, Any]:
        c = self.claim
        ep = c.endpoint
        unit = "%" if ep is not None and ep.percent else ""
        eff_unit = "points" if unit else ""
        sim = ""
        if self.arms:
            sim = " vs ".join(f"{a.label}: {e.fmt(unit)}"
                              for a, e in zip(c.arms, self.arms, strict=False))
        if self.effect is not None:
            name = {"hr": "HR", "ratio": "ratio"}.get(ep.kind, "a − b") if ep else ""
            sim += ("; " if sim else "") + f"{name} {self.effect.fmt(eff_unit)}"
        return {
            "claim": c.key, "id": c.id, "part": c.part, "text": c.text, "ref": c.ref,
            "study": c.study or "", "factor": c.factor,
            "arms": "; ".join(f"{a.label}: {json.dumps(a.overrides, sort_keys=True)}"
                              + (f" among {a.among}" if a.among else "") for a in c.arms),
            "endpoint": ep.describe() if ep else "", "comparison": c.comparison or "",
            "follow_up_days": c.follow_up_days,
            "published": c.published.text, "simulated": sim,
            "effect": None if self.effect is None else self.effect.value,
            "effect_lower": None if self.effect is None else self.effect.lower,
            "effect_upper": None if self.effect is None else self.effect.upper,
            "arm_values": [e.value for e in self.arms],
            "n_per_arm": self.n, "verdict": self.verdict, "reason": self.reason,
            "seconds": round(self.seconds, 1),
        }


class _Cache:
    """Simulated arms by spec digest (identical arms across claims run once)."""

    def __init__(self, workdir: Path, chunk_size: int) -> None:
        self.workdir = workdir
        self.chunk_size = chunk_size
        self.tables: dict[str, pd.DataFrame] = {}

    def patients(self, spec: TrialSpec) -> tuple[pd.DataFrame, float]:
        key = spec.digest()
        if key in self.tables:
            return self.tables[key], 0.0
        self.tables[key], seconds = _simulate_arm(spec, str(self.workdir / key[:16]),
                                                  self.chunk_size)
        return self.tables[key], seconds


def _simulate_arm(spec: TrialSpec, dest: str, chunk_size: int,
                  ps: Any = None, in_force: bool = False) -> tuple[pd.DataFrame, float]:
    """One arm's patient table and its seconds; with ``in_force``, ``ps`` (a parameter set or
    None for the model's values) is put in force first (a worker process gets its parent's)."""
    import contextlib

    from cartsim import parameter_sets
    from cartsim.trial.runner import run_trial

    t0 = time.perf_counter()
    with parameter_sets.use(ps) if in_force else contextlib.nullcontext():
        res = run_trial(spec, Path(dest), chunk_size=max(1, min(chunk_size,
                                                               spec.population.size)),
                        report=False)
    shutil.rmtree(dest, ignore_errors=True)
    return res.patients, time.perf_counter() - t0


def _prefill(claims: list[Claim], cache: _Cache, patients: int, seed: int | None,
             workers: int) -> dict[str, float]:
    """Run every distinct arm of ``claims`` in ``workers`` processes (longest first) into
    ``cache``; returns the seconds each arm took, by spec digest. Each arm is the same trial
    as in-process (its own seed and patients), so the numbers do not depend on ``workers``."""
    from concurrent.futures import as_completed

    from cartsim import parameter_sets
    from cartsim.validate.run import study_pool

    specs: dict[str, TrialSpec] = {}
    for c in claims:
        if c.untestable is not None:
            continue
        for i in range(len(c.arms)):
            sp = arm_spec(c, i, patients, seed)
            specs.setdefault(sp.digest(), sp)
    order = sorted(specs.items(), key=lambda kv: -(kv[1].population.size
                                                   * len(kv[1].arms) * kv[1].follow_up_days))
    ps = parameter_sets.active()
    seconds: dict[str, float] = {}
    with study_pool(min(workers, max(1, len(order)))) as pool:
        futs = {pool.submit(_simulate_arm, sp, str(cache.workdir / key[:16]),
                            cache.chunk_size, ps, True): key for key, sp in order}
        for f in as_completed(futs):
            key = futs[f]
            cache.tables[key], seconds[key] = f.result()
    return seconds


def run_claim(claim: Claim, cache: _Cache, patients: int, seed: int | None) -> ClaimResult:
    """Simulate and judge one claim (an untestable claim is returned with its reason)."""
    out = ClaimResult(claim)
    if claim.untestable is not None:
        out.reason = claim.untestable
        return out
    ep = claim.endpoint
    assert ep is not None
    tables = []
    for i, arm in enumerate(claim.arms):
        df, sec = cache.patients(arm_spec(claim, i, patients, seed))
        out.seconds += sec
        if arm.among:
            df = df.query(arm.among, engine="python")
        tables.append(df)
        out.n.append(len(df))
    try:
        if ep.kind not in ("hr", "ratio"):
            out.arms = [arm_estimate(t, ep) for t in tables]
        if len(tables) == 2:
            ea, eb = (out.arms + [Estimate(math.nan, math.nan, math.nan)] * 2)[:2]
            out.effect = effect_estimate(tables[0], tables[1], ep, ea, eb)
    except Exception as e:  # noqa: BLE001 - a bad expression names its claim, the run goes on
        out.verdict, out.reason = NOT_REPRODUCED, f"endpoint could not be computed: {e}"
        return out
    out.verdict, out.reason = judge(claim, out.arms, out.effect)
    return out


def run_claims(claims: list[Claim], patients: int = DEFAULT_PATIENTS, seed: int | None = None,
               chunk_size: int = 250,
               progress: Callable[[int, int, str], None] | None = None,
               workers: int = 1) -> list[ClaimResult]:
    """Run every claim (in file order); ``progress(done, total, key)`` after each. With
    ``workers`` > 1 the distinct arms are first simulated in that many processes; the
    results are the same."""
    if not 1 <= patients <= 100_000:
        raise InvalidInputError("--patients", "[1, 100000]", patients)
    if not 1 <= workers <= 256:
        raise InvalidInputError("--workers", "an integer in [1, 256]", workers)
    results = []
    with tempfile.TemporaryDirectory(prefix="cartsim-claims-") as tmp:
        cache = _Cache(Path(tmp), chunk_size)
        seconds = _prefill(claims, cache, patients, seed, workers) if workers > 1 else {}
        for k, c in enumerate(claims):
            r = run_claim(c, cache, patients, seed)
            if seconds and c.untestable is None:  # the arms ran in the pool: their time
                r.seconds = sum(seconds.get(arm_spec(c, i, patients, seed).digest(), 0.0)
                                for i in range(len(c.arms)))
            results.append(r)
            if progress is not None:
                progress(k + 1, len(claims), c.key)
    return results
