"""Model states, parameters and readouts of a study's virtual patients, day by day
(``cartsim trial trace``, :func:`cartsim.api.Trial.trace`).

A trial's outputs are the clinical readouts and endpoints; the mechanisms behind them (the
myeloid activation that drives a fever, the encephalopathy state behind an ICE score, an
effector pool's exhaustion) are internal states of the model. To see why a virtual patient
did what it did, :func:`trace_arm` re-runs one arm's patients exactly as the trial runner
does (same cohort, doses, protocol, schedule and seeds) with one more day-start procedure that
records the named quantities of every patient at the start of each requested day: model states
(``cartsim.model`` state names, e.g. ``IL6``, ``MY``, ``ENC``), per-patient parameters (e.g.
``K_fever``, ``age_y``), the core readouts (:func:`cartsim.model.readouts.compute`, e.g.
``temperature_c``, ``cart_cells_per_ul``) and the patients' drawn covariates (the spec's
``[population]`` draws, e.g. ``noxa_low``, ``cd19_density``,
``marrow_blasts_pct``, and ``dose_cells`` / ``dose_per_kg``: the columns of the trial's
``patients.parquet``) and the laboratory values (:data:`cartsim.model.labs.LAB_COLUMNS`, e.g.
``ferritin_ng_ml``, ``crp_mg_l``; slow states outside the vector field, read from the
simulation's daily record of the day, as the trial's ``daily.parquet`` has them), so a trace
joins the mechanism to the
patient without a trip through the trial's ``patients.parquet``. "Start of day d" (d ≥ 0, the
days on which the trial's procedures act) is after the day's schedule items and the trial's
own procedures, before the clinic acts and before the day is integrated.

The simulation runs to the last traced day + 1 (not the whole follow-up), so the traced values
agree with those of the full trial within the solver's tolerance, not bit for bit (an adaptive
step that would cross the shorter horizon is cut there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from cartsim.errors import InvalidInputError
from cartsim.trial.spec import TrialSpec, ld_exposure

#: at most this many patient-days per trace (a guard against an accidental million-row trace)
MAX_TRACE_CELLS = 50_000_000


class StateTrace:
    """A day-start procedure that records named states/parameters/readouts on ``days``."""

    def __init__(self, names: Sequence[str], days: Sequence[int],
                 covariates: dict[str, np.ndarray] | None = None) -> None:
        self.names = [str(n) for n in names]
        self.covariates = dict(covariates or {})
        self.days = sorted({int(d) for d in days})
        self._want = set(self.days)
        self._where: dict[str, tuple[str, int]] = {}
        self.records: dict[int, dict[str, np.ndarray]] = {}

    def bind(self, model: Any) -> None:
        from cartsim.model.labs import LAB_COLUMNS
        from cartsim.model.readouts import READOUT_NAMES

        states = {s.name: i for i, s in enumerate(model.states)}
        params = {s.name: i for i, s in enumerate(model.params)}
        readouts = set(READOUT_NAMES)
        unknown = []
        for n in self.names:
            if n in states:
                self._where[n] = ("state", states[n])
            elif n in params:
                self._where[n] = ("param", params[n])
            elif n in readouts:
                self._where[n] = ("readout", -1)
            elif n in self.covariates:
                self._where[n] = ("covariate", -1)
            elif n in LAB_COLUMNS:
                self._where[n] = ("daily", -1)
            else:
                unknown.append(n)
        if unknown:
            raise InvalidInputError(
                "trace quantity", "a model state, a model parameter, a core readout, a "
                "laboratory value or a drawn covariate name (states: "
                f"{', '.join(sorted(states))}; readouts: {', '.join(sorted(readouts))}; "
                f"laboratory values: {', '.join(LAB_COLUMNS)}; covariates: "
                f"{', '.join(sorted(self.covariates))}; parameters: see docs/model.md)",
                ", ".join(unknown))

    def kind(self, name: str) -> str:
        """Where ``name`` is read: state, param, readout, covariate or daily (a lab value)."""
        return self._where[name][0]

    def apply(self, day: int, y: np.ndarray, p: np.ndarray, status: np.ndarray
              ) -> dict[str, tuple[np.ndarray, str]]:
        if day in self._want:
            rec: dict[str, np.ndarray] = {}
            ro = None
            for n in self.names:
                kind, i = self._where[n]
                if kind == "state":
                    rec[n] = y[:, i].copy()
                elif kind == "param":
                    rec[n] = p[:, i].copy()
                elif kind == "covariate":
                    rec[n] = np.asarray(self.covariates[n], dtype=np.float64).copy()
                elif kind == "daily":
                    continue  # filled from the simulation's daily record (trace_arm)
                else:
                    if ro is None:
                        from cartsim.model.readouts import compute

                        ro = compute(y, p)
                    rec[n] = np.asarray(ro[n], dtype=np.float64).copy()
            alive = status == 0  # a patient the simulator stopped has no values
            self.records[day] = {k: np.where(alive, v, np.nan) for k, v in rec.items()}
        return {}


def parse_days(text: str) -> list[int]:
    """``"0-28"``, ``"0,7,14"`` or ``"0-28,60,90"`` → sorted day list."""
    out: set[int] = set()
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part[1:]:
                cut = part.index("-", 1)
                a, b = int(part[:cut]), int(part[cut + 1:])
                if b < a:
                    raise ValueError
                out.update(range(a, b + 1))
            else:
                out.add(int(part))
        except ValueError:
            raise InvalidInputError("days", "day numbers and ranges such as 0-28,60,90",
                                    text) from None
    if not out:
        raise InvalidInputError("days", "at least one day", text)
    return sorted(out)


def trace_arm(spec: TrialSpec, names: Sequence[str], days: Sequence[int],
              arm: int | str = 0, patients: int | None = None,
              ids: Sequence[int] | None = None) -> pd.DataFrame:
    """Trace ``names`` on ``days`` for one arm's first ``patients`` virtual patients (default:
    the spec's population size), or for the trial's patients ``ids`` (the ``patient_id`` of
    ``patients.parquet``; each draws its own keyed streams, so patient 779 traced alone is
    patient 779 of the trial): a long table with columns arm, patient_id, day and one column
    per name (NaN for a patient the simulator stopped)."""
    from cartsim.simulation import simulate
    from cartsim.trial.runner import _chunk_inputs, patient_covariates, patient_ids

    if not names:
        raise InvalidInputError("trace quantities", "at least one name", "none")
    arm_index = _arm_index(spec, arm)
    if ids is not None and patients is not None:
        raise InvalidInputError("patients", "either a number of patients or their ids, not "
                                "both", f"{patients} and ids")
    n = spec.population.size if patients is None else int(patients)
    if n < 1:
        raise InvalidInputError("patients", "an integer >= 1", n)
    if ids is not None:
        # the arm's ids as the runner numbers them (patient_ids), not bounded by the spec's
        # size: a patient's draws are keyed by its id, so ids past it are the patients of a
        # larger run (validate's 1,000/arm)
        wanted = sorted({int(i) for i in ids})
        own = patient_ids(spec, arm_index, max(max(wanted, default=0), 2) + 1)
        bad = [i for i in wanted if i not in set(own.tolist())]
        if not wanted or bad:
            raise InvalidInputError("ids", f"patient ids of arm {spec.arms[arm_index].name} "
                                    f"({own[0]}, {own[1]}, {own[2]}, …)",
                                    bad[0] if bad else "none")
        n = len(wanted)
    days = sorted({int(d) for d in days})
    if days[0] < 0:
        raise InvalidInputError("days", "days from 0 (the infusion day; the trace is taken "
                                "where the trial's procedures act, from day 0 on)", days[0])
    if days[-1] > spec.follow_up_days:
        raise InvalidInputError("days", f"days up to the spec's follow-up "
                                f"({spec.follow_up_days})", days[-1])
    if n * len(days) * len(names) > MAX_TRACE_CELLS:
        raise InvalidInputError("trace size", f"at most {MAX_TRACE_CELLS:,} values "
                                "(patients x days x names)", n * len(days) * len(names))
    # the runner's ids: arms of an unpaired trial interleave (arm k has ids k, k + arms, …)
    ids = patient_ids(spec, arm_index, n) if ids is None else np.asarray(wanted, np.int64)
    cohort, product, protocol, procedures, cov, dose = _chunk_inputs(spec, arm_index, ids)
    # the trial's own per-patient covariate columns (patients.parquet names)
    tracer = StateTrace(names, days,
                        covariates=patient_covariates(cov, dose, spec.population.disease))
    arm_spec = spec.arms[arm_index]
    res = simulate(cohort, product, days=days[-1] + 1, seed=spec.seed, protocol=protocol,
                   procedures=[*procedures, tracer],
                   lymphodepletion=ld_exposure(arm_spec.lymphodepletion))
    missing = [d for d in days if d not in tracer.records]
    if missing:
        raise InvalidInputError("days", "days the simulation covers (0 to the follow-up)",
                                ", ".join(str(d) for d in missing[:5]))
    labs = [n for n in tracer.names if tracer.kind(n) == "daily"]
    if labs:
        # laboratory values live outside the state vector (model/labs.py): the simulation's
        # record of each day, as the trial's daily.parquet and endpoints read it
        assert res.daily is not None and res.daily_days is not None
        assert res.daily_ids is not None
        row = {int(i): k for k, i in enumerate(res.daily_ids)}
        rows = np.array([row[int(i)] for i in ids])
        col = {int(d): k for k, d in enumerate(res.daily_days)}
        for d in days:
            for n in labs:
                tracer.records[d][n] = np.asarray(res.daily[n], np.float64)[rows, col[d]]
    frames = []
    for d in days:
        rec = {n: tracer.records[d][n] for n in tracer.names}
        frames.append(pd.DataFrame({"arm": arm_spec.name, "patient_id": ids,
                                    "day": np.int64(d), **rec}))
    return pd.concat(frames, ignore_index=True).sort_values(
        ["patient_id", "day"], kind="stable").reset_index(drop=True)


def _arm_index(spec: TrialSpec, arm: int | str) -> int:
    names = [a.name for a in spec.arms]
    if isinstance(arm, str) and not arm.isdigit():
        if arm not in names:
            raise InvalidInputError("arm", f"one of {', '.join(names)}", arm)
        return names.index(arm)
    i = int(arm)
    if not 0 <= i < len(names):
        raise InvalidInputError("arm", f"an index 0-{len(names) - 1} or a name "
                                f"({', '.join(names)})", arm)
    return i
