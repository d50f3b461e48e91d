"""Status codes: one enum, the solver's numbers kept, a message per code, counted in summaries."""

from __future__ import annotations

import pandas as pd
import pytest

from cartsim.engine import solver
from cartsim.status import Status
from cartsim.trial.summary import status_table


def test_status_keeps_the_solver_and_simulator_codes() -> None:
    from cartsim.simulation import STATUS_IMPLAUSIBLE

    assert Status.OK == solver.STATUS_OK == 0 and Status.RUNNING is Status.OK
    assert Status.MAX_STEPS == solver.STATUS_MAX_STEPS
    assert Status.STEP_TOO_SMALL == solver.STATUS_STEP_TOO_SMALL
    assert Status.NONFINITE == solver.STATUS_NONFINITE
    assert Status.IMPLAUSIBLE == STATUS_IMPLAUSIBLE == 4
    for code, name in solver.STATUS_NAMES.items():
        assert Status(code).label == name


@pytest.mark.parametrize("status", list(Status))
def test_every_code_says_what_happened_and_what_to_change(status: Status) -> None:
    assert status.message.endswith(".") and len(status.message) > 20
    if status.failed:
        assert "Check" in status.message  # what to change
    assert Status.describe(int(status)).startswith(status.label + ": ")


def test_unknown_code_is_described_not_raised() -> None:
    assert "unknown status code 17" in Status.describe(17)


def test_status_table_counts_stopped_patients_per_arm() -> None:
    df = pd.DataFrame({"arm": ["a", "a", "a", "b", "b"], "solver_status": [0, 4, 2, 0, 0]})
    t = status_table(df, ["a", "b"])
    got = {(r.arm, r.status): (r.n, r.of) for r in t.itertuples()}
    assert got == {("a", "ok"): (1, 3), ("a", "step_too_small"): (1, 3),
                   ("a", "implausible"): (1, 3), ("b", "ok"): (2, 2)}
    msg = t.set_index("status").loc["implausible", "message"]
    assert msg == Status.IMPLAUSIBLE.message
