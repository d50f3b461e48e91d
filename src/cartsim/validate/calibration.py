"""Calibration status of the parameter set, for validation reports (:mod:`cartsim.provenance`)."""

from cartsim.provenance import TARGETS_MARKERS, calibrated_parameters, parameter_set_status

__all__ = ["TARGETS_MARKERS", "calibrated_parameters", "parameter_set_status"]
