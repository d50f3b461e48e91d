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


def _load(path):  # type: ignore[no-untyped-def]
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem + "_probe", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.f


def test_generated_module_digest_ignores_unrelated_siblings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A generated right-hand side lives in a directory shared by every composed model: a
    new sibling (another model) must not change its cache key, while an edit to a sibling
    module of a package still does (kernels inline their package's helpers)."""
    from cartsim.engine.solver import model_digest

    loose = tmp_path / "generated"
    loose.mkdir()
    (loose / "gen_a.py").write_text("def f(x):\n    return x\n")
    d0 = model_digest(_load(loose / "gen_a.py"))
    (loose / "gen_b.py").write_text("def f(x):\n    return 2 * x\n")
    assert model_digest(_load(loose / "gen_a.py")) == d0
    (loose / "gen_a.py").write_text("def f(x):\n    return x + 1\n")
    assert model_digest(_load(loose / "gen_a.py")) != d0

    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text("def f(x):\n    return x\n")
    (pkg / "helper.py").write_text("K = 1\n")
    d1 = model_digest(_load(pkg / "mod.py"))
    (pkg / "helper.py").write_text("K = 2\n")
    assert model_digest(_load(pkg / "mod.py")) != d1
