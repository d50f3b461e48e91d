"""Self-contained HTML report of a virtual trial (figures embedded as base64 PNG).

``write_report(DIR)`` rebuilds ``DIR/report.html`` from ``patients.parquet``,
``daily.parquet`` and ``manifest.json`` (the summary is recomputed from the patients table).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from cartsim.errors import InvalidInputError

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;
color:#222;max-width:1300px}
h1{margin-bottom:0}h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;font-size:12px;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 6px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
figure{margin:12px 0}figcaption{font-size:13px;color:#555}
img{max-width:100%;border:1px solid #eee}.note{color:#666;font-size:12px}
"""


def figure_png_base64(fig: Figure, dpi: int = 90) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.3g}"
        return f"{v:.4g}"
    return html.escape(str(v))


def table_html(df: pd.DataFrame, max_rows: int = 2000) -> str:
    if df is None or df.empty:
        return "<p class='note'>(empty)</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for rec in df.head(max_rows).itertuples(index=False):
        rows.append("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in rec) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _rate_cell(r: pd.Series) -> str:
    if r["n"] == 0:
        return "–"
    ci = f"{100 * r['lower']:.1f}–{100 * r['upper']:.1f}"
    return f"{100 * r['rate']:.1f}% ({ci}) {r['k']}/{r['n']}"


def build_report(patients: pd.DataFrame, daily: pd.DataFrame, manifest: dict[str, Any]) -> str:
    """The report as an HTML string."""
    from cartsim.report.trial_plots import all_figures
    from cartsim.trial.spec import validate_spec
    from cartsim.trial.summary import build_summary

    spec = validate_spec(manifest["spec"])
    # recorded by the runner (trial.runner._manifest); older manifests did not record it
    param_set = str(manifest.get("parameter_set", "not recorded by the run that wrote this "
                                                  "manifest"))
    s = build_summary(patients, spec)
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>cartsim trial: {html.escape(spec.name)}</title><style>{CSS}</style>"
             "</head><body>",
             f"<h1>Virtual trial: {html.escape(spec.name)}</h1>",
             f"<p class='note'>disease {spec.population.disease}; {spec.population.size} "
             f"patients per arm; arms: {', '.join(map(html.escape, s['arms']))}; seed "
             f"{spec.seed}; follow-up {spec.follow_up_days} days; cartsim "
             f"{html.escape(str(manifest.get('versions', {}).get('cartsim', '?')))}. "
             "Outcomes emerge from the simulated dynamics; deaths come from the trial layer's "
             "state-driven death model (docs/trial.md).</p>",
             f"<p><b>Parameter set:</b> {html.escape(param_set)}. <b>CRS scale:</b> "
             f"{html.escape(spec.crs_scale)} (the spec's crs_scale: the CRS rates, table and "
             "figures below use it; ICANS is graded on ASTCT).</p>"]
    st = s["status"]
    stopped = st[st["code"] != 0]
    parts.append("<h2>Simulation status</h2>")
    if stopped.empty:
        parts.append("<p class='note'>Every patient was simulated to the end of follow-up.</p>")
    else:
        parts.append(f"<p><b>{s['stopped_patients']} patient(s) stopped early</b> (solver "
                     "failure or implausible physiology): their readouts end on the day they "
                     "stopped and their time-to-event endpoints are censored there. Codes: "
                     "cartsim.Status.</p>")
    parts.append(table_html(st))
    rates = s["rates"]
    if not rates.empty:
        wide = rates.assign(cell=rates.apply(_rate_cell, axis=1)).pivot(
            index=["endpoint", "description"], columns="arm", values="cell")
        wide = wide.reindex(columns=s["arms"]).reset_index()
        order = list(dict.fromkeys(rates["endpoint"]))
        wide["_o"] = wide["endpoint"].map(order.index)
        wide = wide.sort_values("_o").drop(columns="_o")
        parts += ["<h2>Rates (95% Clopper–Pearson CI)</h2>", table_html(wide)]
    parts += ["<h2>Kaplan–Meier medians (95% log-log CI)</h2>", table_html(s["medians"]),
              "<h2>Kaplan–Meier estimates at landmark times</h2>", table_html(s["km"])]
    if not s["comparisons"].empty:
        cols = [c for c in ("endpoint", "arm", "reference", "n", "events", "hr", "hr_lower",
                            "hr_upper", "p", "logrank_chisq", "logrank_p", "error")
                if c in s["comparisons"].columns]
        parts += ["<h2>Arm comparisons (Cox HR, log-rank)</h2>",
                  table_html(s["comparisons"][cols])]
    parts.append("<h2>Figures</h2>")
    for caption, fig in all_figures(patients, daily, spec.crs_scale,
                                    spec.population.disease):
        parts.append(f"<figure><img alt='{html.escape(caption)}' "
                     f"src='data:image/png;base64,{figure_png_base64(fig)}'>"
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts += ["<h2>Subgroups: overall response rate</h2>", table_html(s["subgroups"]),
              "<h2>Every endpoint: numeric columns (median, IQR, range)</h2>",
              table_html(s["continuous"]),
              "<h2>Every endpoint: categorical columns</h2>", table_html(s["categorical"]),
              "<h2>Spec</h2><pre>"
              + html.escape(json.dumps(manifest["spec"], indent=1)) + "</pre>",
              "</body></html>"]
    return "\n".join(parts)


def write_report(out: Path) -> Path:
    """(Re)build ``out/report.html`` from the trial's parquet files; returns its path."""
    from cartsim.atomic import write_text_atomic
    from cartsim.trial.manifest import read_manifest

    out = Path(out)
    for f in ("patients.parquet", "daily.parquet"):
        if not (out / f).exists():
            raise InvalidInputError("DIR", f"a finished trial directory (with {f})", str(out))
    manifest = read_manifest(out)
    patients = pd.read_parquet(out / "patients.parquet")
    daily = pd.read_parquet(out / "daily.parquet")
    path = out / "report.html"
    write_text_atomic(path, build_report(patients, daily, manifest))
    return path
