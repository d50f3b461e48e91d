"""Command-line interface (thin: parses, calls the API, prints with rich)."""

from __future__ import annotations

import atexit
import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console

from cartsim.errors import CartsimError

app = typer.Typer(help="cartsim: mechanistic simulation of CAR-T cell therapy.",
                  no_args_is_help=True, add_completion=False)
console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        import cartsim

        typer.echo(f"cartsim {cartsim.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """cartsim: one virtual patient, a virtual trial, a lab screen."""


class Disease(StrEnum):  # cartsim.diseases.DISEASES (tested)
    b_all = "b-all"
    lbcl = "lbcl"
    mcl = "mcl"
    fl = "fl"


@app.command()
def simulate(
    product: Annotated[str, typer.Option(help="product preset or alias, e.g. tisagenlecleucel")],
    disease: Annotated[Disease, typer.Option(help="b-all, lbcl, mcl or fl")],
    out: Annotated[Path, typer.Option(help="output directory")],
    marrow_blasts: Annotated[float, typer.Option(help="B-ALL marrow blasts, % (0–100)")] = 60.0,
    tumour_volume_ml: Annotated[float, typer.Option(help="LBCL/MCL/FL tumour volume, mL")] = 50.0,
    weight: Annotated[float, typer.Option(help="body weight, kg")] = 30.0,
    age: Annotated[float, typer.Option(help="age, years")] = 10.0,
    dose_per_kg: Annotated[float | None, typer.Option(help="CAR+ cells per kg")] = None,
    dose: Annotated[float | None, typer.Option(help="total CAR+ cells (flat)")] = None,
    cd19_negative_fraction: Annotated[float, typer.Option(
        help="pre-existing CD19-negative fraction of the tumour (0–1)")] = 0.0,
    patients: Annotated[int, typer.Option(help="cohort size")] = 1,
    days: Annotated[int, typer.Option(help="follow-up after infusion, days")] = 365,
    seed: Annotated[int, typer.Option(help="root random seed")] = 0,
    typical: Annotated[bool, typer.Option(
        help="no inter-individual variability (the typical patient)")] = False,
    chunk_size: Annotated[int, typer.Option(help="patients per chunk")] = 5000,
    protocol: Annotated[str, typer.Option(
        help="management protocol run in the daily loop: a shipped name (default, "
             "early_tocilizumab, prophylactic_tocilizumab, il6_guided, penn_ctl019, "
             "zuma1_2015, prophylactic_dexamethasone), a TOML path, or 'none' for the "
             "untreated body")] = "default",
    rtol: Annotated[float, typer.Option(help="solver relative tolerance (1e-10–1e-2)")] = 1e-5,
    lymphodepletion: Annotated[str, typer.Option(
        help="lymphodepletion course: 'reference' (fludarabine 30 + cyclophosphamide 500 "
             "mg/m² daily × 3), 'none', or the course's daily doses × days, e.g. "
             "'flu=25x3,cy=250x3' (docs/trial.md)")] = "reference",
    plot: Annotated[bool, typer.Option(
        help="draw trajectories.png (--no-plot skips it: about 0.8 CPU-s of a one-patient "
             "run goes into importing matplotlib and rendering it)")] = True,
) -> None:
    """Simulate a patient or cohort; writes trajectories.parquet, events.parquet and a PNG."""
    try:
        _simulate(product, disease.value, out, marrow_blasts, tumour_volume_ml, weight, age,
                  dose_per_kg, dose, cd19_negative_fraction, patients, days, seed, typical,
                  chunk_size, protocol, rtol, plot, course_exposure(lymphodepletion))
    except CartsimError as e:
        _error(e)


def _error(err: Exception) -> None:
    """One plain error line (markup in the message is not interpreted, no wrapping); exit 2."""
    from rich.markup import escape

    console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@contextmanager
def _loading() -> Iterator[None]:
    """Import what a command needs with the cyclic garbage collector paused, then freeze what
    the imports built (modules, classes, functions: alive until exit anyway) out of its reach,
    and freeze the heap again at exit so that the interpreter's shutdown collections have
    nothing to walk.

    The libraries ``cartsim simulate`` loads (numba, pandas, pyarrow, matplotlib, pydantic)
    leave ~300,000 container objects behind; each full collection walks all of them (~0.1 s
    on the development machine), and in a fresh process the collector ran four of them while
    they loaded and several more at shutdown: ~1 s of a 3.4–4 s one-patient run
    (benchmarks/README.md, session 10). Frozen objects are never collected, which is why this
    acts only in a process that has not loaded the simulation yet (a fresh ``cartsim``): in
    a process that already has (a test session, a notebook) it does nothing.
    """
    if "cartsim.simulation" in sys.modules or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
        atexit.register(gc.freeze)  # runs before the shutdown's collections


def course_exposure(text: str) -> float:
    """``--lymphodepletion`` as the simulator's exposure (reference courses): 'reference',
    'none', or 'flu=DOSExDAYS,cy=DOSExDAYS' (daily mg/m² × days; either agent may be left out),
    checked as a trial spec's course is."""
    from cartsim.errors import InvalidInputError

    t = text.strip().lower()
    if t in ("reference", "yes", "true"):
        return 1.0
    if t in ("none", "no", "false"):
        return 0.0
    why = ("'reference', 'none' or 'flu=DOSExDAYS,cy=DOSExDAYS' (daily mg/m² × days, e.g. "
           "'flu=25x3,cy=250x3')")
    course: dict[str, float | int] = {}
    names = {"flu": "fludarabine", "cy": "cyclophosphamide"}
    for part in t.split(","):
        key, _, val = part.partition("=")
        dose_s, x, days_s = val.partition("x")
        agent = names.get(key.strip())
        if agent is None or not x or f"{agent}_mg_m2" in course:
            raise InvalidInputError("lymphodepletion", why, text)
        try:
            course[f"{agent}_mg_m2"] = float(dose_s)
            course[f"{agent}_days"] = int(days_s)
        except ValueError:
            raise InvalidInputError("lymphodepletion", why, text) from None
    from cartsim.trial.spec import lymphodepletion_course

    try:
        return lymphodepletion_course(course).exposure()
    except ValueError as e:
        raise InvalidInputError("lymphodepletion", str(e), text) from None


def simulate_chunk(*args: object, **kw: object) -> object:
    """:func:`cartsim.simulation.simulate` (imported on first use: the CLI starts fast)."""
    from cartsim.simulation import simulate as _sim

    return _sim(*args, **kw)  # type: ignore[arg-type]


def _cohort(disease: str, marrow_blasts: float, tumour_volume_ml: float, weight: float,
            age: float, dose_per_kg: float | None, dose: float | None, cd19neg: float,
            n: int) -> object:
    """The CLI's cohort of ``n`` identical patients (variability comes from the seed)."""
    from cartsim.errors import InvalidInputError
    from cartsim.population import Cohort

    if dose_per_kg is not None and dose is not None:
        raise InvalidInputError("dose", "either --dose-per-kg or --dose, not both", dose)
    if dose_per_kg is not None and not 0 < dose_per_kg <= 1e9:
        raise InvalidInputError("dose-per-kg", "(0, 1e9] cells/kg", dose_per_kg)
    if dose is not None and not 0 < dose <= 1e11:
        raise InvalidInputError("dose", "(0, 1e11] cells", dose)
    total_dose = None
    if dose_per_kg is not None:
        total_dose = np.full(n, dose_per_kg * weight)
    elif dose is not None:
        total_dose = np.full(n, dose)
    return Cohort(
        disease, weight_kg=np.full(n, weight), age_y=np.full(n, age),
        marrow_blasts_pct=np.full(n, marrow_blasts) if disease == "b-all" else None,
        tumour_volume_ml=np.full(n, tumour_volume_ml) if disease != "b-all" else None,
        dose=total_dose, cd19_negative_fraction=np.full(n, cd19neg),
    )


def _simulate(product: str, disease: str, out: Path, marrow_blasts: float,
              tumour_volume_ml: float, weight: float, age: float, dose_per_kg: float | None,
              dose: float | None, cd19neg: float, patients: int, days: int, seed: int,
              typical: bool, chunk_size: int, protocol: str = "default",
              rtol: float = 1e-5, plot: bool = True, lymphodepletion: float = 1.0) -> None:
    with _loading():
        from cartsim.atomic import check_output_dir
        from cartsim.clinic import load_protocol
        from cartsim.errors import InvalidInputError
        from cartsim.population import Cohort
        from cartsim.products import get_product
        from cartsim.simulation import simulate as _  # noqa: F401  (simulate_chunk's)
        from cartsim.streaming import ChunkedWriter, resource_warnings

        if plot:
            import matplotlib.backends.backend_agg  # noqa: F401  (the PNG's, at the end)
            import matplotlib.figure  # noqa: F401

            import cartsim.report.trajectories  # noqa: F401

        check_output_dir(out)
        prod = get_product(product)
        policy = None if protocol.lower() == "none" else load_protocol(protocol)
    if not 1e-10 <= rtol <= 1e-2:
        raise InvalidInputError("rtol", "[1e-10, 1e-2]", rtol)
    if patients < 1 or patients > 10_000_000:
        raise InvalidInputError("patients", "[1, 10000000]", patients)
    if chunk_size < 1:
        raise InvalidInputError("chunk-size", "≥ 1", chunk_size)
    if not 1 <= days <= 3650:
        raise InvalidInputError("days", "[1, 3650]", days)
    n = patients
    cohort_all = _cohort(disease, marrow_blasts, tumour_volume_ml, weight, age, dose_per_kg,
                         dose, cd19neg, n)
    assert isinstance(cohort_all, Cohort)
    out = Path(out)
    for line in resource_warnings(n, days, min(chunk_size, n), out):
        console.print(f"[bold yellow]warning:[/] {line}", highlight=False, soft_wrap=True)
    from cartsim.progress import progress as progress_bar

    # chunk by chunk into Parquet (one row group per chunk) in a fresh temporary directory,
    # then moved into place: memory is bounded by the chunk, nothing is half-written
    with ChunkedWriter(out, max_plot_patients=60, plot=plot) as writer, \
            progress_bar("simulating", "patient-days", n * (days + 5), console,
                         enabled=n >= 2) as update:
        for start in range(0, n, chunk_size):
            stop = min(n, start + chunk_size)
            idx = np.arange(start, stop)
            chunk = Cohort(
                disease, weight_kg=cohort_all.weight_kg[idx], age_y=cohort_all.age_y[idx],
                marrow_blasts_pct=None if cohort_all.marrow_blasts_pct is None
                else cohort_all.marrow_blasts_pct[idx],
                tumour_volume_ml=None if cohort_all.tumour_volume_ml is None
                else cohort_all.tumour_volume_ml[idx],
                dose=None if cohort_all.dose is None else cohort_all.dose[idx],
                cd19_negative_fraction=cohort_all.cd19_negative_fraction[idx],  # type: ignore[index]
                patient_id=idx,
            )
            m, done = stop - start, start * (days + 5)
            writer.add(simulate_chunk(
                chunk, prod, days=days, seed=seed, variability=not typical, protocol=policy,
                rtol=rtol, lymphodepletion=lymphodepletion,
                progress=lambda k, m=m, done=done: update(done + k * m)), patients=n)
    _summary(writer.summary, out, plot)


def _summary(res: object, out: Path, plot: bool = True) -> None:
    from rich.table import Table

    from cartsim.status import Status
    from cartsim.streaming import RunSummary

    assert isinstance(res, RunSummary)
    pp = res.per_patient
    table = Table(title=f"cartsim simulate — {len(pp)} patient(s), seed {res.seed}")
    table.add_column("readout")
    table.add_column("median (10th–90th percentile)")

    def q(x: object) -> str:
        a = np.asarray(x, dtype=float)
        a = a[np.isfinite(a)]
        if a.size == 0:
            return "–"
        return f"{np.median(a):.4g} ({np.percentile(a, 10):.3g}–{np.percentile(a, 90):.3g})"

    table.add_row("CAR-T peak, cells/µL", q(pp["cart_peak"]))
    table.add_row("CAR-T Tmax, day", q(pp["cart_tmax"]))
    table.add_row("IL-6 peak, pg/mL", q(pp["il6_peak"]))
    table.add_row("max temperature, °C", q(pp["temp_max"]))
    mrd = pp["mrd_d28"]
    if mrd.notna().any():
        table.add_row("MRD < 1e-4 at day 28, %", f"{100 * (mrd < 1e-4).mean():.1f}")
    codes, counts = np.unique(np.asarray(res.status)[np.asarray(res.status) != 0],
                              return_counts=True)
    stopped = ", ".join(f"{Status(int(c)).label} {k}" for c, k in zip(codes, counts, strict=True))
    table.add_row("stopped patients (cartsim.Status)",
                  f"{int(counts.sum())}" + (f" ({stopped})" if stopped else ""))
    Console().print(table)
    for c in codes:  # what happened and what to change, once per failure kind
        Console().print(f"status {Status(int(c)).label}: {Status(int(c)).message}")
    Console().print(f"written: {out}/trajectories.parquet, events.parquet"
                    + (", trajectories.png" if plot else ""))


@app.command("export-sbml")
def export_sbml(
    product: Annotated[str, typer.Option(help="product preset or alias, e.g. tisagenlecleucel")],
    disease: Annotated[Disease, typer.Option(help="b-all, lbcl, mcl or fl")],
    out: Annotated[Path, typer.Option(help="SBML file to write (.xml)")],
    marrow_blasts: Annotated[float, typer.Option(help="B-ALL marrow blasts, % (0–100)")] = 60.0,
    tumour_volume_ml: Annotated[float, typer.Option(help="LBCL/MCL/FL tumour volume, mL")] = 50.0,
    weight: Annotated[float, typer.Option(help="body weight, kg")] = 30.0,
    age: Annotated[float, typer.Option(help="age, years")] = 10.0,
    dose_per_kg: Annotated[float | None, typer.Option(help="CAR+ cells per kg")] = None,
    dose: Annotated[float | None, typer.Option(help="total CAR+ cells (flat)")] = None,
    cd19_negative_fraction: Annotated[float, typer.Option(
        help="pre-existing CD19-negative fraction of the tumour (0–1)")] = 0.0,
    seed: Annotated[int, typer.Option(help="root random seed (the patient's IIV draw)")] = 0,
    patient: Annotated[int, typer.Option(help="patient id whose draw is exported")] = 0,
    typical: Annotated[bool, typer.Option(
        help="no inter-individual variability (the typical patient)")] = False,
) -> None:
    """Write one virtual patient's model as SBML L3 (states, parameters with units, rules,
    the schedule as events), generated from the installed mechanisms."""
    try:
        _export_sbml(product, disease.value, out, marrow_blasts, tumour_volume_ml, weight,
                     age, dose_per_kg, dose, cd19_negative_fraction, seed, patient, typical)
    except CartsimError as e:
        _error(e)


def _export_sbml(product: str, disease: str, out: Path, marrow_blasts: float,
                 tumour_volume_ml: float, weight: float, age: float,
                 dose_per_kg: float | None, dose: float | None, cd19neg: float, seed: int,
                 patient: int, typical: bool) -> None:
    from dataclasses import replace

    from cartsim.errors import InvalidInputError
    from cartsim.population import Cohort
    from cartsim.products import get_product

    out = Path(out)
    if out.is_dir():
        raise InvalidInputError("--out", "a file path (.xml), not a directory", str(out))
    if not out.parent.exists():
        raise InvalidInputError("--out", "a path in an existing directory", str(out))
    if patient < 0:
        raise InvalidInputError("patient", "a patient id ≥ 0", patient)
    prod = get_product(product)
    cohort = _cohort(disease, marrow_blasts, tumour_volume_ml, weight, age, dose_per_kg,
                     dose, cd19neg, 1)
    assert isinstance(cohort, Cohort)
    cohort = replace(cohort, patient_id=np.array([patient]))
    from cartsim.sbml.export import write_patient

    write_patient(out, cohort, prod, seed=seed, variability=not typical)
    Console().print(f"written: {out} (patient {patient}, seed {seed}; SBML L3V2, "
                    f"deterministic skeleton of the installed model)")


@app.command("sbml-cohort")
def sbml_cohort(
    model: Annotated[str, typer.Argument(
        help="a shipped BioModels id (BIOMD0000001012, ...) or an SBML file")],
    out: Annotated[Path, typer.Option(help="output directory")],
    patients: Annotated[int, typer.Option(help="cohort size")] = 100,
    duration: Annotated[float, typer.Option(help="simulated time, in the model's unit")] = 60.0,
    points: Annotated[int, typer.Option(help="output time points")] = 121,
    iiv: Annotated[float, typer.Option(
        help="log-normal sd of inter-individual variability on positive parameters")] = 0.2,
    seed: Annotated[int, typer.Option(help="root random seed")] = 0,
    fixed: Annotated[list[str] | None, typer.Option(
        help="parameter kept at its published value (repeatable)")] = None,
) -> None:
    """Run a published SBML model (or any SBML file) as a virtual cohort with libRoadRunner;
    writes trajectories.parquet."""
    try:
        from cartsim.atomic import PARQUET_OPTIONS, atomic_write, check_output_dir
        from cartsim.sbml.cohort import run_cohort

        check_output_dir(out)
        df = run_cohort(model, patients, duration, seed=seed, iiv_sd=iiv, points=points,
                        fixed=tuple(fixed or ()))
        Path(out).mkdir(parents=True, exist_ok=True)
        atomic_write(Path(out) / "trajectories.parquet",
                     lambda tmp: df.to_parquet(tmp, index=False, **PARQUET_OPTIONS))
        Console().print(f"written: {out}/trajectories.parquet ({patients} patients of "
                        f"{df.attrs['model']}, {len(df.attrs['varied'])} parameters varied)")
    except CartsimError as e:
        _error(e)


def main() -> None:  # pragma: no cover
    app()


def _mount_subcommands() -> None:
    from cartsim.calibrate.cli import calibrate_command, sensitivity_command
    from cartsim.claims.cli import claims_command
    from cartsim.clinic.cli import grade_command
    from cartsim.screen.cli import screen_app
    from cartsim.trial.cli import trial_app
    from cartsim.validate.cli import validate_command, validate_diff_command

    app.add_typer(screen_app, name="screen")
    app.add_typer(trial_app, name="trial")
    app.command("grade")(grade_command)
    app.command("validate")(validate_command)
    app.command("validate-diff")(validate_diff_command)
    app.command("claims")(claims_command)
    app.command("calibrate")(calibrate_command)
    app.command("sensitivity")(sensitivity_command)


_mount_subcommands()
