"""Platelet and red-cell transfusions (session 41): the protocol transfuses at the AABB
thresholds, a transfusion raises the count by the simulator's increment, and the trial
records who was transfused (and after day 28)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _obs import as_float, random_obs

from cartsim.clinic.protocol import load_protocol
from cartsim.model.state import S
from cartsim.population import Cohort, build
from cartsim.products import get_product
from cartsim.simulation import SIMULATION_PARAMS, _action_jumps

Q = SIMULATION_PARAMS.defaults()


def _calm(n: int) -> dict[str, np.ndarray]:
    obs = random_obs(np.random.default_rng(4), n)
    obs.update(temperature_c=np.full(n, 37.0), map_mmhg=np.full(n, 90.0),
               spo2_room_air_pct=np.full(n, 98.0), ice_score=np.full(n, 10.0),
               capd_score=np.full(n, np.nan), consciousness=np.zeros(n), seizure=np.zeros(n),
               motor_weakness=np.zeros(n), cerebral_edema=np.zeros(n),
               anc_per_ul=np.full(n, 3000.0), igg_mg_dl=np.full(n, 900.0),
               age_y=np.full(n, 40.0), alive=np.ones(n, dtype=bool))
    obs["il6_pg_ml"] = obs["il6_baseline_pg_ml"].copy()
    return obs


def test_the_default_protocol_transfuses_at_the_aabb_thresholds() -> None:
    obs = _calm(5)
    obs["platelets_per_ul"] = np.array([8000.0, 10000.0, 10001.0, np.nan, 9000.0])
    obs["hemoglobin_g_dl"] = np.array([6.9, 7.0, 12.0, np.nan, 6.0])
    obs["alive"] = np.array([True, True, True, True, False])
    policy = load_protocol("default")
    actions, _ = policy.decide(30, as_float(obs), policy.initial_state(5))
    # at or below 10,000/uL; below 7 g/dL; a missing count or a dead patient: nothing
    assert list(actions["platelet_transfusion"]) == [True, True, False, False, False]
    assert list(actions["rbc_transfusion"]) == [True, False, False, False, False]
    assert actions["platelet_transfusion"].dtype == np.bool_


def test_the_french_protocol_transfuses_red_cells_below_8_g_dl() -> None:
    """Session 44: france_afssaps (the DESCAR-T registry's country thresholds) gives red cells
    at 7.5 g/dL where the default does not; platelets at the same threshold."""
    obs = _calm(4)
    obs["platelets_per_ul"] = np.array([8000.0, 12000.0, 50000.0, 50000.0])
    obs["hemoglobin_g_dl"] = np.array([12.0, 7.5, 7.99, 8.0])
    got = {}
    for name in ("default", "france_afssaps"):
        policy = load_protocol(name)
        got[name], _ = policy.decide(30, as_float(obs), policy.initial_state(4))
    assert list(got["france_afssaps"]["rbc_transfusion"]) == [False, True, True, False]
    assert list(got["default"]["rbc_transfusion"]) == [False, False, False, False]
    for name in got:
        assert list(got[name]["platelet_transfusion"]) == [True, False, False, False]


def test_transfusions_switched_off(tmp_path: Path) -> None:
    f = tmp_path / "no_tx.toml"
    f.write_text('name = "no_tx"\nbase = "default"\n[transfusion]\nenabled = false\n')
    policy = load_protocol(str(f))
    obs = _calm(2)
    obs["platelets_per_ul"] = np.array([2000.0, 2000.0])
    obs["hemoglobin_g_dl"] = np.array([5.0, 5.0])
    actions, _ = policy.decide(10, as_float(obs), policy.initial_state(2))
    assert not actions["platelet_transfusion"].any() and not actions["rbc_transfusion"].any()
    # and a quiet patient with low counts is then quiet
    assert not policy._needs_decision(10, as_float(obs), policy.initial_state(2)).any()


@pytest.mark.parametrize("field,value", [("platelets_at_or_below_per_ul", -1.0),
                                         ("hb_below_g_dl", 16.0)])
def test_a_threshold_out_of_range_is_refused(tmp_path: Path, field: str, value: float) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(f'name = "bad"\nbase = "default"\n[transfusion]\n{field} = {value}\n')
    with pytest.raises(Exception, match=f"transfusion.{field}"):
        load_protocol(str(f))


def test_a_transfusion_raises_the_count_it_treats() -> None:
    cohort = Cohort("b-all", weight_kg=np.array([70.0, 20.0, 70.0]),
                    age_y=np.array([30.0, 6.0, 30.0]),
                    marrow_blasts_pct=np.full(3, 50.0))
    p, y = build(cohort, get_product("tisagenlecleucel"), 1, variability=False)
    y[:, S.PC] = 5000.0
    y[:, S.PTX] = 0.0
    y[:, S.HB] = 6.5
    before = y.copy()
    given = _action_jumps({"platelet_transfusion": np.array([True, True, False]),
                           "rbc_transfusion": np.array([True, True, False])}, y, p)
    assert list(given["platelet_transfusion"][0]) == [1.0, 1.0, 0.0]
    assert given["rbc_transfusion"][1] == "transfusion"
    np.testing.assert_allclose(y[:2, S.PTX], Q["platelet_increment_per_ul"])
    assert np.array_equal(y[:, S.PC], before[:, S.PC])  # the patient's own platelets
    # one 300-mL unit in the 70-kg adult (≈ 1 g/dL); 10 mL/kg in the 20-kg child (≈ 2.2 g/dL)
    np.testing.assert_allclose(y[0, S.HB], 6.5 + 300.0 / (4.5 * 70.0))
    np.testing.assert_allclose(y[1, S.HB], 6.5 + 200.0 / (4.5 * 20.0))
    assert np.array_equal(y[2], before[2])  # the untransfused patient is untouched
    other = [i for i in range(y.shape[1]) if i not in (S.PTX, S.HB)]
    assert np.array_equal(y[:, other], before[:, other])


def test_transfused_platelets_are_counted_and_cleared_outside_the_feedback() -> None:
    """The PTX state adds to the platelet readout, decays with ``plt_tx_lifetime`` and leaves
    the production chain's derivatives exactly as they were."""
    from cartsim.model import marrow, readouts
    from cartsim.model.parameters import P

    cohort = Cohort("lbcl", weight_kg=np.array([70.0]), age_y=np.array([55.0]),
                    tumour_volume_ml=np.array([50.0]))
    p, y = build(cohort, get_product("axicabtagene_ciloleucel"), 1, variability=False)
    p, y = p[0], y[0].copy()
    y[S.PC] = 6000.0
    dy0 = np.zeros_like(y)
    marrow.derivs(y, p, dy0, 0.5, 0.0)
    y[S.PTX] = 30000.0
    dy1 = np.zeros_like(y)
    marrow.derivs(y, p, dy1, 0.5, 0.0)
    chain = [S.PP, S.PT1, S.PT2, S.PT3, S.PC]
    assert np.array_equal(dy0[chain], dy1[chain])
    assert dy1[S.PTX] == pytest.approx(-30000.0 / p[P.plt_tx_lifetime])
    r = readouts.compute(y[None, :], p[None, :])
    assert r["platelets_per_ul"][0] == pytest.approx(36000.0)
