"""``cartsim trial run`` and ``cartsim trial report`` (mounted by cartsim.cli as ``trial``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cartsim.cli_options import ParameterSetOption
from cartsim.errors import CartsimError, InvalidInputError

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


@trial_app.command("trace")
def trace_command(
    spec: Annotated[str, typer.Argument(
        help="trial spec (TOML path) or the name of a study of the shipped library (eliana)")],
    names: Annotated[str, typer.Option(
        "--names", help="comma-separated model states (IL6, MY, ENC …), model parameters "
                        "(K_fever, age_y …), core readouts (temperature_c …), laboratory "
                        "values (ferritin_ng_ml, crp_mg_l …) or drawn covariates "
                        "(noxa_low, marrow_blasts_pct, dose_per_kg …)")],
    days: Annotated[str, typer.Option(help="days: ranges and lists, e.g. 0-28,60,90")]
    = "0-28",
    arm: Annotated[str, typer.Option(help="arm name or index")] = "0",
    patients: Annotated[int | None, typer.Option(
        help="the arm's first N virtual patients (default: the spec's size)")] = None,
    ids: Annotated[str | None, typer.Option(
        "--ids", help="these patients of the trial instead (patient_id of its "
                      "patients.parquet), comma-separated, e.g. 87,779")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="write the long table here (.parquet or .csv)")] = None,
    parameter_set: ParameterSetOption = None,
) -> None:
    """Trace model states, parameters and readouts of a trial's virtual patients day by day
    (re-simulated exactly as the trial runner does): the mechanism behind an endpoint."""
    from cartsim.trial.trace import parse_days, trace_arm

    try:
        from cartsim.parameter_sets import select

        select(parameter_set)
        s = _spec_or_library(spec)
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        pick = None
        if ids is not None:
            try:
                pick = [int(v) for v in ids.split(",") if v.strip()]
            except ValueError:
                raise InvalidInputError("--ids", "comma-separated patient ids, e.g. 87,779",
                                        ids) from None
        table = trace_arm(s, wanted, parse_days(days), arm=arm, patients=patients, ids=pick)
        if out is not None:
            _write_table(table, out)
    except CartsimError as e:
        _fail(e)
        return
    _print_trace(table, wanted)
    if out is not None:
        console.print(f"written: {out} ({len(table)} rows)", highlight=False)


def _spec_or_library(spec: str):  # type: ignore[no-untyped-def]
    from cartsim.errors import InvalidInputError
    from cartsim.trial.spec import load_spec
    from cartsim.validate.library import default_specs_dir

    p = Path(spec)
    if p.exists() or p.suffix == ".toml":
        return load_spec(p)
    library = default_specs_dir()  # the shipped study library
    lib = library / f"{spec}.toml"
    if lib.is_file():
        return load_spec(lib)
    names = sorted(q.stem for q in library.glob("*.toml") if q.stem != "index")
    raise InvalidInputError("spec", "a TOML file or a library study name "
                            f"({', '.join(names)})", spec)


def _write_table(table, out: Path) -> None:  # type: ignore[no-untyped-def]
    from cartsim.atomic import PARQUET_OPTIONS, atomic_write
    from cartsim.errors import InvalidInputError

    if out.suffix == ".csv":
        atomic_write(out, lambda tmp: table.to_csv(tmp, index=False))
    elif out.suffix == ".parquet":
        atomic_write(out, lambda tmp: table.to_parquet(tmp, index=False, **PARQUET_OPTIONS))
    else:
        raise InvalidInputError("--out", "a path ending in .parquet or .csv", str(out))


def _print_trace(table, names: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Median of each name on each traced day (up to 12 days; with three names or fewer also
    the 10th–90th percentile range)."""
    from rich import box
    from rich.table import Table

    days = sorted(table["day"].unique())
    if len(days) > 12:
        idx = sorted({round(i * (len(days) - 1) / 11) for i in range(12)})
        days = [days[i] for i in idx]
    spread = len(names) <= 3
    t = Table(title=f"{table['patient_id'].nunique()} patients at the start of each day: "
                    f"median{' (10th–90th percentile)' if spread else ''}",
              title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("day", justify="right", no_wrap=True)
    for n in names:
        t.add_column(n, justify="right", no_wrap=True, overflow="fold")
    for d in days:
        sub = table[table["day"] == d]
        cells = []
        for n in names:
            v = sub[n].dropna()
            if v.empty:
                cells.append("–")
            elif spread:
                cells.append(f"{v.median():.3g} ({v.quantile(0.1):.3g}–{v.quantile(0.9):.3g})")
            else:
                cells.append(f"{v.median():.3g}")
        t.add_row(str(d), *cells)
    console.print(t)


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
    from cartsim.status import stopped_warning

    msg = stopped_warning(int(s.get("stopped_patients") or 0))
    if msg is not None:
        Console().print(f"[bold yellow]{msg}[/]", highlight=False, soft_wrap=True)
