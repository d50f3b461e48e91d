"""Published SBML models run as cohorts (``cartsim sbml-cohort``).

The curated BioModels entries of published CAR-T models ship in ``cartsim/data/sbml`` (CC0;
README there lists each model, its publication and known defects). :func:`run_cohort` loads
one (a shipped entry by name, or any SBML file), gives every virtual patient log-normal
inter-individual variability on the model's positive constant global parameters (a draw
keyed by seed, patient id and parameter name, as cartsim's own population builder does, so a
patient's parameters do not depend on cohort size) and simulates each patient with
libRoadRunner. Time is in the model's own unit (the Hanson 2016 model counts hours).

libRoadRunner simulates one parameter set at a time, so patients run one after another: this
path is for cross-checking published models, not for large trials.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from cartsim.errors import InvalidInputError
from cartsim.population import standard_normals


def shipped_models() -> dict[str, Path]:
    """Shipped SBML files by BioModels id."""
    root = Path(str(resources.files("cartsim") / "data" / "sbml"))
    return {f.stem: f for f in sorted(root.glob("*.xml"))}


def resolve(model: str | Path) -> Path:
    """A shipped model's file by BioModels id, else ``model`` as a path."""
    shipped = shipped_models()
    if str(model) in shipped:
        return shipped[str(model)]
    path = Path(model)
    if not path.is_file():
        raise InvalidInputError("model", "a shipped BioModels id (" + ", ".join(shipped)
                                + ") or an SBML file", str(model))
    return path


def _roadrunner(path: Path):  # type: ignore[no-untyped-def]
    try:
        import roadrunner
    except ImportError:
        raise InvalidInputError(
            "sbml", "libroadrunner installed (pip install 'cartsim[sbml]')", "not installed"
        ) from None
    try:
        return roadrunner.RoadRunner(path.read_text(encoding="utf-8"))
    except (RuntimeError, UnicodeDecodeError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInputError("model", "a valid SBML model", f"{path.name}: {msg}") from None


def varied_parameters(rr) -> list[str]:  # type: ignore[no-untyped-def]
    """Constant global parameters with a positive value (the ones given variability)."""
    m = rr.model
    names = list(m.getGlobalParameterIds())
    vals = m.getGlobalParameterValues()
    rules = set(rr.getRateRuleIds()) | set(rr.getAssignmentRuleIds())
    return [n for n, v in zip(names, vals, strict=True)
            if n not in rules and np.isfinite(v) and v > 0]


def run_cohort(
    model: str | Path,
    patients: int,
    duration: float,
    *,
    seed: int = 0,
    iiv_sd: float = 0.2,
    points: int = 101,
    fixed: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Simulate ``patients`` virtual patients of an SBML model from time 0 to ``duration``.

    Returns one row per patient and output time: ``patient_id``, ``time`` (model units) and
    every floating species and rate-rule variable. ``fixed``: parameters kept at their
    published value (switches such as an experimental arm).
    """
    if not isinstance(patients, int) or not 1 <= patients <= 100_000:
        raise InvalidInputError("patients", "an integer in [1, 100000]", patients)
    if not (np.isfinite(duration) and duration > 0):
        raise InvalidInputError("duration", "a finite number > 0 (model time units)", duration)
    if not 0.0 <= iiv_sd <= 2.0:
        raise InvalidInputError("iiv_sd", "[0, 2]", iiv_sd)
    if not 2 <= points <= 100_000:
        raise InvalidInputError("points", "[2, 100000]", points)
    path = resolve(model)
    rr = _roadrunner(path)
    varied = [n for n in varied_parameters(rr) if n not in fixed]
    unknown = set(fixed) - set(rr.model.getGlobalParameterIds())
    if unknown:
        raise InvalidInputError("fixed", "global parameters of the model", sorted(unknown))
    base = {n: rr[n] for n in varied}
    ids = np.arange(patients)
    z = {n: standard_normals(seed, ids, n) for n in varied}
    outputs = list(rr.model.getFloatingSpeciesIds()) + [
        r for r in rr.getRateRuleIds() if r not in rr.model.getFloatingSpeciesIds()]
    rr.timeCourseSelections = ["time", *outputs]
    frames = []
    for i in range(patients):
        rr.resetAll()
        for n in varied:
            rr[n] = base[n] * float(np.exp(iiv_sd * z[n][i]))
        rr.reset()
        res = np.asarray(rr.simulate(0.0, float(duration), int(points)))
        frame = pd.DataFrame(res, columns=["time", *outputs])
        frame.insert(0, "patient_id", i)
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    out.attrs["model"] = path.stem
    out.attrs["varied"] = varied
    return out
