"""A tiny real calibration: same seed → same numbers, also across an interruption (--resume)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from tiny_space import SPACE

from cartsim import parameter_sets as psets
from cartsim.calibrate.run import calibrate
from cartsim.errors import InvalidInputError


@pytest.mark.slow
def test_tiny_calibration_is_deterministic_and_resumable(tmp_path: Path) -> None:
    space = tmp_path / "space.toml"
    space.write_text(SPACE, encoding="utf-8")
    kw = {"space_path": space, "patients": 20, "seed": 7}
    a = calibrate(tmp_path / "a", budget=2, check=True, **kw)
    calibrate(tmp_path / "b", budget=1, check=False, **kw)       # interrupted after one
    with pytest.raises(InvalidInputError, match="--resume"):
        calibrate(tmp_path / "b", budget=2, check=False, **kw)
    b = calibrate(tmp_path / "b", budget=2, check=False, resume=True, **kw)
    ta = pd.read_csv(tmp_path / "a" / "trials.csv")
    tb = pd.read_csv(tmp_path / "b" / "trials.csv")
    cols = ["deviance", "rho_max.default", "p_il6.iiv_sd", "baseline"]
    pd.testing.assert_frame_equal(ta[cols], tb[cols])
    assert ta["baseline"].tolist() == [True, False]
    assert ta.loc[0, "rho_max.default"] == pytest.approx(psets.known_specs()["rho_max"].default)
    assert a.parameter_set.values == b.parameter_set.values
    assert a.best == b.best <= a.baseline
    # the fitted set: provenance, and it loads back as a set cartsim can put in force
    ps = psets.load(tmp_path / "a" / "parameter_set.toml")
    assert ps.provenance.startswith("calibrated to clinical_targets.csv, ")
    assert "objective" in ps.provenance and "command" in ps.provenance
    assert set(ps.values) == {"rho_max", "p_il6"}
    check = a.summary["check"]["calibration"]
    assert check["studies"] == ["stjude_infections"] and check["rows_used"] > 0
    ba = pd.read_csv(tmp_path / "a" / "before_after.csv")
    assert {"published", "before", "after", "passes_before", "passes_after"} <= set(ba.columns)
    assert (ba["set"] == "calibration").all()


@pytest.mark.slow
def test_cmaes_searches_around_the_model_values_and_resumes(tmp_path: Path) -> None:
    space = tmp_path / "space.toml"
    space.write_text(SPACE, encoding="utf-8")
    kw = {"space_path": space, "patients": 10, "seed": 3, "check": False, "sampler": "cmaes"}
    calibrate(tmp_path / "a", budget=3, **kw)
    calibrate(tmp_path / "b", budget=2, **kw)
    calibrate(tmp_path / "b", budget=3, resume=True, **kw)
    ta = pd.read_csv(tmp_path / "a" / "trials.csv")
    tb = pd.read_csv(tmp_path / "b" / "trials.csv")
    pd.testing.assert_frame_equal(ta[["deviance", "rho_max.default"]],
                                  tb[["deviance", "rho_max.default"]])
    rho0 = psets.known_specs()["rho_max"].default
    # a local step: within ~3 sigma (0.15 of the log-range each) of the model's value
    import math
    step = abs(math.log(ta.loc[1, "rho_max.default"] / rho0)) / math.log(2.5 / 0.6)
    assert 0 < step < 0.6


def test_unknown_sampler_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="--sampler"):
        calibrate(tmp_path / "x", sampler="grid", budget=1)


@pytest.mark.parametrize(("kw", "option"), [({"step": 0.0}, "--step"), ({"step": 0.9}, "--step"),
                                             ({"workers": 0}, "--workers")])
def test_bad_step_or_workers_is_refused_before_anything_runs(tmp_path: Path, kw: dict,
                                                             option: str) -> None:
    with pytest.raises(InvalidInputError, match=option):
        calibrate(tmp_path / "x", sampler="cmaes", budget=1, **kw)
    assert not (tmp_path / "x").exists()


def test_external_check_compares_a_fitted_set_on_the_held_out_trials(tmp_path: Path) -> None:
    """The fitted set is also run on the external library (trials outside the calibration
    file): before/after on the same fresh patients, written and summarised; a set that changes
    expansion moves the simulated values."""
    from cartsim.calibrate.run import external_posterior_check

    toml = tmp_path / "ps.toml"
    toml.write_text('[parameter_set]\nname = "t"\nformat = 1\nprovenance = "test"\n'
                    '[parameters.rho_max]\ndefault = 0.7\n', encoding="utf-8")
    res = external_posterior_check(tmp_path, psets.load(toml), patients=12,
                                   studies=["zuma3"])
    assert res["studies"] == ["zuma3"] and res["rows_used"] > 0
    assert res["passing_before"]["judged"] == res["passing_after"]["judged"] > 0
    t = pd.read_csv(tmp_path / "external_before_after.csv")
    assert (t["set"] == "external").all()
    assert set(t["study"]) == {"ZUMA-3 phase 2"}
    cr = t[t.endpoint == "CR_CRi"].iloc[0]
    assert cr["after"] < cr["before"]          # a slower product remits fewer patients


@pytest.mark.slow
def test_a_candidate_whose_patients_the_simulator_stopped_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Session 47: censored courses of stopped patients can lower the deviance of a set that
    breaks the model; such a candidate is a failed evaluation, never the fit."""
    import dataclasses

    from cartsim.calibrate import run as calrun

    original = calrun.Evaluator.__call__
    calls = []

    def stopping(self, ps, *args, **kwargs):  # type: ignore[no-untyped-def]
        ev = original(self, ps, *args, **kwargs)
        calls.append(ps)
        # every candidate after the baseline "stops" patients, with a better deviance
        return ev if len(calls) == 1 else dataclasses.replace(ev, stopped=5)

    monkeypatch.setattr(calrun.Evaluator, "__call__", stopping)
    space = tmp_path / "space.toml"
    space.write_text(SPACE, encoding="utf-8")
    res = calibrate(tmp_path / "a", budget=2, check=False, space_path=space, patients=10,
                    seed=3)
    t = pd.read_csv(tmp_path / "a" / "trials.csv")
    assert t["state"].tolist() == ["COMPLETE", "FAIL"]
    assert t["stopped_patients"].tolist() == [0, 5]
    assert res.best == res.baseline  # the refused candidate is not the fit


def test_install_without_the_check_is_refused_before_anything_runs(tmp_path: Path) -> None:
    """Session 48: a 300-patient objective on the specs' seeds rewarded noise; a set becomes the
    default only after the posterior check on fresh patients."""
    with pytest.raises(InvalidInputError, match="--install"):
        calibrate(tmp_path / "x", budget=1, check=False, install="cal-x")
    assert not (tmp_path / "x").exists()


def test_a_set_is_installed_only_if_fresh_patients_confirm_it() -> None:
    from cartsim.calibrate.run import install_refusal

    def check(cb: float, ca: float, hb: float | None = None,
              ha: float | None = None) -> dict:
        c: dict = {"calibration": {"deviance_before": cb, "deviance_after": ca}}
        if hb is not None:
            c["held_out"] = {"deviance_before": hb, "deviance_after": ha}
        return c

    assert install_refusal(check(349.3, 314.9)) is None
    assert install_refusal(check(349.3, 314.9, 120.0, 119.0)) is None
    assert "calibration" in (install_refusal(check(786.1, 807.1)) or "")
    assert "calibration" in (install_refusal(check(300.0, 300.0)) or "")  # no gain, no install
    assert "held-out" in (install_refusal(check(349.3, 314.9, 120.0, 131.0)) or "")
    assert "no posterior check" in (install_refusal({}) or "")
