"""Run a virtual trial in chunks: spec → per-chunk endpoint files → patients.parquet.

Each chunk task is a pure function of (spec, arm, patient ids, seed): it samples the chunk's
covariates (keyed per patient), simulates, computes endpoints and writes
``DIR/chunks/<arm>/chunk_<first_id>.parquet`` (+ ``daily_<first_id>.parquet``) atomically. The
chunk file is written last, so its presence marks a complete chunk; ``--resume`` skips those.
The merge streams chunks in plan order into fixed-size row groups, so ``patients.parquet`` is
byte-identical whatever the chunk size, worker count or interruptions.

Patient ids: with ``population.paired = false`` (default) the i-th patient of arm k has global
id ``i × n_arms + k`` (independent patients whose covariates do not change when the trial
grows); with ``paired = true`` every arm treats the same virtual patients ``0..N-1``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cartsim import parameter_sets
from cartsim.atomic import PARQUET_OPTIONS, atomic_write, check_output_dir, write_text_atomic
from cartsim.errors import InvalidInputError, OptionalDependencyError
from cartsim.provenance import parameter_set_status
from cartsim.trial.manifest import MANIFEST_FORMAT, read_manifest
from cartsim.trial.spec import (
    Arm,
    DoseSpec,
    TrialSpec,
    as_distribution,
    ld_exposure,
    validate_spec,
)

#: Interface of the local Dask cluster's scheduler, dashboard and workers (loopback only).
LOCAL_HOST = "127.0.0.1"
ROW_GROUP_ROWS = 65_536


@dataclass(frozen=True)
class ChunkPlan:
    arm_index: int
    arm: str
    first_id: int
    ids: tuple[int, ...]

    @property
    def patients_file(self) -> str:
        return f"chunks/{self.arm}/chunk_{self.first_id:09d}.parquet"

    @property
    def daily_file(self) -> str:
        return f"chunks/{self.arm}/daily_{self.first_id:09d}.parquet"


def patient_ids(spec: TrialSpec, arm_index: int, n: int | None = None) -> np.ndarray:
    """Global ids of an arm's patients (its first ``n``; default: the population size)."""
    n = spec.population.size if n is None else int(n)
    i = np.arange(n, dtype=np.int64)
    return i if spec.population.paired else i * len(spec.arms) + arm_index


def plan_chunks(spec: TrialSpec, chunk_size: int) -> list[ChunkPlan]:
    """Chunks per arm in order of global patient id."""
    if chunk_size < 1:
        raise InvalidInputError("chunk-size", "an integer ≥ 1", chunk_size)
    plans = []
    for k, arm in enumerate(spec.arms):
        ids = patient_ids(spec, k)
        for s in range(0, ids.size, chunk_size):
            part = tuple(int(v) for v in ids[s:s + chunk_size])
            plans.append(ChunkPlan(k, arm.name, part[0], part))
    return plans


# --------------------------------------------------------------------------- chunk task
def _product(arm: Arm) -> Any:
    from cartsim.products import DoseRule, Product, get_product

    if arm.product is not None:
        return get_product(arm.product)
    assert arm.inline_construct is not None
    c = arm.inline_construct.to_construct()
    return Product(c.name, c, DoseRule(flat=1e8), "inline", "trial spec inline construct")


def arm_doses(arm: Arm, product: Any, weight: np.ndarray, seed: int,
              ids: np.ndarray, disease: str | None = None) -> np.ndarray:
    """Total CAR+ cells per patient from the arm's dose (label rule for ``disease``, or the
    spec dose)."""
    if arm.dose == "label":
        rule = product.dose_rule_for(disease)
        return np.array([rule.dose(float(w)) for w in weight])
    return spec_doses(arm.dose, weight, seed, ids)


def spec_doses(d: DoseSpec, weight: np.ndarray, seed: int, ids: np.ndarray,
               stream: str = "dose") -> np.ndarray:
    """Total CAR+ cells per patient from a dose table (``stream`` keys its draws)."""
    per_kg = (as_distribution(d.per_kg).sample(seed, ids, f"{stream}_per_kg")
              if d.per_kg is not None else None)
    flat = (as_distribution(d.flat).sample(seed, ids, f"{stream}_flat")
            if d.flat is not None else None)
    if per_kg is not None:
        use_kg = np.ones(weight.size, bool) if d.max_weight_kg is None \
            else weight <= d.max_weight_kg
        dose = np.where(use_kg, per_kg * weight, flat if flat is not None else np.nan)
    else:
        dose = np.asarray(flat, dtype=np.float64)
    if d.cap is not None:
        dose = np.minimum(dose, d.cap)
    return dose


def schedule_procedures(arm: Arm, product: Any, dose: np.ndarray, weight: np.ndarray,
                        seed: int, ids: np.ndarray) -> list[Any]:
    """The arm's ``schedule`` items as simulation procedures (patients in ``ids`` order)."""
    from cartsim.trial.outcomes import HSCT_LOG_KILL
    from cartsim.trial.procedures import (
        SCHEDULE_PARAMS,
        DrugCourse,
        ReinfusionCourse,
        SalvageCourse,
        TransplantCourse,
        Trigger,
        salvage_early_relapse,
        salvage_log_kill,
    )

    out: list[Any] = []
    for j, it in enumerate(arm.schedule):
        trig = Trigger(it.trigger, it.day, it.window, it.mrd_below, it.delay_days)
        if it.kind == "allo_hsct":
            lk = HSCT_LOG_KILL.default if it.log_kill is None else it.log_kill
            out.append(TransplantCourse(trig, True, lk, it.ablate_cart, it.graft,
                                        it.if_mrd_below))
        elif it.kind == "asct":
            lk = SCHEDULE_PARAMS["asct_log_kill"].default if it.log_kill is None \
                else it.log_kill
            out.append(TransplantCourse(trig, False, lk, it.ablate_cart, graft=False))
        elif it.kind == "reinfusion":
            cells = dose if it.dose == "same" else spec_doses(it.dose, weight, seed, ids,
                                                              f"reinfusion{j}_dose")
            out.append(ReinfusionCourse(trig, cells, product.construct.memory_fraction,
                                        it.lymphodepletion))
        elif it.kind == "salvage":
            dist = salvage_log_kill() if it.log_kill is None else as_distribution(it.log_kill)
            lk = dist.sample(seed, ids, f"salvage{j}_log_kill")
            # the population's salvage (no log_kill of its own) answers early relapses worse
            factor, days = salvage_early_relapse() if it.log_kill is None else (1.0, 0.0)
            out.append(SalvageCourse(trig, lk, it.ablate_cart, factor, days))
        else:
            out.append(DrugCourse(trig, it.drug, it.amount, it.doses, it.every_days))
    return out


def _chunk_inputs(spec: TrialSpec, arm_index: int, ids: np.ndarray
                  ) -> tuple[Any, Any, Any, list[Any], dict[str, np.ndarray], np.ndarray]:
    """One chunk's cohort, product, protocol, procedures, covariates and doses."""
    from cartsim.clinic.protocol import load_protocol
    from cartsim.population import Cohort
    from cartsim.trial.outcomes import HsctProcedure

    arm = spec.arms[arm_index]
    pop = spec.population
    seed = spec.seed
    cov = pop.sample(seed, ids)
    product = _product(arm)
    dose = arm_doses(arm, product, cov["weight_kg"], seed, ids, pop.disease)
    cohort = Cohort.from_covariates(pop.disease, cov, dose=dose, patient_id=ids)
    protocol = None if arm.protocol == "none" else load_protocol(arm.protocol)
    procedures: list[Any] = []
    h = arm.consolidation.hsct
    if h is not None:
        procedures.append(HsctProcedure(h.day, h.if_mrd_below, h.log_kill, h.ablate_cart,
                                         h.graft))
    procedures += schedule_procedures(arm, product, dose, cov["weight_kg"], seed, ids)
    return cohort, product, protocol, procedures, cov, dose


def patient_covariates(cov: dict[str, np.ndarray], dose: np.ndarray, disease: str
                       ) -> dict[str, np.ndarray]:
    """The per-patient covariate columns of the trial's ``patients`` table (the disease's
    covariates, ``dose_cells`` and ``dose_per_kg``), in the order of ``cov``."""
    from cartsim.covariates import for_disease

    out = {c.name: cov[c.name] for c in for_disease(disease)}
    out["dose_cells"] = dose
    out["dose_per_kg"] = dose / cov["weight_kg"]
    return out


def simulate_chunk(spec: TrialSpec, arm_index: int, ids: np.ndarray
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate one chunk and return (per-patient endpoints, per-day plot table)."""
    from cartsim.simulation import simulate
    from cartsim.trial.endpoints import Course, compute_endpoints, daily_table

    arm = spec.arms[arm_index]
    pop = spec.population
    seed = spec.seed
    ids = np.asarray(ids, dtype=np.int64)
    cohort, product, protocol, procedures, cov, dose = _chunk_inputs(spec, arm_index, ids)
    res = simulate(cohort, product, days=spec.follow_up_days, seed=seed, protocol=protocol,
                   procedures=procedures, lymphodepletion=ld_exposure(arm.lymphodepletion))
    course = Course.from_result(res)
    order = np.argsort(ids)
    assert np.array_equal(course.patient_id, ids[order])
    covariates = {k: v[order] for k, v in patient_covariates(cov, dose, pop.disease).items()}
    table, grades = compute_endpoints(
        course, res.events, covariates, disease=pop.disease, seed=seed,
        follow_up_days=spec.follow_up_days, assessment_days=spec.assessment_days,
        crs_scale=spec.crs_scale, protocol_grades=protocol is not None,
        status=res.status[order], death_overrides=dict(spec.death),
    )
    daily = daily_table(course, table, grades, spec.follow_up_days)
    for df in (table, daily):
        df.insert(0, "arm", arm.name)
        df.insert(1, "arm_index", np.int64(arm_index))
    return table, daily


def run_chunk(spec_data: dict[str, Any], arm_index: int, ids: tuple[int, ...],
              out_dir: str) -> dict[str, Any]:
    """The chunk task: pure function of (spec, arm, ids, seed) → files. Returns a record."""
    spec = validate_spec(spec_data)
    plan = ChunkPlan(arm_index, spec.arms[arm_index].name, ids[0], tuple(ids))
    t0 = time.perf_counter()
    table, daily = simulate_chunk(spec, arm_index, np.asarray(ids))
    out = Path(out_dir)
    write_parquet_atomic(daily, out / plan.daily_file, checksum=True)
    # written last: marks completion
    write_parquet_atomic(table, out / plan.patients_file, checksum=True)
    return {"arm": plan.arm, "first_id": plan.first_id, "n": len(ids),
            "seconds": round(time.perf_counter() - t0, 3)}


# ------------------------------------------------------------------------------ I/O
def _table(df: pd.DataFrame) -> pa.Table:
    t = pa.Table.from_pandas(df, preserve_index=False)
    return t.replace_schema_metadata(None)


def write_parquet_atomic(df: pd.DataFrame | pa.Table, path: Path, checksum: bool = False) -> None:
    """Write a parquet file atomically; ``checksum`` adds page CRCs (chunk files, so that
    ``--resume`` can tell a damaged chunk from a complete one)."""
    table = df if isinstance(df, pa.Table) else _table(df)
    atomic_write(path, lambda tmp: pq.write_table(table, tmp, row_group_size=ROW_GROUP_ROWS,
                                                  write_page_checksum=checksum,
                                                  **PARQUET_OPTIONS))


def merge_streaming(files: list[Path], path: Path, sort: tuple[str, ...]) -> int:
    """Concatenate parquet files (already in global order) into ``path`` with fixed-size row
    groups, holding at most about one row group plus one chunk in memory. Returns rows."""
    if not files:
        raise InvalidInputError("chunks", "at least one chunk file", 0)
    total = 0

    def fill(tmp: Path) -> None:
        nonlocal total
        writer: pq.ParquetWriter | None = None
        pending: list[pa.Table] = []
        n_pending = 0
        try:
            for f in files:
                t = pq.read_table(f)
                if sort:
                    t = t.sort_by([(c, "ascending") for c in sort])
                if writer is None:
                    writer = pq.ParquetWriter(tmp, t.schema, **PARQUET_OPTIONS)
                pending.append(t)
                n_pending += t.num_rows
                while n_pending >= ROW_GROUP_ROWS:
                    buf = pa.concat_tables(pending)
                    writer.write_table(buf.slice(0, ROW_GROUP_ROWS),
                                       row_group_size=ROW_GROUP_ROWS)
                    rest = buf.slice(ROW_GROUP_ROWS)
                    pending, n_pending = [rest], rest.num_rows
                total += t.num_rows
            if writer is not None and n_pending:
                writer.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP_ROWS)
        finally:
            if writer is not None:
                writer.close()

    atomic_write(path, fill)
    return total


def versions() -> dict[str, str]:
    import numba
    import scipy

    import cartsim

    return {"cartsim": cartsim.__version__, "python": platform.python_version(),
            "numpy": np.__version__, "scipy": scipy.__version__, "numba": numba.__version__,
            "pandas": pd.__version__, "pyarrow": pa.__version__}


def _chunk_complete(out: Path, plan: ChunkPlan) -> bool:
    """True when both files of the chunk exist and read back whole (page checksums verified,
    the right number of patients); a damaged or truncated chunk is simply run again."""
    f, daily = out / plan.patients_file, out / plan.daily_file
    if not f.is_file() or not daily.is_file():
        return False
    try:
        table = pq.read_table(f, page_checksum_verification=True)
        days = pq.read_table(daily, page_checksum_verification=True)
    except Exception:  # any read failure (pyarrow raises several kinds) means redo the chunk
        return False
    if table.num_rows != len(plan.ids) or "patient_id" not in table.column_names:
        return False
    ids = table.column("patient_id").to_pylist()
    return sorted(ids) == sorted(plan.ids) and days.num_rows > 0


# --------------------------------------------------------------------------- executors
def _execute(tasks: list[ChunkPlan], spec_data: dict[str, Any], out: Path, executor: str,
             workers: int, address: str | None,
             on_done: Callable[[ChunkPlan, dict[str, Any]], None]) -> None:
    if executor == "local" and workers == 1:
        for t in tasks:
            on_done(t, run_chunk(spec_data, t.arm_index, t.ids, str(out)))
        return
    if executor == "local":
        from concurrent.futures import as_completed

        from cartsim.trial.workers import process_pool

        threads = max(1, (os.cpu_count() or 1) // workers)
        with process_pool(workers, threads) as pool:
            futs = {pool.submit(run_chunk, spec_data, t.arm_index, t.ids, str(out)): t
                    for t in tasks}
            for f in as_completed(futs):
                on_done(futs[f], f.result())
        return
    if executor == "dask":
        try:
            from dask.distributed import Client, LocalCluster
            from dask.distributed import as_completed as das_completed
        except ImportError:
            raise OptionalDependencyError("the dask executor", "dask") from None
        cluster = None
        if address:
            client = Client(address)
        else:
            # everything local listens on the loopback interface only: the scheduler, its
            # dashboard (on a free port) and the workers; nothing is reachable from the network
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   host=LOCAL_HOST, dashboard_address=f"{LOCAL_HOST}:0",
                                   worker_dashboard_address=f"{LOCAL_HOST}:0")
            client = Client(cluster)
        try:
            futs = {client.submit(run_chunk, spec_data, t.arm_index, t.ids, str(out),
                                  pure=False): t for t in tasks}
            by_key = {f.key: t for f, t in futs.items()}
            for f in das_completed(list(futs)):
                on_done(by_key[f.key], f.result())
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
        return
    raise InvalidInputError("executor", "local or dask", executor)


# ------------------------------------------------------------------------------- run
@dataclass
class TrialRun:
    out: Path
    spec: TrialSpec
    n_chunks: int
    n_skipped: int
    seconds: float
    patients: pd.DataFrame


def _manifest(spec: TrialSpec, plans: list[ChunkPlan], chunk_size: int, status: str
              ) -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT,
        "status": status,
        "spec_digest": spec.digest(),
        "seed": spec.seed,
        "patients_per_arm": spec.population.size,
        "chunk_size": chunk_size,
        "spec": spec.canonical(),
        "versions": versions(),
        "parameter_set": parameter_set_status(),
        "parameter_set_in_force": parameter_sets.describe(),
        "chunks": [{"arm": p.arm, "arm_index": p.arm_index, "first_id": p.first_id,
                    "n": len(p.ids), "file": p.patients_file} for p in plans],
    }


def run_trial(
    spec: TrialSpec,
    out: Path,
    *,
    chunk_size: int = 50,
    workers: int = 1,
    executor: str = "local",
    address: str | None = None,
    resume: bool = False,
    report: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> TrialRun:
    """Run (or resume) a trial into ``out``; returns the merged per-patient table.

    ``progress(done_patients, total_patients)`` is called after every finished chunk.
    """
    if executor not in ("local", "dask"):
        raise InvalidInputError("executor", "local or dask", executor)
    if not 1 <= workers <= 256:
        raise InvalidInputError("workers", "an integer in [1, 256]", workers)
    if executor == "dask":
        try:
            import dask.distributed  # noqa: F401
        except ImportError:
            raise OptionalDependencyError("the dask executor", "dask") from None
    out = check_output_dir(out)
    t0 = time.perf_counter()
    mf = out / "manifest.json"
    if resume:
        old = read_manifest(out)
        if old.get("spec_digest") != spec.digest() or old.get("seed") != spec.seed:
            raise InvalidInputError(
                "--resume", f"the spec and seed recorded in {mf} (seed {old.get('seed')}, "
                f"{old.get('patients_per_arm')} patients per arm, digest "
                f"{str(old.get('spec_digest'))[:12]})",
                f"seed {spec.seed}, {spec.population.size} patients per arm, digest "
                f"{spec.digest()[:12]}", "start a fresh output directory instead")
        was = (old.get("parameter_set_in_force") or {}).get("digest")
        now = parameter_sets.describe()["digest"]
        if "parameter_set_in_force" in old and was != now:
            raise InvalidInputError(
                "--resume", f"the parameter set recorded in {mf} "
                f"({old['parameter_set_in_force'].get('name')})",
                parameter_sets.describe()["name"],
                "resume with the same --parameter-set, or start a fresh output directory")
        chunk_size = int(old["chunk_size"])  # the chunk plan is the manifest's
    elif mf.exists():
        raise InvalidInputError("--out", "a directory without a previous trial (or pass "
                                "--resume)", str(out))
    plans = plan_chunks(spec, chunk_size)
    out.mkdir(parents=True, exist_ok=True)
    for tmp in out.glob("chunks/*/.*.tmp"):
        tmp.unlink()
    write_text_atomic(mf, json.dumps(_manifest(spec, plans, chunk_size, "running"), indent=2))
    todo = [p for p in plans if not (resume and _chunk_complete(out, p))]
    total = spec.population.size * len(spec.arms)
    done = sum(len(p.ids) for p in plans) - sum(len(p.ids) for p in todo)
    if progress:
        progress(done, total)

    def on_done(plan: ChunkPlan, rec: dict[str, Any]) -> None:
        nonlocal done
        done += len(plan.ids)
        if progress:
            progress(done, total)

    _execute(todo, spec.canonical(), out, executor, workers, address, on_done)
    merge_streaming([out / p.patients_file for p in plans], out / "patients.parquet",
                    ("patient_id",))
    merge_streaming([out / p.daily_file for p in plans], out / "daily.parquet",
                    ("patient_id", "day"))
    patients = pd.read_parquet(out / "patients.parquet")
    from cartsim.trial.summary import write_summary

    write_summary(patients, spec, out)
    if report:
        from cartsim.report.html import write_report

        write_report(out)
    write_text_atomic(mf, json.dumps(_manifest(spec, plans, chunk_size, "complete"), indent=2))
    return TrialRun(out, spec, len(plans), len(plans) - len(todo),
                    time.perf_counter() - t0, patients)


def iter_chunk_files(out: Path) -> Iterator[Path]:
    man = read_manifest(out)
    for c in man["chunks"]:
        yield Path(out) / c["file"]
