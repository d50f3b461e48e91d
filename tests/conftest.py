"""Session-wide test settings."""

import os

# The tests pin the model's own parameter values: an installed calibrated parameter set
# (cartsim/data/parameter_sets/index.toml, docs/calibration.md) would otherwise change every
# simulated number the tests compare. Tests of parameter-set selection set it themselves.
os.environ["CARTSIM_PARAMETER_SET"] = "none"
