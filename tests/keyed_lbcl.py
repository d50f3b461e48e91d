"""Shared pieces of the tests of per-patient keyed LBCL draws (the nodal access of
tests/test_nodal_access.py, the growth spread of tests/test_lbcl_growth_spread.py): a uniform
LBCL cohort, a cohort built whole and in chunks, and the tumour of the patients at the two ends
of a keyed draw with and without the draw's effect."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cartsim.model.parameters import N_PARAMS_BASE
from cartsim.population import Cohort, build, standard_normals
from cartsim.simulation import simulate


def lbcl_cohort(n: int, ids: np.ndarray | None = None, volume_ml: float = 50.0) -> Cohort:
    """``n`` identical 75-kg, 60-year-old LBCL patients with ``volume_ml`` of disease."""
    return Cohort("lbcl", weight_kg=np.full(n, 75.0), age_y=np.full(n, 60.0),
                  tumour_volume_ml=np.full(n, volume_ml), patient_id=ids)


def whole_and_chunked(product: Any, seed: int, cuts: tuple[int, int], n: int = 40,
                      overrides: dict[str, float] | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The base parameter columns of ``n`` patients built at once, and built in three chunks
    split at ``cuts``."""
    whole, _ = build(lbcl_cohort(n), product, seed=seed, overrides=overrides)
    ids = np.arange(n, dtype=np.int64)
    a, b = cuts
    parts = [build(lbcl_cohort(len(c), ids=c), product, seed=seed, overrides=overrides)[0]
             for c in (ids[:a], ids[a:b], ids[b:])]
    return np.vstack(parts)[:, :N_PARAMS_BASE], whole[:, :N_PARAMS_BASE]


def tumour_at_the_draws_ends(stream: str, product: Any, day: int,
                             runs: dict[str, dict[str, float]]
                             ) -> tuple[int, int, dict[str, pd.Series]]:
    """(lowest, highest patient of the keyed ``stream`` among the first 300, and per named
    override set in ``runs`` the two patients' tumour cells on ``day``), simulated with seed 1:
    each patient against itself."""
    z = standard_normals(1, np.arange(300, dtype=np.int64), stream)
    lo, hi = int(np.argmin(z)), int(np.argmax(z))
    cohort = lbcl_cohort(2, ids=np.array([lo, hi]))
    out = {}
    for k, q in runs.items():
        t = simulate(cohort, product, days=day, seed=1, overrides=q).trajectories
        out[k] = t[t["day"] == day].set_index("patient_id")["tumour_cells"]
    return lo, hi, out
