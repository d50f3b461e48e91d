"""Reports a scientist can use (issue 13, item 8): the figures, on synthetic tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cartsim.report import trial_plots as tp
from cartsim.report.trajectories import trajectory_figure


def _patients(n: int = 200, arms: tuple[str, ...] = ("A", "B"), seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm_idx = np.arange(n) % len(arms)
    burden = rng.uniform(5, 95, n)
    hazard = 0.01 * (1.0 + arm_idx) * np.where(burden > 50, 2.0, 1.0)  # B doubles the hazard
    t = rng.exponential(1.0 / hazard)
    cens = rng.uniform(100, 400, n)
    return pd.DataFrame({
        "patient_id": np.arange(n), "arm": np.array(arms)[arm_idx], "arm_index": arm_idx,
        "efs_days": np.minimum(t, cens), "efs_event": (t <= cens).astype(float),
        "marrow_blasts_pct": burden, "dose_per_kg": rng.uniform(1e5, 5e6, n),
        "tp53_altered": (rng.uniform(size=n) < 0.3).astype(float),
        "last_day": np.minimum(t, cens), "response_day": np.where(burden < 60, 28.0, np.nan),
        "relapse_day": np.nan, "hsct_day": np.nan,
        "death_day": np.where(t <= cens, t, np.nan),
        "crs_max_grade": np.ones(n, dtype=np.int8), "crs_max_grade_lee2014": np.full(n, 3),
        "icans_max_grade": np.zeros(n, dtype=np.int8),
        "crs_onset_day": np.where(np.arange(n) % 10 == 0, 45.0, 1 + np.arange(n) % 7),
        "icans_onset_day": np.nan, "responder": (burden < 60).astype(float),
    })


def test_grade_figure_uses_the_specs_crs_scale() -> None:
    fig = tp.grade_distributions(_patients(), "lee2014")
    ax = fig.axes[0]
    assert ax.get_title() == "CRS (lee2014)"
    heights = [p.get_height() for p in ax.patches[:6]]  # arm A, grades 0–5
    assert heights[3] == 100.0 and heights[1] == 0.0  # Lee grades, not the ASTCT column


def test_onset_histograms_span_days_0_to_30_and_count_later_onsets() -> None:
    fig = tp.onset_figure(_patients())
    ax = fig.axes[0]
    assert ax.get_xlim() == (-0.5, 30.5)
    assert "20 after day 30" in ax.get_legend().get_texts()[0].get_text()


def test_kinetics_also_in_transgene_copies_with_the_assay_lloq() -> None:
    pts = _patients(20)
    days = np.arange(0, 60)
    daily = pd.DataFrame({
        "arm": np.repeat(pts["arm"], days.size), "patient_id": np.repeat(pts["patient_id"],
                                                                          days.size),
        "day": np.tile(days, len(pts)),
        "cart_cells_per_ul": np.tile(100 * np.exp(-days / 10), len(pts)),
        "transgene_copies_per_ug": np.tile(2e4 * np.exp(-days / 10), len(pts)),
    })
    fig = tp.kinetics_by_response(pts, daily)
    assert len(fig.axes) == 2
    ax = fig.axes[1]
    assert "copies/µg" in ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("LLOQ" in x and f"{tp.TRANSGENE_LLOQ:g}" in x for x in labels)


def test_forest_plot_of_subgroup_hazard_ratios() -> None:
    pts = _patients(600)
    hr = tp.subgroup_hazard_ratios(pts, "b-all")
    assert set(hr["comparison"]) == {"B vs A"}
    assert {"burden", "dose/kg", "tp53_altered"} <= set(hr["subgroup"])
    # the simulated arm effect (hazard × 2) is inside every subgroup's CI, far from 1
    assert ((hr["lower"] < 2.0) & (hr["upper"] > 2.0)).mean() > 0.8
    assert hr["hr"].median() > 1.5
    one = tp.subgroup_hazard_ratios(pts[pts.arm == "A"], "b-all")
    burden = one[one.subgroup == "burden"]
    # high burden doubles the hazard in the synthetic cohort: Q4 vs rest above, Q1 vs rest below
    assert burden["hr"].iloc[-1] > 1.3 > 0.8 > burden["hr"].iloc[0]
    fig = tp.forest_plot(pts, "b-all")
    assert fig.axes[0].get_xscale() == "log" and len(fig.axes[0].get_yticklabels()) == len(hr)
    names = [c for c, _ in tp.all_figures(pts.assign(
        os_days=pts.efs_days, os_event=pts.efs_event, bca_duration_days=np.nan,
        bca_ongoing=0.0, relapse_phenotype=""), pd.DataFrame(
        {"arm": ["A"], "patient_id": [0], "day": [0], "cart_cells_per_ul": [1.0],
         "anc_per_ul": [1.0], "platelets_per_ul": [1.0], "arm_index": [0]}), "lee2014")]
    assert "Subgroup hazard ratios (forest plot)" in names
    assert any("lee2014" in c for c in names)


def test_swimmer_stays_legible_for_a_large_cohort() -> None:
    fig = tp.swimmer(_patients(2000))
    ax = fig.axes[0]
    assert len(ax.get_yticklabels()) <= tp.SWIMMER_MAX
    assert min(t.get_fontsize() for t in ax.get_yticklabels()) >= 8
    assert ax.get_legend() is None and len(fig.legends) == 1  # legend outside the bars
    fig.canvas.draw()
    leg = fig.legends[0].get_window_extent()
    assert leg.x0 >= ax.get_window_extent().x1


def _traj(disease: str) -> pd.DataFrame:
    days = np.arange(-5, 200)
    rows = []
    for pid in range(3):
        rows.append(pd.DataFrame({
            "patient_id": pid, "day": days,
            "cart_cells_per_ul": np.where(days >= 0, 50.0 * np.exp(-days / 30.0), 0.0),
            "mrd_fraction": np.nan if disease == "lbcl" else 0.5 * np.exp(-np.abs(days) / 5),
            "spd_cm2": 40.0 * np.exp(-np.abs(days) / 20) if disease == "lbcl" else np.nan,
            "tumour_cells": 1e11 * np.exp(-np.abs(days) / 5),
            "b_cells_per_ul": 100.0, "il6_pg_ml": 5 + 100 * np.exp(-np.abs(days - 4)),
            "temperature_c": 37 + 2 * np.exp(-np.abs(days - 4)), "anc_per_ul": 1500.0,
        }))
    return pd.concat(rows, ignore_index=True)


def test_trajectories_show_burden_log_time_crs_window_and_drugs() -> None:
    events = pd.DataFrame({"patient_id": [0, 1], "day": [3, 4],
                           "event": ["tocilizumab", "dexamethasone"], "value": [400.0, 10.0],
                           "unit": ["mg", "mg"]})
    fig = trajectory_figure(_traj("b-all"), events=events)
    axes = fig.axes
    titles = [a.get_title() for a in axes]
    assert any("MRD" in t for t in titles) and not any("tumour cells" in t for t in titles)
    assert axes[0].get_xscale() == "symlog"
    il6 = axes[titles.index(next(t for t in titles if t.startswith("IL-6")))]
    assert il6.get_xlim() == (-1.0, 28.0)
    labels = [ln.get_label() for ln in il6.get_lines()]
    assert any(x.startswith("tocilizumab") for x in labels)
    assert any(x.startswith("dexamethasone") for x in labels)
    lbcl = [a.get_title() for a in trajectory_figure(_traj("lbcl")).axes]
    assert any("SPD" in t for t in lbcl)
