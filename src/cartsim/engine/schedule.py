"""Dosing and procedures as data: each item adds an amount to a state at the start of a day.

The daily loop integrates exactly from one day boundary to the next, so an item acts exactly
when scheduled. Items are per-patient arrays, so a cohort can mix doses and schedules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ScheduleItem:
    """Add ``amount`` (scalar or per-patient array) to state ``state`` at the start of ``day``."""

    day: int
    state: int
    amount: float | np.ndarray
    event: str
    unit: str

    def apply(self, y: np.ndarray, active: np.ndarray) -> np.ndarray:
        """Apply to the rows of ``y`` where ``active``; return the per-patient amounts given."""
        amt = np.broadcast_to(np.asarray(self.amount, dtype=np.float64), (y.shape[0],))
        given = np.where(active, amt, 0.0)
        y[:, self.state] += given
        return given


def items_on(schedule: list[ScheduleItem], day: int) -> list[ScheduleItem]:
    return [s for s in schedule if s.day == day]
