"""The small-clone birth–death draw follows the exact law of a linear birth–death process."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cartsim.model.stochastic import birth_death


@pytest.mark.parametrize(("n0", "b", "d"), [(20, 1.2, 1.5), (5, 0.8, 0.3), (300, 0.5, 2.5)])
def test_birth_death_matches_mean_variance_and_extinction(n0: int, b: float, d: float) -> None:
    draws = np.array([birth_death(n0, b, d, np.uint64(11), np.uint64(i), 111, 7)
                      for i in range(20_000)])
    er = math.exp(b - d)
    mean = n0 * er
    var = n0 * (b + d) / (b - d) * er * (er - 1.0)
    p0 = d * (er - 1.0) / (b * er - d)
    se = math.sqrt(var / draws.size)
    assert abs(draws.mean() - mean) < 4 * se
    assert abs(draws.var() / var - 1.0) < 0.06
    ext = p0**n0
    assert abs((draws == 0).mean() - ext) < 4 * math.sqrt(ext * (1 - ext) / draws.size) + 1e-4
    assert (draws >= 0).all() and (draws == np.floor(draws)).all()


def test_birth_death_is_a_pure_function_of_its_key() -> None:
    a = [birth_death(50, 1.0, 1.1, np.uint64(3), np.uint64(9), 111, d) for d in range(5)]
    b = [birth_death(50, 1.0, 1.1, np.uint64(3), np.uint64(9), 111, d) for d in range(5)]
    c = [birth_death(50, 1.0, 1.1, np.uint64(4), np.uint64(9), 111, d) for d in range(5)]
    assert a == b and a != c
