"""The clinic's protocol inside the simulator's daily loop (issue 3 §2).

The virtual clinician observes each patient's physiology every day, grades CRS/ICANS from the
support the patient needs, treats by the protocol, and every dose lands in the events table
and acts on the body (tocilizumab blocks IL-6 signalling, steroids damp production).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cartsim.clinic import OXYGEN_DEVICES, load_protocol
from cartsim.population import Cohort
from cartsim.products import get_product
from cartsim.simulation import SimulationResult, simulate

N = 60
DAYS = 40


def _cohort() -> Cohort:
    rng = np.random.default_rng(4)
    return Cohort("b-all", weight_kg=rng.uniform(12, 80, N), age_y=rng.uniform(3, 25, N),
                  marrow_blasts_pct=rng.uniform(30, 95, N))


@pytest.fixture(scope="module")
def runs() -> dict[str, SimulationResult]:
    prod = get_product("tisagenlecleucel")
    return {
        "none": simulate(_cohort(), prod, days=DAYS, seed=9),
        "default": simulate(_cohort(), prod, days=DAYS, seed=9,
                            protocol=load_protocol("default")),
        "prophylactic": simulate(_cohort(), prod, days=DAYS, seed=9,
                                 protocol=load_protocol("prophylactic_tocilizumab")),
    }


def _events(r: SimulationResult, name: str) -> pd.DataFrame:
    return r.events[r.events["event"] == name]


def test_every_dose_is_an_event_with_label_amounts(runs: dict[str, SimulationResult]) -> None:
    r = runs["default"]
    toci = _events(r, "tocilizumab")
    assert len(toci) > 0, "some patients should need tocilizumab"
    w = _cohort().weight_kg[toci["patient_id"].to_numpy()]
    expected = np.minimum(np.where(w < 30, 12.0, 8.0) * w, 800.0)
    np.testing.assert_allclose(toci["value"].to_numpy(), expected)
    assert (toci.groupby("patient_id").size() <= 4).all()
    assert (toci["unit"] == "mg").all()
    # no protocol: no treatment events at all
    assert not runs["none"].events["event"].isin(["tocilizumab", "dexamethasone"]).any()


def test_tocilizumab_follows_crs_grade_2(runs: dict[str, SimulationResult]) -> None:
    r = runs["default"]
    crs = _events(r, "crs_grade")
    first_g2 = crs[crs["value"] >= 2].groupby("patient_id")["day"].min()
    first_toci = _events(r, "tocilizumab").groupby("patient_id")["day"].min()
    assert len(first_toci) > 0, "no tocilizumab given: the test would be void"
    for pid, day in first_toci.items():
        assert pid in first_g2.index and first_g2[pid] <= day


def test_grades_follow_the_support_needed(runs: dict[str, SimulationResult]) -> None:
    r = runs["default"]
    ev = r.events.pivot_table(index=["patient_id", "day"], columns="event", values="value",
                              aggfunc="max").fillna(0.0)
    g = ev.get("crs_grade", pd.Series(0.0, index=ev.index))
    vaso = ev.get("vasopressors", pd.Series(0.0, index=ev.index))
    o2 = ev.get("oxygen_device", pd.Series(0.0, index=ev.index))
    in_crs = g >= 1  # fever (or an episode masked by anti-cytokine treatment)
    assert (g[in_crs & (vaso >= 2)] == 4).all()
    assert (g[in_crs & (vaso == 1)] >= 3).all()
    needs_o2 = o2 > OXYGEN_DEVICES.index("none")
    assert (g[in_crs & needs_o2] >= 2).all()
    assert (in_crs & ((vaso >= 1) | needs_o2)).any(), "no patient needed support: test is void"


def test_prophylactic_protocol_doses_everyone_on_day_0(
    runs: dict[str, SimulationResult],
) -> None:
    toci = _events(runs["prophylactic"], "tocilizumab")
    day0 = toci[toci["day"] == 0]
    assert set(day0["patient_id"]) == set(range(N))


def test_treatment_damps_the_inflammatory_course(runs: dict[str, SimulationResult]) -> None:
    """Same patients, same seed: treated patients spend fewer days hypotensive or febrile."""

    def burden(r: SimulationResult) -> pd.Series:
        t = r.trajectories[r.trajectories["day"] >= 0]
        return ((t["temperature_c"] >= 38.0) | (t["map_mmhg"] < 65.0)).groupby(
            t["patient_id"]).sum()

    none = burden(runs["none"])
    treated_ids = _events(runs["default"], "tocilizumab")["patient_id"].unique()
    default = burden(runs["default"])
    assert default[treated_ids].sum() < none[treated_ids].sum()
    proph = burden(runs["prophylactic"])
    assert proph.sum() < none.sum()


class _Poison:
    """A procedure that corrupts one patient's state on day 3 (a stand-in for a runaway)."""

    def apply(self, day, y, p, status):  # type: ignore[no-untyped-def]
        from cartsim.model.state import S

        if day == 3:
            y[1, S.IL6] = np.inf
        return {}


def test_a_runaway_patient_stops_with_its_own_status_and_the_cohort_goes_on() -> None:
    from cartsim.simulation import STATUS_IMPLAUSIBLE

    co = Cohort("b-all", weight_kg=[30.0, 30.0, 30.0], age_y=[10.0] * 3,
                marrow_blasts_pct=[60.0] * 3)
    r = simulate(co, get_product("tisagenlecleucel"), days=10, seed=1,
                 protocol=load_protocol("default"), procedures=[_Poison()])
    assert list(r.status) == [0, STATUS_IMPLAUSIBLE, 0]
    ev = r.events[r.events["event"] == "implausible_state"]
    assert list(ev["patient_id"]) == [1] and list(ev["day"]) == [3]
    t = r.trajectories
    assert t[(t["patient_id"] == 1) & (t["day"] > 3)]["cart_cells_per_ul"].isna().all()
    assert t[(t["patient_id"] != 1)]["cart_cells_per_ul"].notna().all()
    fail = r.failures()  # the public result says who stopped, why and what to change
    assert list(fail["patient_id"]) == [1] and list(fail["label"]) == ["implausible"]
    assert "Check" in fail["message"].iloc[0]
    frame = r.to_frame()
    assert set(frame.loc[frame["patient_id"] == 1, "status"]) == {STATUS_IMPLAUSIBLE}


def test_implausibility_check_reads_every_range_and_missing_only_outside_vital_signs() -> None:
    """The stacked check (session 36) flags what the per-key loop flagged: ±inf and values
    outside a key's range anywhere, NaN only in the vital signs; ``alive`` is not checked."""
    from cartsim.clinic.protocol import OBS_SPEC
    from cartsim.simulation import _VITAL_OBS, _implausible

    keys = [k for k in OBS_SPEC if k != "alive"]
    n = 4 * len(keys) + 1
    obs = {k: np.full(n, 0.5 * (lo + hi)) for k, (lo, hi) in OBS_SPEC.items()}
    obs["alive"] = np.zeros(n)  # never read
    want = np.zeros(n, dtype=bool)
    for i, k in enumerate(keys):
        lo, hi = OBS_SPEC[k]
        obs[k][4 * i] = lo - 1e-9 * max(1.0, abs(lo))
        obs[k][4 * i + 1] = -np.inf if i % 2 else np.inf
        obs[k][4 * i + 2] = np.nan
        obs[k][4 * i + 3] = hi  # the bounds are allowed
        want[[4 * i, 4 * i + 1]] = True
        want[4 * i + 2] = k in _VITAL_OBS
    assert np.array_equal(_implausible(obs), want)
    assert not _implausible({k: v for k, v in obs.items() if k == "age_y"})[-1]
