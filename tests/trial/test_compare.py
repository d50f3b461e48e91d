"""Log-rank test and Cox model checked against printed R ``survival`` output."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from _aml import aml_frame
from _ovarian import ovarian_frame
from hypothesis import given, settings
from hypothesis import strategies as st

from cartsim.errors import InvalidInputError
from cartsim.trial.stats import KaplanMeier, compare_arms, cox_ph, logrank_test


def _printed(value: float, ref: float, decimals: int) -> None:
    """``value`` rounds to ``ref`` at the number of decimals R printed."""
    assert abs(value - ref) <= 0.5 * 10.0**-decimals + 1e-12, (value, ref)


def test_survdiff_aml() -> None:
    """R code; output printed in therneau/survival tests/doaml.Rout.save::

    survdiff(Surv(time, status) ~ x, data = aml)
    #                      N Observed Expected (O-E)^2/E (O-E)^2/V
    # x=Maintained        11        7    10.69      1.27      3.40
    # x=Nonmaintained     12       11     7.31      1.86      3.40
    #  Chisq= 3.4  on 1 degrees of freedom, p= 0.0653
    """
    res = logrank_test(*(aml_frame()[c] for c in ("time", "status", "x")))
    tab = res.table
    assert list(tab.index) == ["Maintained", "Nonmaintained"]
    assert list(tab["n"]) == [11, 12] and list(tab["observed"]) == [7, 11]
    _printed(tab["expected"].iloc[0], 10.69, 2)
    _printed(tab["expected"].iloc[1], 7.31, 2)
    _printed(tab["(O-E)^2/E"].iloc[0], 1.27, 2)
    _printed(tab["(O-E)^2/E"].iloc[1], 1.86, 2)
    _printed(tab["(O-E)^2/V"].iloc[0], 3.40, 2)
    _printed(res.chisq, 3.4, 1)
    assert res.df == 1
    _printed(res.p_value, 0.0653, 4)


def test_coxph_aml_efron() -> None:
    """R code (survival >= 3; output printed in R course notes, e.g. the tutorial pages found with
    the code-search string "xNonmaintained 0.9155", and, at 3 digits, in therneau/survival
    tests/doaml.Rout.save for ``method = 'efron'``)::

        coxph(Surv(time, status) ~ x, data = aml)
        #                  coef exp(coef) se(coef)     z      p
        # xNonmaintained 0.9155    2.4981   0.5119 1.788 0.0737
        # Likelihood ratio test=3.38  on 1 df, p=0.06581
    """
    out = compare_arms(aml_frame(), "time", "status", "x")
    assert len(out) == 1
    row = out.iloc[0]
    assert (row["arm"], row["reference"]) == ("Nonmaintained", "Maintained")
    assert (row["n"], row["events"]) == (12, 11)
    _printed(row["coef"], 0.9155, 4)
    _printed(row["hr"], 2.4981, 4)
    _printed(row["se"], 0.5119, 4)
    _printed(row["z"], 1.788, 3)
    _printed(row["p"], 0.0737, 4)
    _printed(row["lr_chisq"], 3.38, 2)
    _printed(row["lr_p"], 0.06581, 5)
    _printed(row["logrank_chisq"], 3.4, 1)
    # the CI is exp(coef ± z se) by definition (R summary.coxph "lower .95 / upper .95")
    assert row["hr_lower"] == pytest.approx(math.exp(row["coef"] - 1.959963984540054 * row["se"]))
    assert row["hr_upper"] == pytest.approx(math.exp(row["coef"] + 1.959963984540054 * row["se"]))


def test_coxph_aml_matches_lifelines() -> None:
    """lifelines' CoxPHFitter also uses Efron ties: estimates must agree to ~1e-5."""
    from lifelines import CoxPHFitter

    df = aml_frame()
    d = df.assign(nm=(df["x"] == "Nonmaintained").astype(float))[["time", "status", "nm"]]
    ll = CoxPHFitter().fit(d, "time", "status").summary.loc["nm"]
    ours = cox_ph(df["time"], df["status"], d["nm"]).coefficients.iloc[0]
    assert ours["coef"] == pytest.approx(ll["coef"], abs=1e-5)
    assert ours["se(coef)"] == pytest.approx(ll["se(coef)"], abs=1e-5)


def test_coxph_ovarian_rx() -> None:
    """R code; summary output printed in an R course's survival-analysis solutions (ovarian
    problem; found with the code-search string "59      1 72.3315")::

        summary(coxph(Surv(futime, fustat) ~ factor(rx), data = ovarian))
        #                coef exp(coef) se(coef)      z Pr(>|z|)
        # factor(rx)2 -0.5964    0.5508   0.5870 -1.016     0.31
        #             exp(coef) exp(-coef) lower .95 upper .95
        # factor(rx)2    0.5508      1.816    0.1743      1.74
        # Likelihood ratio test= 1.05  on 1 df,   p=0.3
        # Wald test            = 1.03  on 1 df,   p=0.3
        # Score (logrank) test = 1.06  on 1 df,   p=0.3
    """
    ov = ovarian_frame()
    row = compare_arms(ov, "futime", "fustat", "rx").iloc[0]
    assert (row["arm"], row["reference"]) == (2, 1)
    _printed(row["coef"], -0.5964, 4)
    _printed(row["hr"], 0.5508, 4)
    _printed(row["se"], 0.5870, 4)
    _printed(row["z"], -1.016, 3)
    _printed(row["p"], 0.31, 2)
    _printed(row["hr_lower"], 0.1743, 4)
    _printed(row["hr_upper"], 1.74, 2)
    _printed(row["lr_chisq"], 1.05, 2)
    _printed(row["wald_chisq"], 1.03, 2)
    _printed(row["score_chisq"], 1.06, 2)
    # no tied death times in ovarian: the Cox score test is exactly the log-rank test
    assert row["score_chisq"] == pytest.approx(row["logrank_chisq"], rel=1e-10)


def test_coxph_ovarian_age_rx_two_covariates() -> None:
    """Same source as above::

    summary(coxph(Surv(futime, fustat) ~ age + factor(rx), data = ovarian))
    #                 coef exp(coef) se(coef)      z Pr(>|z|)
    # age          0.14733   1.15873  0.04615  3.193  0.00141
    # factor(rx)2 -0.80397   0.44755  0.63205 -1.272  0.20337
    # age            1.1587      0.863    1.0585     1.268
    # factor(rx)2    0.4475      2.234    0.1297     1.545
    # Likelihood ratio test= 15.89  on 2 df,   p=4e-04
    # Wald test            = 13.47  on 2 df,   p=0.001
    # Score (logrank) test = 18.56  on 2 df,   p=9e-05
    """
    ov = ovarian_frame()
    x = np.column_stack([ov["age"], (ov["rx"] == 2).astype(float)])
    fit = cox_ph(ov["futime"], ov["fustat"], x, names=["age", "rx2"])
    c = fit.coefficients
    for term, coef, hr, se, z, p, lo, hi in (
        ("age", 0.14733, 1.15873, 0.04615, 3.193, 0.00141, 1.0585, 1.268),
        ("rx2", -0.80397, 0.44755, 0.63205, -1.272, 0.20337, 0.1297, 1.545),
    ):
        _printed(c.loc[term, "coef"], coef, 5)
        _printed(c.loc[term, "exp(coef)"], hr, 5)
        _printed(c.loc[term, "se(coef)"], se, 5)
        _printed(c.loc[term, "z"], z, 3)
        _printed(c.loc[term, "p"], p, 5)
        _printed(c.loc[term, "lower"], lo, 4)
        _printed(c.loc[term, "upper"], hi, 3)
    assert fit.likelihood_ratio_test[1] == 2
    _printed(fit.likelihood_ratio_test[0], 15.89, 2)
    _printed(fit.wald_test[0], 13.47, 2)
    _printed(fit.score_test[0], 18.56, 2)
    assert f"{fit.likelihood_ratio_test[2]:.0e}" == "4e-04"
    assert f"{fit.score_test[2]:.0e}" == "9e-05"


def test_km_ovarian_resid_ds() -> None:
    """R code; output printed in an R survival tutorial (Korean DataCamp-style notes, found with
    the code-search string "0.909  0.0867        0.754")::

        km <- survfit(Surv(futime, fustat) ~ resid.ds, data = ovarian); summary(km)
        #  resid.ds=no
        #  353     11       1    0.909  0.0867        0.754            1
        #  563      8       1    0.795  0.1306        0.577            1
        #  638      7       1    0.682  0.1536        0.438            1
        #  resid.ds=yes (first rows)
        #   59     15       1    0.933  0.0644        0.815        1.000
        #  268     12       1    0.733  0.1142        0.540        0.995
        #  475      6       1    0.375  0.1296        0.190        0.738
    """
    ov = ovarian_frame()
    no = ov[ov["resid.ds"] == 1]
    yes = ov[ov["resid.ds"] == 2]
    t_no = KaplanMeier("log").fit(no["futime"], no["fustat"]).event_table.set_index("time")
    for t, nr, s, se, lo in (
        (353, 11, 0.909, 0.0867, 0.754),
        (563, 8, 0.795, 0.1306, 0.577),
        (638, 7, 0.682, 0.1536, 0.438),
    ):
        assert t_no.loc[t, "n_risk"] == nr
        _printed(t_no.loc[t, "surv"], s, 3)
        _printed(t_no.loc[t, "std_err"], se, 4)
        _printed(t_no.loc[t, "lower"], lo, 3)
        assert t_no.loc[t, "upper"] == 1.0
    t_yes = KaplanMeier("log").fit(yes["futime"], yes["fustat"]).event_table.set_index("time")
    for t, nr, s, se, lo, hi in (
        (59, 15, 0.933, 0.0644, 0.815, 1.0),
        (268, 12, 0.733, 0.1142, 0.540, 0.995),
        (475, 6, 0.375, 0.1296, 0.190, 0.738),
    ):
        assert t_yes.loc[t, "n_risk"] == nr
        _printed(t_yes.loc[t, "surv"], s, 3)
        _printed(t_yes.loc[t, "std_err"], se, 4)
        _printed(t_yes.loc[t, "lower"], lo, 3)
        _printed(t_yes.loc[t, "upper"], hi, 3)


def test_three_arm_logrank_by_hand() -> None:
    """k = 3 groups: chisq = (O−E)' V⁻¹ (O−E) over 2 groups; df = 2; Cox has 2 HRs.

    Hand derivation: with a single event time the variance is the hypergeometric one.
    """
    df = pd.DataFrame({"t": [1, 1, 2, 3, 4, 5], "e": [1, 0, 1, 1, 0, 1], "arm": list("ABCABC")})
    res = logrank_test(df["t"], df["e"], df["arm"])
    assert res.df == 2
    assert res.table["observed"].sum() == pytest.approx(res.table["expected"].sum())
    out = compare_arms(df, "t", "e", "arm")
    assert list(out["arm"]) == ["B", "C"] and (out["reference"] == "A").all()
    assert out["logrank_df"].iloc[0] == 2
    out_ref = compare_arms(df, "t", "e", "arm", reference="C")
    assert list(out_ref["arm"]) == ["A", "B"]


def test_compare_bad_input() -> None:
    df = aml_frame()
    with pytest.raises(InvalidInputError):
        compare_arms(df, "time", "status", "nope")
    with pytest.raises(InvalidInputError):
        compare_arms(df.assign(x="one"), "time", "status", "x")
    with pytest.raises(InvalidInputError):
        compare_arms(df, "time", "status", "x", reference="Other")
    with pytest.raises(InvalidInputError):
        cox_ph([1, 2], [0, 0], [0, 1])
    with pytest.raises(InvalidInputError):
        cox_ph([1, 2], [1, 0], [[0, 1, 2]])
    with pytest.raises(InvalidInputError):
        logrank_test([1, 2], [1, 0], ["a", None])


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 20), st.booleans(), st.sampled_from(["A", "B"])),
        min_size=6,
        max_size=30,
    ).filter(lambda rows: len({r[2] for r in rows}) == 2 and sum(r[1] for r in rows) >= 2)
)
def test_comparison_invariant_to_row_order(rows: list[tuple[int, bool, str]]) -> None:
    df = pd.DataFrame(rows, columns=["t", "e", "arm"]).astype({"e": int})
    a = logrank_test(df["t"], df["e"], df["arm"])
    shuffled = df.sample(frac=1.0, random_state=1)
    b = logrank_test(shuffled["t"], shuffled["e"], shuffled["arm"])
    assert a.chisq == pytest.approx(b.chisq, rel=1e-9, abs=1e-12)
    assert 0.0 <= a.p_value <= 1.0 or math.isnan(a.p_value)
