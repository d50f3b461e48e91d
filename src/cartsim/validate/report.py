"""``DIR/report.html`` of ``cartsim validate``: summary tables, a forest plot per study
(published vs simulated, 95 % CIs) and Kaplan–Meier curves with the published landmarks."""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cartsim.report.html import CSS, figure_png_base64, table_html
from cartsim.report.plots_survival import plot_km
from cartsim.trial.stats import KaplanMeier
from cartsim.validate.mapping import DAYS_PER_MONTH, default_mapping, parse_timepoint

if TYPE_CHECKING:
    from cartsim.validate.run import StudyRun, ValidationResult

KM_TITLES = {"efs": "Event-free survival", "os": "Overall survival",
             "pfs": "Progression-free survival", "rfs": "Relapse-free survival (responders)",
             "dor": "Duration of response", "dss": "Disease-specific survival"}


def _label(r: pd.Series) -> str:
    parts = [str(r["endpoint"])]
    if isinstance(r["timepoint"], str) and r["timepoint"]:
        parts.append(r["timepoint"])
    if isinstance(r["subgroup"], str) and r["subgroup"] and r["subgroup"] != "all":
        parts.append(f"[{r['subgroup'][:20]}]")
    text = " ".join(parts)
    if len(text) > 52:
        text = text[:51] + "…"
    return f"{text} (l.{int(r['line'])})"


def _err(v: float, lo: Any, hi: Any) -> tuple[float, float]:
    lo_f = v if lo is None or pd.isna(lo) else float(lo)
    hi_f = v if hi is None or pd.isna(hi) else float(hi)
    hi_f = min(hi_f, 100.0) if math.isfinite(hi_f) else 100.0
    return max(0.0, v - lo_f), max(0.0, hi_f - v)


def forest_figure(rows: pd.DataFrame, title: str) -> Figure:
    """Published (black squares) vs simulated (blue circles) percentages with 95 % CIs."""
    n = len(rows)
    fig = Figure(figsize=(10.0, max(2.5, 0.32 * n + 1.3)))
    ax = fig.add_subplot(111)
    y = np.arange(n)[::-1].astype(float)
    for yi, (_, r) in zip(y, rows.iterrows(), strict=True):
        pub, sim = float(r["published"]), float(r["simulated"])
        e = _err(pub, r["published_ci_low"], r["published_ci_high"])
        ax.errorbar(pub, yi + 0.14, xerr=[[e[0]], [e[1]]], fmt="s", color="black", ms=4,
                    capsize=2, lw=1)
        e = _err(sim, r["simulated_ci_low"], r["simulated_ci_high"])
        ok = not pd.isna(r["passes"]) and bool(r["passes"])
        colour = "tab:green" if ok else "tab:red"
        ax.errorbar(sim, yi - 0.14, xerr=[[e[0]], [e[1]]], fmt="o", color=colour, ms=4,
                    capsize=2, lw=1)
    ax.set_yticks(y)
    ax.set_yticklabels([_label(r) for _, r in rows.iterrows()], fontsize=8)
    ax.set_xlim(-2, 102)
    ax.set_xlabel("percent (published ■ black; simulated ● green = passes, red = fails)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title)
    fig.subplots_adjust(left=0.4, right=0.98, top=1 - 0.5 / (0.32 * n + 1.3),
                        bottom=0.7 / (0.32 * n + 1.3))
    return fig


def km_landmark_figure(run: StudyRun, column: str, landmarks: pd.DataFrame) -> Figure | None:
    """The study's Kaplan–Meier curve (first arm) with published landmarks (± CI) overlaid."""
    p = run.patients
    first = run.spec.arms[0].name
    sub = p[(p["arm"] == first) & p[f"{column}_days"].notna()]
    if sub.empty:
        return None
    fit = KaplanMeier().fit(sub[f"{column}_days"] / DAYS_PER_MONTH, sub[f"{column}_event"],
                            label=f"simulated ({first}, n={len(sub)})")
    fig = plot_km(fit, xlabel="Months since infusion", ylabel="Probability",
                  title=f"{run.entry.key}: {KM_TITLES.get(column, column)}", at_risk=False)
    ax = fig.axes[0]
    for i, (_, r) in enumerate(landmarks.iterrows()):
        tp = parse_timepoint(str(r["timepoint"] or ""))
        t = tp.end / DAYS_PER_MONTH
        if not math.isfinite(t):
            continue
        v = float(r["published"]) / 100
        lo, hi = _err(v * 100, r["published_ci_low"], r["published_ci_high"])
        ax.errorbar(t, v, yerr=[[lo / 100], [hi / 100]], fmt="D", color="black", ms=5,
                    capsize=3, label="published" if i == 0 else None)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="best", frameon=False)
    return fig


def _summary_table(groups: dict[str, dict[str, Any]], name: str) -> pd.DataFrame:
    rows = []
    for k, s in groups.items():
        rows.append({name: k, "rows": s["rows"], "compared": s["compared"],
                     "baseline": s["baseline"], "unmapped": s["unmapped"],
                     "unexpressible": s["unexpressible"], "error": s["error"],
                     "inside CI": f"{s['inside_ci']}/{s['with_published_ci']}",
                     "within 10 pts": f"{s['within_10_points']}/{s['percent_rows']}",
                     "passing": f"{s['passing']}/{s['judged']}",
                     "share passing": s["share_passing"]})
    return pd.DataFrame(rows)


def build_report(res: ValidationResult) -> str:
    from cartsim.validate.calibration import parameter_set_status

    s, t = res.summary, res.table
    o = s["overall"]
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>cartsim "
             f"validate</title><style>{CSS}</style></head><body>",
             "<h1>Validation against published trials</h1>",
             f"<p class='note'>targets {html.escape(s['targets'])}; study library "
             f"{html.escape(s['specs'])}; {len(s['studies'])} studies simulated; patients per "
             f"arm {s['patients_per_arm'] or 'as in each spec'}; seed "
             f"{s['seed'] if s['seed'] is not None else 'as in each spec'}. "
             f"Parameter set: {html.escape(parameter_set_status())}.</p>",
             f"<p><b>{o['compared']}</b> compared rows: {o['inside_ci']}/{o['with_published_ci']}"
             f" inside the published 95% CI, {o['within_10_points']}/{o['percent_rows']} "
             f"percentages within {s['points']:g} points; passing (inside the CI where given, "
             f"else within {s['points']:g} points) {o['passing']}/{o['judged']}. "
             f"{o['baseline']} baseline (input), {o['unmapped']} unmapped, {o['unexpressible']}"
             f" unexpressible, {o['error']} invalid rows.</p>"]
    if s["row_errors"]:
        parts += ["<h2>Invalid targets rows</h2><pre>"
                  + html.escape("\n".join(s["row_errors"])) + "</pre>"]
    if s.get("headline") and any(r["verdict"] != "not run" for r in s["headline"]["rows"]):
        h = s["headline"]
        ht = pd.DataFrame([{"endpoint": r["label"], "line": r.get("line"),
                            "published": r.get("published"),
                            "published 95% CI": (
                                f"{r['published_ci_low']:g}–{r['published_ci_high']:g}"
                                if r.get("published_ci_low") is not None
                                and r.get("published_ci_high") is not None else ""),
                            "simulated": r.get("simulated"), "verdict": r["verdict"]}
                           for r in h["rows"] if r["verdict"] != "not run"])
        parts += [f"<h2>Headline endpoints: {h['passing']} of {h['judged']} judged pass</h2>",
                  "<p class='note'>CR/ORR, 12-month EFS/PFS, OS, CRS ≥ 3 and neurotoxicity "
                  "≥ 3 on the paper's scale of ELIANA, ZUMA-1, ZUMA-4 and NCI CD19-28z "
                  "(cartsim/validate/headline.toml).</p>", table_html(ht)]
    parts += ["<h2>Per study</h2>", table_html(_summary_table(s["per_study"], "study")),
              "<h2>Per disease</h2>", table_html(_summary_table(s["per_disease"], "disease")),
              "<h2>Per co-stimulation domain of the published product</h2>",
              table_html(_summary_table(s.get("per_costim", {}), "co-stimulation")),
              "<h2>Per endpoint family</h2>",
              table_html(_summary_table(s["per_family"], "family"))]
    mapping = default_mapping()
    for key, run in res.runs.items():
        rows = t[(t["spec"] == key) & (t["status"] == "compared")]
        parts.append(f"<h2>{html.escape(key)}: {html.escape(', '.join(run.entry.studies))}</h2>")
        pct = rows[rows["unit"] == "percent"]
        if not pct.empty:
            fig = forest_figure(pct, f"{key}: published vs simulated (95% CI)")
            parts.append(f"<figure><img alt='forest plot {html.escape(key)}' "
                         f"src='data:image/png;base64,{figure_png_base64(fig)}'></figure>")
        for column in KM_TITLES:
            km_rows = pct[pct["endpoint"].map(
                lambda e, c=column: (q := mapping.quantities.get(e)) is not None
                and q.kind == "km" and q.column == c)]
            if km_rows.empty:
                continue
            fig = km_landmark_figure(run, column, km_rows)
            if fig is not None:
                parts.append(f"<figure><img alt='{column} {html.escape(key)}' "
                             f"src='data:image/png;base64,{figure_png_base64(fig)}'>"
                             f"<figcaption>{html.escape(KM_TITLES[column])}: simulated "
                             "Kaplan–Meier (95% log-log band) and published landmarks "
                             "(all subgroups of the study's rows)</figcaption></figure>")
        other = rows[rows["unit"] != "percent"]
        if not other.empty:
            parts += ["<h3>Medians and ratios</h3>", table_html(other[[
                "line", "endpoint", "unit", "published", "published_ci_low",
                "published_ci_high", "simulated", "simulated_ci_low", "simulated_ci_high",
                "passes"]])]
    parts += ["<h2>Every row</h2>", table_html(t, max_rows=100_000), "</body></html>"]
    return "\n".join(parts)
