"""Trajectory figure: CAR-T, disease burden, B cells, the CRS window and blood counts.

Long-course panels use a time axis that is linear over the first week and logarithmic after
(``symlog``), so expansion in week 1–2 and persistence over months are both readable; the
IL-6 and temperature panels show the CRS window (day −1 to 28). Disease burden is what the
clinic measures: MRD (leukaemic cells per nucleated marrow cell) for B-ALL, the sum of the
products of diameters (SPD) for LBCL. Drugs given (tocilizumab, steroids, ...) are marked on
the CRS-window panels from the events table.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: (column, title, log y, window): window "course" = symlog time over the whole run,
#: "crs" = linear days −1 to 28
PANELS_BALL: tuple[tuple[str, str, bool, str], ...] = (
    ("cart_cells_per_ul", "CAR-T cells / µL blood", True, "course"),
    ("mrd_fraction", "MRD (leukaemic / nucleated marrow cells)", True, "course"),
    ("b_cells_per_ul", "B cells / µL", True, "course"),
    ("il6_pg_ml", "IL-6 (pg/mL), CRS window", True, "crs"),
    ("temperature_c", "temperature (°C), CRS window", False, "crs"),
    ("anc_per_ul", "ANC / µL", True, "course"),
)
PANELS_LBCL = tuple(("spd_cm2", "SPD (cm², sum of products of diameters)", True, "course")
                    if c == "mrd_fraction" else (c, t, lg, w) for c, t, lg, w in PANELS_BALL)
#: drug events marked on the CRS-window panels (event name → marker colour)
DRUG_EVENTS = {"tocilizumab": "tab:purple", "dexamethasone": "tab:orange",
               "methylprednisolone": "tab:brown", "anakinra": "tab:pink",
               "siltuximab": "tab:olive", "iap_inhibitor": "tab:cyan"}
CRS_WINDOW = (-1.0, 28.0)
#: reference lines: MRD negativity, fever, severe neutropenia
_REF = {"mrd_fraction": (1e-4, "MRD 10⁻⁴"), "temperature_c": (38.0, "fever 38 °C"),
        "anc_per_ul": (500.0, "ANC 500/µL")}


def figure_columns() -> tuple[str, ...]:
    """The readouts :func:`trajectory_figure` may draw."""
    return tuple(dict.fromkeys(c for c, *_ in PANELS_BALL + PANELS_LBCL))


def _panels(traj: pd.DataFrame) -> tuple[tuple[str, str, bool, str], ...]:
    lbcl = "spd_cm2" in traj.columns and bool(np.isfinite(
        traj["spd_cm2"].to_numpy(dtype=float)).any())
    return PANELS_LBCL if lbcl else PANELS_BALL


def _mark_drugs(ax: Axes, events: pd.DataFrame | None, ids: set[object]) -> None:
    if events is None or events.empty:
        return
    ev = events[events["event"].isin(list(DRUG_EVENTS)) & events["patient_id"].isin(ids)
                & (events["value"] > 0)]
    for k, (name, sub) in enumerate(ev.groupby("event")):
        days = sub.groupby("day").size()
        ax.plot(days.index, np.full(days.size, 0.97 - 0.06 * k), linestyle="none",
                marker="v", color=DRUG_EVENTS[str(name)], transform=ax.get_xaxis_transform(),
                label=f"{name} ({len(sub)} dose{'s' if len(sub) != 1 else ''})")


def trajectory_figure(traj: pd.DataFrame, max_lines: int = 60, n_total: int | None = None,
                      events: pd.DataFrame | None = None) -> Figure:
    """Median and 10–90% band across patients (plus up to ``max_lines`` individual lines);
    drugs from ``events`` (the simulation's events table) marked on the CRS-window panels.

    A plain :class:`matplotlib.figure.Figure` (no pyplot, no backend switch): it renders in a
    notebook and saves with ``fig.savefig``.
    """
    import warnings

    from matplotlib.figure import Figure

    # fixed margins rather than a layout engine: the engine's extra draw passes cost more
    # than a second of a one-patient `cartsim simulate`
    fig = Figure(figsize=(13, 7))
    fig.subplots_adjust(left=0.06, right=0.985, bottom=0.08, top=0.90, wspace=0.25,
                        hspace=0.36)
    axes = fig.subplots(2, 3)
    ids = traj["patient_id"].unique()
    show = set(ids[:max_lines])
    last = float(traj["day"].max())
    for ax, (col, label, log, window) in zip(axes.ravel(), _panels(traj), strict=True):
        if col not in traj.columns:
            ax.set_axis_off()
            continue
        wide = traj.pivot(index="day", columns="patient_id", values=col)
        for pid in wide.columns:
            if pid in show and len(ids) > 1:
                ax.plot(wide.index, wide[pid], color="0.75", lw=0.5)
        vals = wide.to_numpy(dtype=float)
        if log:
            vals = np.where(vals > 0, vals, np.nan)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(vals, axis=1)
            lo = np.nanpercentile(vals, 10, axis=1)
            hi = np.nanpercentile(vals, 90, axis=1)
        if len(ids) > 1:
            ax.fill_between(wide.index, lo, hi, color="tab:blue", alpha=0.2, label="10–90%")
        ax.plot(wide.index, med, color="tab:blue", lw=2, label="median")
        if col in _REF:
            v, text = _REF[col]
            ax.axhline(v, color="tab:red", lw=0.7, ls="--", label=text)
        if log:
            ax.set_yscale("log")
        if window == "crs":
            ax.set_xlim(*CRS_WINDOW)
            _mark_drugs(ax, events, show if len(ids) > 1 else set(ids))
            ax.set_xlabel("day since infusion")
        else:
            ax.set_xscale("symlog", linthresh=7.0, linscale=1.0)
            first = float(traj["day"].min())
            ax.set_xlim(first, max(last, 7.0))
            ticks = [t for t in (first, 0, 7, 14, 28, 60, 100, 180, 365, 730, 1825, 3650)
                     if first <= t <= max(last, 7.0)]
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            ax.minorticks_off()
            ax.set_xlabel("day since infusion (linear to 7, log after)")
        ax.set_title(label, fontsize=10)
        ax.axvline(0, color="k", lw=0.5, ls=":")
        handles, labels = ax.get_legend_handles_labels()
        if col in _REF or window == "crs":
            ax.legend(handles, labels, fontsize=7,
                      loc="center right" if window == "crs" else "best")
    axes[0, 0].legend(loc="upper right", fontsize=8)
    if n_total is not None and n_total > len(ids):
        fig.suptitle(f"cartsim: {n_total} patients (bands over the first {len(ids)})")
    else:
        fig.suptitle(f"cartsim: {len(ids)} patient(s)")
    return fig


def plot_trajectories(traj: pd.DataFrame, path: Path, max_lines: int = 60,
                      n_total: int | None = None, events: pd.DataFrame | None = None) -> None:
    """Write :func:`trajectory_figure` to ``path`` as PNG."""
    trajectory_figure(traj, max_lines, n_total, events).savefig(path, dpi=110, format="png")
