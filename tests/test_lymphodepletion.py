"""Lymphodepletion courses as data (session 45): a fludarabine/cyclophosphamide course in a
spec becomes the simulator's exposure relative to the reference course (Flu 30 + Cy 500 mg/m²
daily × 3), and the exposure acts on the patient through the model's lymphodepletion state."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cartsim.errors import InvalidInputError
from cartsim.lymphodepletion import LYMPHODEPLETION_PARAMS, lymphodepletion_exposure
from cartsim.population import Cohort
from cartsim.products import get_product
from cartsim.simulation import simulate
from cartsim.trial.spec import LymphodepletionRegimen, SpecError, ld_exposure, validate_spec

TISA = get_product("tisagenlecleucel")
AXI = get_product("axicabtagene_ciloleucel")


def _course(flu: float, fd: int, cy: float, cd: int) -> dict[str, float | int]:
    return {"fludarabine_mg_m2": flu, "fludarabine_days": fd,
            "cyclophosphamide_mg_m2": cy, "cyclophosphamide_days": cd}


def _spec(ld: object) -> dict[str, object]:
    return {
        "name": "ld", "seed": 1, "follow_up_days": 100,
        "population": {"disease": "lbcl", "size": 4},
        "arms": [{"name": "a", "product": "axicabtagene_ciloleucel", "lymphodepletion": ld}],
    }


def test_exposure_of_published_courses() -> None:
    q = LYMPHODEPLETION_PARAMS.defaults()
    assert q["ld_ref_fludarabine_mg_m2"] == 90 and q["ld_ref_cyclophosphamide_mg_m2"] == 1500
    assert lymphodepletion_exposure(90, 1500) == 1.0          # ZUMA-1 / axi-cel label
    assert lymphodepletion_exposure(120, 1000) == 1.0         # ELIANA: Flu 30 x4 + Cy 500 x2
    assert lymphodepletion_exposure(75, 750) == pytest.approx(2 / 3)   # JULIET
    assert lymphodepletion_exposure(90, 900) == pytest.approx(0.8)     # TRANSCEND
    assert lymphodepletion_exposure(75, 900) == pytest.approx(0.716666666667)  # NCI, ZUMA-4
    assert lymphodepletion_exposure(90, 0) == pytest.approx(0.5)       # fludarabine alone
    # more of either drug, more exposure
    assert lymphodepletion_exposure(80, 1000) < lymphodepletion_exposure(90, 1000) \
        < lymphodepletion_exposure(90, 1500)
    with pytest.raises(InvalidInputError, match="fludarabine_mg_m2"):
        lymphodepletion_exposure(-1, 1500)
    with pytest.raises(InvalidInputError, match="cyclophosphamide_mg_m2"):
        lymphodepletion_exposure(90, float("nan"))


def test_spec_course_gives_its_exposure_and_bool_stays_bool() -> None:
    spec = validate_spec(_spec(_course(25, 3, 250, 3)))
    ld = spec.arms[0].lymphodepletion
    assert isinstance(ld, LymphodepletionRegimen)
    assert ld_exposure(ld) == pytest.approx(2 / 3)
    assert ld_exposure(validate_spec(_spec(True)).arms[0].lymphodepletion) == 1.0
    assert ld_exposure(validate_spec(_spec(False)).arms[0].lymphodepletion) == 0.0


@pytest.mark.parametrize(("value", "words"), [
    ("no", "must be true, false or a course table"),
    (1, "must be true, false or a course table"),
    ({"fludarabine_mg_m2": 25}, "needs a dose and days"),
    (_course(80, 3, 0, 0), "fludarabine_mg_m2: must be in [0, 60]"),
    (_course(30, 3, 500, 9), "cyclophosphamide_days: must be in [0, 5]"),
    (_course(0, 0, 3000, 5), "above 3"),
    ({"fludarabine": 30}, "fludarabine: unknown field"),
])
def test_bad_course_is_one_clear_error_naming_the_field(value: object, words: str) -> None:
    with pytest.raises(SpecError) as ei:
        validate_spec(_spec(value))
    issues = ei.value.issues
    assert len(issues) == 1, issues
    assert issues[0].startswith("arms[0].lymphodepletion:"), issues
    assert words in issues[0], issues


def _one_lbcl() -> Cohort:
    return Cohort("lbcl", weight_kg=[80.0], age_y=[60.0], tumour_volume_ml=[60.0])


def test_reference_course_is_the_old_switch_exactly() -> None:
    co = _one_lbcl()
    on = simulate(co, AXI, days=40, seed=3, variability=False)
    ref = simulate(co, AXI, days=40, seed=3, variability=False,
                   lymphodepletion=lymphodepletion_exposure(90, 1500))
    pd.testing.assert_frame_equal(on.trajectories, ref.trajectories)
    off = simulate(co, AXI, days=40, seed=3, variability=False, lymphodepletion=False)
    zero = simulate(co, AXI, days=40, seed=3, variability=False, lymphodepletion=0.0)
    pd.testing.assert_frame_equal(off.trajectories, zero.trajectories)
    assert "lymphodepletion" not in set(zero.events["event"])


def test_lighter_course_depletes_less_and_expands_less() -> None:
    """The host T-cell nadir rises and the CAR-T peak falls as the course's exposure falls
    (the emptied niche drives expansion: Kimmel 2021; Turtle 2016)."""
    co = _one_lbcl()
    nadir, peak = [], []
    for x in (0.5, 2 / 3, 1.0):
        r = simulate(co, AXI, days=30, seed=3, variability=False, lymphodepletion=x)
        ev = r.events[r.events["event"] == "lymphodepletion"]
        assert np.allclose(ev["value"], x) and len(ev) == 3
        t = r.trajectories
        nadir.append(float(t.loc[t["day"].between(-3, 3), "t_cells_per_ul"].min()))
        peak.append(float(t["cart_cells_per_ul"].max()))
    assert nadir[0] > nadir[1] > nadir[2]
    assert peak[0] < peak[1] < peak[2]


@pytest.mark.parametrize("bad", [5.0, -0.1, float("inf"), "heavy"])
def test_simulate_rejects_an_exposure_outside_its_range(bad: object) -> None:
    with pytest.raises(InvalidInputError, match="lymphodepletion"):
        simulate(_one_lbcl(), AXI, days=5, seed=1, variability=False,
                 lymphodepletion=bad)  # type: ignore[arg-type]


def _log_nadir(x: float, overrides: dict[str, float] | None = None) -> float:
    r = simulate(_one_lbcl(), AXI, days=3, seed=3, variability=False, lymphodepletion=x,
                 overrides=overrides)
    t = r.trajectories
    return float(np.log(t.loc[t["day"].between(-3, 3), "t_cells_per_ul"].min()))


def test_saturating_host_t_cell_kill_flattens_the_course_effect() -> None:
    """With the saturating kill (the default since session 45: ld_N_sat 1, ld_N_gain set so
    the reference course depletes about as before) a lighter course loses less depth of host
    T-cell depletion than with the linear kill (ld_N_sat 0, ld_N_gain 1)."""
    linear = {"ld_N_sat": 0.0, "ld_N_gain": 1.0}
    lin_gap = _log_nadir(0.72, linear) - _log_nadir(1.0, linear)
    sat_gap = _log_nadir(0.72) - _log_nadir(1.0)
    assert 0 < sat_gap < 0.8 * lin_gap
    stronger = {"ld_N_sat": 3.333, "ld_N_gain": 3.39}
    assert 0 < _log_nadir(0.72, stronger) - _log_nadir(1.0, stronger) < sat_gap
    # the reference course's depth is kept within a fifth of a log
    assert abs(_log_nadir(1.0) - _log_nadir(1.0, linear)) < 0.2 * np.log(10)
