"""``cartsim validate`` (mounted by cartsim.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from cartsim.cli_options import ParameterSetOption
from cartsim.errors import CartsimError
from cartsim.trial.workers import default_workers

console = Console(stderr=True)


def validate_command(
    out: Annotated[Path, typer.Option("--out", help="output directory")],
    targets: Annotated[Path | None, typer.Argument(
        help="targets CSV (clinical_targets.csv format); default: the reference set shipped "
             "with cartsim")] = None,
    patients: Annotated[int | None, typer.Option(
        help="virtual patients per study arm (default 1000; overrides each spec's size)")] = None,
    studies: Annotated[list[str] | None, typer.Option(
        "--studies", help="only these studies: a spec name (eliana) or a targets study value; "
                          "repeat the option or separate names by commas")] = None,
    specs: Annotated[Path | None, typer.Option(
        help="study library directory with index.toml (default: cartsim's shipped library)")]
    = None,
    seed: Annotated[int | None, typer.Option(
        help="root seed for every study (default: each spec's own seed)")] = None,
    chunk_size: Annotated[int, typer.Option(
        help="patients per chunk task (larger: less per-day overhead, more memory per worker)",
    )] = 500,
    report: Annotated[bool, typer.Option(help="build report.html")] = True,
    rows: Annotated[bool, typer.Option(
        "--rows", help="also print every compared row (published vs simulated)")] = False,
    parameter_set: ParameterSetOption = None,
    workers: Annotated[int | None, typer.Option(
        help="worker processes running whole studies in parallel (default: the CPU count, "
             "at most 8; the numbers do not depend on it)")] = None,
    replicates: Annotated[int, typer.Option(
        help="run the library on this many root seeds (the first: --seed or each spec's own; "
             "then (seed or 0) + r x 1000003) into DIR/rep<r>/ and summarise the spread in "
             "DIR/replicates.csv and replicates.json")] = 1,
    external: Annotated[bool, typer.Option(
        "--external", help="run the external library instead: trials and registries that are "
                           "not in the calibration set (JULIET, TRANSCEND LBCL and MCL, TRANSFORM, "
                           "ZUMA-2, -3, -5, -7, ELARA, MSKCC adult 19-28z, CIBMTR, US MCL and "
                           "ALL consortia), their "
                           "specs and published figures "
                           "shipped in cartsim/data/external (a held-out check; "
                           "docs/validation.md 'External check')")] = False,
    against: Annotated[Path | None, typer.Option(
        "--against", help="an earlier validation directory (single or --replicates) to compare "
                          "this run with: what moved is printed and written to "
                          "DIR/comparison.csv and comparison.json (as cartsim validate-diff)")]
    = None,
) -> None:
    """Run the study library and compare each published figure with its simulated value:
    DIR/validation.csv, summary.json, report.html."""
    from cartsim.validate.run import DEFAULT_PATIENTS, validate

    n = DEFAULT_PATIENTS if patients is None else patients
    if external:
        if targets is not None or specs is not None:
            console.print("[bold red]error:[/] --external brings its own targets file and "
                          "study library; give either --external or a targets file / --specs",
                          highlight=False, soft_wrap=True)
            raise typer.Exit(2)
        from cartsim.validate.library import external_dir

        targets, specs = external_dir() / "targets.csv", external_dir()
    if against is not None:
        try:  # a wrong directory fails before anything runs
            from cartsim.validate.diff import replicate_dirs

            replicate_dirs(against)
        except CartsimError as e:
            console.print(f"[bold red]error:[/] --against: {e}", highlight=False,
                          soft_wrap=True)
            raise typer.Exit(2) from None
    if studies:
        studies = [s.strip() for v in studies for s in v.split(",") if s.strip()]

    def run_one(where: Path, root_seed: int | None):  # type: ignore[no-untyped-def]
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("patients"), TimeElapsedColumn(), TimeRemainingColumn(),
                      console=console) as bar:
            tasks: dict[str, int] = {}

            def on_start(entries: list, per_arm: int) -> None:  # type: ignore[type-arg]
                for e in entries:
                    tasks[e.key] = bar.add_task(e.key, total=None)

            def progress(key: str, done: int, total: int) -> None:
                bar.update(tasks[key], completed=done, total=total)

            return validate(targets, where, patients=n, studies=studies, specs=specs,
                            seed=root_seed, chunk_size=chunk_size, report=report,
                            progress=progress, on_start=on_start,
                            workers=workers if workers is not None else default_workers())

    try:
        from cartsim.parameter_sets import select

        select(parameter_set)
        if replicates != 1:
            from cartsim.validate.replicates import replicate_seeds, run_replicates

            replicate_seeds(seed, replicates)  # a bad count fails before anything runs

            def one(where: Path, root_seed: int | None):  # type: ignore[no-untyped-def]
                console.print(f"replicate {where.name}: root seed "
                              f"{'each spec' if root_seed is None else root_seed}",
                              highlight=False)
                r = run_one(where, root_seed)
                _warn_stopped(r.summary)
                return r.table, r.summary

            agg = run_replicates(out, seed, replicates, one, targets)
            print_replicates(agg)
            console.print(f"written: {out}/rep0..rep{replicates - 1}/, replicates.csv, "
                          "replicates.json")
            if against is not None:
                _compare_and_print(against, out, targets, out)
            return
        res = run_one(out, seed)
    except CartsimError as e:
        console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    for key, run in res.runs.items():
        n = run.spec.population.size * len(run.spec.arms)
        console.print(f"{key}: {n} patients in {run.seconds:.1f} s "
                      f"({n / max(run.seconds, 1e-9):.1f} patients/s)", highlight=False)
    for err in res.errors:
        console.print(f"[yellow]invalid targets row[/] {err}", highlight=False, soft_wrap=True)
    if rows:
        print_rows(res.table)
    print_summary(res.summary)
    if "headline" in res.summary:
        print_headline(res.summary["headline"])
    _warn_stopped(res.summary)
    from cartsim.provenance import parameter_set_status

    console.print(f"parameter set: {parameter_set_status()}", highlight=False, soft_wrap=True)
    files = "validation.csv, summary.json" + (", report.html" if report else "")
    console.print(f"written: {res.out}/{files}")
    if against is not None:
        try:
            _compare_and_print(against, out, targets, out)
        except CartsimError as e:
            console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None


def _compare_and_print(before: Path, after: Path, targets: Path | None, out: Path | None,
                       top: int = 10, plot: Path | None = None) -> None:
    from cartsim.validate.diff import diff_runs

    d = diff_runs(before, after, targets)
    print_diff(d, top)
    paths = d.write(out) if out is not None else []
    if plot is not None:
        from cartsim.atomic import atomic_write
        from cartsim.validate.diff import diff_figure

        fig = diff_figure(d, max(top, 15))
        paths.append(atomic_write(plot, lambda tmp: fig.savefig(
            tmp, format="png", dpi=110, metadata={"Software": None})))
    if paths:
        console.print("written: " + ", ".join(str(p) for p in paths), highlight=False)


def validate_diff_command(
    before: Annotated[Path, typer.Argument(help="the earlier validation directory")],
    after: Annotated[Path, typer.Argument(help="the later validation directory")],
    out: Annotated[Path | None, typer.Option(
        "--out", help="also write OUT/comparison.csv (every row on both sides) and "
                      "comparison.json")] = None,
    top: Annotated[int, typer.Option(
        min=0, max=1000, help="rows of largest deviance change shown each way")] = 10,
    targets: Annotated[Path | None, typer.Option(
        help="targets CSV both runs used (default: the one each run recorded in its "
             "summary.json: the shipped reference set, or the external library's for "
             "--external runs; a run of any other file needs this option)")] = None,
    plot: Annotated[Path | None, typer.Option(
        "--plot", help="also draw the flipped and most-moved percent rows (published CI, "
                       "simulated before → after) into this PNG")] = None,
) -> None:
    """Compare two `cartsim validate` runs (each one directory or a --replicates directory):
    pass counts, headline and deviance before and after, the rows whose verdict flipped, the
    largest deviance changes and the change per study."""
    try:
        if plot is not None and plot.suffix.lower() != ".png":
            from cartsim.errors import InvalidInputError

            raise InvalidInputError("--plot", "a path ending in .png", str(plot))
        _compare_and_print(before, after, targets, out, top, plot)
    except CartsimError as e:
        console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def print_diff(d, top: int = 10) -> None:  # type: ignore[no-untyped-def]
    """The before/after figures, the flipped rows, the largest deviance moves, per study."""
    import pandas as pd
    from rich import box

    nb, na = len(d.before.replicates), len(d.after.replicates)
    t = Table(title=f"validation: {d.before.path} ({nb} run{'s' * (nb > 1)}) → {d.after.path} "
                    f"({na} run{'s' * (na > 1)}); means over replicates",
              title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for c in ("figure", "before", "after", "change"):
        t.add_column(c, justify="left" if c == "figure" else "right", no_wrap=True)
    labels = {"passing": "rows passing", "judged": "rows judged",
              "within_10_points": "within 10 points", "inside_ci": "inside the published CI",
              "headline_passing": "headline passing", "headline_judged": "headline judged",
              "deviance": "deviance (calibration objective)",
              "shared_rows": "rows compared by both", "shared_passing": "… passing",
              "shared_deviance": "… deviance",
              "shared_headline_judged": "headline judged by both",
              "shared_headline_passing": "… headline passing",
              "stopped_patients": "patients the simulator stopped"}
    if max(len(d.before.replicates), len(d.after.replicates)) > 1:
        # the shared rows are counted by their majority verdict, the run-level figures above
        # as means over the replicates: the two can differ
        labels["shared_passing"] = "… passing (majority verdict)"
    partial = bool(d.only_before or d.only_after)
    f = d.figures
    partial_headline = "shared_headline_judged" in f.index and (
        f.loc["shared_headline_judged", "before"] != f.loc["headline_judged", "before"]
        or f.loc["shared_headline_judged", "after"] != f.loc["headline_judged", "after"])
    for k, row in d.figures.iterrows():
        if str(k).startswith("shared_headline_"):
            if not partial_headline:
                continue  # the same headline rows judged on both sides
        elif str(k).startswith("shared_") and not partial:
            continue  # the same rows on both sides: the whole-run figures say it
        fmt = ".1f" if "deviance" in str(k) or max(nb, na) > 1 else ".0f"
        t.add_row(labels.get(str(k), str(k)), f"{row['before']:{fmt}}", f"{row['after']:{fmt}}",
                  f"{row['change']:+{fmt}}")
    console.print(t)

    def rows_table(title: str, df, margin: bool = False) -> None:  # type: ignore[no-untyped-def]
        if df.empty:
            return
        r = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        cols = ("line", "study", "endpoint", "published", "before", "after", "Δ dev") \
            + (("margin",) if margin else ())
        for c in cols:
            text = c in ("study", "endpoint")
            r.add_column(c, justify="left" if text else "right", no_wrap=not text,
                         overflow="fold", ratio=2 if text else None)
        for x in df.to_dict("records"):
            ep = " ".join(str(v) for v in (x["endpoint"], x.get("timepoint"), x.get("subgroup"))
                          if isinstance(v, str) and v)
            cells = [str(x["line"]), str(x["study"]), ep, _num(x["published"]),
                     _num(x["simulated_before"]), _num(x["simulated_after"]),
                     "–" if pd.isna(x["deviance_change"]) else f"{x['deviance_change']:+.1f}"]
            if margin:
                m = x.get("margin_after")
                cells.append("–" if m is None or pd.isna(m) else f"{m:+.1f}")
            r.add_row(*cells)
        console.print(r)

    gains = d.flips[d.flips["flip"] == "gain"]
    losses = d.flips[d.flips["flip"] == "loss"]
    rows_table(f"rows now passing ({len(gains)})", gains, margin=True)
    rows_table(f"rows no longer passing ({len(losses)})", losses, margin=True)
    if not d.flips.empty and nb == 1 and na == 1:
        near = d.flips["margin_after"].abs() < 1.0
        console.print(f"margin: how far the new value lies inside (+) or outside (−) the row's "
                      f"pass band (published CI, else ± 10 points); {int(near.sum())} of "
                      f"{len(d.flips)} flips are within 1 point of the line", highlight=False)
    moved = d.rows.dropna(subset=["deviance_change"]).sort_values("deviance_change",
                                                                   kind="stable")
    if top:
        rows_table(f"largest deviance falls (top {top})",
                   moved[moved["deviance_change"] < 0].head(top))
        rows_table(f"largest deviance rises (top {top})",
                   moved[moved["deviance_change"] > 0].tail(top).iloc[::-1])
    ps = d.per_study[d.per_study["deviance_change"].abs() >= 0.05]
    if not ps.empty:
        s = Table(title="deviance per study (studies that moved)", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False)
        for c in ("spec", "before", "after", "change", "passing"):
            s.add_column(c, justify="left" if c == "spec" else "right", no_wrap=True)
        for spec, x in ps.iterrows():
            s.add_row(str(spec), f"{x['deviance_before']:.1f}", f"{x['deviance_after']:.1f}",
                      f"{x['deviance_change']:+.1f}",
                      f"{x['passing_before']:.0f} → {x['passing_after']:.0f}")
        console.print(s)
    if d.only_before or d.only_after:
        console.print(f"rows compared on one side only: {len(d.only_before)} before, "
                      f"{len(d.only_after)} after (different studies or targets; left out of "
                      "the row changes)", highlight=False)


def _kn(k: int, n: int) -> str:
    return f"{k}/{n}" if n else "–"


def _num(x: object) -> str:
    import math

    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return ""
    try:
        return f"{float(x):.3g}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""


def _ci(lo: object, hi: object) -> str:
    a, b = _num(lo), _num(hi)
    return f" ({a}–{b})" if a or b else ""


def print_rows(table) -> None:  # type: ignore[no-untyped-def]
    """Every compared row: published (95% CI) next to simulated (95% CI), pass/fail and the
    margin to the pass band's edge (+ inside)."""
    import pandas as pd
    from rich import box

    t = Table(title="published vs simulated (compared rows)", title_justify="left",
              box=box.SIMPLE_HEAD, pad_edge=False)
    for c in ("study", "endpoint", "timepoint", "subgroup", "published", "simulated", "pass",
              "margin"):
        t.add_column(c, overflow="fold")
    for r in table[table["status"] == "compared"].to_dict("records"):
        unit = "%" if r["unit"] == "percent" else f" {r['unit']}"
        pub = f"{_num(r['published'])}{unit}{_ci(r['published_ci_low'], r['published_ci_high'])}"
        sim = f"{_num(r['simulated'])}{unit}{_ci(r['simulated_ci_low'], r['simulated_ci_high'])}"
        ok = r["passes"]
        m = r.get("margin")
        t.add_row(*(r[c] if isinstance(r[c], str) else "" for c in
                    ("study", "endpoint", "timepoint", "subgroup")), pub, sim,
                  "–" if ok is None or pd.isna(ok) else ("yes" if ok else "no"),
                  "–" if m is None or pd.isna(m) else f"{m:+.1f}")
    Console().print(t)


def print_summary(summary: dict) -> None:  # type: ignore[type-arg]
    """Compact rich table: per study and overall."""
    from rich import box

    pts = f"{summary['points']:g}"
    table = Table(title=f"cartsim validate: pass = inside the published 95% CI, else within "
                        f"{pts} points", title_justify="left", box=box.SIMPLE_HEAD,
                  pad_edge=False)
    table.add_column("study", no_wrap=True, overflow="ellipsis", max_width=28)
    for c in ("cmp", "in CI", f"≤{pts}", "pass", "%", "unmp", "err"):
        table.add_column(c, justify="right", no_wrap=True, min_width=len(c))

    def add(name: str, s: dict) -> None:  # type: ignore[type-arg]
        share = s["share_passing"]
        table.add_row(name, str(s["compared"]),
                      _kn(s["inside_ci"], s["with_published_ci"]),
                      _kn(s["within_10_points"], s["percent_rows"]),
                      _kn(s["passing"], s["judged"]),
                      "–" if share is None else f"{100 * share:.0f}", str(s["unmapped"]),
                      str(s["error"]))

    for name, s in summary["per_study"].items():
        if s["compared"] or s["error"]:
            add(name, s)
    table.add_section()
    for name, s in summary.get("per_costim", {}).items():
        if s["compared"]:
            add(f"co-stimulation {name}", s)
    add("overall", summary["overall"])
    Console().print(table)
    o = summary["overall"]
    Console().print(f"cmp = compared rows; unmp = unmapped; also {o['baseline']} baseline "
                    f"(input) and {o['unexpressible']} unexpressible rows. validation.csv gives "
                    "every row's reason.", soft_wrap=True)
    if "failing_within_1_point" in o:
        Console().print(f"near the line (validation.csv `margin`): {o['failing_within_1_point']} "
                        f"failing rows within 1 point of passing, "
                        f"{o['passing_within_1_point']} passing rows within 1 point of failing",
                        soft_wrap=True, highlight=False)


def _warn_stopped(summary: dict) -> None:  # type: ignore[type-arg]
    """Say so, in bold, when the simulator stopped patients of some study early."""
    from cartsim.validate.run import stopped_warning

    msg = stopped_warning(summary)
    if msg is not None:
        Console().print(f"[bold yellow]{msg}[/]", highlight=False, soft_wrap=True)


def print_headline(h: dict) -> None:  # type: ignore[type-arg]
    """The headline endpoints (validate/headline.toml), one line each."""
    from rich import box

    table = Table(title=f"headline endpoints: {h['passing']} of {h['judged']} judged pass",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for c in ("endpoint", "line", "published", "simulated", "verdict"):
        table.add_column(c, justify="left" if c in ("endpoint", "verdict") else "right",
                         no_wrap=True)
    rows = [r for r in h["rows"] if r["verdict"] != "not run"]
    if not rows:
        return
    for r in rows:
        pub = "–" if r.get("published") is None else _num(r["published"])
        if r.get("published") is not None:
            pub += _ci(r.get("published_ci_low"), r.get("published_ci_high"))
        sim = "–" if r.get("simulated") is None else _num(r["simulated"])
        table.add_row(r["label"], str(r.get("line", "–")), pub, sim, r["verdict"])
    Console().print(table)
    skipped = len(h["rows"]) - len(rows)
    if skipped:
        Console().print(f"({skipped} headline endpoints of studies not run)")


def _per_seed(values: list[float | None], sep: str) -> str:
    """One simulated value per replicate ("–" where a replicate did not judge the row)."""
    return sep.join("–" if v is None else f"{v:.1f}" for v in values)


def print_replicates(agg: dict) -> None:  # type: ignore[type-arg]
    """Per-replicate pass counts and deviance, and their mean ± SD."""
    t = Table(title=f"validation on {agg['replicates']} root seeds")
    for c in ("replicate", "root seed", "passing / judged", "within 10 pts", "headline",
              "deviance"):
        t.add_column(c, justify="right")
    for r in agg["per_replicate"]:
        t.add_row(str(r["replicate"]), "each spec" if r["seed"] is None else str(r["seed"]),
                  f"{r['passing']:.0f} / {r['judged']:.0f}", f"{r['within_10_points']:.0f}",
                  f"{r['headline_passing']:.0f} / {r['headline_judged']:.0f}",
                  f"{r['deviance']:.1f}")
    a = agg["aggregate"]

    def ms(k: str, fmt: str = ".1f") -> str:
        return f"{a[k]['mean']:{fmt}} ± {a[k]['sd']:{fmt}}"

    t.add_row("mean ± SD", "", f"{ms('passing')} / {a['judged']['mean']:.0f}",
              ms("within_10_points"), ms("headline_passing"), ms("deviance"))
    console.print(t)
    rows = [h for h in agg.get("headline", []) if h["pass_share"] is not None
            and h["pass_share"] < 1.0]
    if rows:
        h = Table(title="headline rows that fail on some seed")
        for c in ("headline endpoint", "published", "simulated (each seed)", "passes"):
            h.add_column(c, justify="left" if c == "headline endpoint" else "right")
        for r in sorted(rows, key=lambda r: r["pass_share"]):
            h.add_row(r["label"], _num(r["published"]), _per_seed(r["simulated"], " / "),
                      f"{r['passes']} of {r['judged']}")
        console.print(h)
    mixed = agg.get("seed_dependent", [])
    if mixed:
        m = Table(title=f"rows whose verdict depends on the seed ({len(mixed)}; "
                        "replicates.json 'seed_dependent')", title_justify="left")
        for c in ("line: study · endpoint", "published", "each seed", "passes"):
            m.add_column(c, justify="left" if c.startswith("line") else "right", no_wrap=True)
        for r in mixed[:15]:
            n = sum(v is not None for v in r["simulated"])
            m.add_row(f"{r['line']}: {r['study'][:16]} · {r['endpoint'][:16]}",
                      _num(r["published"]), _per_seed(r["simulated"], "/"),
                      f"{round(r['pass_share'] * n)}/{n}")
        console.print(m)
        if len(mixed) > 15:
            console.print(f"(and {len(mixed) - 15} more)")
