"""Per-patient status codes of a simulation, each with what happened and what to change.

A patient whose status is not :attr:`Status.OK` stopped early: its readouts are NaN from the
day it stopped, the cohort goes on, and trial summaries and reports count it by code (it is
never silently censored). Codes 1–3 are the compiled solver's (``cartsim.engine.solver``
``STATUS_*``; a test keeps the numbers equal), code 4 is the simulator's plausibility check.
This module imports nothing, so any layer may use it.
"""

from __future__ import annotations

from enum import IntEnum


class Status(IntEnum):
    """Why a virtual patient stopped (0: it did not; ``RUNNING`` is an alias of ``OK``)."""

    OK = 0
    RUNNING = 0
    MAX_STEPS = 1
    STEP_TOO_SMALL = 2
    NONFINITE = 3
    IMPLAUSIBLE = 4

    @property
    def label(self) -> str:
        """Short lower-case name (``ok``, ``max_steps``, ...), as in tables and events."""
        return self.name.lower()

    @property
    def failed(self) -> bool:
        return self is not Status.OK

    @property
    def message(self) -> str:
        """What happened and what to change."""
        return _MESSAGES[self]

    @classmethod
    def describe(cls, code: int) -> str:
        """``label: message`` for a code, or a plain note for a code this version lacks."""
        try:
            s = cls(int(code))
        except ValueError:
            return f"unknown status code {int(code)} (not produced by this cartsim version)"
        return f"{s.label}: {s.message}"


_MESSAGES: dict[Status, str] = {
    Status.OK: "simulated to the end of follow-up.",
    Status.MAX_STEPS: (
        "the solver needed more than its step budget (max_steps per day) to advance one day, "
        "so the dynamics were extremely stiff or oscillating. Check parameter overrides and "
        "covariates for extreme values; a looser rtol or a larger max_steps lets it finish."),
    Status.STEP_TOO_SMALL: (
        "the solver's step size shrank to rounding level while its error test kept failing "
        "(a near-discontinuity or a state jumping by many orders of magnitude). Check "
        "overrides that make rates huge and doses/jumps that are implausibly large; loosen "
        "rtol if the trajectory is otherwise plausible."),
    Status.NONFINITE: (
        "the model's right-hand side returned NaN or infinity (a division by zero or an "
        "overflow in the vector field). Check parameter overrides and covariates at the "
        "edges of their ranges (zero weight-scaled volumes, zero baselines)."),
    Status.IMPLAUSIBLE: (
        "the patient's physiology left the range the clinic accepts (non-finite or impossible "
        "vital signs or labs, see cartsim.clinic.protocol.OBS_SPEC), so the virtual clinician "
        "could not act on it. Check overrides that push cytokines, temperature or blood "
        "pressure out of range; if it happens at defaults, report it as a model defect."),
}


def stopped_warning(count: int, where: str = "") -> str | None:
    """The one warning every command prints when the simulator stopped ``count`` patients
    early (``where``: which studies or probes, e.g. "eliana 3"), or None for none: their
    courses end that day and their endpoints are censored there, so a parameter set that
    breaks the model can look better than it is (docs/validation.md, "Patients the simulator
    stopped")."""
    if count <= 0:
        return None
    return (f"warning: the simulator stopped {count} patients early"
            + (f" ({where})" if where else "")
            + " (solver failure or the plausibility check): their courses end on the day they "
            "stopped and their endpoints are censored there, so the figures are not those of "
            "the whole cohort; status.csv says why")
