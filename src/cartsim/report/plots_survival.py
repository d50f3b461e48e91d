"""Kaplan–Meier figures for trial reports: step curves, CI bands, censor ticks, numbers at risk.

Figures are built with :class:`matplotlib.figure.Figure` (Agg canvas), so nothing here touches
pyplot's global state or needs a display.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from cartsim.errors import InvalidInputError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from cartsim.trial.stats.km import KaplanMeier


def numbers_at_risk(fit: KaplanMeier, times: npt.ArrayLike) -> list[int]:
    """Patients still under observation (time ≥ t) at each of ``times``."""
    t = np.atleast_1d(np.asarray(times, dtype=float))
    return [int((fit.durations >= ti).sum()) for ti in t]


def plot_km(
    fits: KaplanMeier | Sequence[KaplanMeier],
    ax: Axes | None = None,
    ci: bool = True,
    censor_ticks: bool = True,
    at_risk: bool = True,
    at_risk_times: npt.ArrayLike | None = None,
    xlabel: str = "Time",
    ylabel: str = "Survival probability",
    title: str | None = None,
    colors: Sequence[str] | None = None,
) -> Figure:
    """Plot one or more fitted :class:`KaplanMeier` curves.

    Args:
        fits: a fitted estimator or a sequence of them (one per arm); each one's ``label``
            names its curve and its row in the at-risk table.
        ax: axes to draw on; by default a new 7 × 5 in figure is made.
        ci: shade the pointwise confidence band of each curve (its own ``conf_type``).
        censor_ticks: mark censoring times with ``|`` on the curve.
        at_risk: print a numbers-at-risk table beneath the x axis.
        at_risk_times: times for the table (default: the x-axis major ticks within range).
        colors: one matplotlib colour per fit (default: the property cycle).

    Returns:
        The matplotlib Figure (save with ``fig.savefig(path)``).
    """
    fit_list = [fits] if not isinstance(fits, Sequence) else list(fits)
    if not fit_list:
        raise InvalidInputError("fits", "at least one fitted KaplanMeier", fits)
    for f in fit_list:
        if not getattr(f, "_fitted", False):
            raise InvalidInputError("fits", "fitted KaplanMeier estimators", f)
    if colors is not None and len(colors) < len(fit_list):
        raise InvalidInputError("colors", f"at least {len(fit_list)} colours", colors)
    if ax is None:
        fig = Figure(figsize=(7.0, 5.0))
        ax = fig.add_subplot(111)
    else:
        fig = ax.figure  # type: ignore[assignment]
    for i, f in enumerate(fit_list):
        f.plot(ax, ci=ci, censor_ticks=censor_ticks, color=None if colors is None else colors[i])
    t_max = max(float(f.durations.max()) for f in fit_list)
    ax.set_xlim(0.0, t_max * 1.02 if t_max > 0 else 1.0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if len(fit_list) > 1 or fit_list[0].label:
        ax.legend(loc="best", frameon=False)
    ax.grid(alpha=0.3)
    if at_risk:
        _draw_at_risk(ax, fit_list, at_risk_times, t_max)
        n_rows = len(fit_list) + 1
        fig.subplots_adjust(bottom=min(0.12 + 0.055 * n_rows, 0.5), left=0.2)
    return fig


def _draw_at_risk(
    ax: Axes, fits: list[KaplanMeier], times: npt.ArrayLike | None, t_max: float
) -> None:
    """Write the numbers-at-risk table below ``ax`` (x in data units, y in axes units)."""
    if times is None:
        ticks = np.asarray(ax.get_xticks(), dtype=float)
        grid = ticks[(ticks >= 0) & (ticks <= t_max)]
    else:
        grid = np.atleast_1d(np.asarray(times, dtype=float))
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    header_y = -0.2
    ax.text(
        -0.05,
        header_y,
        "No. at risk",
        transform=ax.transAxes,
        ha="right",
        va="center",
        fontsize=8,
        fontweight="bold",
    )
    lines = ax.get_lines()
    step_lines = [ln for ln in lines if ln.get_linestyle() != "None"]
    for row, f in enumerate(fits):
        y = header_y - 0.07 * (row + 1)
        colour = step_lines[row].get_color() if row < len(step_lines) else "black"
        ax.text(
            -0.05,
            y,
            f.label,
            transform=ax.transAxes,
            ha="right",
            va="center",
            fontsize=8,
            color=colour,
        )
        for t, n in zip(grid, numbers_at_risk(f, grid), strict=True):
            ax.text(t, y, str(n), transform=trans, ha="center", va="center", fontsize=8)
