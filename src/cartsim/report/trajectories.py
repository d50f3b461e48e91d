"""Trajectory figure: CAR-T, tumour, B cells, IL-6/temperature and blood counts over time."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PANELS: tuple[tuple[str, str, bool], ...] = (
    ("cart_cells_per_ul", "CAR-T cells / µL blood", True),
    ("tumour_cells", "tumour cells + 1 (whole body)", True),
    ("b_cells_per_ul", "B cells / µL", True),
    ("il6_pg_ml", "IL-6 (pg/mL)", True),
    ("temperature_c", "temperature (°C)", False),
    ("anc_per_ul", "ANC / µL", True),
)


def figure_columns() -> tuple[str, ...]:
    """The readouts :func:`trajectory_figure` draws."""
    return tuple(c for c, _, _ in PANELS)


def trajectory_figure(traj: pd.DataFrame, max_lines: int = 60,
                      n_total: int | None = None) -> Figure:
    """Median and 10–90% band across patients (plus up to ``max_lines`` individual lines).

    A plain :class:`matplotlib.figure.Figure` (no pyplot, no backend switch): it renders in a
    notebook and saves with ``fig.savefig``.
    """
    from matplotlib.figure import Figure

    # fixed margins rather than a layout engine: the engine's extra draw passes cost more
    # than a second of a one-patient `cartsim simulate`
    fig = Figure(figsize=(13, 7))
    fig.subplots_adjust(left=0.06, right=0.985, bottom=0.08, top=0.90, wspace=0.25,
                        hspace=0.32)
    axes = fig.subplots(2, 3)
    ids = traj["patient_id"].unique()
    show = set(ids[:max_lines])
    for ax, (col, label, log) in zip(axes.ravel(), PANELS, strict=True):
        wide = traj.pivot(index="day", columns="patient_id", values=col)
        if col == "tumour_cells":
            wide = wide + 1.0  # extinct clones (0 cells) stay visible on a log axis
        for pid in wide.columns:
            if pid in show and len(ids) > 1:
                ax.plot(wide.index, wide[pid], color="0.75", lw=0.5)
        vals = wide.to_numpy(dtype=float)
        if log:
            vals = np.where(vals > 0, vals, np.nan)
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(vals, axis=1)
                lo = np.nanpercentile(vals, 10, axis=1)
                hi = np.nanpercentile(vals, 90, axis=1)
        if len(ids) > 1:
            ax.fill_between(wide.index, lo, hi, color="tab:blue", alpha=0.2, label="10–90%")
        ax.plot(wide.index, med, color="tab:blue", lw=2, label="median")
        if log:
            ax.set_yscale("log")
        ax.set_title(label)
        ax.set_xlabel("day since infusion")
        ax.axvline(0, color="k", lw=0.5, ls=":")
    axes[0, 0].legend(loc="upper right", fontsize=8)
    if n_total is not None and n_total > len(ids):
        fig.suptitle(f"cartsim: {n_total} patients (bands over the first {len(ids)})")
    else:
        fig.suptitle(f"cartsim: {len(ids)} patient(s)")
    return fig


def plot_trajectories(traj: pd.DataFrame, path: Path, max_lines: int = 60,
                      n_total: int | None = None) -> None:
    """Write :func:`trajectory_figure` to ``path`` as PNG."""
    trajectory_figure(traj, max_lines, n_total).savefig(path, dpi=110, format="png")
