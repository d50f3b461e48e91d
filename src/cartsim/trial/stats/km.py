"""Kaplan–Meier estimator with R ``survival::survfit`` semantics.

The curve, Greenwood variance, confidence limits (``conf.type`` log-log / log / plain),
``summary(fit, times=)`` look-ups and the median with its confidence interval all follow the
R survival package (``survfitKM``, ``survfit_confint``, ``summary.survfit`` and the
``minmin`` rule of ``print.survfit``); ``quantile()`` follows ``quantile.survfit``.
See docs/statistics.md for the formulas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats as sps

from cartsim.errors import InvalidInputError
from cartsim.trial.stats._validate import ArrayLike, check_level, time_event

if TYPE_CHECKING:
    from matplotlib.axes import Axes

CONF_TYPES = ("log-log", "log", "plain")
#: R's tolerance for "the curve is exactly 0.5" (``.Machine$double.eps^0.5``).
R_TOLERANCE = float(np.sqrt(np.finfo(float).eps))

FloatArray = npt.NDArray[np.float64]


def confidence_limits(
    surv: FloatArray, se_log: FloatArray, conf_type: str, level: float
) -> tuple[FloatArray, FloatArray]:
    """Pointwise limits for S(t) from ``se_log`` = SE of the cumulative hazard (−log S).

    A port of R ``survfit_confint(p, se, logse=TRUE, ulimit=TRUE)``:

    * ``"plain"``: S ± z·se·S, clipped to [0, 1];
    * ``"log"``: exp(log S ± z·se), upper clipped at 1; undefined (NaN) where S = 0;
    * ``"log-log"``: exp(−exp(log(−log S) ∓ z·se/log S)); undefined where S ∈ {0, 1}.
    """
    if conf_type not in CONF_TYPES:
        raise InvalidInputError("conf_type", "one of " + ", ".join(CONF_TYPES), conf_type)
    z = float(sps.norm.ppf(1.0 - (1.0 - level) / 2.0))
    p = np.asarray(surv, dtype=float)
    se = np.asarray(se_log, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if conf_type == "plain":
            half = se * p * z
            lower = np.maximum(p - half, 0.0)
            upper = np.minimum(p + half, 1.0)
            # 0 * inf at S = 0 is NaN in both R and numpy; keep R's NaN.
        elif conf_type == "log":
            xx = np.where(p == 0, np.nan, p)
            lower = np.exp(np.log(xx) - z * se)
            upper = np.minimum(np.exp(np.log(xx) + z * se), 1.0)
        else:
            xx = np.where((p == 0) | (p == 1), np.nan, p)
            se2 = z * se / np.log(xx)
            lower = np.exp(-np.exp(np.log(-np.log(xx)) - se2))
            upper = np.exp(-np.exp(np.log(-np.log(xx)) + se2))
    return lower, upper


def _minmin(y: FloatArray, x: FloatArray) -> float:
    """R ``print.survfit``'s rule: first x where the curve y falls to ≤ 0.5.

    NaN entries of y are ignored. If that first value equals 0.5 (within R's tolerance) and the
    curve later drops below it, the answer is the midpoint between that x and the first x where
    the curve is lower. If the curve never reaches 0.5, NaN.
    """
    keep = ~np.isnan(y) & (y < 0.5 + R_TOLERANCE)
    if not keep.any():
        return float("nan")
    xs = x[keep]
    ys = y[keep]
    if abs(ys[0] - 0.5) < R_TOLERANCE and np.any(ys < ys[0]):
        return float((xs[0] + xs[int(np.argmax(ys < ys[0]))]) / 2.0)
    return float(xs[0])


def _approx_constant_f1(knots: FloatArray, values: FloatArray, v: float) -> float:
    """R ``approx(knots, values, v, method="constant", f=1, rule=1)`` for one point."""
    order = np.argsort(knots, kind="stable")
    k = knots[order]
    vals = values[order]
    # regularize.values(): tied knots collapse to the mean of their values
    uk, inverse = np.unique(k, return_inverse=True)
    if uk.size != k.size:
        sums = np.zeros(uk.size)
        counts = np.zeros(uk.size)
        np.add.at(sums, inverse, vals)
        np.add.at(counts, inverse, 1.0)
        vals = sums / counts
        k = uk
    if v < k[0] or v > k[-1]:
        return float("nan")
    j = int(np.searchsorted(k, v, side="left"))
    return float(vals[j])


def _findq(x: FloatArray, y: FloatArray, p: float, tol: float) -> float:
    """R ``findq`` from ``quantile.survfit``: where the CDF-type curve y (=1-S) reaches p."""
    finite = y[~np.isnan(y)]
    if finite.size == 0 or finite.max() < p:
        return float("nan")
    xmax = x[-1]
    # duplicated() keeps first occurrences; NaN counts as a duplicate of NaN
    seen: set[object] = set()
    first = np.zeros(y.size, dtype=bool)
    for i, val in enumerate(y):
        key: object = "nan" if np.isnan(val) else float(val)
        if key not in seen:
            seen.add(key)
            first[i] = True
    x = x[first]
    y = y[first]
    last_y = y[-1]
    ok = ~np.isnan(y)  # approx(na.rm=TRUE) drops incomplete pairs
    idx = np.arange(1, y.size + 1, dtype=float)[ok]
    xv = x[ok]
    yv = y[ok]
    i1 = _approx_constant_f1(yv + tol, idx, p)
    i2 = _approx_constant_f1(yv - tol, idx, p)

    def at(index: float) -> float:
        if np.isnan(index):
            return float("nan")
        return float(xv[np.searchsorted(idx, index)])

    quant = (at(i1) + at(i2)) / 2.0
    if p == 0:
        quant = float(x[0])
    if not np.isnan(last_y) and abs(p - last_y) < tol:
        quant = (at(i1) + xmax) / 2.0
    return quant


class KaplanMeier:
    """Kaplan–Meier estimate of a survival curve, numerically matching R ``survfit``.

    Usage::

        km = KaplanMeier(conf_type="log-log", level=0.95).fit(time, event, label="Arm A")
        km.table          # one row per distinct time (events and censorings)
        km.at([6, 12])    # like summary(fit, times = c(6, 12))
        km.median_, km.median_ci_

    Args:
        conf_type: ``"log-log"`` (cartsim default), ``"log"`` (R's default) or ``"plain"``.
        level: confidence level of the pointwise intervals (R ``conf.int``).
    """

    def __init__(self, conf_type: str = "log-log", level: float = 0.95) -> None:
        if conf_type not in CONF_TYPES:
            raise InvalidInputError("conf_type", "one of " + ", ".join(CONF_TYPES), conf_type)
        self.conf_type = conf_type
        self.level = check_level(level)
        self.label: str = "KM"
        self._fitted = False

    # ------------------------------------------------------------------ fitting
    def fit(self, time: ArrayLike, event: ArrayLike, label: str | None = None) -> KaplanMeier:
        """Estimate the curve from right-censored data; returns ``self``.

        Args:
            time: follow-up times (finite, ≥ 0).
            event: 1 = event observed at ``time``, 0 = censored at ``time``.
            label: name used in plots and tables.
        """
        t, e = time_event(time, event)
        if label is not None:
            self.label = str(label)
        self.n = int(t.size)
        self.durations = t
        self.events = e
        times, inv = np.unique(t, return_inverse=True)
        n_event = np.bincount(inv, weights=e, minlength=times.size).astype(np.int64)
        n_total = np.bincount(inv, minlength=times.size).astype(np.int64)
        n_censor = n_total - n_event
        n_risk = self.n - np.concatenate(([0], np.cumsum(n_total)[:-1]))
        with np.errstate(divide="ignore", invalid="ignore"):
            surv = np.cumprod(1.0 - n_event / n_risk)
            # Greenwood: Var(log S) = sum d / (n (n - d)); infinite once the curve hits 0
            term = np.where(n_event > 0, n_event / (n_risk * (n_risk - n_event).astype(float)), 0.0)
        term = np.where(np.isnan(term), np.inf, term)
        se_log = np.sqrt(np.cumsum(term))
        lower, upper = confidence_limits(surv, se_log, self.conf_type, self.level)
        with np.errstate(invalid="ignore"):
            std_err = surv * se_log  # SE of S(t), as printed by summary.survfit
        self._times = times
        self._n_risk = n_risk
        self._n_event = n_event
        self._n_censor = n_censor
        self._surv = surv
        self._se_log = se_log
        self._lower = lower
        self._upper = upper
        self.table = pd.DataFrame(
            {
                "time": times,
                "n_risk": n_risk,
                "n_event": n_event,
                "n_censor": n_censor,
                "surv": surv,
                "std_err": std_err,
                "lower": lower,
                "upper": upper,
            }
        )
        self.median_ = _minmin(surv, times)
        self.median_ci_ = (_minmin(lower, times), _minmin(upper, times))
        self._fitted = True
        return self

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise InvalidInputError("KaplanMeier", "a fitted estimator (call .fit)", "unfitted")

    # ---------------------------------------------------------------- queries
    @property
    def event_table(self) -> pd.DataFrame:
        """Rows of ``table`` at event times only (what R ``summary(fit)`` prints)."""
        self._check_fitted()
        return self.table[self.table["n_event"] > 0].reset_index(drop=True)

    def at(self, times: ArrayLike | float) -> pd.DataFrame:
        """Survival at given times, with R ``summary(fit, times=...)`` semantics.

        The curve is a right-continuous step function: the value at t is the value at the last
        distinct time ≤ t (1 before the first time). ``n_risk`` is the number still under
        observation at t (time ≥ t); ``n_event`` counts events since the previous requested
        time (all events up to t for the first). Beyond the last follow-up time the curve is
        undefined and every estimate column is NaN (R drops such rows unless ``extend=TRUE``).
        """
        self._check_fitted()
        req = np.atleast_1d(np.asarray(times, dtype=float))
        if req.ndim != 1 or not np.all(np.isfinite(req)):
            raise InvalidInputError("times", "finite numbers", times)
        req_sorted = np.sort(req)
        idx = np.searchsorted(self._times, req_sorted, side="right") - 1
        beyond = req_sorted > self._times[-1]
        before = idx < 0
        safe = np.clip(idx, 0, None)

        def pick(values: FloatArray, at_start: float) -> FloatArray:
            out = np.where(before, at_start, values[safe]).astype(float)
            out[beyond] = np.nan
            return out

        surv = pick(self._surv, 1.0)
        se_log = pick(self._se_log, 0.0)
        lower0, upper0 = confidence_limits(
            np.array([1.0]), np.array([0.0]), self.conf_type, self.level
        )
        lower = pick(self._lower, float(lower0[0]))
        upper = pick(self._upper, float(upper0[0]))
        n_risk = np.array([(self.durations >= r).sum() for r in req_sorted], dtype=float)
        cum_events = np.array(
            [self.events[self.durations <= r].sum() for r in req_sorted], dtype=float
        )
        n_event = np.diff(np.concatenate(([0.0], cum_events)))
        n_risk[beyond] = np.nan
        n_event[beyond] = np.nan
        with np.errstate(invalid="ignore"):
            std_err = surv * se_log
        return pd.DataFrame(
            {
                "time": req_sorted,
                "n_risk": n_risk,
                "n_event": n_event,
                "surv": surv,
                "std_err": std_err,
                "lower": lower,
                "upper": upper,
            }
        )

    def survival_function_at_times(self, times: ArrayLike | float) -> pd.Series:
        """S(t) at the given times (NaN beyond the last follow-up), indexed by time."""
        tab = self.at(times)
        return pd.Series(tab["surv"].to_numpy(), index=tab["time"].to_numpy(), name=self.label)

    def quantile(self, p: float | Sequence[float] = 0.5) -> pd.DataFrame:
        """Time by which a fraction ``p`` has had the event, as R ``quantile.survfit``.

        Where S(t) is flat at exactly 1-p the midpoint rule is used (R's ``findq``); the
        limits come from the same rule applied to the lower/upper confidence curves.

        Returns:
            DataFrame with columns ``p``, ``time``, ``lower``, ``upper``.
        """
        self._check_fitted()
        probs = np.atleast_1d(np.asarray(p, dtype=float))
        if np.any(~np.isfinite(probs)) or np.any((probs < 0) | (probs > 1)):
            raise InvalidInputError("p", "probabilities in [0, 1]", p)
        x = np.concatenate(([0.0], self._times))
        rows = []
        for prob in probs:
            rows.append(
                {
                    "p": float(prob),
                    "time": _findq(x, np.concatenate(([0.0], 1 - self._surv)), prob, R_TOLERANCE),
                    "lower": _findq(x, np.concatenate(([0.0], 1 - self._lower)), prob, R_TOLERANCE),
                    "upper": _findq(x, np.concatenate(([0.0], 1 - self._upper)), prob, R_TOLERANCE),
                }
            )
        return pd.DataFrame(rows, columns=["p", "time", "lower", "upper"])

    def summary(self) -> dict[str, Any]:
        """One-line summary as R ``print(survfit)``: n, events, median and its CI."""
        self._check_fitted()
        return {
            "label": self.label,
            "n": self.n,
            "events": int(self.events.sum()),
            "median": self.median_,
            "median_lower": self.median_ci_[0],
            "median_upper": self.median_ci_[1],
            "conf_type": self.conf_type,
            "level": self.level,
        }

    # ------------------------------------------------------------------- plot
    def step_data(self) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Arrays (time, surv, lower, upper) starting at (0, 1) for post-step plotting.

        Undefined confidence limits where S = 1 (log-log) are drawn as 1; past the point
        where S reaches 0 they are drawn as 0.
        """
        self._check_fitted()
        t0 = min(0.0, float(self._times[0]))
        time = np.concatenate(([t0], self._times))
        surv = np.concatenate(([1.0], self._surv))
        lower = np.concatenate(([1.0], self._lower))
        upper = np.concatenate(([1.0], self._upper))
        lower = np.where(np.isnan(lower), np.where(surv >= 1.0, 1.0, 0.0), lower)
        upper = np.where(np.isnan(upper), np.where(surv >= 1.0, 1.0, 0.0), upper)
        return time, surv, lower, upper

    def plot(
        self,
        ax: Axes | None = None,
        ci: bool = True,
        censor_ticks: bool = True,
        color: str | None = None,
        **line_kwargs: Any,
    ) -> Axes:
        """Draw the step curve (with CI band and censoring ticks) on ``ax``; returns ``ax``.

        If ``ax`` is None a new Agg-backed figure is created (no pyplot state is touched).
        """
        self._check_fitted()
        if ax is None:
            from matplotlib.figure import Figure

            ax = Figure(figsize=(6, 4)).add_subplot(111)
        time, surv, lower, upper = self.step_data()
        (line,) = ax.step(
            time,
            surv,
            where="post",
            label=line_kwargs.pop("label", self.label),
            color=color,
            **line_kwargs,
        )
        colour = line.get_color()
        if ci:
            ax.fill_between(time, lower, upper, step="post", alpha=0.2, color=colour, linewidth=0)
        if censor_ticks:
            cens = self._n_censor > 0
            ax.plot(
                self._times[cens],
                self._surv[cens],
                linestyle="none",
                marker="|",
                markersize=8,
                color=colour,
            )
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("Time")
        ax.set_ylabel("Survival probability")
        return ax
