"""``cartsim grade RECORDS.csv --out DIR``: grade real patient records (typer command function).

The main CLI registers :func:`grade_command`. Exit codes: 0 all rows valid, 3 some rows were
rejected (every valid row is still graded), 2 fatal input error (nothing is written).
Outputs are staged in a temporary directory beside ``DIR`` and moved in with ``os.replace``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer

from cartsim.errors import CartsimError

if TYPE_CHECKING:  # pandas and matplotlib load only when the command runs
    import pandas as pd

EXIT_OK = 0
EXIT_FATAL = 2
EXIT_REJECTED = 3


def _safe_name(patient_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(patient_id))[:80] or "patient"


def plot_timeline(grades: pd.DataFrame, patient_id: str, path: Path) -> None:
    """Write one patient's timeline PNG: temperature, CRS/ICANS grades, ANC and platelets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    g = grades[grades["patient_id"] == patient_id].sort_values("day")
    fig, axes = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
    try:
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
    finally:
        plt.close(fig)


def _write_outputs(out: Path, files: dict[str, pd.DataFrame], grades: pd.DataFrame) -> None:
    """Stage every output in a sibling temp dir, then move each in with ``os.replace``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        for name, df in files.items():
            df.to_csv(stage / name, index=False)
        if not grades.empty:
            for pid in sorted(grades["patient_id"].unique()):
                plot_timeline(grades, pid, stage / f"timeline_{_safe_name(pid)}.png")
        out.mkdir(parents=True, exist_ok=True)
        for f in sorted(stage.iterdir()):
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def grade_command(
    records: Annotated[Path, typer.Argument(help="Long-format records CSV "
                                            "(patient_id, day, measure, value, unit).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path("grades"),
    ctcae_version: Annotated[str, typer.Option(help="CTCAE version for cytopenias: "
                                               "4.03, 5.0 or 6.0.")] = "5.0",
) -> None:
    """Grade real patient records with the ASTCT and CTCAE graders.

    Writes DIR/daily_grades.csv, DIR/patient_summary.csv, DIR/rejected_rows.csv and one
    DIR/timeline_<patient>.png per patient. Exit 0 if every row was valid, 3 if some rows
    were rejected (the rest are graded), 2 on a fatal input error (nothing written).
    """
    from cartsim.clinic.records import grade_records

    try:
        parsed, grades, summary = grade_records(records, ctcae_version)
    except CartsimError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_FATAL) from None
    if parsed.valid.empty:
        typer.echo(f"error: no valid rows in {records} ({len(parsed.rejected)} rejected)",
                   err=True)
    try:
        _write_outputs(out, {"daily_grades.csv": grades, "patient_summary.csv": summary,
                             "rejected_rows.csv": parsed.rejected}, grades)
    except OSError as exc:
        typer.echo(f"error: cannot write outputs to {out}: {exc}", err=True)
        raise typer.Exit(EXIT_FATAL) from None
    n_rej = len(parsed.rejected)
    n_pat = 0 if grades.empty else int(np.unique(grades["patient_id"]).size)
    typer.echo(f"graded {parsed.n_rows - n_rej} of {parsed.n_rows} rows for {n_pat} patients; "
               f"{n_rej} rejected; outputs in {out}")
    raise typer.Exit(EXIT_REJECTED if n_rej else EXIT_OK)
