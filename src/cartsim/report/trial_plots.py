"""Figures of a virtual-trial report, built from ``patients.parquet`` and ``daily.parquet``.

Every function returns a :class:`matplotlib.figure.Figure` (Agg canvas; no pyplot state).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cartsim.report.plots_survival import plot_km
from cartsim.trial.stats import KaplanMeier

SWIMMER_MAX = 40


def _arms(patients: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(patients.sort_values("arm_index")["arm"]))


def km_figure(patients: pd.DataFrame, endpoint: str, title: str) -> Figure:
    """Kaplan–Meier curves of ``endpoint`` (efs, os, …) per arm, with numbers at risk."""
    fits = []
    for arm in _arms(patients):
        sub = patients[(patients["arm"] == arm) & patients[f"{endpoint}_days"].notna()]
        if len(sub):
            fits.append(KaplanMeier().fit(sub[f"{endpoint}_days"], sub[f"{endpoint}_event"],
                                          label=arm))
    if not fits:
        return _empty(title, f"no patients with {endpoint}")
    return plot_km(fits, xlabel="Days since infusion", ylabel="Probability", title=title)


def _empty(title: str, text: str) -> Figure:
    fig = Figure(figsize=(7, 3))
    ax = fig.add_subplot(111)
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    ax.set_title(title)
    return fig


def swimmer(patients: pd.DataFrame, n_max: int = SWIMMER_MAX) -> Figure:
    """One bar per patient (a deterministic sample: the lowest ids of each arm) from infusion
    to last follow-up, with response, relapse, HSCT and death marked."""
    arms = _arms(patients)
    per_arm = max(1, n_max // max(1, len(arms)))
    sample = pd.concat([patients[patients["arm"] == a].nsmallest(per_arm, "patient_id")
                        for a in arms])
    sample = sample.sort_values(["arm_index", "last_day"], ascending=[True, False])
    fig = Figure(figsize=(9, max(3.0, 0.22 * len(sample) + 1.2)))
    ax = fig.add_subplot(111)
    colours = {a: f"C{i}" for i, a in enumerate(arms)}
    y = np.arange(len(sample))
    ax.barh(y, sample["last_day"], color=[colours[a] for a in sample["arm"]], alpha=0.35,
            height=0.7)
    marks = [("response_day", "o", "tab:green", "response"),
             ("relapse_day", "v", "tab:red", "relapse/progression"),
             ("hsct_day", "s", "tab:purple", "HSCT"),
             ("death_day", "x", "black", "death")]
    for col, m, c, label in marks:
        v = sample[col].to_numpy(dtype=float)
        ok = np.isfinite(v)
        ax.plot(v[ok], y[ok], linestyle="none", marker=m, color=c, label=label)
    alive = ~np.isfinite(sample["death_day"].to_numpy(dtype=float))
    ax.plot(sample["last_day"].to_numpy()[alive], y[alive], linestyle="none", marker=">",
            color="grey", label="alive at last follow-up")
    ax.set_yticks(y, [f"{a}:{p}" for a, p in zip(sample["arm"], sample["patient_id"],
                                                    strict=True)], fontsize=6)
    ax.set_xlabel("Days since infusion")
    ax.set_title(f"Swimmer plot ({len(sample)} patients)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def kinetics_by_response(patients: pd.DataFrame, daily: pd.DataFrame) -> Figure:
    """Median (IQR) CAR-T cells/µL in blood over time, responders vs non-responders."""
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot(111)
    resp = patients.set_index(["arm", "patient_id"])["responder"]
    d = daily.join(resp, on=["arm", "patient_id"])
    for i, (r, label) in enumerate(((1, "responders"), (0, "non-responders"))):
        sub = d[d["responder"] == r]
        if sub.empty:
            continue
        g = sub.groupby("day")["cart_cells_per_ul"]
        med, q1, q3 = g.median(), g.quantile(0.25), g.quantile(0.75)
        ax.plot(med.index, med.clip(lower=1e-3), color=f"C{i}",
                label=f"{label} (n={sub['patient_id'].nunique()})")
        ax.fill_between(med.index, q1.clip(lower=1e-3), q3.clip(lower=1e-3), color=f"C{i}",
                        alpha=0.2, linewidth=0)
    ax.set_yscale("log")
    ax.set_xlabel("Days since infusion")
    ax.set_ylabel("CAR-T cells/µL (median, IQR)")
    ax.set_title("CAR-T kinetics by response")
    ax.legend()
    fig.tight_layout()
    return fig


def grade_distributions(patients: pd.DataFrame) -> Figure:
    """Share of patients by maximum CRS and ICANS grade, per arm."""
    arms = _arms(patients)
    fig = Figure(figsize=(10, 4))
    for j, (col, title) in enumerate((("crs_max_grade", "CRS (ASTCT)"),
                                      ("icans_max_grade", "ICANS (ASTCT)"))):
        ax = fig.add_subplot(1, 2, j + 1)
        width = 0.8 / len(arms)
        for i, arm in enumerate(arms):
            g = patients.loc[patients["arm"] == arm, col]
            share = [(g == k).mean() * 100 for k in range(6)]
            ax.bar(np.arange(6) + i * width, share, width=width, label=arm, color=f"C{i}")
        ax.set_xticks(np.arange(6) + 0.4 - width / 2, [str(k) for k in range(6)])
        ax.set_xlabel("maximum grade")
        ax.set_ylabel("% of patients")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def onset_figure(patients: pd.DataFrame) -> Figure:
    """Day of onset of CRS and ICANS (histograms over patients with the event)."""
    fig = Figure(figsize=(10, 4))
    for j, (col, title) in enumerate((("crs_onset_day", "CRS onset"),
                                      ("icans_onset_day", "ICANS onset"))):
        ax = fig.add_subplot(1, 2, j + 1)
        v = patients[col].dropna()
        if v.empty:
            ax.text(0.5, 0.5, "no events", ha="center", transform=ax.transAxes)
        else:
            ax.hist(v, bins=np.arange(0, max(15, v.max() + 2)) - 0.5, color="C3", alpha=0.7)
            ax.axvline(v.median(), color="black", linestyle="--",
                       label=f"median day {v.median():g}")
            ax.legend()
        ax.set_xlabel("Day since infusion")
        ax.set_ylabel("patients")
        ax.set_title(title)
    fig.tight_layout()
    return fig


def cytopenia_courses(daily: pd.DataFrame) -> Figure:
    """Median ANC and platelets over time per arm, with the grade-3/4 thresholds."""
    fig = Figure(figsize=(10, 4))
    for j, (col, title, thr) in enumerate((("anc_per_ul", "ANC /µL", 500.0),
                                           ("platelets_per_ul", "Platelets /µL", 50_000.0))):
        ax = fig.add_subplot(1, 2, j + 1)
        for i, (_arm, sub) in enumerate(daily.groupby("arm_index")):
            g = sub.groupby("day")[col]
            med = g.median()
            ax.plot(med.index, med.clip(lower=1.0), color=f"C{i}",
                    label=str(sub["arm"].iloc[0]))
            ax.fill_between(med.index, g.quantile(0.1).clip(lower=1.0),
                            g.quantile(0.9).clip(lower=1.0), color=f"C{i}", alpha=0.15,
                            linewidth=0)
        ax.axhline(thr, color="grey", linestyle=":", label=f"{thr:g}")
        ax.set_yscale("log")
        ax.set_xlabel("Days since infusion")
        ax.set_title(f"{title} (median, 10th–90th percentile)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def bca_curve(patients: pd.DataFrame) -> Figure:
    """Kaplan–Meier estimate of remaining in B-cell aplasia, from its onset."""
    fits = []
    for arm in _arms(patients):
        sub = patients[(patients["arm"] == arm) & patients["bca_duration_days"].notna()]
        if len(sub):
            fits.append(KaplanMeier().fit(sub["bca_duration_days"].clip(lower=0),
                                          1 - sub["bca_ongoing"], label=arm))
    if not fits:
        return _empty("B-cell aplasia", "no patient developed B-cell aplasia")
    return plot_km(fits, xlabel="Days since onset of B-cell aplasia",
                   ylabel="Still B-cell aplastic", title="Duration of B-cell aplasia")


def relapse_phenotypes(patients: pd.DataFrame) -> Figure:
    """Relapses per arm split by CD19 phenotype."""
    arms = _arms(patients)
    kinds = ["CD19-positive", "CD19-negative", "CD19-unknown"]
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot(111)
    bottom = np.zeros(len(arms))
    for i, k in enumerate(kinds):
        v = np.array([(patients.loc[patients["arm"] == a, "relapse_phenotype"] == k).sum()
                      for a in arms], dtype=float)
        ax.bar(arms, v, bottom=bottom, label=k, color=["C0", "C3", "C7"][i])
        bottom += v
    ax.set_ylabel("patients relapsing / progressing after response")
    ax.set_title("Relapse phenotype")
    ax.legend()
    fig.tight_layout()
    return fig


def all_figures(patients: pd.DataFrame, daily: pd.DataFrame) -> list[tuple[str, Figure]]:
    """Every report figure as (caption, figure), in report order."""
    return [
        ("Event-free survival", km_figure(patients, "efs", "Event-free survival")),
        ("Overall survival", km_figure(patients, "os", "Overall survival")),
        ("Swimmer plot", swimmer(patients)),
        ("CAR-T kinetics by response", kinetics_by_response(patients, daily)),
        ("CRS and ICANS grade distributions", grade_distributions(patients)),
        ("CRS and ICANS onset", onset_figure(patients)),
        ("Cytopenia time courses", cytopenia_courses(daily)),
        ("B-cell aplasia", bca_curve(patients)),
        ("Relapse phenotypes", relapse_phenotypes(patients)),
    ]
