"""Clopper–Pearson rates, subgroup tables and quartile bins."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cartsim.errors import InvalidInputError
from cartsim.trial.stats import binomial_rate, quartile_bins, subgroup_rates


def test_binom_test_reference_mendel_peas() -> None:
    """R ``binom.test`` reference: Conover (1971) p. 97f, the example on R's ?binom.test page.

    R code::

        binom.test(c(682, 243), p = 3/4)
        # 95 percent confidence interval:  0.708 0.765   (printed with digits = 3)
        # sample estimates: probability of success 0.737

    Source: printed output of that exact call in a public R tutorial (R Markdown notes on
    hypothesis tests, section "二项式检验"), located with the code-search tool by the string
    "number of successes = 682, number of trials = 925"; the call itself is from
    https://stat.ethz.ch/R-manual/R-patched/library/stats/html/binom.test.html (Examples).
    """
    est, lo, hi = binomial_rate(682, 925)
    assert round(est, 3) == 0.737
    assert round(lo, 3) == 0.708
    assert round(hi, 3) == 0.765


def test_edge_cases_match_closed_forms() -> None:
    """k = 0 and k = n have closed forms: (0, 1-(a/2)^(1/n)) and ((a/2)^(1/n), 1).

    Hand derivation (no R needed): for k = 0 the upper limit solves (1-p)^n = a/2.
    """
    n, a = 12, 0.05
    r0 = binomial_rate(0, n)
    assert (r0.estimate, r0.lower) == (0.0, 0.0)
    assert r0.upper == pytest.approx(1 - (a / 2) ** (1 / n), rel=1e-12)
    rn = binomial_rate(n, n)
    assert (rn.estimate, rn.upper) == (1.0, 1.0)
    assert rn.lower == pytest.approx((a / 2) ** (1 / n), rel=1e-12)


def test_limits_are_exact_tail_solutions() -> None:
    """Clopper–Pearson definition: P(X >= k | p_L) = a/2 and P(X <= k | p_U) = a/2."""
    from scipy import stats

    k, n, a = 7, 20, 0.10
    r = binomial_rate(k, n, level=1 - a)
    assert stats.binom.sf(k - 1, n, r.lower) == pytest.approx(a / 2, rel=1e-9)
    assert stats.binom.cdf(k, n, r.upper) == pytest.approx(a / 2, rel=1e-9)


@pytest.mark.parametrize(
    ("k", "n", "level"),
    [
        (-1, 5, 0.95),
        (6, 5, 0.95),
        (1, 0, 0.95),
        (1.5, 5, 0.95),
        (1, 5, 1.0),
        (1, 5, 0.0),
        ("a", 5, 0.95),
        (1, 5, float("nan")),
    ],
)
def test_bad_input_raises(k: object, n: object, level: float) -> None:
    with pytest.raises(InvalidInputError):
        binomial_rate(k, n, level)  # type: ignore[arg-type]


@given(
    n=st.integers(min_value=1, max_value=400),
    frac=st.floats(min_value=0, max_value=1),
    level=st.floats(min_value=0.5, max_value=0.99),
)
def test_interval_contains_estimate_and_widens(n: int, frac: float, level: float) -> None:
    k = round(frac * n)
    r = binomial_rate(k, n, level)
    wider = binomial_rate(k, n, min(level + 0.009, 0.999))
    assert 0.0 <= r.lower <= r.estimate <= r.upper <= 1.0
    assert wider.lower <= r.lower + 1e-12
    assert wider.upper >= r.upper - 1e-12


def test_subgroup_rates_table() -> None:
    df = pd.DataFrame(
        {
            "cr": [1, 0, 1, 1, None, 0, True, False],
            "arm": ["A", "A", "A", "B", "B", "B", "B", "B"],
            "sex": ["F", "M", "F", "F", "M", "M", "F", "M"],
        }
    )
    tab = subgroup_rates(df, "cr", by="arm")
    assert list(tab["arm"]) == ["A", "B"]
    assert list(tab["n"]) == [3, 4]
    assert list(tab["k"]) == [2, 2]
    assert list(tab["n_missing"]) == [0, 1]
    exp = binomial_rate(2, 3)
    assert tab.loc[0, "lower"] == pytest.approx(exp.lower)
    two = subgroup_rates(df, "cr", by=["arm", "sex"], overall=True)
    assert two.iloc[0]["arm"] == "Overall" and two.iloc[0]["n"] == 7
    assert len(two) == 1 + 4
    with pytest.raises(InvalidInputError):
        subgroup_rates(df, "nope", by="arm")
    with pytest.raises(InvalidInputError):
        subgroup_rates(df.assign(cr=[2, 0, 1, 1, 0, 0, 1, 0]), "cr", by="arm")


def test_quartile_bins() -> None:
    x = pd.Series(np.arange(1.0, 101.0), index=np.arange(100) + 10)
    q = quartile_bins(x)
    assert list(q.index) == list(x.index)
    assert q.cat.ordered and len(q.cat.categories) == 4
    assert q.value_counts().sort_index().tolist() == [25, 25, 25, 25]
    assert str(q.iloc[0]).startswith("Q1")
    assert str(q.iloc[-1]).startswith("Q4")
    tied = quartile_bins([1, 1, 1, 1, 1, 2])
    assert len(tied.cat.categories) < 4 and tied.notna().all()
    const = quartile_bins([3.0, 3.0, float("nan")])
    assert const.iloc[0] == const.iloc[1] and pd.isna(const.iloc[2])
    with pytest.raises(InvalidInputError):
        quartile_bins([math.nan, math.nan])
