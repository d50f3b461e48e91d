"""Figures of a virtual-trial report, built from ``patients.parquet`` and ``daily.parquet``.

Every function returns a :class:`matplotlib.figure.Figure` (Agg canvas; no pyplot state).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cartsim.params import ParameterSpec, ParameterTable
from cartsim.report.plots_survival import plot_km
from cartsim.trial.stats import KaplanMeier

SWIMMER_MAX = 40
#: Constants of the report figures, with units and provenance.
REPORT_PARAMS = ParameterTable((
    ParameterSpec("transgene_lloq", "copies/µg", 50.0, 1.0, 1e4,
                  "tisagenlecleucel qPCR assay LLOQ, 50 copies/µg genomic DNA (Mueller 2017 "
                  "Blood 130:2317; not in shared/reference: verify against the assay used)",
                  "lower limit of quantification of the transgene qPCR assay"),
    ParameterSpec("onset_window_days", "d", 30.0, 7.0, 365.0,
                  "CRS and ICANS onset falls within the first month (ASTCT 2019 timing)",
                  "days the onset histograms span (later onsets are counted in the legend)"),
))
_RP = REPORT_PARAMS.defaults()
TRANSGENE_LLOQ = _RP["transgene_lloq"]


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
    """One bar per patient (a deterministic sample: the lowest ids of each arm, at most
    ``n_max`` in all) from infusion to last follow-up, with response, relapse, HSCT and death
    marked. Legible at any cohort size: readable labels, arms separated and named, the legend
    outside the bars."""
    arms = _arms(patients)
    per_arm = max(1, n_max // max(1, len(arms)))
    sample = pd.concat([patients[patients["arm"] == a].nsmallest(per_arm, "patient_id")
                        for a in arms])
    sample = sample.sort_values(["arm_index", "last_day"], ascending=[True, False])
    fig = Figure(figsize=(12, max(3.5, 0.28 * len(sample) + 1.6)))
    fig.subplots_adjust(left=0.08, right=0.72, top=0.92, bottom=0.12)
    ax = fig.add_subplot(111)
    colours = {a: f"C{i}" for i, a in enumerate(arms)}
    y = np.arange(len(sample))
    ax.barh(y, sample["last_day"], color=[colours[a] for a in sample["arm"]], alpha=0.35,
            height=0.7)
    marks = [("response_day", "o", "tab:green", "response"),
             ("relapse_day", "v", "tab:red", "relapse/progression"),
             ("hsct_day", "s", "tab:purple", "HSCT"),
             ("death_day", "X", "black", "death")]
    for col, m, c, label in marks:
        v = sample[col].to_numpy(dtype=float)
        ok = np.isfinite(v)
        ax.plot(v[ok], y[ok], linestyle="none", marker=m, markersize=6, color=c, label=label)
    alive = ~np.isfinite(sample["death_day"].to_numpy(dtype=float))
    ax.plot(sample["last_day"].to_numpy()[alive], y[alive], linestyle="none", marker=">",
            markersize=6, color="grey", label="alive at last follow-up")
    ax.set_yticks(y, [f"#{p}" for p in sample["patient_id"]], fontsize=8)
    arm_col = sample["arm"].to_numpy()
    for a in arms:
        rows = np.flatnonzero(arm_col == a)
        if rows.size:
            ax.axhline(rows[-1] + 0.5, color="0.6", lw=0.6)
            ax.text(1.01, rows.mean(), f"{a} (n={rows.size})", transform=ax.get_yaxis_transform(),
                    va="center", ha="left", fontsize=9, color=colours[a])
    ax.set_ylim(len(sample) - 0.5, -0.5)
    ax.set_xlim(0, max(1.0, float(np.nanmax(sample["last_day"].to_numpy(dtype=float)))) * 1.02)
    ax.set_xlabel("Days since infusion")
    ax.set_title(f"Swimmer plot ({len(sample)} of {len(patients)} patients: lowest ids per arm)")
    fig.legend(*ax.get_legend_handles_labels(), loc="upper left", bbox_to_anchor=(0.82, 0.92),
               fontsize=8, frameon=False)
    return fig


def kinetics_by_response(patients: pd.DataFrame, daily: pd.DataFrame) -> Figure:
    """Median (IQR) CAR-T in blood over time, responders vs non-responders: cells/µL (flow)
    and transgene copies/µg genomic DNA (qPCR) with the assay's lower limit of
    quantification."""
    fig = Figure(figsize=(12, 4.5))
    resp = patients.set_index(["arm", "patient_id"])["responder"]
    d = daily.join(resp, on=["arm", "patient_id"])
    panels = [("cart_cells_per_ul", "CAR-T cells/µL (flow; median, IQR)", 1e-3)]
    if "transgene_copies_per_ug" in d.columns:
        panels.append(("transgene_copies_per_ug", "transgene copies/µg DNA (qPCR; median, IQR)",
                       1.0))
    for j, (col, ylabel, floor) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), j + 1)
        for i, (r, label) in enumerate(((1, "responders"), (0, "non-responders"))):
            sub = d[d["responder"] == r]
            if sub.empty:
                continue
            g = sub.groupby("day")[col]
            med, q1, q3 = g.median(), g.quantile(0.25), g.quantile(0.75)
            ax.plot(med.index, med.clip(lower=floor), color=f"C{i}",
                    label=f"{label} (n={sub['patient_id'].nunique()})")
            ax.fill_between(med.index, q1.clip(lower=floor), q3.clip(lower=floor),
                            color=f"C{i}", alpha=0.2, linewidth=0)
        if col == "transgene_copies_per_ug":
            ax.axhline(TRANSGENE_LLOQ, color="0.3", linestyle="--",
                       label=f"assay LLOQ {TRANSGENE_LLOQ:g} copies/µg")
            ax.axhspan(floor, TRANSGENE_LLOQ, color="0.85", alpha=0.5, linewidth=0)
        ax.set_yscale("log")
        ax.set_xlabel("Days since infusion")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    fig.suptitle("CAR-T kinetics by response")
    fig.tight_layout()
    return fig


def crs_column(patients: pd.DataFrame, crs_scale: str = "astct") -> str:
    """The patients-table column of the maximum CRS grade on ``crs_scale``."""
    col = f"crs_max_grade_{crs_scale}"
    if crs_scale != "astct" and col in patients.columns:
        return col
    return "crs_max_grade"


def grade_distributions(patients: pd.DataFrame, crs_scale: str = "astct") -> Figure:
    """Share of patients by maximum CRS grade (on the spec's ``crs_scale``) and ICANS grade
    (ASTCT), per arm."""
    arms = _arms(patients)
    fig = Figure(figsize=(10, 4))
    scale = "ASTCT" if crs_column(patients, crs_scale) == "crs_max_grade" else crs_scale
    for j, (col, title) in enumerate(((crs_column(patients, crs_scale), f"CRS ({scale})"),
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
    """Day of onset of CRS and ICANS (histograms over days 0–30, patients with the event;
    later onsets are counted in the legend)."""
    fig = Figure(figsize=(10, 4))
    for j, (col, title) in enumerate((("crs_onset_day", "CRS onset"),
                                      ("icans_onset_day", "ICANS onset"))):
        ax = fig.add_subplot(1, 2, j + 1)
        v = patients[col].dropna()
        window = int(_RP["onset_window_days"])
        if v.empty:
            ax.text(0.5, 0.5, "no events", ha="center", transform=ax.transAxes)
        else:
            late = int((v > window).sum())
            ax.hist(v[v <= window], bins=np.arange(0, window + 2) - 0.5, color="C3", alpha=0.7)
            ax.axvline(v.median(), color="black", linestyle="--",
                       label=f"median day {v.median():g} (n={v.size})"
                       + (f"; {late} after day {window}" if late else ""))
            ax.legend(fontsize=8)
        ax.set_xlim(-0.5, window + 0.5)
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
    """Relapses per arm split by phenotype (CD19-positive, CD19-negative, lineage switch)."""
    arms = _arms(patients)
    kinds = ["CD19-positive", "CD19-negative", "lineage switch", "CD19-unknown"]
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot(111)
    bottom = np.zeros(len(arms))
    for i, k in enumerate(kinds):
        v = np.array([(patients.loc[patients["arm"] == a, "relapse_phenotype"] == k).sum()
                      for a in arms], dtype=float)
        ax.bar(arms, v, bottom=bottom, label=k, color=["C0", "C3", "C1", "C7"][i])
        bottom += v
    ax.set_ylabel("patients relapsing / progressing after response")
    ax.set_title("Relapse phenotype")
    ax.legend()
    fig.tight_layout()
    return fig


def subgroup_hazard_ratios(patients: pd.DataFrame, disease: str,
                           endpoint: str = "efs") -> pd.DataFrame:
    """Cox hazard ratios (95% CI) of ``endpoint`` by subgroup: with two or more arms, each
    other arm vs the first within every subgroup level; with one arm, each level vs the rest
    of the cohort. Subgroups as in the summary's subgroup table (burden and dose quartiles,
    the binary covariates). Levels without an event on both sides are left out."""
    from cartsim import covariates
    from cartsim.trial.stats import cox_ph
    from cartsim.trial.stats.binomial import quartile_bins

    t_col, e_col = f"{endpoint}_days", f"{endpoint}_event"
    df = patients[patients[t_col].notna()].copy()
    groups: dict[str, pd.Series] = {}
    for name, col in (("burden", covariates.burden(disease)), ("dose/kg", "dose_per_kg")):
        if col in df.columns and df[col].nunique() > 3:
            groups[name] = quartile_bins(df[col]).astype(str)
    for col in covariates.BINARY:
        if col in df.columns and df[col].nunique() > 1:
            groups[col] = df[col].map({0.0: "no", 1.0: "yes"})
    arms = _arms(df)
    rows = []

    def fit(sub: pd.DataFrame, x: np.ndarray) -> tuple[float, float, float] | None:
        ev = sub[e_col].to_numpy(dtype=float)
        if x.min() == x.max() or ev[x == 1].sum() < 1 or ev[x == 0].sum() < 1:
            return None
        try:
            c = cox_ph(sub[t_col].to_numpy(dtype=float), ev, x.astype(float)).coefficients
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            return None
        r = c.iloc[0]
        vals = (float(r["exp(coef)"]), float(r["lower"]), float(r["upper"]))
        return vals if all(np.isfinite(vals)) else None

    for name, g in groups.items():
        for level in sorted(g.dropna().unique()):
            in_level = (g == level).to_numpy()
            if len(arms) > 1:
                sub = df[in_level]
                for arm in arms[1:]:
                    two = sub[sub["arm"].isin([arms[0], arm])]
                    got = fit(two, (two["arm"] == arm).to_numpy(dtype=float))
                    if got:
                        rows.append({"subgroup": name, "level": level,
                                     "comparison": f"{arm} vs {arms[0]}",
                                     "n": len(two), "hr": got[0], "lower": got[1],
                                     "upper": got[2]})
            else:
                got = fit(df, in_level.astype(float))
                if got:
                    rows.append({"subgroup": name, "level": level,
                                 "comparison": f"{level} vs rest", "n": int(in_level.sum()),
                                 "hr": got[0], "lower": got[1], "upper": got[2]})
    return pd.DataFrame(rows, columns=["subgroup", "level", "comparison", "n", "hr", "lower",
                                       "upper"])


def forest_plot(patients: pd.DataFrame, disease: str, endpoint: str = "efs") -> Figure:
    """Forest plot of :func:`subgroup_hazard_ratios` (log HR axis, line at HR 1)."""
    hr = subgroup_hazard_ratios(patients, disease, endpoint)
    title = f"Subgroups: hazard ratio of {endpoint.upper()} (95% CI)"
    if hr.empty:
        return _empty(title, "no subgroup with events on both sides")
    fig = Figure(figsize=(9, max(3.0, 0.3 * len(hr) + 1.4)))
    fig.subplots_adjust(left=0.42, right=0.97, top=0.9, bottom=0.12)
    ax = fig.add_subplot(111)
    y = np.arange(len(hr))
    ax.errorbar(hr["hr"], y, xerr=[hr["hr"] - hr["lower"], hr["upper"] - hr["hr"]],
                fmt="s", color="C0", ecolor="C0", capsize=2, markersize=5)
    ax.axvline(1.0, color="0.4", linestyle="--", lw=0.8)
    ax.set_xscale("log")
    lo = float(min(hr["lower"].min(), 1.0)) / 1.2
    hi = float(max(hr["upper"].max(), 1.0)) * 1.2
    ax.set_xlim(lo, hi)
    ticks = [t for t in (0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 4, 5, 10, 20) if lo <= t <= hi]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_yticks(y, [f"{r.subgroup} = {r.level}  [{r.comparison}, n={r.n}]"
                      for r in hr.itertuples()], fontsize=8)
    ax.set_ylim(len(hr) - 0.5, -0.5)
    ax.set_xlabel("hazard ratio (Cox), log scale")
    ax.set_title(title)
    return fig


def all_figures(patients: pd.DataFrame, daily: pd.DataFrame, crs_scale: str = "astct",
                disease: str = "b-all") -> list[tuple[str, Figure]]:
    """Every report figure as (caption, figure), in report order."""
    return [
        ("Event-free survival", km_figure(patients, "efs", "Event-free survival")),
        ("Overall survival", km_figure(patients, "os", "Overall survival")),
        ("Subgroup hazard ratios (forest plot)", forest_plot(patients, disease)),
        ("Swimmer plot", swimmer(patients)),
        ("CAR-T kinetics by response", kinetics_by_response(patients, daily)),
        (f"CRS and ICANS grade distributions (CRS on the {crs_scale} scale)",
         grade_distributions(patients, crs_scale)),
        ("CRS and ICANS onset", onset_figure(patients)),
        ("Cytopenia time courses", cytopenia_courses(daily)),
        ("B-cell aplasia", bca_curve(patients)),
        ("Relapse phenotypes", relapse_phenotypes(patients)),
    ]
