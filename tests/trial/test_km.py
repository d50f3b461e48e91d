"""Kaplan–Meier estimates checked against R ``survival`` output on the ``aml`` data set."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from _aml import AML_MAINTAINED, AML_NONMAINTAINED
from hypothesis import given, settings
from hypothesis import strategies as st

from cartsim.errors import InvalidInputError
from cartsim.trial.stats import KaplanMeier

# R: summary(survfit(Surv(time, status) ~ x, data = aml))   -- conf.type = "log" (R default)
# Printed in therneau/survival tests/doaml.Rout.save (the survival package's own regression
# output); identical numbers appear in many R tutorials (e.g. "example7a" KM notes).
# columns: time, n.risk, n.event, survival, std.err, lower 95% CI, upper 95% CI
R_LOG_MAINTAINED = [
    (9, 11, 1, 0.909, 0.0867, 0.7541, 1.000),
    (13, 10, 1, 0.818, 0.1163, 0.6192, 1.000),
    (18, 8, 1, 0.716, 0.1397, 0.4884, 1.000),
    (23, 7, 1, 0.614, 0.1526, 0.3769, 0.999),
    (31, 5, 1, 0.491, 0.1642, 0.2549, 0.946),
    (34, 4, 1, 0.368, 0.1627, 0.1549, 0.875),
    (48, 2, 1, 0.184, 0.1535, 0.0359, 0.944),
]
R_LOG_NONMAINTAINED = [
    (5, 12, 2, 0.8333, 0.1076, 0.6470, 1.000),
    (8, 10, 2, 0.6667, 0.1361, 0.4468, 0.995),
    (12, 8, 1, 0.5833, 0.1423, 0.3616, 0.941),
    (23, 6, 1, 0.4861, 0.1481, 0.2675, 0.883),
    (27, 5, 1, 0.3889, 0.1470, 0.1854, 0.816),
    (30, 4, 1, 0.2917, 0.1387, 0.1148, 0.741),
    (33, 3, 1, 0.1944, 0.1219, 0.0569, 0.664),
    (43, 2, 1, 0.0972, 0.0919, 0.0153, 0.620),
    (45, 1, 1, 0.0000, math.nan, math.nan, math.nan),
]


def _decimals(value: float) -> int:
    """Number of decimals R printed for a value (from its repr in the table above)."""
    text = repr(value)
    return len(text.split(".")[1]) if "." in text else 0


def _check_against_r(km: KaplanMeier, rows: list[tuple[float, ...]]) -> None:
    tab = km.event_table
    assert len(tab) == len(rows)
    for (_, got), want in zip(tab.iterrows(), rows, strict=True):
        t, nrisk, nevent, surv, se, lo, hi = want
        assert got["time"] == t and got["n_risk"] == nrisk and got["n_event"] == nevent
        for col, ref in (("surv", surv), ("std_err", se), ("lower", lo), ("upper", hi)):
            if math.isnan(ref):
                assert math.isnan(got[col]), (t, col)
            else:
                d = _decimals(ref)
                assert abs(got[col] - ref) <= 0.5 * 10.0**-d + 1e-12, (t, col, got[col], ref)


def test_km_log_ci_matches_r_summary_aml() -> None:
    """R code (survival package; output in therneau/survival tests/doaml.Rout.save)::

    fit <- survfit(Surv(time, status) ~ x, data = aml)   # conf.type = "log"
    summary(fit)
    """
    _check_against_r(KaplanMeier("log").fit(*AML_MAINTAINED), R_LOG_MAINTAINED)
    _check_against_r(KaplanMeier("log").fit(*AML_NONMAINTAINED), R_LOG_NONMAINTAINED)


def test_km_median_log_ci_matches_r_print_aml() -> None:
    """R code (output in therneau/survival tests/doaml.Rout.save)::

    print(survfit(Surv(time, status) ~ x, data = aml))
    #                     n events median 0.95LCL 0.95UCL
    # x=Maintained       11      7     31      18      NA
    # x=Nonmaintained    12     11     23       8      NA
    """
    m = KaplanMeier("log").fit(*AML_MAINTAINED)
    assert m.median_ == 31 and m.median_ci_[0] == 18 and math.isnan(m.median_ci_[1])
    n = KaplanMeier("log").fit(*AML_NONMAINTAINED)
    assert n.median_ == 23 and n.median_ci_[0] == 8 and math.isnan(n.median_ci_[1])
    s = n.summary()
    assert (s["n"], s["events"]) == (12, 11)


def _greenwood_by_hand(time: list[float], event: list[int]) -> list[tuple[float, float, float]]:
    """Plain-Python KM + Greenwood at each event time: (t, S, Var(log S))."""
    out = []
    surv, var = 1.0, 0.0
    for t in sorted(set(time)):
        d = sum(1 for ti, ei in zip(time, event, strict=True) if ti == t and ei == 1)
        n = sum(1 for ti in time if ti >= t)
        if d:
            surv *= 1 - d / n
            var += d / (n * (n - d)) if n > d else math.inf
            out.append((t, surv, var))
    return out


def test_km_log_log_ci_by_hand_derivation_aml() -> None:
    """log-log limits: no printed R output of ``conf.type = "log-log"`` on aml was found, so the
    reference is derived here from first principles (Greenwood's formula in plain Python) and
    R's documented transform (survival:::survfit_confint)::

        survfit(Surv(time, status) ~ x, data = aml, conf.type = "log-log")
        # lower = S^exp( z * se/|log S|),  upper = S^exp(-z * se/|log S|),  se^2 = sum d/(n(n-d))

    The first row is also checked by hand: S = 10/11, se^2 = 1/110, giving (0.5081, 0.9867).
    """
    z = 1.959963984540054
    for data in (AML_MAINTAINED, AML_NONMAINTAINED):
        km = KaplanMeier("log-log").fit(*data)
        tab = km.event_table
        for (_, row), (t, s, var) in zip(tab.iterrows(), _greenwood_by_hand(*data), strict=True):
            assert row["time"] == t and row["surv"] == pytest.approx(s, rel=1e-12)
            if s == 0:
                assert math.isnan(row["lower"]) and math.isnan(row["upper"])
                continue
            w = z * math.sqrt(var) / abs(math.log(s))
            assert row["lower"] == pytest.approx(s ** math.exp(w), rel=1e-10)
            assert row["upper"] == pytest.approx(s ** math.exp(-w), rel=1e-10)
            assert row["std_err"] == pytest.approx(s * math.sqrt(var), rel=1e-12)
    first = KaplanMeier().fit(*AML_MAINTAINED).event_table.iloc[0]
    assert round(first["lower"], 4) == 0.5081 and round(first["upper"], 4) == 0.9867


def test_km_plain_ci_by_hand() -> None:
    """plain: S ± z·S·se clipped to [0, 1] (survfit_confint, conf.type = "plain")."""
    km = KaplanMeier("plain").fit(*AML_MAINTAINED)
    z = 1.959963984540054
    for (_, row), (_, s, var) in zip(
        km.event_table.iterrows(), _greenwood_by_hand(*AML_MAINTAINED), strict=True
    ):
        assert row["lower"] == pytest.approx(max(s - z * s * math.sqrt(var), 0.0), abs=1e-12)
        assert row["upper"] == pytest.approx(min(s + z * s * math.sqrt(var), 1.0), abs=1e-12)


def test_log_log_agrees_with_lifelines() -> None:
    """lifelines' KM interval is the exponential-Greenwood (log-log) one; it must agree."""
    from lifelines import KaplanMeierFitter

    km = KaplanMeier("log-log").fit(*AML_NONMAINTAINED)
    kmf = KaplanMeierFitter().fit(AML_NONMAINTAINED[0], AML_NONMAINTAINED[1])
    ci = kmf.confidence_interval_
    for _, row in km.event_table.iterrows():
        if row["surv"] == 0:
            continue
        assert ci.loc[row["time"]].iloc[0] == pytest.approx(row["lower"], rel=1e-6)
        assert ci.loc[row["time"]].iloc[1] == pytest.approx(row["upper"], rel=1e-6)


def test_at_times_summary_semantics() -> None:
    """``summary(fit, times=)``: step function, events since previous time, NaN past the end."""
    km = KaplanMeier("log").fit(*AML_MAINTAINED)
    tab = km.at([200, 0, 10, 18, 20, 48, 161])
    assert list(tab["time"]) == [0, 10, 18, 20, 48, 161, 200]
    assert list(tab["surv"].iloc[:2]) == [1.0, pytest.approx(10 / 11)]
    assert tab["surv"].iloc[2] == pytest.approx(km.table.set_index("time").loc[18, "surv"])
    assert tab["surv"].iloc[3] == tab["surv"].iloc[2]
    assert list(tab["n_risk"].iloc[:6]) == [11, 10, 8, 7, 2, 1]
    assert list(tab["n_event"].iloc[:6]) == [0, 1, 2, 0, 4, 0]
    assert tab.iloc[6][["surv", "lower", "upper", "n_risk"]].isna().all()
    assert km.survival_function_at_times(48).iloc[0] == pytest.approx(0.184, abs=5e-4)


def test_median_midpoint_rule_and_quantile() -> None:
    """Curve exactly 0.5 over [2, 4): R's print.survfit median is the midpoint (3).

    Hand derivation (no printed R output used): S = 0.75, 0.5, 0.25, 0 at t = 1, 2, 4, 5, so by
    the midpoint rule in the R source (print.survfit ``minmin``, quantile.survfit ``findq``)::

        survfit(Surv(c(1, 2, 4, 5), rep(1, 4)) ~ 1)   # median (2 + 4) / 2 = 3
    """
    km = KaplanMeier("log").fit([1, 2, 4, 5], [1, 1, 1, 1])
    assert km.median_ == 3.0
    assert km.quantile(0.5)["time"].iloc[0] == 3.0
    # a flat 0.5 at the end of follow-up: print.survfit reports the first time ...
    tail = KaplanMeier("log").fit([1, 2, 3, 4], [1, 1, 0, 0])
    assert tail.median_ == 2.0
    # ... while quantile.survfit takes the midpoint with the last follow-up time
    assert tail.quantile(0.5)["time"].iloc[0] == 3.0
    never = KaplanMeier().fit([1, 2, 3, 4], [0, 1, 0, 0])
    assert math.isnan(never.median_)


def test_quantile_matches_median_on_aml() -> None:
    km = KaplanMeier("log").fit(*AML_MAINTAINED)
    q = km.quantile([0.5]).iloc[0]
    assert (q["time"], q["lower"]) == (31.0, 18.0) and math.isnan(q["upper"])


@pytest.mark.parametrize(
    ("time", "event"),
    [
        ([], []),
        ([1, 2], [1]),
        ([1, -2], [1, 1]),
        ([1, np.nan], [1, 1]),
        ([1, 2], [1, 2]),
        ([1, 2], ["a", "b"]),
    ],
)
def test_bad_input(time: list[float], event: list[object]) -> None:
    with pytest.raises(InvalidInputError):
        KaplanMeier().fit(time, event)


def test_bad_options() -> None:
    with pytest.raises(InvalidInputError):
        KaplanMeier(conf_type="logit")
    with pytest.raises(InvalidInputError):
        KaplanMeier(level=1.5)
    with pytest.raises(InvalidInputError):
        KaplanMeier().at(1.0)


survival_data = st.lists(
    st.tuples(st.integers(min_value=0, max_value=30), st.booleans()), min_size=1, max_size=40
)


@settings(max_examples=60, deadline=None)
@given(data=survival_data, conf_type=st.sampled_from(["log-log", "log", "plain"]))
def test_km_properties(data: list[tuple[int, bool]], conf_type: str) -> None:
    time = [float(t) for t, _ in data]
    event = [int(e) for _, e in data]
    km = KaplanMeier(conf_type).fit(time, event)
    tab = km.table
    s = tab["surv"].to_numpy()
    assert np.all((s >= 0) & (s <= 1))
    assert np.all(np.diff(s) <= 1e-15)
    ok = tab["lower"].notna() & tab["upper"].notna()
    assert np.all(tab.loc[ok, "lower"] <= tab.loc[ok, "surv"] + 1e-12)
    assert np.all(tab.loc[ok, "surv"] <= tab.loc[ok, "upper"] + 1e-12)
    assert np.all((tab.loc[ok, "lower"] >= 0) & (tab.loc[ok, "upper"] <= 1 + 1e-12))
    # invariance to row order
    perm = np.random.default_rng(len(data)).permutation(len(data))
    km2 = KaplanMeier(conf_type).fit(np.array(time)[perm], np.array(event)[perm])
    pd.testing.assert_frame_equal(km.table, km2.table)
    assert km.median_ == km2.median_ or (math.isnan(km.median_) and math.isnan(km2.median_))
    if not math.isnan(km.median_):
        lo, hi = km.median_ci_
        assert math.isnan(lo) or lo <= km.median_
        assert math.isnan(hi) or hi >= km.median_
