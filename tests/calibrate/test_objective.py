"""The calibration objective: binomial and normal terms on reference values, and which rows of
a validation table it uses or skips."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from cartsim.calibrate.objective import (
    Z95,
    binomial_term,
    ci_sd,
    compute_objective,
    normal_term,
)
from cartsim.validate.mapping import default_mapping
from cartsim.validate.run import CSV_COLUMNS
from cartsim.validate.targets import TargetRow, Targets


def _binom_logpmf(k: int, n: int, p: float) -> float:
    """Written out independently of scipy: log C(n, k) + k log p + (n-k) log(1-p)."""
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + k * math.log(p) + (n - k) * math.log(1 - p))


@pytest.mark.parametrize(("k", "n", "p"), [(60, 100, 0.5), (61, 75, 0.95), (0, 20, 0.3),
                                           (20, 20, 0.7)])
def test_binomial_term_is_the_binomial_log_likelihood_and_its_deviance(k: int, n: int,
                                                                      p: float) -> None:
    ll, dev = binomial_term(k, n, p)
    assert ll == pytest.approx(_binom_logpmf(k, n, p), rel=1e-10)
    # deviance against the saturated model: 2 Σ obs log(obs/expected)
    want = 0.0
    for obs, exp in ((k, n * p), (n - k, n * (1 - p))):
        if obs:
            want += 2 * obs * math.log(obs / exp)
    assert dev == pytest.approx(want, rel=1e-9, abs=1e-9)


def test_binomial_deviance_is_zero_at_the_published_rate_and_grows_away_from_it() -> None:
    assert binomial_term(60, 100, 0.6)[1] == pytest.approx(0.0, abs=1e-9)
    d = [binomial_term(60, 100, p)[1] for p in (0.6, 0.7, 0.8, 0.95)]
    assert d == sorted(d) and d[-1] > 40


def test_normal_term_and_published_sd_from_an_asymmetric_ci() -> None:
    ll, dev = normal_term(70.0, 60.0, 5.0)
    assert dev == pytest.approx(4.0)
    assert ll == pytest.approx(-2.0 - math.log(5.0) - 0.5 * math.log(2 * math.pi))
    # published 59 (51-66): above the value the upper half-width counts, below the lower
    assert ci_sd(59.0, 51.0, 66.0, 70.0) == pytest.approx(7.0 / Z95)
    assert ci_sd(59.0, 51.0, 66.0, 40.0) == pytest.approx(8.0 / Z95)
    assert ci_sd(59.0, None, None, 40.0) is None
    assert ci_sd(12.0, 8.0, None, 20.0) == pytest.approx(4.0 / Z95)  # open upper bound


def _row(line: int, endpoint: str, value: float, n: int | None, unit: str = "percent",
         lo: float | None = None, hi: float | None = None) -> TargetRow:
    return TargetRow(line, "ELIANA", "B-ALL", n, "all infused", endpoint, "", value, lo, hi,
                     unit, "")


def _rec(row: TargetRow, simulated: float | None, status: str = "compared",
         n_sim: int = 200, reason: str = "") -> dict[str, object]:
    rec: dict[str, object] = {c: None for c in CSV_COLUMNS}
    rec.update(study=row.study, line=row.line, endpoint=row.endpoint, unit="percent"
               if row.unit in ("percent", "count") else row.unit, published=row.value,
               published_ci_low=row.ci_low, published_ci_high=row.ci_high,
               simulated=simulated, n_simulated=n_sim, status=status, reason=reason,
               spec="eliana")
    return rec


def test_compute_objective_uses_rates_and_km_and_counts_what_it_skips() -> None:
    rows = [
        _row(2, "ORR_CR_CRi", 81.0, 75),                      # binomial, n from the n column
        _row(3, "EFS", 50.0, 75, lo=40.0, hi=60.0),           # KM landmark: normal on its CI
        _row(4, "OS", 70.0, 50),                              # KM without CI: effective n
        _row(5, "CRS_onset_median", 3.0, 75, unit="days"),   # median without CI: skipped
        _row(6, "ORR", 60.0, 75),                             # not compared: skipped
    ]
    table = pd.DataFrame([
        _rec(rows[0], 81.0), _rec(rows[1], 60.0), _rec(rows[2], 70.0), _rec(rows[3], 5.0),
        _rec(rows[4], None, status="unmapped", reason="simulated median not reached"),
    ])
    obj = compute_objective(table, Targets("t.csv", rows, []), default_mapping())
    t = obj.terms.set_index("line")
    assert obj.used == 3 and obj.skipped == 2
    assert t.loc[2, "method"] == "binomial"
    # 81 % of 75 is 61 patients; simulated 162/200 smoothed to 162.5/201
    assert t.loc[2, "loglik"] == pytest.approx(_binom_logpmf(61, 75, 162.5 / 201), rel=1e-9)
    assert t.loc[3, "deviance"] == pytest.approx((10.0 / (10.0 / Z95)) ** 2)
    assert t.loc[4, "method"] == "binomial (effective n)"
    assert t.loc[5, "reason"] == "no published CI"
    assert "median not reached" in t.loc[6, "reason"]
    assert obj.deviance == pytest.approx(float(t.loc[[2, 3, 4], "deviance"].sum()))
    # a worse simulated rate gives a larger deviance
    worse = table.copy()
    worse.loc[0, "simulated"] = 99.0
    assert compute_objective(worse, Targets("t.csv", rows, []),
                             default_mapping()).deviance > obj.deviance + 10


def test_ratios_are_compared_on_the_log_scale_and_a_degenerate_one_is_skipped() -> None:
    """A hazard ratio of 1.27 (0.9-1.8) simulated as 2.54: z = log(2) / (log(1.8/1.27)/1.96);
    a degenerate simulated ratio (1e21 from a quasi-separated Cox fit, or 0) is skipped instead
    of adding a deviance of 1e43 (seen in a session-9 check)."""
    from cartsim.calibrate.objective import row_term

    base = {"line": 1, "study": "s", "spec": "x", "endpoint": "HR", "published": 1.27,
            "published_ci_low": 0.9, "published_ci_high": 1.8, "unit": "ratio"}
    t = row_term({**base, "simulated": 2.54}, "hazard_ratio", None)
    sd = math.log(1.8 / 1.27) / Z95
    assert t["used"] and t["deviance"] == pytest.approx((math.log(2.0) / sd) ** 2)
    below = row_term({**base, "simulated": 1.27 / 2}, "hazard_ratio", None)
    assert below["deviance"] == pytest.approx((math.log(2.0) / (math.log(1.27 / 0.9) / Z95))
                                              ** 2)
    for bad in (9.76e21 * math.inf, 0.0, -1.0):
        t = row_term({**base, "simulated": bad}, "hazard_ratio", None)
        assert not t["used"] and t["deviance"] == 0.0 and "not positive" in t["reason"]
