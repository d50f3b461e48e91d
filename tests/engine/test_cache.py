"""The compiled model solver and the stochastic kernel load from numba's on-disk cache in a
fresh process (no compile wait after the first run on a machine)."""

import subprocess
import sys

import pytest

_PROBE = """
import numpy as np
from cartsim.simulation import _stochastic_day, integrator
from cartsim.model.state import N_STATES
from cartsim.engine.solver import dense_memory
f = integrator()
y = np.zeros((1, N_STATES)); p = np.ones((1, 4096))  # t1 == t0: nothing is evaluated
mem, tmem = dense_memory(1, N_STATES)
f(y, p, 0.0, 0.0, np.zeros(1), np.zeros(1), 1e-5, np.ones(N_STATES), 10,
  np.zeros(1, np.int32), np.zeros(1, np.int64), mem, tmem)
g = _stochastic_day()
g(y, y.copy(), p, np.uint64(0), np.zeros(1, np.int64), 0, np.ones(1, np.int32))
print(sum(f.stats.cache_hits.values()) + sum(g.stats.cache_hits.values()),
      sum(f.stats.cache_misses.values()) + sum(g.stats.cache_misses.values()))
"""


@pytest.mark.slow
def test_second_process_loads_the_solver_from_the_disk_cache() -> None:
    runs = [subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                           check=True).stdout.split() for _ in range(2)]
    hits, misses = map(int, runs[1])
    assert hits >= 2 and misses == 0, runs
