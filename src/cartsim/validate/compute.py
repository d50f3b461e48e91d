"""Simulated value (with its 95 % CI) of one mapped targets row, from a trial's outputs.

Rates use the exact Clopper–Pearson interval, Kaplan–Meier landmarks and medians the log-log
interval (both :mod:`cartsim.trial.stats`), medians of continuous columns the distribution-free
order-statistic interval, ratios of geometric means a Welch t interval on the log scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import stats as sps

from cartsim.trial.stats import KaplanMeier, binomial_rate
from cartsim.validate.mapping import (
    CRS_COLUMNS,
    DAYS_PER_MONTH,
    Quantity,
    Timepoint,
    crs_scale,
    neuro_scale,
)

LEVEL = 0.95
#: a daily_rate row's day may be read from the nearest recorded day this many days away
#: (daily output is weekly after the first weeks at large follow-up).
DAY_SLACK = 4


@dataclass
class Simulated:
    """``status`` ``compared`` (value, lower, upper, n set; in the row's unit) or ``unmapped``
    (``reason`` says why)."""

    status: str
    value: float = math.nan
    lower: float = math.nan
    upper: float = math.nan
    n: int = 0
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    #: ``value`` is a lower bound (a Kaplan–Meier median not reached by the last follow-up
    #: time): the row is judged only where the published value and CI lie below it
    lower_bound: bool = False


def unmapped(reason: str, notes: list[str] | None = None) -> Simulated:
    return Simulated("unmapped", reason=reason, notes=notes or [])


class _Missing(Exception):
    pass


def _expr(text: str, grading_scale: str, spec_scale: str, notes: list[str],
          neuro_protocol: str = "astct") -> str:
    if "{crs}" in text:
        scale, note = crs_scale(grading_scale, spec_scale)
        if scale not in CRS_COLUMNS:
            raise _Missing(f"CRS scale {scale!r} has no column")
        text = text.replace("{crs}", f"`crs_max_grade_{scale}`")  # quoted: ctcae_v4.03
        notes.append(note)
    if "{neuro}" in text:
        column, note = neuro_scale(grading_scale, neuro_protocol)
        text = text.replace("{neuro}", f"`{column}`")  # quoted: ctcae_v4.03
        notes.append(note)
    return text


def _mask(df: pd.DataFrame, expr: str) -> pd.Series:
    """Boolean mask of a pandas expression (python engine; NaN comparisons are False)."""
    # DataFrame.eval builds a resolver for every column (≈ 13 ms per call on a trial's
    # 120-column patient table, a tenth of a validation run): hand it only the columns whose
    # names occur in the expression (a superset of those it reads, so the result is the same)
    used = [c for c in df.columns if isinstance(c, str) and c in expr]
    try:
        out = df[used].eval(expr, engine="python")
    except pd.errors.UndefinedVariableError as e:
        raise _Missing(f"{e} (not a column of this trial's patients.parquet)") from None
    if not isinstance(out, pd.Series):
        out = pd.Series(bool(out), index=df.index)
    return out.fillna(False).astype(bool)


def order_statistic_ci(x: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Distribution-free CI of the median: the order statistics x(l), x(n-l+1) with l the
    largest rank such that P(Binomial(n, 1/2) < l) <= (1-level)/2 (coverage >= level)."""
    x = np.sort(x)
    n = x.size
    if n == 0:
        return math.nan, math.nan
    a = (1.0 - level) / 2.0
    l = int(sps.binom.ppf(a, n, 0.5))  # P(B <= l) >= a; P(B <= l-1) < a
    if sps.binom.cdf(l, n, 0.5) <= a:
        l += 1
    # l is the number of order statistics excluded below; ranks are 1-based
    if l < 1:
        return float(x[0]), float(x[-1])
    return float(x[l - 1]), float(x[n - l])


def _scale_time(days: float, unit: str) -> float:
    return days / DAYS_PER_MONTH if unit == "months" else days


def simulate_row(q: Quantity, unit: str, tp: Timepoint, grading_scale: str, spec_scale: str,
                 follow_up_days: int, patients: pd.DataFrame, daily: pd.DataFrame | None,
                 neuro_protocol: str = "astct", data_cut: float | None = None) -> Simulated:
    """The simulated counterpart of one row. ``patients`` is already the row's subgroup;
    ``daily`` the same patients' rows of daily.parquet (needed by ``daily_rate`` only);
    ``neuro_protocol`` the neurotoxicity scale of the trial's protocol (rows without one);
    ``data_cut`` the publication's median follow-up in days (its ``followup_median`` row), at
    which an event count without a time point is read."""
    notes: list[str] = [q.note] if q.note else []
    if patients.empty:
        return unmapped("the subgroup has no simulated patients", notes)
    try:
        if q.kind == "rate" and q.at_landmark and tp.kind == "landmark":
            notes.append("state on the row's day, not the worst grade of the follow-up")
            return _daily_rate(replace(q, kind="daily_rate", event=q.at_landmark, day=None), tp,
                               patients, daily, notes)
        if q.kind == "rate":
            return _rate(q, tp, grading_scale, spec_scale, follow_up_days, patients, notes,
                         neuro_protocol, data_cut)
        if q.kind == "daily_rate":
            return _daily_rate(q, tp, patients, daily, notes)
        if q.kind == "km":
            return _km(q, tp, follow_up_days, patients, notes)
        if q.kind == "km_median":
            return _km_median(q, unit, patients, notes)
        if q.kind == "median":
            return _median(q, unit, grading_scale, spec_scale, patients, notes, neuro_protocol)
        if q.kind == "hazard_ratio":
            return _hazard_ratio(q, tp, patients, daily, notes)
        if q.kind == "density":
            return _density(q, tp, patients, notes)
        return _geomean_ratio(q, patients, notes)
    except _Missing as e:
        return unmapped(str(e), notes)


def _rate(q: Quantity, tp: Timepoint, grading_scale: str, spec_scale: str,
          follow_up_days: int, df: pd.DataFrame, notes: list[str],
          neuro_protocol: str = "astct", data_cut: float | None = None) -> Simulated:
    event = _mask(df, _expr(q.event, grading_scale, spec_scale, notes, neuro_protocol))
    among = _mask(df, _expr(q.among, grading_scale, spec_scale, notes, neuro_protocol)) \
        if q.among else \
        pd.Series(True, index=df.index)
    if isinstance(q.day, str) and tp.kind in ("window", "landmark"):
        if q.day not in df:
            raise _Missing(f"column {q.day!r} not in this trial's patients.parquet")
        day = df[q.day].astype(float)
        start = tp.start if tp.kind == "window" else 0.0
        event &= (day >= start) & (day <= tp.end)
        if tp.end > follow_up_days:
            notes.append(f"window end {tp.end:g} d beyond the simulated follow-up "
                         f"({follow_up_days} d)")
        notes.append(f"events on days {start:g}-{tp.end:g}")
    elif (isinstance(q.day, str) and not q.among and tp.kind in ("none", "followup")
          and (math.isfinite(tp.end) or data_cut is not None)):
        # an event count the paper made at its data cut: the events by its median follow-up
        # (a share of all patients; shares among e.g. relapses keep the whole follow-up)
        if q.day not in df:
            raise _Missing(f"column {q.day!r} not in this trial's patients.parquet")
        cut = tp.end if math.isfinite(tp.end) else float(data_cut or 0.0)
        event &= df[q.day].astype(float) <= cut
        notes.append(f"events by the paper's median follow-up ({cut:g} d)")
    elif q.window is not None and tp.kind in ("window", "landmark"):
        if abs(tp.end - q.window) > 7:
            notes.append(f"the simulated quantity is read by day {q.window}; the row's "
                         f"timepoint {tp.text!r} is not applied")
    elif tp.kind not in ("none", "followup"):
        notes.append(f"timepoint {tp.text!r} not applied (whole follow-up/response window)")
    n = int(among.sum())
    if n == 0:
        return unmapped("no simulated patient in the denominator", notes)
    k = int((event & among).sum())
    r = binomial_rate(k, n, LEVEL)
    return Simulated("compared", 100 * r.estimate, 100 * r.lower, 100 * r.upper, n, notes=notes)


def _daily_rate(q: Quantity, tp: Timepoint, df: pd.DataFrame, daily: pd.DataFrame | None,
                notes: list[str]) -> Simulated:
    if daily is None or daily.empty:
        raise _Missing("daily.parquet is not available")
    day = int(q.day) if isinstance(q.day, int) else (
        int(round(tp.end)) if tp.kind == "landmark" else None)
    if day is None:
        raise _Missing(f"needs a day (timepoint {tp.text!r})")
    recorded = np.unique(daily["day"].to_numpy())
    if day not in recorded and recorded.size:
        near = int(recorded[np.argmin(np.abs(recorded - day))])
        if abs(near - day) <= DAY_SLACK:
            notes.append(f"day {near} (nearest recorded day to {day}; daily output is thinned)")
            day = near
    at = daily[(daily["day"] == day) & daily["patient_id"].isin(df["patient_id"])]
    if "arm" in daily and "arm" in df:
        at = at[at["arm"].isin(df["arm"].unique())]
    alive = at.dropna(subset=["anc_per_ul"])
    if alive.empty:
        raise _Missing(f"no simulated patient alive on day {day} (daily.parquet)")
    event = _mask(alive, q.event)
    r = binomial_rate(int(event.sum()), len(alive), LEVEL)
    notes.append(f"day {day}, patients alive")
    return Simulated("compared", 100 * r.estimate, 100 * r.lower, 100 * r.upper, len(alive),
                     notes=notes)


def _fit(df: pd.DataFrame, column: str) -> tuple[KaplanMeier, int]:
    t, e = f"{column}_days", f"{column}_event"
    if t not in df:
        raise _Missing(f"column {t!r} not in this trial's patients.parquet")
    sub = df[df[t].notna()]
    if sub.empty:
        raise _Missing(f"no patient with {t} (e.g. no responders)")
    return KaplanMeier(conf_type="log-log", level=LEVEL).fit(sub[t], sub[e]), len(sub)


def _km(q: Quantity, tp: Timepoint, follow_up_days: int, df: pd.DataFrame, notes: list[str]
        ) -> Simulated:
    if tp.kind == "landmark" or (tp.kind == "followup" and math.isfinite(tp.end)):
        t = float(round(tp.end))
    else:
        raise _Missing(f"a Kaplan-Meier landmark needs a time point; got {tp.text!r}")
    if tp.kind == "followup":
        notes.append(f"at the paper's median follow-up ({t:g} d)")
    if t > follow_up_days:
        raise _Missing(f"landmark {t:g} d beyond the spec's follow-up ({follow_up_days} d)")
    km, n = _fit(df, q.column)
    row = km.at([t]).iloc[0]
    surv, lo, hi = float(row["surv"]), float(row["lower"]), float(row["upper"])
    if not math.isfinite(surv):
        last = km.at([float(km.durations.max())]).iloc[0]
        if float(last["surv"]) == 0.0:
            surv, lo, hi = 0.0, 0.0, 0.0
        else:
            raise _Missing(f"landmark {t:g} d beyond the last simulated follow-up time")
    if not math.isfinite(lo):
        lo, hi = (surv, surv) if surv in (0.0, 1.0) else (lo, hi)
    return Simulated("compared", 100 * surv, 100 * lo, 100 * hi, n, notes=notes)


def _km_median(q: Quantity, unit: str, df: pd.DataFrame, notes: list[str]) -> Simulated:
    km, n = _fit(df, q.column)
    s = km.summary()
    med = s["median"]
    if med is None or not math.isfinite(med):
        # not reached: the median lies beyond the last follow-up time, a lower bound that
        # still fails a published median (and CI) reached well before it
        last = float(df[f"{q.column}_days"].max())
        return Simulated("compared", _scale_time(last, unit), _scale_time(last, unit),
                         math.nan, n, notes=[*notes, "simulated median not reached: the value "
                                             "is the last follow-up time, a lower bound"],
                         lower_bound=True)
    lo = s["median_lower"]
    hi = s["median_upper"]
    lo = math.nan if lo is None else float(lo)
    hi = math.inf if hi is None or not math.isfinite(hi) else float(hi)
    if hi == math.inf:
        notes.append("simulated upper limit not reached")
    return Simulated("compared", _scale_time(float(med), unit), _scale_time(lo, unit),
                     _scale_time(hi, unit), n, notes=notes)


def _density(q: Quantity, tp: Timepoint, df: pd.DataFrame, notes: list[str]) -> Simulated:
    """Events per 100 days at risk in the row's window (``column``/``exposure`` with the
    window suffix ``_d<start>_<end>``), with the exact (Garwood) Poisson interval of the event
    count divided by the exposure."""
    if tp.kind != "window" or not (math.isfinite(tp.start) and math.isfinite(tp.end)):
        raise _Missing(f"needs a window of days (timepoint {tp.text!r})")
    suffix = f"_d{tp.start:g}_{tp.end:g}"
    events, days = q.column + suffix, q.exposure + suffix
    if events not in df or days not in df:
        raise _Missing(f"no simulated window days {tp.start:g}-{tp.end:g} ({events!r} is not a "
                       "column of this trial's patients.parquet)")
    k = float(df[events].sum())
    t = float(df[days].sum())
    if t <= 0:
        raise _Missing("no simulated day at risk in the window")
    a = (1.0 - LEVEL) / 2.0
    lo = 0.0 if k == 0 else float(sps.chi2.ppf(a, 2 * k)) / 2.0
    hi = float(sps.chi2.ppf(1.0 - a, 2 * k + 2)) / 2.0
    notes.append(f"{k:g} episodes in {t:g} days at risk (days {tp.start:g}-{tp.end:g})")
    return Simulated("compared", 100.0 * k / t, 100.0 * lo / t, 100.0 * hi / t, len(df),
                     notes=notes)


def _median(q: Quantity, unit: str, grading_scale: str, spec_scale: str, df: pd.DataFrame,
            notes: list[str], neuro_protocol: str = "astct") -> Simulated:
    if q.column not in df:
        raise _Missing(f"column {q.column!r} not in this trial's patients.parquet")
    sel = _mask(df, _expr(q.among, grading_scale, spec_scale, notes, neuro_protocol)) \
        if q.among else \
        pd.Series(True, index=df.index)
    x = df.loc[sel, q.column].astype(float).dropna().to_numpy()
    if x.size == 0:
        raise _Missing("no simulated patient with a value")
    lo, hi = order_statistic_ci(x)
    return Simulated("compared", _scale_time(float(np.median(x)), unit), _scale_time(lo, unit),
                     _scale_time(hi, unit), int(x.size), notes=notes)


def _geomean_ratio(q: Quantity, df: pd.DataFrame, notes: list[str]) -> Simulated:
    if q.column not in df:
        raise _Missing(f"column {q.column!r} not in this trial's patients.parquet")
    g = _mask(df, q.group)
    x = df[q.column].astype(float)
    a = np.log(x[g & (x > 0)].to_numpy())
    b = np.log(x[~g & (x > 0)].to_numpy())
    if a.size < 2 or b.size < 2:
        raise _Missing(f"fewer than 2 patients with a positive {q.column} in a group")
    d = a.mean() - b.mean()
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    if se == 0.0:
        lo = hi = d
    else:
        dof = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
        h = float(sps.t.ppf(0.5 + LEVEL / 2, dof)) * se
        lo, hi = d - h, d + h
    notes.append(f"{q.group} ({a.size}) vs not ({b.size})")
    return Simulated("compared", math.exp(d), math.exp(lo), math.exp(hi), int(a.size + b.size),
                     notes=notes)


def _hazard_ratio(q: Quantity, tp: Timepoint, df: pd.DataFrame, daily: pd.DataFrame | None,
                  notes: list[str]) -> Simulated:
    """Landmark Cox hazard ratio of relapse: patients in remission and alive on the row's day,
    the group defined on that day (``at_landmark`` over daily.parquet, nearest recorded day
    within 4 days; or ``group`` over patients.parquet), relapse from the landmark on, death
    without relapse censored (cause-specific)."""
    if tp.kind != "landmark":
        raise _Missing(f"a landmark hazard ratio needs a time point; got {tp.text!r}")
    try:
        from lifelines import CoxPHFitter
    except ImportError:
        raise _Missing("needs lifelines (pip install lifelines)") from None
    day = int(round(tp.end))
    relapse = df["relapse"].fillna(0).astype(bool) & df["relapse_day"].notna()
    t_end = np.where(relapse, df["relapse_day"].astype(float), df["last_day"].astype(float))
    at_risk = (df["responder"] == 1) & (df["response_day"].astype(float) <= day) & (t_end > day)
    sub = df[at_risk.to_numpy()]
    if q.group:
        g = _mask(sub, q.group).to_numpy()
        label = q.group
    else:
        if daily is None or daily.empty:
            raise _Missing("daily.parquet is not available")
        recorded = np.unique(daily["day"].to_numpy())
        near = int(recorded[np.argmin(np.abs(recorded - day))])
        if abs(near - day) > DAY_SLACK:
            raise _Missing(f"no daily record within {DAY_SLACK} days of day {day}")
        at = daily[daily["day"] == near].set_index("patient_id")
        g = _mask(at, q.at_landmark).reindex(sub["patient_id"]).fillna(False).to_numpy()
        label = f"{q.at_landmark} on day {near}"
    t = t_end[at_risk.to_numpy()] - day
    e = relapse.to_numpy()[at_risk.to_numpy()]
    if g.sum() == 0 or (~g).sum() == 0 or e[g].sum() == 0 or e[~g].sum() == 0:
        raise _Missing(f"landmark day {day}: a group ({label}: {int(g.sum())} vs "
                       f"{int((~g).sum())}) has no patient or no relapse")
    import warnings

    from lifelines.exceptions import ConvergenceError

    ok = np.isfinite(t)
    try:
        with warnings.catch_warnings():  # a warning is an unmapped row below, not noise
            warnings.simplefilter("ignore")
            fit = CoxPHFitter().fit(pd.DataFrame({"t": t[ok], "e": e[ok].astype(int),
                                                  "g": g[ok].astype(int)}),
                                    duration_col="t", event_col="e")
    except ConvergenceError:
        raise _Missing(f"landmark day {day}: the Cox fit did not converge ({label}: "
                       f"{int(g.sum())} vs {int((~g).sum())}; separation or too few "
                       "relapses)") from None
    row = fit.summary.loc["g"]
    hr, hr_lo, hr_hi = (float(row["exp(coef)"]), float(row["exp(coef) lower 95%"]),
                        float(row["exp(coef) upper 95%"]))
    if not (np.isfinite([hr, hr_lo, hr_hi]).all() and 1e-3 <= hr <= 1e3
            and hr_hi / max(hr_lo, 1e-300) <= 1e4):
        # quasi-separation (e.g. every relapse in one group): the fit "converges" to a
        # hazard ratio of 1e21 with an unbounded CI; that is no estimate
        raise _Missing(f"landmark day {day}: no finite hazard ratio ({label}: "
                       f"{int(g.sum())} vs {int((~g).sum())}; quasi-separation)")
    notes.append(f"landmark day {day}: {label} ({int(g.sum())}) vs not ({int((~g).sum())}) "
                 "among patients in remission; relapse, death censored")
    return Simulated("compared", hr, hr_lo, hr_hi, int(g.size), notes=notes)
