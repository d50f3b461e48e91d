"""The daily readouts are buffered by blocks of days and transposed into per-patient arrays
(session 14): a cohort given in any patient order gives the same per-patient trajectories,
across a block boundary, and the events and readouts of a patient do not depend on its row."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cartsim.clinic import load_protocol
from cartsim.population import Cohort
from cartsim.products import get_product
from cartsim.simulation import _RECORD_BLOCK, simulate

DAYS = _RECORD_BLOCK + 8  # day -5 .. DAYS: more than one block, the last one partial


def _run(order: list[int]) -> pd.DataFrame:
    ids = np.array([7, 3, 5, 1])[order]
    blasts = np.array([20.0, 50.0, 80.0, 10.0])[order]
    weight = np.array([30.0, 40.0, 50.0, 60.0])[order]
    cohort = Cohort("b-all", weight_kg=weight, age_y=np.full(4, 10.0),
                    marrow_blasts_pct=blasts, patient_id=ids)
    res = simulate(cohort, get_product("tisagenlecleucel"), days=DAYS, seed=1,
                   protocol=load_protocol("default"))
    return res.trajectories


def test_patient_order_does_not_change_the_trajectories() -> None:
    a = _run([0, 1, 2, 3])  # ids 7, 3, 5, 1: the store gathers rows into id order
    b = _run([3, 1, 2, 0])  # ids 1, 3, 5, 7: already in order
    assert list(a["patient_id"].unique()) == [1, 3, 5, 7]
    assert len(a) == 4 * (DAYS + 6)
    pd.testing.assert_frame_equal(a, b)
    # each patient's own days, in order, with a varying readout across the block boundary
    one = a[a["patient_id"] == 5]
    assert list(one["day"]) == list(range(-5, DAYS + 1))
    assert one["cart_cells_per_ul"].iloc[_RECORD_BLOCK - 2:_RECORD_BLOCK + 2].nunique() > 1
