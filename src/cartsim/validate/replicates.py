"""Replicated validation: the same library on several root seeds (``cartsim validate
--replicates K``).

At the default 200 patients per arm a rate's sampling error is ±3–4 points, so one run's pass
count moves by several rows, and a headline row near its threshold passes or fails, from one
seed to the next. Replicates measure that spread: replicate 0 is the plain run (``--seed`` or
each spec's own seed), replicate r ≥ 1 runs every study on the root seed
``(seed or 0) + r · REPLICATE_STRIDE``. Each replicate is an ordinary validation directory
(``DIR/rep<r>/``); ``DIR/replicates.csv`` has, per targets row, the simulated value and the
verdict of every replicate and the share of replicates in which the row passes;
``DIR/replicates.json`` has, per replicate, the pass counts, the headline count and the
objective's deviance (cartsim.calibrate.objective), their mean, SD, minimum and maximum, and
each headline row's values and pass share.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cartsim.atomic import write_text_atomic
from cartsim.errors import InvalidInputError

#: root-seed step between replicates (replicate 1 without --seed runs on 1,000,003)
REPLICATE_STRIDE = 1_000_003
MAX_REPLICATES = 20
ROW_KEYS = ("line", "study", "endpoint", "timepoint", "subgroup", "published")
STATS = ("passing", "judged", "within_10_points", "inside_ci", "headline_passing",
         "headline_judged", "deviance")


def replicate_seeds(seed: int | None, replicates: int) -> list[int | None]:
    """Root seeds of ``replicates`` runs: ``seed`` (None: each spec's own) first, then
    ``(seed or 0) + r · REPLICATE_STRIDE``."""
    if not 1 <= replicates <= MAX_REPLICATES:
        raise InvalidInputError("--replicates", f"an integer in [1, {MAX_REPLICATES}]",
                                replicates)
    base = 0 if seed is None else seed
    return [seed] + [base + r * REPLICATE_STRIDE for r in range(1, replicates)]


def replicate_stats(table: pd.DataFrame, summary: dict[str, Any],
                    targets_path: str | Path | None = None) -> dict[str, float]:
    """One replicate's figures: rows passing of those judged, within 10 points, inside the
    published CI, headline rows passing, and the calibration objective's deviance over the
    compared rows."""
    from cartsim.calibrate.objective import compute_objective
    from cartsim.validate.mapping import default_mapping
    from cartsim.validate.targets import read_targets

    o = summary["overall"]
    h = summary.get("headline", {})
    mapping = default_mapping()
    dev = compute_objective(table, read_targets(targets_path, mapping), mapping).deviance
    return {"passing": float(o["passing"]), "judged": float(o["judged"]),
            "within_10_points": float(o["within_10_points"]),
            "inside_ci": float(o["inside_ci"]),
            "headline_passing": float(h.get("passing", 0)),
            "headline_judged": float(h.get("judged", 0)), "deviance": float(dev)}


def aggregate(per_rep: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean, SD (ddof 1; 0 for one replicate), minimum and maximum of each figure."""
    out: dict[str, dict[str, float]] = {}
    for k in STATS:
        v = np.array([r[k] for r in per_rep], dtype=float)
        out[k] = {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0,
                  "min": float(v.min()), "max": float(v.max())}
    return out


def row_table(tables: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Per compared targets row: each replicate's simulated value and verdict, the simulated
    mean, minimum and maximum, and the share of replicates in which the row passes."""
    parts = []
    for r, t in enumerate(tables):
        c = t[t["status"] == "compared"].set_index("line")
        parts.append(c[["simulated", "passes"]].rename(
            columns={"simulated": f"simulated_rep{r}", "passes": f"passes_rep{r}"}))
    first = tables[0]
    keys = first[first["status"] == "compared"][list(ROW_KEYS)].set_index("line")
    out = keys.join(parts, how="left")
    sim = out[[f"simulated_rep{r}" for r in range(len(tables))]].astype(float)
    ok = out[[f"passes_rep{r}" for r in range(len(tables))]].astype("boolean")
    out["simulated_mean"] = sim.mean(axis=1)
    out["simulated_min"] = sim.min(axis=1)
    out["simulated_max"] = sim.max(axis=1)
    judged = ok.notna().sum(axis=1)
    out["pass_share"] = (ok.fillna(False).astype(int).sum(axis=1)
                         / judged.where(judged > 0)).astype(float)
    return out.reset_index()


def seed_dependent(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of a :func:`row_table` whose verdict depends on the seed (they pass on some
    replicates and fail on others), least often passing first: where a change of one or two
    rows is noise rather than a finding."""
    n = sum(1 for c in rows.columns if str(c).startswith("simulated_rep"))
    mixed = rows[(rows["pass_share"] > 0.0) & (rows["pass_share"] < 1.0)]
    out = []
    for r in mixed.sort_values(["pass_share", "line"], kind="stable").to_dict("records"):
        sims = [None if pd.isna(r[f"simulated_rep{k}"]) else float(r[f"simulated_rep{k}"])
                for k in range(n)]
        out.append({"line": int(r["line"]), "study": str(r["study"]),
                    "endpoint": str(r["endpoint"]), "subgroup": str(r.get("subgroup") or ""),
                    "published": float(r["published"]), "simulated": sims,
                    "pass_share": float(r["pass_share"])})
    return out


def headline_shares(summaries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each headline row (docs/validation.md, headline.toml): its published value, the
    simulated value of every replicate and the share of replicates in which it passes."""
    rows: dict[str, dict[str, Any]] = {}
    for s in summaries:
        for e in s.get("headline", {}).get("rows", []):
            r = rows.setdefault(str(e["label"]), {
                "label": e["label"], "line": e.get("line"), "published": e.get("published"),
                "simulated": [], "verdicts": []})
            r["simulated"].append(e.get("simulated"))
            r["verdicts"].append(e["verdict"])
    for r in rows.values():
        judged = [v for v in r["verdicts"] if v in ("pass", "fail")]
        r["passes"], r["judged"] = sum(v == "pass" for v in judged), len(judged)
        r["pass_share"] = r["passes"] / r["judged"] if judged else None
    return list(rows.values())


def run_replicates(out: str | Path, seed: int | None, replicates: int,
                   run_one: Callable[[Path, int | None], tuple[pd.DataFrame, dict[str, Any]]],
                   targets_path: str | Path | None = None) -> dict[str, Any]:
    """Run ``run_one(DIR/rep<r>, seed_r)`` (a validation returning its table and summary) for
    every replicate and write DIR/replicates.csv and DIR/replicates.json; returns the JSON."""
    out = Path(out)
    seeds = replicate_seeds(seed, replicates)
    tables: list[pd.DataFrame] = []
    summaries: list[dict[str, Any]] = []
    per_rep: list[dict[str, Any]] = []
    for r, s in enumerate(seeds):
        table, summary = run_one(out / f"rep{r}", s)
        tables.append(table)
        summaries.append(summary)
        per_rep.append({"replicate": r, "seed": s, **replicate_stats(table, summary, targets_path),
                        # patients the simulator stopped early (session 47; 0: none)
                        "stopped_patients": int(summary.get("stopped_patients") or 0)})
    rows = row_table(tables)
    result = {"replicates": replicates, "stride": REPLICATE_STRIDE, "per_replicate": per_rep,
              "aggregate": aggregate(per_rep), "headline": headline_shares(summaries),
              "seed_dependent": seed_dependent(rows)}
    write_text_atomic(out / "replicates.csv", rows.to_csv(
        index=False, lineterminator="\n", float_format="%.6g"))
    write_text_atomic(out / "replicates.json", json.dumps(result, indent=1))
    return result
