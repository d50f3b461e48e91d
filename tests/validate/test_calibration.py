"""The 'calibrated or not' line of report headers."""

from __future__ import annotations

from cartsim.params import ParameterSpec
from cartsim.validate.calibration import calibrated_parameters, parameter_set_status


def _spec(name: str, provenance: str) -> ParameterSpec:
    return ParameterSpec(name, "1/d", 1.0, 0.0, 10.0, provenance, "test parameter")


def test_shipped_parameters_are_not_calibrated_to_trials() -> None:
    assert calibrated_parameters() == []
    assert parameter_set_status().startswith("not calibrated to clinical trial outcomes")


def test_a_calibrated_parameter_is_named_with_its_provenance() -> None:
    specs = [_spec("a", "calibrated to Stein 2019 (net expansion)"),  # single source: not it
             _spec("b", "calibrated to clinical_targets.csv, 2026-12-01, objective 812.4")]
    assert [s.name for s in calibrated_parameters(specs)] == ["b"]
    line = parameter_set_status(specs)
    assert line.startswith("1 of 2 model parameters calibrated")
    assert "clinical_targets.csv, 2026-12-01, objective 812.4" in line
