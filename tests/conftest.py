"""Session-wide test settings."""

import os

# The tests pin the model's own parameter values: an installed calibrated parameter set
# (cartsim/data/parameter_sets/index.toml, docs/calibration.md) would otherwise change every
# simulated number the tests compare. Tests of parameter-set selection set it themselves.
os.environ["CARTSIM_PARAMETER_SET"] = "none"

# The default suite runs the solver with the finite-difference Jacobian: the analytic one (the
# default for users, docs/model.md) is ~4,400 generated lines whose numba compile costs minutes
# per process on a cold cache (every xdist worker and every spawned trial worker), which the
# 5-minute CI budget cannot carry. tests/test_analytic_jacobian.py checks the analytic Jacobian
# against finite differences (its generated code run as Python) and, marked slow, compiled.
os.environ.setdefault("CARTSIM_JACOBIAN", "fd")
