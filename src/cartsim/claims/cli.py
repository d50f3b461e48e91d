"""``cartsim claims`` (mounted by cartsim.cli)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cartsim.cli_options import ParameterSetOption
from cartsim.errors import CartsimError, InvalidInputError
from cartsim.trial.workers import default_workers

console = Console(stderr=True)


def _commit() -> str:
    try:
        r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                           text=True, timeout=5, cwd=Path(__file__).parent)
        return r.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def claims_command(
    out: Annotated[Path, typer.Option("--out", help="output directory (claims.csv/json/md)")],
    # cartsim.claims.run.DEFAULT_PATIENTS (not imported here: it pulls pandas into the CLI)
    patients: Annotated[int, typer.Option(help="virtual patients per arm")] = 1000,
    seed: Annotated[int | None, typer.Option(
        help="root seed of every experiment (default: each study spec's own seed)")] = None,
    only: Annotated[str | None, typer.Option(
        help="only these claim ids or id/part keys, comma-separated (e.g. A8,B7)")] = None,
    claims_file: Annotated[Path | None, typer.Option(
        "--claims", help="claims TOML (default: the shipped data/claims/claims.toml)")] = None,
    doc: Annotated[Path | None, typer.Option(
        help="also write the Markdown table here (e.g. docs/claims.md)")] = None,
    parameter_set: ParameterSetOption = None,
    workers: Annotated[int | None, typer.Option(
        help="worker processes simulating the experiments' arms in parallel (default: the "
             "CPU count, at most 8; the numbers do not depend on it)")] = None,
    examples: Annotated[Path | None, typer.Option(
        help="also run every trial spec in this directory (e.g. examples) at --patients per "
             "arm and add their headline endpoints to the document")] = None,
) -> None:
    """Test every claim of the two source reviews by a paired virtual experiment."""
    try:
        from cartsim.parameter_sets import select

        # validated before any work; in force here and in the worker processes (ENV_VAR)
        select(parameter_set)
        _run(out, patients, seed, only, claims_file, doc,
             workers if workers is not None else default_workers(), examples)
    except CartsimError as e:
        from rich.markup import escape

        console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _run(out: Path, patients: int, seed: int | None, only: str | None,
         claims_file: Path | None, doc: Path | None, workers: int = 1,
         examples: Path | None = None) -> None:
    import cartsim
    from cartsim.atomic import check_output_dir
    from cartsim.claims.report import counts, write_outputs
    from cartsim.claims.run import run_claims
    from cartsim.claims.schema import load_claims

    check_output_dir(out)
    claims = load_claims(claims_file)
    if examples is not None:
        from cartsim.claims.examples import example_paths

        example_paths(examples)  # a bad directory fails before any simulation
    if only:
        want = [w.strip() for w in only.split(",") if w.strip()]
        known = {c.id for c in claims} | {c.key for c in claims}
        bad = [w for w in want if w not in known]
        if bad:
            raise InvalidInputError("--only", "claim ids or id/part keys of the claims file",
                                    ",".join(bad))
        claims = [c for c in claims if c.id in want or c.key in want]
    t0 = time.perf_counter()

    def tick(k: int, n: int, key: str) -> None:
        console.print(f"[{k}/{n}] {key} ({time.perf_counter() - t0:.0f} s)", highlight=False)

    if workers > 1:
        console.print(f"simulating the experiments' arms in {workers} worker processes",
                      highlight=False)
    results = run_claims(claims, patients=patients, seed=seed, progress=tick, workers=workers)
    example_results = None
    if examples is not None:
        from cartsim.claims.examples import run_examples

        example_results = run_examples(examples, patients, seed, progress=tick)
    command = "cartsim " + " ".join(sys.argv[1:]) if sys.argv and "claims" in sys.argv \
        else f"cartsim claims --patients {patients} --out {out}"
    from cartsim.parameter_sets import describe

    meta = {"version": cartsim.__version__, "commit": _commit(), "patients": patients,
            "seed": seed, "parameter_set": describe(), "seconds": time.perf_counter() - t0}
    paths = write_outputs(results, out, command, meta, doc, examples=example_results)
    c = counts(results)
    console.print(", ".join(f"{k}: {v}" for k, v in c["rows"].items()) + f" (of {c['n_rows']})")
    from cartsim.provenance import parameter_set_status

    console.print(f"parameter set: {parameter_set_status()}", highlight=False, soft_wrap=True)
    console.print("written: " + ", ".join(str(p) for p in paths.values()))
