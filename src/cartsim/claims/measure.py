"""Reduce a claim's arms (patients tables) to estimates with 95 % CIs, and judge them.

Rates: Wilson score interval. Kaplan–Meier landmarks: log-log Greenwood interval
(:class:`cartsim.trial.stats.KaplanMeier`). Hazard ratios: Cox model (Efron ties,
:func:`cartsim.trial.stats.cox_ph`) with the arm as the only covariate. Ratios of geometric
means and means: normal approximation on the log / raw scale. A difference of two rates or
landmarks (a − b) takes its standard error from each arm's (unpaired, conservative).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from cartsim.claims.schema import TOLERANCE_POINTS, Claim, Endpoint, Figure
from cartsim.trial.stats import KaplanMeier, cox_ph

Z95 = 1.959963984540054

REPRODUCED = "reproduced"
DIRECTION_ONLY = "direction only"
NOT_REPRODUCED = "not reproduced"
NOT_TESTABLE = "not testable"
VERDICTS = (REPRODUCED, DIRECTION_ONLY, NOT_REPRODUCED, NOT_TESTABLE)


@dataclass(frozen=True)
class Estimate:
    """A figure with its 95 % CI (percent for rates and landmarks) and the rows it used."""

    value: float
    lower: float
    upper: float
    n: int = 0

    @property
    def defined(self) -> bool:
        return math.isfinite(self.value)

    def se(self) -> float:
        return (self.upper - self.lower) / (2 * Z95) if math.isfinite(self.upper - self.lower) \
            else math.nan

    def fmt(self, unit: str = "") -> str:
        if not self.defined:
            return "undefined"
        d = 1 if unit == "%" else 3
        lo = f"{self.lower:.{d}f}" if math.isfinite(self.lower) else "?"
        hi = f"{self.upper:.{d}f}" if math.isfinite(self.upper) else "?"
        if unit == "%":
            return f"{self.value:.1f}% ({lo}–{hi})"
        if unit == "points":
            return f"{self.value:+.1f} ({self.lower:+.1f} to {self.upper:+.1f}) points"
        return f"{self.value:.{d}g} ({lo}–{hi})"

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


NAN = Estimate(math.nan, math.nan, math.nan, 0)


def wilson(k: int, n: int) -> Estimate:
    """Proportion ``k/n`` in percent with the Wilson score 95 % interval."""
    if n <= 0:
        return NAN
    p = k / n
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return Estimate(100 * p, 100 * lo, 100 * hi, n)


def _rows(df: pd.DataFrame, among: str | None) -> pd.DataFrame:
    return df if not among else df.query(among, engine="python")


def arm_estimate(df: pd.DataFrame, ep: Endpoint) -> Estimate:
    """One arm's figure for a ``rate``, ``km`` or ``mean`` endpoint."""
    d = _rows(df, ep.among)
    if ep.kind == "rate":
        if d.empty:
            return NAN
        hit = np.asarray(d.eval(ep.expr, engine="python"), dtype=bool)  # type: ignore[arg-type]
        return wilson(int(hit.sum()), int(hit.size))
    if ep.kind == "km":
        t = d[f"{ep.event}_days"]
        ok = t.notna()
        if not ok.any():
            return NAN
        km = KaplanMeier(conf_type="log-log").fit(t[ok], d.loc[ok, f"{ep.event}_event"])
        row = km.at(float(ep.day)).iloc[0]  # type: ignore[arg-type]
        s, lo, hi = float(row["surv"]), float(row["lower"]), float(row["upper"])
        if ep.complement:
            s, lo, hi = 1 - s, 1 - hi, 1 - lo
        return Estimate(100 * s, 100 * lo, 100 * hi, int(ok.sum()))
    if ep.kind in ("mean", "ratio"):
        x = pd.to_numeric(d[ep.column], errors="coerce").to_numpy(dtype=float)
        x = x[np.isfinite(x)]
        if x.size == 0:
            return NAN
        m = float(x.mean())
        se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan
        return Estimate(m, m - Z95 * se, m + Z95 * se, int(x.size))
    raise ValueError(f"endpoint kind {ep.kind!r} has no per-arm figure")


def effect_estimate(a: pd.DataFrame, b: pd.DataFrame, ep: Endpoint,
                    ea: Estimate, eb: Estimate) -> Estimate:
    """Arm a against arm b: difference (rate, km, mean), hazard ratio (hr) or ratio of
    geometric means (ratio)."""
    if ep.kind == "hr":
        da, db = _rows(a, ep.among), _rows(b, ep.among)
        t = np.concatenate([da[f"{ep.event}_days"].to_numpy(float),
                            db[f"{ep.event}_days"].to_numpy(float)])
        e = np.concatenate([da[f"{ep.event}_event"].to_numpy(float),
                            db[f"{ep.event}_event"].to_numpy(float)])
        x = np.concatenate([np.ones(len(da)), np.zeros(len(db))])
        ok = np.isfinite(t)
        if ok.sum() < 2 or e[ok].sum() == 0 or x[ok].min() == x[ok].max():
            return NAN
        try:
            res = cox_ph(t[ok], e[ok], x[ok], names=["arm_a"])
        except Exception:  # no convergence (e.g. all events in one arm): no estimate
            return NAN
        r = res.coefficients.iloc[0]
        return Estimate(float(r["exp(coef)"]), float(r["lower"]), float(r["upper"]),
                        int(ok.sum()))
    if ep.kind == "ratio":
        def logs(df: pd.DataFrame) -> np.ndarray:
            x = pd.to_numeric(_rows(df, ep.among)[ep.column], errors="coerce").to_numpy(float)
            return np.log(x[np.isfinite(x) & (x > 0)])
        la, lb = logs(a), logs(b)
        if la.size < 2 or lb.size < 2:
            return NAN
        d = float(la.mean() - lb.mean())
        se = math.sqrt(la.var(ddof=1) / la.size + lb.var(ddof=1) / lb.size)
        return Estimate(math.exp(d), math.exp(d - Z95 * se), math.exp(d + Z95 * se),
                        int(la.size + lb.size))
    if not (ea.defined and eb.defined):
        return NAN
    if ep.kind == "rate":  # Wald SE of each rate (Wilson limits would understate 0 % or 100 %)
        se2 = sum(e.value * (100 - e.value) / max(e.n, 1) for e in (ea, eb))
    else:
        se2 = ea.se() ** 2 + eb.se() ** 2
    se = math.sqrt(se2) if math.isfinite(se2) else math.nan
    d = ea.value - eb.value
    return Estimate(d, d - Z95 * se, d + Z95 * se, ea.n + eb.n)


def matches(sim: Estimate, value: float | None, lower: float | None, upper: float | None,
            tol: float) -> tuple[bool, str]:
    """Whether a simulated figure agrees with a published one: inside its CI, or within
    ``tol`` of the published value."""
    if value is None and lower is None:
        return True, ""
    if not sim.defined:
        return False, "simulated figure undefined"
    if lower is not None and upper is not None and lower <= sim.value <= upper:
        return True, ""
    if value is not None and abs(sim.value - value) <= tol:
        return True, ""
    ci = f" [{lower:g}, {upper:g}]" if lower is not None else ""
    pub = f"{value:g}" if value is not None else "the CI"
    return False, f"{sim.value:.3g} vs published {pub}{ci} (± {tol:g})"


def judge(claim: Claim, arms: list[Estimate], effect: Estimate | None,
          tol: float = TOLERANCE_POINTS) -> tuple[str, str]:
    """Verdict and reason for a testable claim (pure: used on reference values in tests).

    ``value``: the arm's figure inside the published CI or within ``tol`` points of the
    published value →
    reproduced, else not reproduced. ``a>b`` / ``a<b`` (for ``hr`` and ``ratio`` they mean
    HR or ratio above / below 1): the effect's CI must lie wholly on the claimed side of no
    effect; then per-arm (and effect) figures, where published, decide reproduced vs direction
    only. ``similar``: reproduced when the effect is within ``tol`` points of none (rates,
    landmarks) or its CI contains 1 (hr, ratio).
    """
    ep = claim.endpoint
    assert ep is not None and claim.comparison is not None
    pub: Figure = claim.published
    t = tol if ep.percent else 0.0
    if claim.comparison == "value":
        ok, why = matches(arms[0], pub.value, pub.lower, pub.upper, t)
        return (REPRODUCED, "inside the published CI or within tolerance") if ok \
            else (NOT_REPRODUCED, why)
    null = 1.0 if ep.kind in ("hr", "ratio") else 0.0
    if effect is None or not effect.defined:
        return NOT_REPRODUCED, "effect undefined (no events or no rows in an arm)"
    if claim.comparison == "similar":
        if ep.kind in ("hr", "ratio"):
            ok = effect.lower <= 1.0 <= effect.upper
            return (REPRODUCED, "CI contains 1 (no effect)") if ok else \
                (NOT_REPRODUCED, f"effect {effect.value:.3g}, CI excludes 1")
        ok = abs(effect.value) <= tol
        return (REPRODUCED, f"difference within ±{tol:g} points") if ok else \
            (NOT_REPRODUCED, f"difference {effect.value:+.1f} points exceeds ±{tol:g}")
    sign = 1.0 if claim.comparison == "a>b" else -1.0
    lo, hi = sorted(((effect.lower - null) * sign, (effect.upper - null) * sign))
    point = (effect.value - null) * sign
    if not math.isfinite(lo) or lo <= 0:
        if point > 0:
            return NOT_REPRODUCED, "effect in the claimed direction but its 95% CI includes none"
        if point == 0:
            return NOT_REPRODUCED, "no effect"
        return NOT_REPRODUCED, "effect opposite to the claim"
    misses = []
    for label, est, (v, l_, u_) in (
            ("a", arms[0] if arms else NAN, (pub.a, pub.a_lower, pub.a_upper)),
            ("b", arms[1] if len(arms) > 1 else NAN, (pub.b, pub.b_lower, pub.b_upper)),
            ("effect", effect, (pub.value, pub.lower, pub.upper))):
        ok, why = matches(est, v, l_, u_, t if label != "effect" or ep.percent else 0.0)
        if not ok:
            misses.append(f"{label}: {why}")
    if misses:
        return DIRECTION_ONLY, "direction right (CI excludes no effect); figure off: " \
            + "; ".join(misses)
    has_fig = any(x is not None for x in (pub.a, pub.b, pub.value))
    return REPRODUCED, ("direction right and figures inside CI/tolerance" if has_fig
                        else "direction right, CI excludes no effect")
