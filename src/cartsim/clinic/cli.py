"""``cartsim grade RECORDS.csv --out DIR``: grade real patient records (typer command function).

The main CLI registers :func:`grade_command`. Exit codes: 0 all rows valid, 3 some rows were
rejected (every valid row is still graded), 2 fatal input error (nothing is written).
Outputs are staged in a temporary directory beside ``DIR`` and moved in with ``os.replace``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cartsim.errors import CartsimError

if TYPE_CHECKING:  # pandas and matplotlib load only when the command runs
    import pandas as pd

EXIT_OK = 0
EXIT_FATAL = 2
EXIT_REJECTED = 3


def _safe_name(patient_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(patient_id))[:80] or "patient"


def timeline_names(patient_ids: list[str]) -> dict[str, str]:
    """A distinct file-name stem per patient id, stable across runs.

    Ids made only of letters, digits, ``_ . -`` keep their name; any other id (``P 1``,
    ``P/1``) and any id that would collide with another one ignoring case (``p1`` and ``P1``
    on macOS or Windows) gets a suffix from a hash of the id, so no two patients ever write
    the same file.
    """
    ids = sorted({str(p) for p in patient_ids})
    lower: dict[str, int] = {}
    for pid in ids:
        key = _safe_name(pid).lower()
        lower[key] = lower.get(key, 0) + 1
    names = {}
    for pid in ids:
        safe = _safe_name(pid)
        if safe != pid or lower[safe.lower()] > 1:
            safe = f"{safe[:70]}-{hashlib.sha256(pid.encode('utf-8')).hexdigest()[:8]}"
        names[pid] = safe
    if len({n.lower() for n in names.values()}) != len(names):  # pragma: no cover - sha256
        raise CartsimError("patient ids collide after making file names; rename a patient")
    return names


#: First characters that make a spreadsheet read a text cell as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Prefix ``'`` to text cells that a spreadsheet would run as a formula (they start with
    ``= + - @``, tab or carriage return). Numbers — negative ones included, whether stored as
    numbers or as text such as ``-2.5`` — are left alone."""
    import pandas as pd

    out = df.copy()
    for c in out.columns:
        if out[c].dtype != object and not pd.api.types.is_string_dtype(out[c]):
            continue

        def fix(v: object) -> object:
            if not isinstance(v, str) or not v.startswith(FORMULA_START):
                return v
            try:
                float(v)
                return v
            except ValueError:
                return "'" + v

        out[c] = out[c].map(fix)
    return out


def plot_timeline(grades: pd.DataFrame, patient_id: str, path: Path) -> None:
    """Write one patient's timeline PNG: temperature, CRS/ICANS grades, ANC and platelets."""
    g = grades[grades["patient_id"] == patient_id].sort_values("day")
    patient_id = str(patient_id)
    import pandas as pd
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 7))
    axes = fig.subplots(3, 1, sharex=True)
    ax = axes[0]
    ax.plot(g["day"], g["temperature_max_c"], "o-", color="tab:red", ms=3)
    ax.axhline(38.0, ls="--", color="grey", lw=0.8)
    ax.set_ylabel("T max (°C)")
    ax.set_title(f"Patient {patient_id}")
    ax = axes[1]
    ax.step(g["day"], g["crs_grade_astct"], where="post", label="CRS (ASTCT)")
    ax.step(g["day"], g["icans_grade_astct"], where="post", label="ICANS (ASTCT)")
    ax.set_ylim(-0.2, 5.2)
    ax.set_ylabel("grade")
    ax.legend(loc="upper right", fontsize=8)
    ax = axes[2]
    anc = pd.to_numeric(g["anc_per_ul"], errors="coerce")
    pl = pd.to_numeric(g["platelets_per_ul"], errors="coerce") / 1000.0
    ax.plot(g["day"], anc, "o-", ms=3, label="ANC (/µL)")
    ax.plot(g["day"], pl, "s-", ms=3, label="platelets (10³/µL)")
    if (anc > 0).any() or (pl > 0).any():
        ax.set_yscale("log")
    ax.set_xlabel("days since infusion")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def _write_outputs(out: Path, files: dict[str, pd.DataFrame], grades: pd.DataFrame,
                   names: dict[str, str], plots: bool = True,
                   progress: Callable[[int, int | None], None] | None = None) -> None:
    """Stage every output in a sibling temp dir, then move each in with ``os.replace``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        for name, df in files.items():
            neutralise_formulas(df).to_csv(stage / name, index=False)
        if plots and not grades.empty:
            pids = sorted(grades["patient_id"].unique())
            by_patient = dict(tuple(grades.groupby("patient_id", sort=False)))
            for k, pid in enumerate(pids):
                plot_timeline(by_patient[pid], pid, stage / f"timeline_{names[str(pid)]}.png")
                if progress:
                    progress(k + 1, len(pids))
        out.mkdir(parents=True, exist_ok=True)
        for f in sorted(stage.iterdir()):
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def grade_command(
    records: Annotated[list[Path], typer.Argument(
        help="Records: a long CSV (patient_id, day, measure, value, unit), SDTM domain files "
             "(DM/VS/LB/AE/CM/EX as CSV or SAS .xpt) or a directory of them, or an Excel "
             "workbook (.xlsx).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path("grades"),
    ctcae_version: Annotated[str, typer.Option(help="CTCAE version for cytopenias: "
                                               "4.03, 5.0 or 6.0.")] = "5.0",
    plots: Annotated[bool, typer.Option("--plots/--no-plots",
                                        help="Write one timeline PNG per patient.")] = True,
) -> None:
    """Grade real patient records with the ASTCT and CTCAE graders.

    Writes DIR/daily_grades.csv, DIR/patient_summary.csv, DIR/ae.csv (SDTM-like AE rows with
    ASTCT and CTCAE grades), DIR/rejected_rows.csv, DIR/record_warnings.csv and (unless
    --no-plots) one DIR/timeline_<patient>.png per patient. Exit 0 if every row was valid,
    3 if some rows were rejected (the rest are graded), 2 on a fatal input error (nothing
    written).
    """
    from rich.console import Console

    from cartsim.atomic import check_output_dir
    from cartsim.clinic.records import grade_records
    from cartsim.clinic.sdtm import graded_ae_rows
    from cartsim.progress import progress as progress_bar

    console = Console(stderr=True)
    try:
        check_output_dir(out)
        parsed, grades, summary = grade_records(records, ctcae_version)
    except CartsimError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_FATAL) from None
    if parsed.valid.empty:
        typer.echo(f"error: no valid rows in {', '.join(map(str, records))} "
                   f"({len(parsed.rejected)} rejected)",
                   err=True)
    names = timeline_names([] if grades.empty else list(grades["patient_id"].unique()))
    if not summary.empty and "patient_id" in summary.columns:
        summary = summary.assign(timeline_png=[
            f"timeline_{names[str(p)]}.png" if plots else "" for p in summary["patient_id"]])
    n_pat = len(names)
    try:
        with progress_bar("timelines", "patients", n_pat, console,
                          enabled=plots and n_pat >= 20) as update:
            _write_outputs(out, {"daily_grades.csv": grades, "patient_summary.csv": summary,
                                 "rejected_rows.csv": parsed.rejected,
                                 "record_warnings.csv": parsed.warnings,
                                 "ae.csv": graded_ae_rows(grades, ctcae_version)},
                           grades, names,
                           plots=plots, progress=update)
    except OSError as exc:
        typer.echo(f"error: cannot write outputs to {out}: {exc}", err=True)
        raise typer.Exit(EXIT_FATAL) from None
    n_rej = len(parsed.rejected)
    n_warn = len(parsed.warnings)
    typer.echo(f"graded {parsed.n_rows - n_rej} of {parsed.n_rows} rows for {n_pat} patients; "
               f"{n_rej} rejected; {n_warn} warnings; outputs in {out}")
    raise typer.Exit(EXIT_REJECTED if n_rej else EXIT_OK)
