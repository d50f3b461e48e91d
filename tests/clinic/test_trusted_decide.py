"""The simulator's unchecked clinic path gives what the checked one gives (session 19).

``Policy.decide_trusted`` skips the input checks of ``decide`` and of the graders it calls
(``cartsim.clinic._arrays.trusted_inputs``); on valid input its actions and state must be the
checked path's, value for value and dtype for dtype, under every shipped protocol, including
days on which nobody has CRS (where the Lee 2014 grade and the tocilizumab loop are skipped).
"""

from __future__ import annotations

import numpy as np
import pytest
from _obs import assert_same_decision, random_obs, start

from cartsim._fastnp import nan_to_num
from cartsim.clinic._arrays import as_bool, as_code, as_float, trusted_inputs
from cartsim.clinic.protocol import PROTOCOL_DIR
from cartsim.errors import InvalidInputError

PROTOCOLS = sorted(p.stem for p in PROTOCOL_DIR.glob("*.toml"))


def _quiet(obs: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The same patients afebrile, normotensive and saturating (a day without CRS)."""
    out = dict(obs)
    n = obs["age_y"].size
    out["temperature_c"] = rng.uniform(36.2, 37.5, n)
    out["map_mmhg"] = rng.uniform(80, 100, n)
    out["spo2_room_air_pct"] = rng.uniform(96, 100, n)
    return out


@pytest.mark.parametrize("name", PROTOCOLS)
def test_trusted_decide_equals_checked_decide(name: str) -> None:
    n = 400
    rng, policy, s_checked = start(name, 19, n)
    s_trusted = policy.initial_state(n)
    quiet_days = 0
    for day in range(25):
        obs = random_obs(rng, n)
        if day % 3 == 2:  # every third day nobody has CRS
            obs = _quiet(obs, rng)
            quiet_days += 1
        a1, s_checked = policy.decide(day, obs, s_checked)
        a2, s_trusted = policy.decide_trusted(day, obs, s_trusted)
        assert_same_decision(a1, s_checked, a2, s_trusted, f"{name} day {day}")
    assert quiet_days > 0 and s_checked.toci_count.sum() > 0


def test_trusted_inputs_only_convert_and_checks_return_outside() -> None:
    values = np.array([0.0, 1.0, 1.0])
    with trusted_inputs():
        assert as_float("x", [1.0, -5.0], 0.0, 10.0).tolist() == [1.0, -5.0]  # not checked
        assert as_bool("b", values).tolist() == [False, True, True]
        assert as_code("c", values, range(3), ["a", "b", "c"]).dtype == np.int64
        with trusted_inputs():  # nested blocks
            pass
        as_float("x", [-5.0], 0.0, 10.0)
    with pytest.raises(InvalidInputError, match="x"):
        as_float("x", [-5.0], 0.0, 10.0)


def test_trusted_inputs_do_not_reach_other_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    def check() -> str:
        try:
            as_float("x", [-5.0], 0.0, 10.0)
        except InvalidInputError:
            return "checked"
        return "unchecked"

    with trusted_inputs(), ThreadPoolExecutor(1) as pool:
        assert pool.submit(check).result() == "checked"
        assert check() == "unchecked"


@pytest.mark.parametrize("x", [
    np.array([1.0, np.nan, np.inf, -np.inf]), np.array([0.5, 2.0]), np.array([3, 4]),
    np.array([True, False]), np.full((2, 3), np.nan),
])
@pytest.mark.parametrize("nan", [0.0, 70.0])
def test_fast_nan_to_num_is_numpys(x: np.ndarray, nan: float) -> None:
    got, want = nan_to_num(x, nan=nan), np.nan_to_num(x, nan=nan)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    assert got is not x
