"""G-CSF as a held daily course (session 14): the state is the course (1 while one dose a day
is given), its exposure is the course's mean amount in the body (t½/ln 2 doses), and a day that
continues the course leaves the state unchanged, so the solver need not restart."""

from __future__ import annotations

import math

import numpy as np

from cartsim.model import layout
from cartsim.model.parameters import P
from cartsim.model.state import S
from cartsim.population import Cohort, build
from cartsim.products import get_product
from cartsim.simulation import _action_jumps

CORE = layout.CORE


def _one_patient() -> tuple[np.ndarray, np.ndarray]:
    cohort = Cohort("b-all", weight_kg=np.full(2, 30.0), age_y=np.full(2, 10.0),
                    marrow_blasts_pct=np.full(2, 50.0))
    p, y = build(cohort, get_product("tisagenlecleucel"), 1, variability=False)
    return p, y


def test_a_continued_course_leaves_the_state_as_it_was() -> None:
    p, y = _one_patient()
    for _ in range(3):  # three days on the course for patient 0, none for patient 1
        before = y.copy()
        given = _action_jumps({"gcsf": np.array([True, False])}, y, p)
        assert list(given["gcsf"][0]) == [1.0, 0.0]
    assert y[0, S.GCSF] == 1.0 and y[1, S.GCSF] == 0.0  # held, not accumulated
    assert np.array_equal(before, y)  # the third day changed nothing
    _action_jumps({"gcsf": np.array([False, False])}, y, p)
    assert y[0, S.GCSF] == 0.0  # the course ends with the day it is not given


def test_the_course_boosts_neutrophil_production_and_does_not_decay() -> None:
    p, y = _one_patient()
    y[:, S.GCSF] = [1.0, 0.0]
    dy = np.zeros_like(y[0])
    rates = []
    for i in range(2):
        CORE.rhs(0.0, y[i], p[i], dy)
        rates.append(dy[S.NP])
        assert dy[S.GCSF] == 0.0
    # same patient, same state: only the G-CSF boost differs, and it raises proliferation
    # by 1 + E·G/(G + K) with G = t½/ln 2 doses
    g = p[0, P.gcsf_half_life] / math.log(2.0)
    boost = 1.0 + p[0, P.gcsf_emax] * g / (g + p[0, P.K_gcsf])
    assert boost > 1.2
    assert rates[0] > rates[1]
