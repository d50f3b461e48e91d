"""cartsim sensitivity: the probes, the row-by-row analysis, the linearised proposal, resume.

The analysis is checked on a fake evaluator whose validation rows are known linear functions of
the parameters (so the slopes, the rows gained and lost and the proposal have exact answers),
and once on a real tiny study library run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tiny_space import SPACE

from cartsim import parameter_sets as psets
from cartsim.calibrate import sensitivity as sens
from cartsim.calibrate.run import Evaluation
from cartsim.calibrate.space import Dimension, parse_space
from cartsim.errors import InvalidInputError
from cartsim.validate.run import passes_at


def _space(tmp_path: Path) -> Path:
    p = tmp_path / "space.toml"
    p.write_text(SPACE, encoding="utf-8")
    return p


def test_normalised_coordinates_round_trip_on_log_and_linear_scales() -> None:
    log = Dimension("rho_max", "default", 0.5, 2.0, "log")
    lin = Dimension("p_il6", "iiv_sd", 0.2, 1.2, "linear")
    assert sens.to_unit(log, 1.0) == pytest.approx(0.5)          # geometric middle
    assert sens.to_unit(lin, 0.7) == pytest.approx(0.5)
    for d, x in ((log, 1.37), (lin, 0.93)):
        assert sens.from_unit(d, sens.to_unit(d, x)) == pytest.approx(x)
    assert sens.from_unit(log, 1.5) == pytest.approx(4.0)        # beyond the range: extended


def test_plan_probes_each_dimension_on_both_sides_and_one_side_at_a_bound() -> None:
    space = parse_space(__import__("tomllib").loads(SPACE), "t")
    x0 = {"rho_max.default": 2.5, "p_il6.iiv_sd": 0.9}            # rho_max at its upper bound
    probes = sens.plan(space, x0, 0.1)
    names = [p.name for p in probes]
    assert names == ["baseline", "rho_max.default__minus", "p_il6.iiv_sd__minus",
                     "p_il6.iiv_sd__plus"]
    minus = probes[1]
    assert minus.value == pytest.approx(2.5 * (0.6 / 2.5) ** 0.1)
    # a probe set is the start with the probed dimension moved; the starting run is the start
    assert sens.probe_set(None, probes[0]) is None
    ps = sens.probe_set(None, probes[3])
    assert ps is not None and ps.values == {"p_il6": {"iiv_sd": pytest.approx(1.02)}}
    start = psets.ParameterSet("s", "t", {"mu_loss": {"default": 1e-13}})
    assert sens.probe_set(start, probes[3]).values == {
        "mu_loss": {"default": 1e-13}, "p_il6": {"iiv_sd": pytest.approx(1.02)}}
    # a start outside the box (a model value below or above the space's bounds) is where the
    # analysis starts; the step leading further away is dropped, the other may stay outside
    out = sens.plan(space, {"rho_max.default": 3.0, "p_il6.iiv_sd": 0.9}, 0.1)
    rho = [p for p in out if p.dim is not None and p.dim.key == "rho_max.default"]
    assert [p.side for p in rho] == ["minus"] and 2.5 < rho[0].value < 3.0
    assert sens.start_point(space, None)["rho_max.default"] == \
        psets.known_specs()["rho_max"].default


def test_pass_rule_is_the_validation_rule() -> None:
    assert passes_at(50.0, 40.0, 60.0, "percent", 61.0) is False   # the CI decides
    assert passes_at(50.0, None, None, "percent", 59.9) is True     # else 10 points
    assert passes_at(50.0, None, None, "percent", 60.1) is False
    assert passes_at(5.0, None, None, "months", 5.1) is None        # not judged


class _FakeEvaluator:
    """Validation tables whose rows are linear in the normalised rho_max and p_il6 spread:
    row A (a rate, published 60 (50-70), simulated 30 + 50 u_rho, about 56 at the model's
    values), row B (published 30 without CI, simulated 45 - 20 u_rho + 10 u_sd, about 39),
    row C (held-out, moves with the spread only)."""

    def __init__(self, space: Any) -> None:
        self.dims = {d.key: d for d in space.dimensions}
        self.calls: list[dict[str, float]] = []
        from cartsim.validate.mapping import default_mapping
        from cartsim.validate.targets import read_targets

        self.mapping = default_mapping()
        self.targets = read_targets(None, self.mapping)
        self.work = Path(".")

    def __call__(self, ps: Any, work: Any = None) -> Evaluation:
        v = ps.values if ps is not None else {}
        known = psets.known_specs()
        r = sens.to_unit(self.dims["rho_max.default"],
                         v.get("rho_max", {}).get("default", known["rho_max"].default))
        s = sens.to_unit(self.dims["p_il6.iiv_sd"],
                         v.get("p_il6", {}).get("iiv_sd", known["p_il6"].iiv_sd))
        self.calls.append({"r": r, "s": s})
        lines = [r_.line for r_ in self.targets.rows if r_.unit == "percent"][:3]
        vals = [30 + 50 * r, 45 - 20 * r + 10 * s, 70 + 30 * s]
        specs = ["cal", "cal", "held"]
        recs = []
        for line, v, spec, pub, lo, hi in zip(lines, vals, specs, (60, 30, 70),
                                              (50, None, None), (70, None, None), strict=True):
            recs.append({"line": line, "study": spec, "spec": spec, "endpoint": "CR",
                         "timepoint": None, "subgroup": "all", "unit": "percent",
                         "published": pub, "published_ci_low": lo, "published_ci_high": hi,
                         "simulated": v, "n_simulated": 1000, "status": "compared",
                         "passes": passes_at(pub, lo, hi, "percent", v)})
        return Evaluation(objective=None, table=pd.DataFrame(recs), seconds=0.0)  # type: ignore[arg-type]


def test_analysis_and_proposal_on_rows_known_to_be_linear(tmp_path: Path, monkeypatch: Any
                                                          ) -> None:
    space_path = _space(tmp_path)
    space = sens.load_space(space_path)
    fake = _FakeEvaluator(space)
    lines = [r.line for r in fake.targets.rows if r.unit == "percent"][:3]
    monkeypatch.setattr(sens, "Evaluator", lambda *a, **k: fake)
    monkeypatch.setattr(sens, "select_entries",
                        lambda lib, tg, names: ([type("E", (), {"key": "cal"})()], []))
    fake.keys = ["cal", "held"]
    fake.library = type("L", (), {"path": "lib"})()
    res = sens.sensitivity(tmp_path / "out", space_path=space_path, patients=5, step=0.1,
                           trust=3.0)
    x0r = sens.to_unit(space.dimensions[0], psets.known_specs()["rho_max"].default)
    rows = res.rows.set_index(["line", "dimension"])
    a_rho = rows.loc[(lines[0], "rho_max.default")]
    assert a_rho["change_per_step"] == pytest.approx(5.0)          # 50 per unit, step 0.1
    assert a_rho["baseline"] == pytest.approx(30 + 50 * x0r)
    assert rows.loc[(lines[0], "p_il6.iiv_sd")]["change_per_step"] == pytest.approx(0.0)
    assert rows.loc[(lines[2], "p_il6.iiv_sd")]["set"] == "held_out"
    # towards: row A is below its published 60, so raising rho_max helps (+); row B is above
    # its published 30 and rho_max lowers it, so raising it helps too; the spread raises B
    assert rows.loc[(lines[1], "p_il6.iiv_sd")]["towards_per_step"] < 0
    assert a_rho["towards_per_step"] > 0
    assert rows.loc[(lines[1], "rho_max.default")]["towards_per_step"] > 0
    # the proposal minimises the calibration rows' deviance inside 3 steps: rho_max rises
    # (rows A and B both want it), the spread falls (row B wants it; row C is held out)
    steps = res.summary["proposal"]["steps"]
    assert steps["rho_max.default"] > 0 and steps["p_il6.iiv_sd"] < 0
    assert all(abs(v) <= 3.0 + 1e-9 for v in steps.values())
    p = res.summary["proposal"]
    assert p["predicted_deviance_calibration"] < p["baseline_deviance_calibration"]
    ps = psets.load(tmp_path / "out" / "proposal.toml")
    assert ps.values["rho_max"]["default"] > psets.known_specs()["rho_max"].default
    assert set(ps.values) == {"rho_max", "p_il6"}      # the moved dimensions, nothing else
    assert (tmp_path / "out" / "sensitivity.png").stat().st_size > 1000   # row C fails
    # no probe stopped a patient (session 47 records it per probe, beside each table)
    assert res.summary["probes_with_stopped_patients"] == {}
    assert (tmp_path / "out" / "evaluations" / "baseline.stopped").read_text() == "0\n"
    # resume: a rerun with the same settings reuses every run; other settings are refused
    n = len(fake.calls)
    assert n == 5
    sens.sensitivity(tmp_path / "out", space_path=space_path, patients=5, step=0.1, trust=3.0)
    assert len(fake.calls) == n
    # reach: row C (held-out, 82.5 against 70 ± 10) passes one step of the spread down
    assert lines[2] in res.summary["reach"]["passing_after_one_step"]
    # forward selection: one dimension only, the one that helps both calibration rows
    r1 = sens.sensitivity(tmp_path / "out", space_path=space_path, patients=5, step=0.1,
                          trust=3.0, max_dims=1)
    assert list(r1.summary["proposal"]["steps"]) == ["rho_max.default"]
    path = r1.summary["proposal"]["path"]
    assert [p_["added"] for p_ in path] == ["rho_max.default"]
    assert path[0]["deviance_calibration"] < p["baseline_deviance_calibration"]
    assert len(fake.calls) == n
    # a larger validation run at the same start gives the proposal its starting values
    ref = fake(None).table
    ref.loc[0, ["simulated", "passes"]] = [20.0, False]            # row A far below 60
    ref.to_csv(tmp_path / "validation.csv", index=False)
    r2 = sens.sensitivity(tmp_path / "out", space_path=space_path, patients=5, step=0.1,
                          trust=3.0, reference=tmp_path / "validation.csv")
    assert len(fake.calls) == n + 1                                  # only the ref table above
    pr = pd.read_csv(tmp_path / "out" / "proposal_rows.csv").set_index("line")
    assert pr.loc[lines[0], "baseline"] == 20.0
    assert pr.loc[lines[0], "passes_baseline"] == False  # noqa: E712
    assert r2.summary["proposal"]["steps"]["rho_max.default"] == pytest.approx(3.0)
    with pytest.raises(InvalidInputError, match="--reference"):
        sens.sensitivity(tmp_path / "out", space_path=space_path, patients=5, step=0.1,
                         reference=tmp_path / "space.toml")
    with pytest.raises(InvalidInputError, match="step"):
        sens.sensitivity(tmp_path / "out", space_path=space_path, patients=5, step=0.2)


@pytest.mark.parametrize("kw", [{"step": 0.0}, {"step": 0.9}, {"trust": -1.0},
                                {"patients": 0}, {"workers": 0}])
def test_bad_settings_are_refused_before_anything_runs(tmp_path: Path, kw: dict) -> None:
    with pytest.raises(InvalidInputError):
        sens.sensitivity(tmp_path / "o", space_path=_space(tmp_path), **kw)
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_real_tiny_library_run_moves_rows_with_expansion(tmp_path: Path) -> None:
    # step 0.3 of the normalised range (0.15 until session 45, when one step of rho_max, a
    # factor 1.24, stopped moving any of the study's three rows at 15 patients: the rows are
    # counts of a handful of infected patients)
    res = sens.sensitivity(tmp_path / "out", space_path=_space(tmp_path), patients=15,
                           step=0.3, trust=1.0)
    d = res.dimensions.set_index("dimension")
    assert set(d.index) == {"rho_max.default", "p_il6.iiv_sd"}
    assert res.summary["evaluations"] == 5
    assert math.isfinite(d.loc["rho_max.default", "deviance_calibration_plus"])
    rho = res.rows[res.rows["dimension"] == "rho_max.default"]
    assert len(rho) > 0
    # a faster expansion changes some published figure of the study (same patients)
    assert (rho["simulated_plus"] != rho["simulated_minus"]).any()
    assert d.loc["rho_max.default", "rows_moved"] > 0


def test_fast_deviance_equals_the_objective_on_every_kind_of_row() -> None:
    """The vectorised deviance used by the proposal's search is the calibration objective
    itself: every mapped targets row (rates on their n, KM landmarks and medians on their CI,
    ratios on the log scale) at values moved away from the published ones."""
    import numpy as np

    from cartsim.calibrate.objective import compute_objective
    from cartsim.validate.mapping import default_mapping
    from cartsim.validate.targets import read_targets

    mapping = default_mapping()
    targets = read_targets(None, mapping)
    recs = []
    for r in targets.rows:
        if r.endpoint not in mapping.quantities or r.value is None or r.unit == "count":
            continue                 # (validation turns counts into percentages first)
        recs.append({"line": r.line, "study": r.study, "spec": "s", "endpoint": r.endpoint,
                     "unit": r.unit,
                     "published": float(r.value), "published_ci_low": r.ci_low,
                     "published_ci_high": r.ci_high, "n_simulated": 500,
                     "status": "compared"})
    comp = pd.DataFrame(recs)
    ev = type("E", (), {"targets": targets, "mapping": mapping})()
    rng = np.random.default_rng(3)
    kinds = set()
    for _ in range(3):
        x = comp["published"].to_numpy() * np.exp(0.3 * rng.standard_normal(len(comp)))
        x = np.where(comp["unit"] == "percent", np.clip(x, 0.0, 100.0), x)
        t = comp.assign(simulated=x)
        obj = compute_objective(t, targets, mapping, {"s"})
        kinds |= set(obj.terms.loc[obj.terms["used"], "method"])
        fast = sens.FastDeviance(comp.assign(simulated=comp["published"]), ev, {"s"})
        assert fast(x) == pytest.approx(obj.deviance, rel=1e-12)
        assert obj.used > 100
    assert {"binomial", "normal (published CI)", "normal on log (published CI)"} <= kinds
