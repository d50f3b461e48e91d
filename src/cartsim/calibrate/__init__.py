"""Calibration of upstream parameter distributions to published trials (``cartsim calibrate``).

* :func:`cartsim.calibrate.space.load_space` — the declarative calibration space (TOML).
* :func:`cartsim.calibrate.objective.compute_objective` — log-likelihood of the published
  figures given a simulated validation table.
* :func:`cartsim.calibrate.run.calibrate` — the fit, the fitted parameter set and the posterior
  predictive check (docs/calibration.md).
"""
