"""Response rates with exact Clopper–Pearson confidence intervals and subgroup tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from cartsim.errors import InvalidInputError
from cartsim.trial.stats._validate import ArrayLike, check_level


@dataclass(frozen=True)
class BinomialRate:
    """A proportion ``k/n`` with its exact (Clopper–Pearson) two-sided confidence interval.

    Unpacks as ``estimate, lower, upper = binomial_rate(k, n)``.
    """

    estimate: float
    lower: float
    upper: float
    k: int
    n: int
    level: float

    def __iter__(self):  # type: ignore[no-untyped-def]
        """Yield ``estimate, lower, upper`` so the result unpacks like a 3-tuple."""
        yield self.estimate
        yield self.lower
        yield self.upper


def _as_count(value: object, field: str) -> int:
    """Return ``value`` as a Python int if it is a whole, non-negative number."""
    try:
        as_float = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInputError(field, "a non-negative integer", value) from None
    if not np.isfinite(as_float) or as_float < 0 or as_float != int(as_float):
        raise InvalidInputError(field, "a non-negative integer", value)
    return int(as_float)


def binomial_rate(k: int, n: int, level: float = 0.95) -> BinomialRate:
    """Proportion ``k/n`` with the exact Clopper–Pearson interval (as R ``binom.test``).

    With ``a = 1 - level``, the limits are the beta quantiles

    * lower = Beta⁻¹(a/2; k, n-k+1), defined as 0 when k = 0,
    * upper = Beta⁻¹(1-a/2; k+1, n-k), defined as 1 when k = n.

    Raises:
        InvalidInputError: if ``n < 1``, ``k`` is not in 0..n, or ``level`` is not in (0, 1).
    """
    kk = _as_count(k, "k")
    nn = _as_count(n, "n")
    if nn < 1:
        raise InvalidInputError("n", "an integer >= 1", n)
    if kk > nn:
        raise InvalidInputError("k", f"an integer in 0..n (n = {nn})", k)
    lev = check_level(level)
    alpha = 1.0 - lev
    lower = 0.0 if kk == 0 else float(sps.beta.ppf(alpha / 2.0, kk, nn - kk + 1))
    upper = 1.0 if kk == nn else float(sps.beta.ppf(1.0 - alpha / 2.0, kk + 1, nn - kk))
    return BinomialRate(kk / nn, lower, upper, kk, nn, lev)


def _outcome_values(series: pd.Series, field: str) -> pd.Series:
    """Map a 0/1 or boolean outcome column to floats, keeping missing values as NaN."""
    numeric = pd.to_numeric(series.astype("object").where(series.notna(), np.nan), errors="coerce")
    bad = series.notna() & ~numeric.isin([0.0, 1.0])
    if bad.any():
        allowed = "0/1 or boolean values (missing allowed)"
        raise InvalidInputError(field, allowed, series[bad].iloc[0])
    return numeric.astype(float)


def subgroup_rates(
    df: pd.DataFrame,
    outcome_col: str,
    by: Sequence[str] | str,
    level: float = 0.95,
    overall: bool = False,
) -> pd.DataFrame:
    """Rate of a binary outcome per subgroup level, with Clopper–Pearson intervals.

    Rows whose outcome is missing are not counted in ``n`` (they are reported in ``n_missing``).
    Missing values in a ``by`` column form no subgroup (those rows are left out of that table).

    Args:
        df: one row per patient.
        outcome_col: 0/1 or boolean column (1 = responder / event).
        by: column name or names; one table row per observed combination, in sorted order.
        level: confidence level of the intervals.
        overall: if True, a first row with every ``by`` column set to ``"Overall"`` is added.

    Returns:
        DataFrame with the ``by`` columns, then ``n``, ``k``, ``rate``, ``lower``, ``upper``,
        ``n_missing``.
    """
    by_cols = [by] if isinstance(by, str) else list(by)
    if not by_cols:
        raise InvalidInputError("by", "one or more column names", by)
    for col in [outcome_col, *by_cols]:
        if col not in df.columns:
            raise InvalidInputError("column", "one of " + ", ".join(map(str, df.columns)), col)
    lev = check_level(level)
    y = _outcome_values(df[outcome_col], outcome_col)
    work = df[by_cols].copy()
    work["_y"] = y
    rows: list[dict[str, object]] = []

    def _row(keys: tuple[object, ...], yy: pd.Series) -> dict[str, object]:
        observed = yy.dropna()
        n = int(observed.size)
        k = int(observed.sum())
        if n == 0:
            est = lo = hi = float("nan")
        else:
            est, lo, hi = binomial_rate(k, n, lev)
        row: dict[str, object] = dict(zip(by_cols, keys, strict=True))
        row.update(n=n, k=k, rate=est, lower=lo, upper=hi, n_missing=int(yy.isna().sum()))
        return row

    if overall:
        rows.append(_row(tuple("Overall" for _ in by_cols), work["_y"]))
    for keys, sub in work.groupby(by_cols, sort=True, observed=True, dropna=True):
        key_tuple = keys if isinstance(keys, tuple) else (keys,)
        rows.append(_row(key_tuple, sub["_y"]))
    return pd.DataFrame(rows, columns=[*by_cols, "n", "k", "rate", "lower", "upper", "n_missing"])


def quartile_bins(x: ArrayLike, labels_prefix: str = "Q") -> pd.Series:
    """Cut a numeric vector into sample quartiles (e.g. dose quartiles for subgroup tables).

    Bin edges are the 0, 25, 50, 75, 100 % sample quantiles (pandas ``qcut``, R type-7
    quantiles); bins are right-closed and the lowest includes its left edge. When tied values
    make edges coincide, duplicate edges are dropped, so fewer than four bins can result.
    Labels read ``"Q1 [lo, hi]"`` … so a table is self-explaining. Missing values stay missing.

    Returns:
        An ordered categorical Series aligned with ``x`` (index kept if ``x`` is a Series).
    """
    series = x if isinstance(x, pd.Series) else pd.Series(np.asarray(x, dtype=float))
    values = pd.to_numeric(series, errors="coerce").astype(float)
    if values.notna().sum() == 0:
        raise InvalidInputError("x", "at least one non-missing number", "all missing")
    if not np.all(np.isfinite(values.dropna())):
        raise InvalidInputError("x", "finite numbers", "inf")
    edges = np.unique(np.quantile(values.dropna().to_numpy(), [0.0, 0.25, 0.5, 0.75, 1.0]))
    if edges.size == 1:
        edges = np.array([edges[0], edges[0]])
    nbins = edges.size - 1
    labels = [f"{labels_prefix}{i + 1} [{edges[i]:.4g}, {edges[i + 1]:.4g}]" for i in range(nbins)]
    if nbins == 1 and edges[0] == edges[1]:
        cat = pd.Categorical(
            np.where(values.notna(), labels[0], None), categories=labels, ordered=True
        )
        return pd.Series(cat, index=series.index, name=series.name)
    binned = pd.cut(values, bins=edges, labels=labels, include_lowest=True, ordered=True)
    return pd.Series(binned, index=series.index, name=series.name)
