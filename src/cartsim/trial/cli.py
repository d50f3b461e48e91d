"""``cartsim trial run`` and ``cartsim trial report`` (mounted by cartsim.cli as ``trial``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cartsim.cli_options import ParameterSetOption
from cartsim.errors import CartsimError

trial_app = typer.Typer(help="Virtual clinical trials from a TOML spec.", no_args_is_help=True,
                        add_completion=False)
console = Console(stderr=True)


def _fail(err: Exception) -> None:
    from rich.markup import escape

    console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@trial_app.command("run")
def run_command(
    spec: Annotated[Path, typer.Argument(help="trial spec (TOML)")],
    out: Annotated[Path, typer.Option("--out", help="output directory")],
    patients: Annotated[int | None, typer.Option(help="patients per arm (overrides the spec)")]
    = None,
    seed: Annotated[int | None, typer.Option(help="root seed (overrides the spec)")] = None,
    chunk_size: Annotated[int, typer.Option(help="patients per chunk task")] = 500,
    workers: Annotated[int, typer.Option(help="parallel worker processes")] = 1,
    executor: Annotated[str, typer.Option(help="local or dask")] = "local",
    address: Annotated[str | None, typer.Option(help="dask scheduler HOST:PORT")] = None,
    resume: Annotated[bool, typer.Option(help="skip chunks already complete in --out")] = False,
    report: Annotated[bool, typer.Option(help="build report.html at the end")] = True,
    parameter_set: ParameterSetOption = None,
) -> None:
    """Run a virtual trial: chunks → patients.parquet, summary.json, report.html."""
    from cartsim.atomic import check_output_dir
    from cartsim.progress import progress as progress_bar
    from cartsim.trial.runner import run_trial
    from cartsim.trial.spec import load_spec

    try:
        from cartsim.parameter_sets import select

        select(parameter_set)
        check_output_dir(out)
        s = load_spec(spec)
        if patients is not None or seed is not None:
            s = s.with_overrides(size=patients, seed=seed)
        with progress_bar("trial", "patients", s.population.size * len(s.arms),
                          console) as progress:
            res = run_trial(s, out, chunk_size=chunk_size, workers=workers, executor=executor,
                            address=address, resume=resume, report=report, progress=progress)
    except CartsimError as e:
        _fail(e)
        return
    _print_summary(res.out)
    console.print(f"{res.n_chunks} chunks ({res.n_skipped} resumed) in {res.seconds:.1f} s; "
                  f"written: {res.out}/patients.parquet, summary.json"
                  + (", report.html" if report else ""))


@trial_app.command("report")
def report_command(
    out: Annotated[Path, typer.Argument(help="trial output directory")],
) -> None:
    """Rebuild DIR/report.html from DIR/patients.parquet and DIR/daily.parquet."""
    from cartsim.report.html import write_report

    try:
        path = write_report(out)
    except CartsimError as e:
        _fail(e)
        return
    console.print(f"written: {path}")


def _print_summary(out: Path) -> None:
    import json

    from rich.table import Table

    from cartsim.trial.manifest import read_manifest

    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    scale = str(read_manifest(out).get("spec", {}).get("crs_scale", "astct"))
    t = Table(title=f"trial {s['trial']} — {s['patients_per_arm']} patients per arm "
                    f"(CRS on the {scale} scale)")
    t.add_column("endpoint")
    for a in s["arms"]:
        t.add_column(a)
    # CRS rows on the spec's crs_scale (the summary has every scale; ASTCT is unsuffixed)
    sfx = "" if scale == "astct" else f"_{scale}"
    show = ("responder", "complete_response", "mrd_negative_remission", f"crs_any{sfx}",
            f"crs_grade_ge3{sfx}", "icans_grade_ge3", "relapse_among_responders", "death")
    rows: dict[str, dict[str, str]] = {}
    for r in s["rates"]:
        if r["endpoint"] in show and r["n"]:
            rows.setdefault(r["endpoint"], {})[r["arm"]] = (
                f"{100 * r['rate']:.1f}% ({100 * r['lower']:.0f}–{100 * r['upper']:.0f})")
    for ep in show:
        if ep in rows:
            label = f"{ep.removesuffix(sfx)} ({scale})" if ep.startswith("crs_") else ep
            t.add_row(label, *[rows[ep].get(a, "–") for a in s["arms"]])
    for m in s["medians"]:
        if m["endpoint"] in ("efs", "os"):
            rows.setdefault(f"median {m['endpoint']} (d)", {})[m["arm"]] = (
                "NR" if m["median"] is None else f"{m['median']:.0f}")
    for ep in ("median efs (d)", "median os (d)"):
        if ep in rows:
            t.add_row(ep, *[rows[ep].get(a, "–") for a in s["arms"]])
    Console().print(t)
