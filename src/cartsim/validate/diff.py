"""Before/after comparison of two validation runs (``cartsim validate-diff BEFORE AFTER``,
``cartsim validate --against BEFORE``).

Every model change is measured by running the study library before and after it; this module
reads the two output directories and says what moved. A directory is either one validation
(``validation.csv`` + ``summary.json``) or a replicated one (``rep0/``, ``rep1/``, …, as
``cartsim validate --replicates K`` writes): each side is then summarised over its replicates —
the mean of the pass counts, the headline count and the calibration objective's deviance
(:mod:`cartsim.calibrate.objective`), and per targets row the mean simulated value, the mean
deviance term and the share of replicates in which the row passes. A row *flips* when its
majority verdict changes (it passes in more than half of the judging replicates on one side
and not on the other; with one replicate per side, when its verdict changes).

Only runs of the same targets file are comparable row by row (rows are matched on the targets
``line``); rows present on one side only are listed as such and left out of the changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cartsim.atomic import write_text_atomic
from cartsim.errors import InvalidInputError

#: the run-level figures compared (means over replicates)
FIGURES = ("passing", "judged", "within_10_points", "inside_ci", "headline_passing",
           "headline_judged", "deviance")
ROW_KEYS = ("line", "study", "spec", "endpoint", "timepoint", "subgroup", "published",
            "published_ci_low", "published_ci_high", "unit")


@dataclass(frozen=True)
class Side:
    """One validation run, possibly replicated: its directory, the replicate directories,
    the run-level figures per replicate and the per-row table (compared rows)."""

    path: Path
    replicates: list[Path]
    figures: pd.DataFrame  # one row per replicate, FIGURES columns
    rows: pd.DataFrame  # one row per compared targets line (ROW_KEYS + simulated, pass, dev)
    # one row per replicate, one column per headline targets line: 1 pass, 0 fail, NaN not
    # judged (its study not run, or no simulated value)
    headline: pd.DataFrame = field(default_factory=pd.DataFrame)
    # patients the simulator stopped early, per replicate (summary.json ``stopped_patients``;
    # 0 for runs written before session 47, which did not record it)
    stopped: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Diff:
    """What moved between ``before`` and ``after``."""

    before: Side
    after: Side
    figures: pd.DataFrame  # index FIGURES + shared_* (+ shared_headline_*); before, after, change
    rows: pd.DataFrame  # per line present on both sides
    flips: pd.DataFrame  # rows whose majority verdict changed, with direction gain/loss
    per_study: pd.DataFrame  # spec: deviance and rows passing, before/after/change
    only_before: list[int]
    only_after: list[int]

    def to_json(self) -> dict[str, Any]:
        return {
            "before": str(self.before.path), "after": str(self.after.path),
            "replicates": {"before": len(self.before.replicates),
                           "after": len(self.after.replicates)},
            "figures": {k: {c: _num(self.figures.loc[k, c]) for c in self.figures.columns}
                        for k in self.figures.index},
            "flips": [{k: _num(v) for k, v in r.items()}
                      for r in self.flips.to_dict("records")],
            "per_study": [{k: _num(v) for k, v in r.items()}
                          for r in self.per_study.reset_index().to_dict("records")],
            "only_before": self.only_before, "only_after": self.only_after,
        }

    def write(self, out: str | Path, stem: str = "comparison") -> list[Path]:
        """``OUT/<stem>.csv`` (every row on both sides) and ``OUT/<stem>.json`` (the figures,
        the flips and the per-study changes), written atomically."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        csv_path, json_path = out / f"{stem}.csv", out / f"{stem}.json"
        write_text_atomic(csv_path, self.rows.to_csv(index=False, lineterminator="\n",
                                                     float_format="%.6g"))
        write_text_atomic(json_path, json.dumps(self.to_json(), indent=1))
        return [csv_path, json_path]


def _num(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if not np.isfinite(v) else round(float(v), 6)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    return v


def replicate_dirs(path: str | Path) -> list[Path]:
    """The validation directories of a run: ``[path]`` when it holds ``validation.csv``,
    else its ``rep<r>/`` subdirectories in replicate order."""
    p = Path(path)
    if (p / "validation.csv").is_file():
        return [p]
    reps = sorted((d for d in p.glob("rep*") if (d / "validation.csv").is_file()
                   and d.name[3:].isdigit()), key=lambda d: int(d.name[3:]))
    if not reps:
        raise InvalidInputError(
            "validation directory", "a directory written by `cartsim validate --out DIR` "
            "(DIR/validation.csv and summary.json, or DIR/rep0/, rep1/, … of --replicates)",
            str(p))
    return reps


def _summary(d: Path) -> dict[str, Any]:
    summary_file = d / "summary.json"
    if not summary_file.is_file():
        raise InvalidInputError("validation directory", "one with summary.json next to "
                                "validation.csv", str(d))
    return dict(json.loads(summary_file.read_text()))


def run_targets(path: str | Path, targets_path: str | Path | None = None) -> Path:
    """The targets file a validation run was scored against (its rows are matched on that
    file's ``line``): ``targets_path`` when given, which must have the file name the run
    recorded; else the shipped reference set or, for a ``--external`` run, the external
    library's ``targets.csv``. A run of any other targets file needs ``targets_path``: the
    deviance of its rows cannot be computed against another file."""
    from cartsim.validate.library import external_dir
    from cartsim.validate.targets import default_targets_path

    first = replicate_dirs(path)[0]
    summary = _summary(first)
    used = summary.get("targets")
    if targets_path is not None:
        if used is not None and Path(targets_path).name != used:
            raise InvalidInputError(
                "--targets", f"the targets file the run in {first} was scored against "
                f"({used})", str(targets_path))
        return Path(targets_path)
    if summary.get("specs") == external_dir().name and used == "targets.csv":
        return external_dir() / "targets.csv"
    if used is None or used == default_targets_path().name:
        return default_targets_path()
    raise InvalidInputError(
        "--targets", f"the path of the targets file the run in {first} used ({used}; the "
        "default is the shipped reference set)", "not given")


def load_side(path: str | Path, targets_path: str | Path | None = None) -> Side:
    """Read one run (see :func:`replicate_dirs`) and score each replicate with the
    calibration objective against the run's own targets file (:func:`run_targets`)."""
    from cartsim.calibrate.objective import compute_objective
    from cartsim.validate.mapping import default_mapping
    from cartsim.validate.replicates import replicate_stats, row_table
    from cartsim.validate.targets import read_targets

    reps = replicate_dirs(path)
    targets_path = run_targets(path, targets_path)
    mapping = default_mapping()
    targets = read_targets(targets_path, mapping)
    figs: list[dict[str, float]] = []
    tables: list[pd.DataFrame] = []
    devs: list[pd.Series] = []
    heads: list[dict[int, float]] = []
    stopped: list[float] = []
    for d in reps:
        table = pd.read_csv(d / "validation.csv")
        summary = _summary(d)
        stopped.append(float(summary.get("stopped_patients") or 0))
        figs.append(replicate_stats(table, summary, targets_path))
        heads.append(_headline_verdicts(summary))
        terms = compute_objective(table, targets, mapping).terms
        devs.append(terms[terms["used"]].set_index("line")["deviance"].astype(float))
        tables.append(table)
    # per row: the replicates' mean simulated value and pass share (the replicates table's
    # own definition), with the row's keys and its mean deviance term
    per_row = row_table(tables).set_index("line")
    first = tables[0][tables[0]["status"] == "compared"].copy()
    for k in ROW_KEYS:
        if k not in first:
            first[k] = ""
    out = first.set_index("line").loc[per_row.index, [k for k in ROW_KEYS if k != "line"]]
    out["simulated"] = per_row["simulated_mean"].astype(float)
    out["pass_share"] = per_row["pass_share"].astype(float)
    out["deviance"] = pd.concat([v.reindex(per_row.index) for v in devs], axis=1).mean(axis=1)
    return Side(Path(path), reps, pd.DataFrame(figs, columns=list(FIGURES)),
                out.reset_index(), pd.DataFrame(heads, dtype=float), stopped)


def _headline_verdicts(summary: dict[str, Any]) -> dict[int, float]:
    """A run's headline rows by targets line: 1.0 pass, 0.0 fail, NaN not judged (its study
    not run, or no simulated value)."""
    out: dict[int, float] = {}
    for r in (summary.get("headline") or {}).get("rows", []):
        if r.get("line") is None:
            continue
        v = r.get("verdict")
        out[int(r["line"])] = 1.0 if v == "pass" else 0.0 if v == "fail" else np.nan
    return out


def _margin(r: dict[str, Any], col: str) -> float:
    """The row's pass margin (``validate.run.pass_margin``) at the ``col`` simulated value;
    NaN where the row is not judged or the value is missing."""
    from cartsim.validate.run import pass_margin

    def opt(v: Any) -> float | None:
        return None if v is None or v == "" or pd.isna(v) else float(v)

    v, pub = opt(r.get(col)), opt(r.get("published"))
    if v is None or pub is None:
        return np.nan
    m = pass_margin(pub, opt(r.get("published_ci_low")), opt(r.get("published_ci_high")),
                    str(r.get("unit") or ""), v)
    return np.nan if m is None else m


def _passes(share: pd.Series) -> pd.Series:
    """Majority verdict: True above one half, False at or below it, NaN when unjudged."""
    return share.map(lambda s: np.nan if pd.isna(s) else float(s > 0.5))


def compare(before: Side, after: Side) -> Diff:
    """The run-level figures (means over replicates), the per-row changes, the flips and the
    per-study deviance change of ``after`` against ``before``."""
    fb, fa = before.figures.mean(), after.figures.mean()
    figures = pd.DataFrame({"before": fb, "after": fa, "change": fa - fb}).loc[list(FIGURES)]
    b = before.rows.set_index("line")
    a = after.rows.set_index("line")
    both = b.index.intersection(a.index)
    keys = [k for k in ROW_KEYS if k != "line"]
    rows = b.loc[both, keys].copy()
    for name, side in (("before", b), ("after", a)):
        rows[f"simulated_{name}"] = side.loc[both, "simulated"]
        rows[f"pass_share_{name}"] = side.loc[both, "pass_share"]
        rows[f"deviance_{name}"] = side.loc[both, "deviance"]
    rows["deviance_change"] = rows["deviance_after"] - rows["deviance_before"]
    rows["margin_after"] = [_margin(r, "simulated_after") for r in rows.to_dict("records")]
    rows = rows.reset_index().sort_values("line", kind="stable").reset_index(drop=True)
    pb, pa = _passes(rows["pass_share_before"]), _passes(rows["pass_share_after"])
    rows["flip"] = np.select([(pb == 0) & (pa == 1), (pb == 1) & (pa == 0)],
                             ["gain", "loss"], "")
    flips = rows[rows["flip"] != ""].reset_index(drop=True)
    shared = pd.DataFrame({"deviance_before": rows["deviance_before"],
                           "deviance_after": rows["deviance_after"],
                           "passing_before": pb.fillna(0.0), "passing_after": pa.fillna(0.0),
                           "spec": rows["spec"]})
    per_study = shared.groupby("spec", sort=True).sum()
    per_study["deviance_change"] = per_study["deviance_after"] - per_study["deviance_before"]
    per_study = per_study[["deviance_before", "deviance_after", "deviance_change",
                           "passing_before", "passing_after"]].sort_values(
        "deviance_change", kind="stable")
    # the same figures over the rows both runs compared (the whole-run counts above differ
    # when the runs covered different studies)
    figures.loc["shared_rows"] = [float(len(rows))] * 2 + [0.0]
    for name, col in (("shared_passing", "passing"), ("shared_deviance", "deviance")):
        before_v = float(shared[f"{col}_before"].sum())
        after_v = float(shared[f"{col}_after"].sum())
        figures.loc[name] = [before_v, after_v, after_v - before_v]
    # the headline endpoints judged in every replicate of both runs (a run of a few studies
    # leaves the others' headline rows unjudged, and its headline count is not comparable)
    hb, ha = before.headline, after.headline
    if not hb.empty and not ha.empty:
        lines = [c for c in hb.columns.intersection(ha.columns)
                 if hb[c].notna().all() and ha[c].notna().all()]
        figures.loc["shared_headline_judged"] = [float(len(lines))] * 2 + [0.0]
        pb_h = float(hb[lines].sum(axis=1).mean()) if lines else 0.0
        pa_h = float(ha[lines].sum(axis=1).mean()) if lines else 0.0
        figures.loc["shared_headline_passing"] = [pb_h, pa_h, pa_h - pb_h]
    # patients the simulator stopped early (mean over replicates), shown when either run has
    # any: their censored courses can move rows without the model being any better
    sb = float(np.mean(before.stopped)) if before.stopped else 0.0
    sa = float(np.mean(after.stopped)) if after.stopped else 0.0
    if sb or sa:
        figures.loc["stopped_patients"] = [sb, sa, sa - sb]
    only_b = sorted(int(x) for x in b.index.difference(a.index))
    only_a = sorted(int(x) for x in a.index.difference(b.index))
    return Diff(before, after, figures, rows, flips, per_study, only_b, only_a)


def diff_runs(before: str | Path, after: str | Path,
              targets_path: str | Path | None = None) -> Diff:
    """Read two validation runs (single or replicated) of the same targets file and compare
    them."""
    t_before, t_after = run_targets(before, targets_path), run_targets(after, targets_path)
    if t_before.resolve() != t_after.resolve():
        raise InvalidInputError(
            "AFTER", f"a run of the same targets file as BEFORE ({t_before}): rows are "
            "matched on the file's line numbers", f"{after} (targets {t_after})")
    return compare(load_side(before, targets_path), load_side(after, targets_path))


def plotted_rows(d: Diff, top: int = 15) -> pd.DataFrame:
    """The percent rows a diff figure shows: every flipped row, then the ``top`` largest
    deviance changes either way among the rows whose simulated value moved (each row once,
    in that order)."""
    pct = d.rows[(d.rows["unit"] == "percent")
                 & d.rows["simulated_before"].notna() & d.rows["simulated_after"].notna()]
    flips = pct[pct["flip"] != ""]
    moved = (pct["simulated_after"] - pct["simulated_before"]).abs() > 1e-9
    rest = pct[(pct["flip"] == "") & pct["deviance_change"].notna() & moved]
    rest = rest.reindex(rest["deviance_change"].abs().sort_values(
        ascending=False, kind="stable").index).head(max(int(top), 0))
    return pd.concat([flips, rest])


def diff_figure(d: Diff, top: int = 15) -> Any:
    """Published value and 95 % CI (black) with the simulated value before (grey ring) and
    after (dot: green = passes, red = fails; arrow from before) for :func:`plotted_rows`."""
    from matplotlib.figure import Figure

    rows = plotted_rows(d, top)
    n = max(len(rows), 1)
    h = 0.34 * n + 1.5
    fig = Figure(figsize=(10.0, h))
    ax = fig.add_subplot(111)
    y = np.arange(len(rows))[::-1].astype(float)
    labels = []
    for yi, (_, r) in zip(y, rows.iterrows(), strict=True):
        pub = float(r["published"])
        lo = pub if pd.isna(r["published_ci_low"]) else float(r["published_ci_low"])
        hi = pub if pd.isna(r["published_ci_high"]) else float(r["published_ci_high"])
        ax.errorbar(pub, yi, xerr=[[max(pub - lo, 0.0)], [max(hi - pub, 0.0)]], fmt="s",
                    color="black", ms=4, capsize=2, lw=1, zorder=2)
        b, a = float(r["simulated_before"]), float(r["simulated_after"])
        ok = float(r["pass_share_after"]) > 0.5 if pd.notna(r["pass_share_after"]) else False
        ax.plot(b, yi, "o", mfc="none", mec="grey", ms=7, zorder=3)
        if abs(a - b) > 1e-9:
            ax.annotate("", xy=(a, yi), xytext=(b, yi), zorder=3,
                        arrowprops={"arrowstyle": "->", "color": "grey", "lw": 0.8})
        ax.plot(a, yi, "o", color="tab:green" if ok else "tab:red", ms=5, zorder=4)
        mark = {"gain": " [now passes]", "loss": " [no longer passes]"}.get(str(r["flip"]), "")
        text = " ".join(str(v) for v in (r["study"], r["endpoint"], r.get("timepoint"),
                                         r.get("subgroup")) if isinstance(v, str) and v)
        labels.append((text[:60] + ("…" if len(text) > 60 else "")) + mark)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=7.5)
    ax.set_xlim(-2, 102)
    ax.set_xlabel("percent: published ■ (95 % CI)\nsimulated before ○ → after ● "
                  "(green passes, red fails)", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    f = d.figures
    fig.suptitle(f"flipped and most-moved percent rows — rows passing "
                 f"{f.loc['passing', 'before']:.1f} → {f.loc['passing', 'after']:.1f}, "
                 f"deviance {f.loc['deviance', 'before']:.1f} → "
                 f"{f.loc['deviance', 'after']:.1f}", fontsize=9)
    fig.subplots_adjust(left=0.45, right=0.98, top=1 - 0.55 / h, bottom=0.95 / h)
    return fig

