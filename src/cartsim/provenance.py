"""Whether the model's parameter set is calibrated to clinical trial outcomes, and to what.

Read from the provenance of the parameters in force (the model's, with the parameter set in
force applied: :mod:`cartsim.parameter_sets`); the trial runner records the answer in its
manifest, so the report states it without importing the model or the validation layer.

``cartsim calibrate`` (issue 10, part 4) marks every fitted parameter's provenance with
"calibrated to <targets file>, <date>, objective <value>"; a parameter counts as calibrated to
clinical outcomes when its provenance names a targets file (:data:`TARGETS_MARKERS`). Single-
source fits ("calibrated to Stein 2019 ...") are not calibration to trial outcomes.
"""

from __future__ import annotations

from collections.abc import Iterable

from cartsim.params import ParameterSpec

#: Provenance text naming a clinical targets file.
TARGETS_MARKERS = ("clinical_targets",)


def _specs_in_force() -> list[ParameterSpec]:
    from cartsim.parameter_sets import effective_specs, known_specs

    return effective_specs(known_specs().values())


def calibrated_parameters(specs: Iterable[ParameterSpec] | None = None) -> list[ParameterSpec]:
    """The parameters whose provenance says they were fitted to a clinical targets file."""
    if specs is None:
        specs = _specs_in_force()
    return [s for s in specs
            if "calibrated" in s.provenance.lower()
            and any(m in s.provenance.lower() for m in TARGETS_MARKERS)]


def parameter_set_status(specs: Iterable[ParameterSpec] | None = None) -> str:
    """One line for report headers: calibrated or not, and to what."""
    if specs is None:
        specs = _specs_in_force()
    specs = list(specs)
    cal = calibrated_parameters(specs)
    if not cal:
        return (f"not calibrated to clinical trial outcomes (the {len(specs)} model parameters "
                "are cited, assumed or fitted to single sources; `cartsim validate` measures "
                "the distance to published trials)")
    # a parameter set's provenance ends with " (was: <the model's provenance>)": named once
    sources = sorted({s.provenance.split(" (was: ")[0] for s in cal})
    from cartsim.parameter_sets import active

    ps = active()
    named = f" (parameter set {ps.name!r})" if ps is not None else ""
    return (f"{len(cal)} of {len(specs)} model parameters calibrated to clinical trial "
            f"outcomes{named}: {'; '.join(sources[:3])}{' …' if len(sources) > 3 else ''}")
