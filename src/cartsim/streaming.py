"""``cartsim simulate`` at scale: chunks streamed to Parquet, memory bounded by the chunk.

:class:`ChunkedWriter` takes one :class:`~cartsim.simulation.SimulationResult` per chunk of
patients and appends it to ``trajectories.parquet`` and ``events.parquet`` (one row group per
chunk) in a temporary directory beside the output, keeping only what the summary table needs
per patient (a handful of numbers) and the figure's readouts of the first 2000 patients (the
figure's bands are over them: patients are independent draws); on a
clean exit the files move into place, on an error nothing is left behind. The content is the
same as writing the whole cohort at once.

:func:`resource_warnings` says, before a run, when the estimated peak memory (one chunk) or
the estimated output size would exceed what the machine has. The per-patient-day figures are
measured on this code (see :data:`RESOURCE_PARAMS`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd

from cartsim.atomic import PARQUET_OPTIONS
from cartsim.params import ParameterSpec, ParameterTable

#: Resource estimates per patient-day of output (27 daily readouts).
RESOURCE_PARAMS = ParameterTable((
    ParameterSpec("mem_bytes_per_patient_day", "B", 700.0, 100.0, 1e5,
                  "measured (this code, 2 shared cores): peak RSS of `cartsim simulate "
                  "--patients 500 --chunk-size 500 --days 365` (599 MB) minus that of "
                  "--patients 1 (485 MB) over 500 × 371 patient-days = 628 B, rounded up",
                  "working memory of one chunk per patient-day (solver state, readouts, "
                  "the chunk's tables)"),
    ParameterSpec("disk_bytes_per_patient_day", "B", 180.0, 10.0, 1e4,
                  "measured: the 500-patient run above wrote 32.1 MB of Parquet (173 B per "
                  "patient-day; issue 13 reports 588 MB for 10,000 × 371, 158 B), rounded up",
                  "Parquet output per patient-day (trajectories and events)"),
    ParameterSpec("mem_base_bytes", "B", 5e8, 0.0, 1e10,
                  "measured: peak RSS of `cartsim simulate --patients 1 --days 365` (485 MB)",
                  "memory of the process before the first chunk"),
))
_R = RESOURCE_PARAMS.defaults()


@dataclass(frozen=True)
class Estimate:
    """Estimated peak memory and output size of a run, bytes."""

    memory: float
    disk: float


def estimate(patients: int, days: int, chunk_size: int) -> Estimate:
    """Peak memory (one chunk at a time) and output size of ``cartsim simulate``."""
    n_days = days + 6  # day −5 to ``days`` inclusive
    mem = _R["mem_base_bytes"] + min(chunk_size, patients) * n_days * _R[
        "mem_bytes_per_patient_day"]
    return Estimate(mem, patients * n_days * _R["disk_bytes_per_patient_day"])


def available_memory() -> float | None:
    """Memory available to new work (``MemAvailable``), bytes; None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024.0
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def free_disk(path: Path) -> float | None:
    """Free space on the file system that will hold ``path``, bytes; None where unknown."""
    anc = Path(path).resolve()
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    try:
        return float(shutil.disk_usage(anc).free)
    except OSError:
        return None


def _gb(x: float) -> str:
    return f"{x / 1e9:.2f} GB" if x >= 1e8 else f"{x / 1e6:.0f} MB"


def resource_warnings(patients: int, days: int, chunk_size: int, out: Path,
                      memory: float | None = None, disk: float | None = None) -> list[str]:
    """Warnings (empty when the run fits) with the estimate and what to change."""
    est = estimate(patients, days, chunk_size)
    memory = available_memory() if memory is None else memory
    disk = free_disk(out) if disk is None else disk
    out_lines = []
    if memory is not None and est.memory > memory:
        out_lines.append(
            f"this run needs about {_gb(est.memory)} of memory ({min(chunk_size, patients)} "
            f"patients per chunk × {days + 6} days) but {_gb(memory)} is available; "
            f"lower --chunk-size")
    if disk is not None and est.disk > disk:
        out_lines.append(
            f"the output will take about {_gb(est.disk)} ({patients} patients × {days + 6} "
            f"days) but {_gb(disk)} is free where --out is; choose another --out, fewer "
            f"--patients or fewer --days")
    return out_lines


@dataclass
class RunSummary:
    """What the summary table needs, per patient (one row each), and the run's status."""

    per_patient: pd.DataFrame
    status: np.ndarray
    seed: int
    meta: dict[str, Any] = field(default_factory=dict)


def _per_patient(traj: pd.DataFrame) -> pd.DataFrame:
    post = traj[traj.day >= 0]
    g = post.groupby("patient_id")
    peak = g["cart_cells_per_ul"].max()
    tmax = post.loc[g["cart_cells_per_ul"].idxmax().dropna(), ["patient_id", "day"]]
    d28 = traj[traj.day == 28].set_index("patient_id")["mrd_fraction"]
    return pd.DataFrame({
        "cart_peak": peak,
        "cart_tmax": tmax.set_index("patient_id")["day"].reindex(peak.index),
        "il6_peak": g["il6_pg_ml"].max(),
        "temp_max": g["temperature_c"].max(),
        "mrd_d28": d28.reindex(peak.index),
    })


_EVENT_SCHEMA = {"patient_id": "int64", "day": "int64", "event": "object", "value": "float64",
                 "unit": "object"}


class ChunkedWriter:
    """Streams chunks of a run into ``out`` (see the module docstring)."""

    def __init__(self, out: Path, max_plot_patients: int = 2000, plot: bool = True) -> None:
        self.out = Path(out)
        self.max_plot = max_plot_patients
        self.plot = plot
        self._writers: dict[str, Any] = {}
        self._plot_parts: list[pd.DataFrame] = []
        self._plot_n = 0
        self._plot_events: list[pd.DataFrame] = []
        self._summaries: list[pd.DataFrame] = []
        self._status: list[np.ndarray] = []
        self._meta: dict[str, Any] = {}
        self._seed = 0
        self.chunks = 0
        self._total = 0
        self._tmp: Path | None = None
        self.summary: RunSummary | None = None

    def __enter__(self) -> ChunkedWriter:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", dir=self.out.parent))
        return self

    def _append(self, name: str, df: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        assert self._tmp is not None
        w = self._writers.get(name)
        table = pa.Table.from_pandas(df, preserve_index=False)
        if w is None:
            table = table.replace_schema_metadata({
                **(table.schema.metadata or {}),
                b"cartsim": json.dumps(self._meta, default=str).encode()})
            w = pq.ParquetWriter(self._tmp / name, table.schema, **PARQUET_OPTIONS)
            self._writers[name] = w
        else:
            table = table.cast(w.schema)
        w.write_table(table)

    def add(self, res: Any, patients: int) -> None:
        """Append one chunk's :class:`~cartsim.simulation.SimulationResult`."""
        if self.chunks == 0:
            self._meta = {**res.meta, "patients": patients}
            self._seed = res.seed
        traj: pd.DataFrame = res.trajectories
        self._append("trajectories.parquet", traj)
        ev = res.events.astype(_EVENT_SCHEMA)
        self._append("events.parquet", ev)
        self._summaries.append(_per_patient(traj))
        self._status.append(np.asarray(res.status))
        if self.plot and self._plot_n < self.max_plot:
            from cartsim.report.trajectories import figure_columns

            ids = np.unique(traj["patient_id"].to_numpy())[: self.max_plot - self._plot_n]
            cols = [c for c in ("patient_id", "day", *figure_columns()) if c in traj.columns]
            self._plot_parts.append(traj.loc[traj["patient_id"].isin(ids), cols])
            ev_plot = res.events
            self._plot_events.append(ev_plot[ev_plot["patient_id"].isin(ids)])
            self._plot_n += ids.size
        self._total += int(np.unique(traj["patient_id"].to_numpy()).size)
        self.chunks += 1

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self._tmp is not None
        try:
            for w in self._writers.values():
                w.close()
            if et is not None or self.chunks == 0:
                return
            if self.plot:
                from cartsim.report.trajectories import plot_trajectories

                plot_trajectories(pd.concat(self._plot_parts, ignore_index=True),
                                  self._tmp / "trajectories.png", n_total=self._total,
                                  events=pd.concat(self._plot_events, ignore_index=True))
            self.out.mkdir(exist_ok=True)
            for f in self._tmp.iterdir():
                os.replace(f, self.out / f.name)
            self.summary = RunSummary(pd.concat(self._summaries), np.concatenate(self._status),
                                      self._seed, self._meta)
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)
