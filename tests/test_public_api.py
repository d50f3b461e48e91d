"""The public API is pinned: these names, these signatures, a light ``import cartsim``."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cartsim

ROOT = Path(__file__).resolve().parents[1]

PUBLIC = [
    "CartsimError", "Cohort", "Construct", "Dose", "DoseRule", "InvalidInputError", "PRESETS",
    "ParameterSpec", "ParameterTable", "Policy", "Product", "SimulationResult", "SpecError",
    "Status", "Trial", "TrialResult", "TrialSpec", "UnknownNameError", "__version__",
    "get_product", "load_protocol", "load_spec", "shipped_protocols", "simulate",
]


def test_public_names_are_pinned() -> None:
    assert cartsim.__all__ == PUBLIC  # changing the public API must change this test
    for name in PUBLIC:
        assert getattr(cartsim, name) is not None, name
    assert set(PUBLIC) <= set(dir(cartsim))
    with pytest.raises(AttributeError, match="no attribute 'simulat'"):
        cartsim.simulat  # noqa: B018


def test_public_signatures_are_pinned() -> None:
    def params(f: object) -> list[str]:
        return list(inspect.signature(f).parameters)  # type: ignore[arg-type]

    assert params(cartsim.simulate) == [
        "cohort", "product", "days", "seed", "protocol", "variability", "overrides", "rtol",
        "progress", "procedures", "lymphodepletion", "drugs"]
    assert params(cartsim.Trial.run) == [
        "self", "out", "chunk_size", "workers", "executor", "resume", "report", "progress"]
    assert params(cartsim.TrialResult.km) == ["self", "endpoint", "arm", "conf_type"]
    assert params(cartsim.TrialResult.report) == ["self", "path"]
    for method in ("to_frame", "plot", "array", "failures", "patient", "write"):
        assert callable(getattr(cartsim.SimulationResult, method)), method
    assert cartsim.Trial.from_toml.__self__ is cartsim.Trial  # a classmethod


def test_import_cartsim_is_light() -> None:
    code = ("import sys, cartsim; heavy = [m for m in ('numba', 'pandas', 'matplotlib', "
            "'scipy', 'pyarrow', 'pydantic') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_simulate_returns_a_result_with_status_arrays_frame_and_plot(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    cohort = cartsim.Cohort("b-all", weight_kg=[30.0, 70.0], age_y=[9.0, 35.0],
                            marrow_blasts_pct=[60.0, 20.0], patient_id=[7, 3])
    res = cartsim.simulate(cohort, cartsim.get_product("tisagenlecleucel"), days=12, seed=2,
                           protocol=cartsim.load_protocol("default"))
    assert isinstance(res, cartsim.SimulationResult)
    assert list(res.status) == [cartsim.Status.OK] * 2 and res.failures().empty
    assert list(res.patient_ids) == [3, 7] and res.days[0] == -5 and res.days[-1] == 12
    cart = res.array("cart_cells_per_ul")
    assert cart.shape == (2, 18) and np.nanmax(cart[:, -1]) > 0
    frame = res.to_frame()
    assert (frame["status"] == 0).all() and len(frame) == 36
    fig = res.plot(tmp_path / "t.png")
    assert isinstance(fig, Figure) and (tmp_path / "t.png").stat().st_size > 10_000
    with pytest.raises(cartsim.InvalidInputError, match="readout"):
        res.array("no_such_readout")
    # the (patients x days) arrays endpoints read and the long table agree value for value
    from cartsim.trial.endpoints import Course

    a, b = Course.from_result(res), Course.from_trajectories(res.trajectories)
    assert list(a.x) == list(b.x) == res.readouts
    assert np.array_equal(a.patient_id, b.patient_id) and np.array_equal(a.days, b.days)
    for k in a.x:
        assert np.array_equal(a.x[k], b.x[k], equal_nan=True), k
        assert np.array_equal(res.array(k), b.x[k], equal_nan=True), k
    assert list(res.trajectories["patient_id"][:2]) == [3, 3]


def test_trial_api_runs_summarises_fits_km_and_reports(tmp_path: Path) -> None:
    trial = cartsim.Trial.from_toml(ROOT / "examples" / "eliana.toml").with_overrides(size=3)
    assert isinstance(trial.spec, cartsim.TrialSpec) and trial.spec.population.size == 3
    result = trial.run()  # into a temporary directory
    assert isinstance(result, cartsim.TrialResult) and len(result.patients) == 3
    rates = result.summary["rates"]
    assert "responder" in set(rates["endpoint"])
    assert result.summary["stopped_patients"] == 0
    km = result.km("os")
    assert km.summary()["n"] == 3
    with pytest.raises(cartsim.InvalidInputError, match="endpoint"):
        result.km("survival")
    page = result.report(tmp_path / "eliana.html")
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    again = cartsim.TrialResult.load(result.out)
    assert again.patients.equals(result.patients)
