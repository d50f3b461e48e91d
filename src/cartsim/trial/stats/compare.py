"""Comparing arms: log-rank test (R ``survdiff``) and Cox model (R ``coxph``, Efron ties)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats as sps

from cartsim.errors import InvalidInputError
from cartsim.trial.stats._validate import ArrayLike, check_level, groups, sorted_levels, time_event

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LogRankResult:
    """Output of :func:`logrank_test`, laid out like R's ``print(survdiff(...))``.

    ``table`` has one row per group: ``n``, ``observed``, ``expected``, ``(O-E)^2/E``,
    ``(O-E)^2/V``. ``variance`` is the full (k × k) variance matrix of O − E.
    """

    levels: list[object]
    table: pd.DataFrame
    variance: FloatArray
    chisq: float
    df: int
    p_value: float


def logrank_test(time: ArrayLike, event: ArrayLike, group: ArrayLike) -> LogRankResult:
    """k-sample log-rank (Mantel–Haenszel) test, identical to R ``survdiff(rho = 0)``.

    At each distinct event time with d deaths among n at risk (n_j in group j)::

        E_j += d n_j / n
        V_jk += d (n - d) / (n - 1) · (n_j/n) (δ_jk − n_k/n)        (0 when n = 1)

    chisq = (O − E)' V⁻ (O − E) using the first k − 1 groups, df = k − 1.
    """
    t, e = time_event(time, event)
    g = groups(group, t.size)
    levels = sorted_levels(g)
    if len(levels) < 2:
        raise InvalidInputError("group", "at least two distinct groups", levels)
    gi = pd.Index(levels, dtype=object).get_indexer(g)  # position of each patient's level
    k = len(levels)
    observed = np.bincount(gi, weights=e, minlength=k)
    # vectorised over the distinct death times: numbers at risk are suffix counts over the
    # patients sorted by time (O(n log n); benchmarks/bench_stats_lifelines.py)
    order = np.argsort(t, kind="stable")
    onehot = np.zeros((t.size, k))
    onehot[np.arange(t.size), gi[order]] = 1.0
    at_risk_j = np.cumsum(onehot[::-1], axis=0)[::-1]
    times, dgroup = np.unique(t[e == 1], return_inverse=True)
    first = np.searchsorted(t[order], times, side="left")
    nj = at_risk_j[first]  # (times, k)
    n = nj.sum(axis=1)
    d = np.bincount(dgroup, minlength=times.size).astype(float)
    frac = nj / n[:, None]
    expected = (d[:, None] * frac).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        wv = np.where(n > 1, d * (n - d) / (n - 1), 0.0)
    var = np.einsum("t,tj,jk->jk", wv, frac, np.eye(k)) - np.einsum("t,tj,tk->jk", wv, frac, frac)
    diff = observed - expected
    sub = slice(0, k - 1)
    chisq = float(diff[sub] @ np.linalg.pinv(var[sub, sub]) @ diff[sub])
    df = int(np.linalg.matrix_rank(var[sub, sub]))
    p = float(sps.chi2.sf(chisq, df)) if df > 0 else float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        table = pd.DataFrame(
            {
                "n": np.bincount(gi, minlength=k),
                "observed": observed,
                "expected": expected,
                "(O-E)^2/E": diff**2 / expected,
                "(O-E)^2/V": diff**2 / np.diag(var),
            },
            index=pd.Index(levels, name="group"),
        )
    return LogRankResult(levels, table, var, chisq, df, p)


@dataclass(frozen=True)
class CoxResult:
    """Output of :func:`cox_ph`, mirroring R ``summary(coxph(...))``.

    ``coefficients`` has one row per covariate: ``coef``, ``exp(coef)``, ``se(coef)``, ``z``,
    ``p``, ``lower``, ``upper`` (CI of exp(coef) at ``level``). The three global tests are
    ``(statistic, df, p)`` tuples.
    """

    coefficients: pd.DataFrame
    loglik: tuple[float, float]
    wald_test: tuple[float, int, float]
    score_test: tuple[float, int, float]
    likelihood_ratio_test: tuple[float, int, float]
    n: int
    n_events: int
    iterations: int
    level: float
    variance: FloatArray = field(repr=False)


def _efron_terms(
    beta: FloatArray, x: FloatArray, t: FloatArray, e: npt.NDArray[np.int64]
) -> tuple[float, FloatArray, FloatArray]:
    """Efron partial log-likelihood, score vector and information matrix at ``beta``.

    Vectorised: risk-set sums at every distinct death time are suffix sums over the patients
    sorted by time, and the Efron tie terms are expanded one per death (O(n log n) instead of
    one pass over the cohort per death time; benchmarks/bench_stats_lifelines.py)."""
    p = x.shape[1]
    eta = x @ beta
    eta = eta - eta.max()  # constant shift: cancels in the partial likelihood
    r = np.exp(eta)
    order = np.argsort(t, kind="stable")
    ts, rs, xs = t[order], r[order], x[order]
    rx = rs[:, None] * xs
    rxx = rx[:, :, None] * xs[:, None, :]

    def suffix(a: FloatArray) -> FloatArray:
        return np.cumsum(a[::-1], axis=0)[::-1]

    s0_all, s1_all, s2_all = suffix(rs), suffix(rx), suffix(rxx)
    dead = e == 1
    times, group = np.unique(t[dead], return_inverse=True)
    first = np.searchsorted(ts, times, side="left")  # first patient at risk at each time
    s0, s1, s2 = s0_all[first], s1_all[first], s2_all[first]
    k = times.size
    d = np.bincount(group, minlength=k).astype(float)
    rd, xd = r[dead], x[dead]
    d0 = np.bincount(group, weights=rd, minlength=k)
    d1 = np.zeros((k, p))
    d2 = np.zeros((k, p, p))
    np.add.at(d1, group, rd[:, None] * xd)
    np.add.at(d2, group, (rd[:, None] * xd)[:, :, None] * xd[:, None, :])
    # one Efron term per death: rank j = 0..d-1 within its tied group, weight j/d
    srt = np.argsort(group, kind="stable")
    g = group[srt]
    starts = np.searchsorted(g, np.arange(k))
    j = np.arange(g.size) - starts[g]
    w = j / d[g]
    den = s0[g] - w * d0[g]
    a = (s1[g] - w[:, None] * d1[g]) / den[:, None]
    loglik = float(eta[dead].sum()) - float(np.log(den).sum())
    score = xd.sum(axis=0) - a.sum(axis=0)
    info = ((s2[g] - w[:, None, None] * d2[g]) / den[:, None, None]).sum(axis=0) \
        - a.T @ a
    return loglik, score, info


def cox_ph(
    time: ArrayLike,
    event: ArrayLike,
    covariates: ArrayLike,
    names: Sequence[str] | None = None,
    level: float = 0.95,
    max_iter: int = 30,
    eps: float = 1e-9,
) -> CoxResult:
    """Cox proportional-hazards fit with Efron ties (R ``coxph`` default) by Newton–Raphson.

    As in R: start at β = 0, step-halve when the log-likelihood falls, stop when the relative
    change of the log-likelihood is below ``eps`` (R ``coxph.control(eps = 1e-9)``).
    Wald = β' I(β) β, score = U(0)' I(0)⁻¹ U(0), LR = 2 (ℓ(β) − ℓ(0)); all on p df.

    Args:
        covariates: (n,) or (n, p) numeric matrix.
        names: covariate names (default ``x1..xp``).
    """
    t, e = time_event(time, event)
    x = np.asarray(covariates, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] != t.size:
        raise InvalidInputError("covariates", f"an array with {t.size} rows", np.shape(x))
    if not np.all(np.isfinite(x)):
        raise InvalidInputError("covariates", "finite numbers", "non-finite values")
    if e.sum() == 0:
        raise InvalidInputError("event", "at least one observed event", 0)
    lev = check_level(level)
    p = x.shape[1]
    labels = list(names) if names is not None else [f"x{i + 1}" for i in range(p)]
    if len(labels) != p:
        raise InvalidInputError("names", f"{p} names", labels)
    x = x - x.mean(axis=0)  # R centres covariates; β is unchanged
    beta = np.zeros(p)
    ll0, u0, i0 = _efron_terms(beta, x, t, e)
    ll, u, info = ll0, u0, i0
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - value used after the loop
        step = np.linalg.solve(info, u)
        new_beta = beta + step
        new_ll, new_u, new_info = _efron_terms(new_beta, x, t, e)
        halvings = 0
        while new_ll < ll - 1e-12 and halvings < 30:
            step /= 2.0
            new_beta = beta + step
            new_ll, new_u, new_info = _efron_terms(new_beta, x, t, e)
            halvings += 1
        converged = abs(new_ll - ll) <= eps * abs(new_ll) if new_ll != 0 else True
        beta, ll, u, info = new_beta, new_ll, new_u, new_info
        if converged:
            break
    variance = np.linalg.inv(info)
    se = np.sqrt(np.diag(variance))
    z = beta / se
    zq = float(sps.norm.ppf(1.0 - (1.0 - lev) / 2.0))
    # a monotone likelihood (all events in one arm) drives |beta| up: R warns that the
    # coefficient may be infinite; here exp() overflows to inf quietly.
    with np.errstate(over="ignore"):
        hr, hr_lo, hr_hi = np.exp(beta), np.exp(beta - zq * se), np.exp(beta + zq * se)
    coefficients = pd.DataFrame(
        {
            "coef": beta,
            "exp(coef)": hr,
            "se(coef)": se,
            "z": z,
            "p": 2.0 * sps.norm.sf(np.abs(z)),
            "lower": hr_lo,
            "upper": hr_hi,
        },
        index=pd.Index(labels, name="term"),
    )
    wald = float(beta @ info @ beta)
    score = float(u0 @ np.linalg.solve(i0, u0))
    lr = float(2.0 * (ll - ll0))

    def test(stat: float) -> tuple[float, int, float]:
        return stat, p, float(sps.chi2.sf(stat, p))

    return CoxResult(
        coefficients=coefficients,
        loglik=(ll0, ll),
        wald_test=test(wald),
        score_test=test(score),
        likelihood_ratio_test=test(lr),
        n=int(t.size),
        n_events=int(e.sum()),
        iterations=iterations,
        level=lev,
        variance=variance,
    )


def compare_arms(
    df: pd.DataFrame,
    time_col: str,
    event_col: str,
    arm_col: str,
    reference: object | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """Log-rank test and Cox hazard ratios of every arm against a reference arm.

    The Cox model has one indicator per non-reference arm (R treatment contrasts; the
    reference defaults to the first level in sorted order, as R's ``factor``). Each row is a
    non-reference arm with its HR, CI and Wald p; the model-level Wald, score and likelihood-
    ratio tests and the log-rank test (all on k − 1 df) repeat on every row.

    Returns:
        DataFrame with columns ``arm``, ``reference``, ``n``, ``events``, ``hr``, ``hr_lower``,
        ``hr_upper``, ``coef``, ``se``, ``z``, ``p``, ``wald_chisq``, ``wald_p``,
        ``score_chisq``, ``score_p``, ``lr_chisq``, ``lr_p``, ``logrank_chisq``, ``logrank_df``,
        ``logrank_p``.
    """
    for col in (time_col, event_col, arm_col):
        if col not in df.columns:
            raise InvalidInputError("column", "one of " + ", ".join(map(str, df.columns)), col)
    arms = groups(df[arm_col].to_numpy(dtype=object), len(df), field=arm_col)
    levels = sorted_levels(arms)
    if len(levels) < 2:
        raise InvalidInputError(arm_col, "at least two arms", levels)
    ref = levels[0] if reference is None else reference
    if ref not in levels:
        raise InvalidInputError("reference", "one of " + ", ".join(map(str, levels)), reference)
    others = [lv for lv in levels if lv != ref]
    time = df[time_col].to_numpy(dtype=float)
    event = df[event_col].to_numpy()
    lr = logrank_test(time, event, arms)
    design = np.column_stack([(arms == lv).astype(float) for lv in others])
    cox = cox_ph(time, event, design, names=[str(lv) for lv in others], level=level)
    _, e = time_event(time, event)
    rows = []
    for lv in others:
        c = cox.coefficients.loc[str(lv)]
        mask = arms == lv
        rows.append(
            {
                "arm": lv,
                "reference": ref,
                "n": int(mask.sum()),
                "events": int(e[mask].sum()),
                "hr": c["exp(coef)"],
                "hr_lower": c["lower"],
                "hr_upper": c["upper"],
                "coef": c["coef"],
                "se": c["se(coef)"],
                "z": c["z"],
                "p": c["p"],
                "wald_chisq": cox.wald_test[0],
                "wald_p": cox.wald_test[2],
                "score_chisq": cox.score_test[0],
                "score_p": cox.score_test[2],
                "lr_chisq": cox.likelihood_ratio_test[0],
                "lr_p": cox.likelihood_ratio_test[2],
                "logrank_chisq": lr.chisq,
                "logrank_df": lr.df,
                "logrank_p": lr.p_value,
            }
        )
    return pd.DataFrame(rows)
