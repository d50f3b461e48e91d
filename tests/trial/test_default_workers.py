"""The default worker count of validate/calibrate/claims: the CPU count, at most 8."""

from __future__ import annotations

import pytest

from cartsim.trial import workers


@pytest.mark.parametrize(("cpus", "expected"), [(None, 1), (1, 1), (2, 2), (8, 8), (64, 8)])
def test_default_workers_is_the_cpu_count_capped(monkeypatch: pytest.MonkeyPatch,
                                                 cpus: int | None, expected: int) -> None:
    monkeypatch.setattr(workers.os, "cpu_count", lambda: cpus)
    assert workers.default_workers() == expected
