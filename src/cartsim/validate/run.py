"""``cartsim validate``: run the study library and compare every published figure.

Outputs (``DIR/``, each written atomically): ``validation.csv`` (one line per targets row),
``summary.json`` (shares inside the published CI / within 10 points, per study, disease,
endpoint family and overall), ``report.html`` and ``trials/<spec>/`` (each study's trial outputs).
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cartsim import parameter_sets
from cartsim.atomic import write_text_atomic
from cartsim.errors import CartsimError, InvalidInputError
from cartsim.provenance import parameter_set_status
from cartsim.trial.spec import TrialSpec, load_spec
from cartsim.validate.compute import Simulated, simulate_row, unmapped
from cartsim.validate.headline import headline_summary
from cartsim.validate.library import (
    Library,
    LibraryError,
    StudyEntry,
    default_specs_dir,
    load_library,
)
from cartsim.validate.mapping import (
    MappingTable,
    _span,
    choose_subgroup,
    crs_scale,
    default_mapping,
    normalise_unit,
    parse_timepoint,
)
from cartsim.validate.targets import RowError, TargetRow, Targets, costim_class, read_targets

#: The acceptance tolerance where a published row gives no CI (percentage points).
POINTS = 10.0
#: The default virtual patients per study arm (docs/validation.md: the whole library in
#: ≤ 15 minutes on 2 cores).
DEFAULT_PATIENTS = 1000
CSV_COLUMNS = ("study", "line", "endpoint", "timepoint", "subgroup", "scale", "disease", "costim",
               "family", "unit", "published", "published_ci_low", "published_ci_high", "simulated",
               "simulated_ci_low", "simulated_ci_high", "n_simulated", "inside_published_ci",
               "within_10_points", "difference", "passes", "margin", "status", "reason", "notes",
               "spec")
STATUSES = ("compared", "baseline", "unmapped", "unexpressible", "error")


@dataclass
class StudyRun:
    entry: StudyEntry
    spec: TrialSpec
    patients: pd.DataFrame
    daily: pd.DataFrame
    seconds: float
    #: patients the simulator stopped early (solver failure or the plausibility check; the
    #: trial's summary.json ``stopped_patients``): their courses end that day and their
    #: endpoints are censored there, so a parameter set that stops many can look better
    stopped: int = 0


@dataclass
class ValidationResult:
    out: Path
    table: pd.DataFrame
    summary: dict[str, Any]
    errors: list[RowError]
    runs: dict[str, StudyRun]


ProgressFn = Callable[[str, int, int], None]


def select_entries(library: Library, targets: Targets, studies: Sequence[str] | None
                   ) -> tuple[list[StudyEntry], set[str]]:
    """The library entries to run and the targets ``study`` values they and ``--studies``
    select. A ``--studies`` name is a spec stem (``eliana``) or a targets study value."""
    present = {r.study for r in targets.rows} | {e.study for e in targets.errors}
    if not studies:
        wanted = present
    else:
        wanted = set()
        for name in studies:
            hit = [e for e in library.entries if name == e.key or name in e.studies]
            if hit:
                wanted |= set(hit[0].studies) & present if name == hit[0].key else {name}
            elif name in present:
                wanted.add(name)
            else:
                keys = sorted(e.key for e in library.entries)
                raise InvalidInputError("--studies", "a spec name of the library "
                                        f"({', '.join(keys)}) or a study of the targets file",
                                        name)
    entries = [e for e in library.entries if set(e.studies) & wanted]
    return entries, wanted


class StudyRunError(CartsimError):
    """A study of the library failed while it was simulated: the error names the study and
    its spec, then gives the cause's own message (a worker's error would otherwise reach the
    parent without saying which of thirty studies it came from)."""

    def __init__(self, study: str, spec: str, message: str) -> None:
        self.study, self.spec, self.message = study, spec, message
        super().__init__(f"study {study} ({spec}): {message}")


def run_study(entry: StudyEntry, dest: Path, patients: int | None, seed: int | None,
              chunk_size: int, progress: Callable[[int, int], None] | None) -> StudyRun:
    """Run one study's spec into ``dest`` (replaced atomically by a directory rename)."""
    from cartsim.trial.runner import run_trial

    spec = load_spec(entry.spec)
    if patients is not None or seed is not None:
        spec = spec.with_overrides(size=patients, seed=seed)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        try:
            res = run_trial(spec, tmp, chunk_size=max(1, min(chunk_size, spec.population.size)),
                            report=False, progress=progress)
        except CartsimError as e:
            raise StudyRunError(entry.key, str(entry.spec), str(e)) from e
        daily = pd.read_parquet(tmp / "daily.parquet")
        if dest.exists():
            shutil.rmtree(dest)
        mask = os.umask(0)
        os.umask(mask)
        tmp.chmod(0o777 & ~mask)  # mkdtemp makes it owner-only
        tmp.replace(dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return StudyRun(entry, spec, res.patients, daily, res.seconds, stopped_patients(dest))


def stopped_patients(trial_dir: Path) -> int:
    """The patients a trial's simulator stopped early (its summary.json; 0 without one)."""
    try:
        summary = json.loads((trial_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return 0
    return int(summary.get("stopped_patients") or 0)


def stopped_warning(summary: dict[str, Any]) -> str | None:
    """The warning ``cartsim validate`` prints when the simulator stopped patients early (a
    parameter set that breaks the model can otherwise pass rows by censoring the patients it
    breaks), naming the studies, or None."""
    from cartsim.status import stopped_warning as text

    per = {k: int(v.get("stopped_patients", 0)) for k, v in summary.get("studies", {}).items()}
    per = {k: v for k, v in per.items() if v > 0}
    return text(sum(per.values()),
                ", ".join(f"{k} {v}" for k, v in sorted(per.items(), key=lambda kv: -kv[1])))


def _study_cost(entry: StudyEntry, patients: int | None) -> float:
    """Relative cost of a study's run (patient-days), to start the longest first."""
    spec = load_spec(entry.spec)
    n = spec.population.size if patients is None else patients
    return float(n * len(spec.arms) * spec.follow_up_days)


def _run_study_worker(entry: StudyEntry, dest: Path, patients: int | None, seed: int | None,
                      chunk_size: int, ps: parameter_sets.ParameterSet | None) -> StudyRun:
    """One study in a worker process, with the parent's parameter set in force."""
    with parameter_sets.use(ps):
        return run_study(entry, dest, patients, seed, chunk_size, None)


@contextmanager
def study_pool(workers: int) -> Iterator[Executor]:
    """A process pool that runs whole studies (:func:`cartsim.trial.workers.process_pool`, one
    numba thread each). Reusable across :func:`validate` calls (``pool=``): calibration keeps
    one for all its evaluations, so workers load the compiled kernels once."""
    from cartsim.trial.workers import process_pool

    if not 1 <= workers <= 256:
        raise InvalidInputError("--workers", "an integer in [1, 256]", workers)
    with process_pool(workers, 1) as pool:
        yield pool


def _run_parallel(pool: Executor, entries: list[StudyEntry], out: Path, patients: int | None,
                  seed: int | None, chunk_size: int, progress: ProgressFn | None
                  ) -> dict[str, StudyRun]:
    """Run the studies in ``pool``, longest first; each study's run is the same as in-process
    (its own seed and patients), so the results do not depend on the number of workers."""
    from concurrent.futures import as_completed

    ps = parameter_sets.active()
    order = sorted(entries, key=lambda e: -_study_cost(e, patients))
    futs = {pool.submit(_run_study_worker, e, out / "trials" / e.key, patients, seed,
                        chunk_size, ps): e for e in order}
    runs: dict[str, StudyRun] = {}
    try:
        for f in as_completed(futs):
            e = futs[f]
            runs[e.key] = f.result()
            if progress is not None:
                n = runs[e.key].spec.population.size * len(runs[e.key].spec.arms)
                progress(e.key, n, n)
    except BaseException:
        for f in futs:
            f.cancel()
        raise
    return runs


def _published(row: TargetRow, unit: str, den: int | None
               ) -> tuple[float, float | None, float | None, str, str]:
    """(value, ci_low, ci_high, compared unit, note); counts become percent of a denominator."""
    if unit != "count":
        return row.value, row.ci_low, row.ci_high, unit, ""
    d = den or row.n
    if not d:
        raise ValueError("a count needs a denominator: 'count (of N)' or the row's n")
    return 100.0 * row.value / d, None, None, "percent", f"count {row.value:g} of {d} as percent"


def compare_row(row: TargetRow, mapping: MappingTable, library: Library,
                runs: dict[str, StudyRun], study_endpoints: set[str] | None = None,
                data_cut: float | None = None) -> dict[str, Any]:
    """One validation.csv record for a valid targets row. ``study_endpoints``: every endpoint
    the row's study reports (for the mapping's context rules, e.g. B-ALL CR vs CRi; None: no
    context rule applies); ``data_cut``: the row's publication's median follow-up in days
    (:func:`data_cuts`), at which event counts without a time point are read."""
    rec: dict[str, Any] = {c: None for c in CSV_COLUMNS}
    rec.update(study=row.study, line=row.line, endpoint=row.endpoint, timepoint=row.timepoint,
               subgroup=row.subgroup, scale=row.grading_scale, disease=row.disease,
               costim=costim_class(row.costim), unit=row.unit, published=row.value,
               published_ci_low=row.ci_low, published_ci_high=row.ci_high)
    cls = mapping.classify(row.endpoint)
    entry = library.entry_for(row.study)
    if entry is not None:
        rec["spec"] = entry.key
    as_endpoint, context_note = (row.endpoint, "") if study_endpoints is None else \
        mapping.resolve(row.endpoint, row.disease, study_endpoints)
    q = mapping.quantities.get(as_endpoint)
    if q is not None:
        rec["family"] = q.family
    if cls == "baseline":
        used = entry is not None and row.line in entry.sources
        return {**rec, "status": "baseline",
                "reason": "baseline (input)" + ("; used by the spec" if used else "")}
    if row.study in library.unexpressible:
        return {**rec, "status": "unexpressible", "reason": library.unexpressible[row.study]}
    if cls == "unmapped":
        return {**rec, "status": "unmapped", "reason": mapping.unmapped[row.endpoint]}
    if entry is None or entry.key not in runs:
        return {**rec, "status": "unmapped",
                "reason": f"no spec for study {row.study!r} in the library"}
    assert q is not None
    run = runs[entry.key]
    unit, den = normalise_unit(row.unit)
    if unit not in q.units:
        return {**rec, "status": "unmapped",
                "reason": f"unit {row.unit!r} not comparable with {q.kind} "
                          f"(allowed: {', '.join(q.units)})"}
    try:
        pub, lo, hi, cmp_unit, pub_note = _published(row, unit, den)
    except ValueError as e:
        return {**rec, "status": "unmapped", "reason": str(e)}
    rec.update(published=pub, published_ci_low=lo, published_ci_high=hi, unit=cmp_unit)
    if "{crs}" in q.event + q.among:
        rec["scale"] = crs_scale(row.grading_scale, run.spec.crs_scale)[0]
    tp = parse_timepoint(row.timepoint)
    arms = [a.name for a in run.spec.arms]
    label = row.subgroup
    if f"{label} | {row.endpoint}" in entry.subgroups:  # the label read for this endpoint only
        label = f"{label} | {row.endpoint}"
    choice = choose_subgroup(label, entry.subgroups, arms[0], len(arms), q.among)
    notes = [n for n in (context_note, pub_note, choice.note) if n]
    if choice.error:
        sim = unmapped(f"subgroup: {choice.error}")
    else:
        df, daily = run.patients, run.daily
        try:
            if choice.query is not None:
                df = df.query(choice.query, engine="python")
        except Exception as e:  # noqa: BLE001 - a user's query: report, never crash the run
            sim = unmapped(f"subgroup query {choice.query!r} failed: {e}")
        else:
            sim = simulate_row(q, cmp_unit, tp, row.grading_scale, run.spec.crs_scale,
                               run.spec.follow_up_days, df, daily, protocol_neuro_scale(run.spec),
                               data_cut)
    return _with_simulated(rec, sim, notes)


def data_cuts(rows: Sequence[TargetRow]) -> dict[str, float]:
    """Each publication's (``study`` value's) median follow-up in days, from its
    ``followup_median`` row in months or years."""
    out: dict[str, float] = {}
    for r in rows:
        unit = r.unit.strip().lower()
        if r.endpoint == "followup_median" and r.value is not None and unit in (
                "months", "month", "years", "year"):
            out[r.study] = _span(str(r.value), unit)  # the timepoints' own conversion
    return out


def protocol_neuro_scale(spec: Any) -> str:
    """The neurotoxicity scale the trial's own management protocol grades by (the spec's first
    arm; ``astct`` without a protocol): rows that name no scale are compared on it."""
    return _protocol_neuro_scale(spec.arms[0].protocol)


@functools.lru_cache(maxsize=64)
def _protocol_neuro_scale(name: str) -> str:
    """The protocol's ``grading.neuro_scale``, loaded once per protocol (not once per row)."""
    from cartsim.clinic.protocol import load_protocol

    if name == "none":
        return "astct"
    return str(load_protocol(name).config.grading.neuro_scale)


def _with_simulated(rec: dict[str, Any], sim: Simulated, notes: list[str]) -> dict[str, Any]:
    notes = notes + sim.notes
    rec["notes"] = "; ".join(dict.fromkeys(n for n in notes if n))
    if sim.status != "compared":
        return {**rec, "status": "unmapped", "reason": sim.reason}
    if sim.lower_bound:
        # judged only when the published value and its CI end before the simulated bound
        top = rec["published_ci_high"] if rec["published_ci_high"] is not None \
            else rec["published"]
        if not top < sim.value:
            return {**rec, "status": "unmapped",
                    "reason": "simulated median not reached within the spec's follow-up, "
                              "and the published figure reaches beyond it"}
    rec.update(status="compared", reason="", simulated=sim.value, simulated_ci_low=sim.lower,
               simulated_ci_high=sim.upper, n_simulated=sim.n)
    pub, lo, hi = rec["published"], rec["published_ci_low"], rec["published_ci_high"]
    rec["difference"] = sim.value - pub
    if lo is not None or hi is not None:
        rec["inside_published_ci"] = _inside(lo, hi, sim.value)
    if rec["unit"] == "percent":
        rec["within_10_points"] = bool(abs(sim.value - pub) <= POINTS)
    rec["passes"] = passes_at(pub, lo, hi, rec["unit"], sim.value)
    rec["margin"] = pass_margin(pub, lo, hi, rec["unit"], sim.value)
    return rec


def _inside(lo: float | None, hi: float | None, value: float) -> bool:
    return bool((lo is None or value >= lo) and (hi is None or value <= hi))


def passes_at(published: float, lo: float | None, hi: float | None, unit: str,
              value: float) -> bool | None:
    """Whether a simulated ``value`` passes a row: inside the published 95 % CI where the
    row gives one, else within :data:`POINTS` of a percentage (:func:`pass_margin` ≥ 0);
    ``None`` where neither applies (the row is compared but not judged)."""
    m = pass_margin(published, lo, hi, unit, value)
    return None if m is None else bool(m >= 0.0)


def pass_margin(published: float, lo: float | None, hi: float | None, unit: str,
                value: float) -> float | None:
    """How far a simulated ``value`` lies inside (> 0) or outside (< 0) a row's pass band, in
    the row's unit: the distance to the nearer bound of the published 95 % CI where the row
    gives one, else to published ± :data:`POINTS` for a percentage; ``None`` where the row is
    not judged. ``passes_at`` is ``margin >= 0``."""
    if lo is not None or hi is not None:
        d = [x for x in ((value - lo) if lo is not None else None,
                         (hi - value) if hi is not None else None) if x is not None]
        return float(min(d))
    if unit == "percent":
        return float(POINTS - abs(value - published))
    return None


def error_records(errors: list[RowError], targets: Targets) -> list[dict[str, Any]]:
    by_line: dict[int, list[RowError]] = {}
    for e in errors:
        by_line.setdefault(e.line, []).append(e)
    out = []
    for line, errs in by_line.items():
        rec: dict[str, Any] = {c: None for c in CSV_COLUMNS}
        rec.update(study=errs[0].study, line=line, endpoint=errs[0].endpoint, status="error",
                   reason="; ".join(f"{e.field}: {e.message}" for e in errs))
        out.append(rec)
    return out


# ------------------------------------------------------------------------------- summary
def _shares(t: pd.DataFrame) -> dict[str, Any]:
    comp = t[t["status"] == "compared"]
    with_ci = comp[comp["inside_published_ci"].notna()]
    pct = comp[comp["within_10_points"].notna()]
    judged = comp[comp["passes"].notna()]

    def share(k: int, n: int) -> float | None:
        return round(k / n, 4) if n else None

    k_in = int(with_ci["inside_published_ci"].astype(bool).sum())
    k_10 = int(pct["within_10_points"].astype(bool).sum())
    k_pass = int(judged["passes"].astype(bool).sum())
    out: dict[str, Any] = {"rows": int(len(t))}
    for s in STATUSES:
        out[s] = int((t["status"] == s).sum())
    out.update(with_published_ci=int(len(with_ci)), inside_ci=k_in,
               share_inside_ci=share(k_in, len(with_ci)), percent_rows=int(len(pct)),
               within_10_points=k_10, share_within_10_points=share(k_10, len(pct)),
               judged=int(len(judged)), passing=k_pass, share_passing=share(k_pass, len(judged)))
    if "margin" in judged:  # (a table written before session 35 has no margins)
        m = judged["margin"].astype(float)
        ok = judged["passes"].astype(bool)  # the verdict is margin >= 0 (pass_margin)
        out.update(failing_within_1_point=int(((m > -1.0) & ~ok).sum()),
                   passing_within_1_point=int(((m < 1.0) & ok).sum()))
    return out


def summarise(table: pd.DataFrame) -> dict[str, Any]:
    """Shares per study, disease, co-stimulation class of the published product, endpoint
    family and overall.

    ``share_inside_ci``: compared rows with a published CI whose simulated estimate lies inside
    it; ``share_within_10_points``: compared percent rows within 10 points; ``share_passing``:
    inside the CI where the paper gives one, else within 10 points (the acceptance criterion).
    """
    t = table.copy()
    t["family"] = t["family"].fillna("")
    t["disease"] = t["disease"].fillna("")
    if "costim" not in t:  # a table written before session 32
        t["costim"] = ""
    t["costim"] = t["costim"].fillna("")
    out: dict[str, Any] = {"overall": _shares(t)}
    for key, col in (("per_study", "study"), ("per_disease", "disease"),
                     ("per_costim", "costim"), ("per_family", "family")):
        groups = {}
        for name, sub in t.groupby(col, sort=True):
            if col in ("family", "costim") and not name:
                continue
            groups[str(name)] = _shares(sub)
        out[key] = groups
    return out


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def resolve_specs_dir(specs: str | Path | None) -> Path:
    if specs is not None:
        return Path(specs)
    d = default_specs_dir()
    if not (d / "index.toml").is_file():
        raise LibraryError(str(d), [
            "cartsim's shipped study library is not installed (no index.toml there); pass "
            "--specs DIR with your own index.toml (docs/validation.md)"])
    return d


def validate(targets_path: str | Path | None, out: str | Path, *, patients: int | None = None,
             studies: Sequence[str] | None = None, specs: str | Path | None = None,
             seed: int | None = None, chunk_size: int = 500, report: bool = True,
             progress: ProgressFn | None = None,
             on_start: Callable[[list[StudyEntry], int], None] | None = None,
             workers: int = 1, pool: Executor | None = None) -> ValidationResult:
    """Run every selected study of the library and compare it with the targets file.

    Whole-file problems (unreadable targets file, missing required column, bad library) raise
    before anything is written; per-row problems are ``error`` rows of the output.
    """
    if patients is not None and not 1 <= patients <= 10_000_000:
        raise InvalidInputError("--patients", "an integer in [1, 10000000]", patients)
    if seed is not None and seed < 0:
        raise InvalidInputError("--seed", "an integer >= 0", seed)
    if not 1 <= workers <= 256:
        raise InvalidInputError("--workers", "an integer in [1, 256]", workers)
    mapping = default_mapping()
    targets = read_targets(targets_path, mapping)
    library = load_library(resolve_specs_dir(specs))
    entries, wanted = select_entries(library, targets, studies)
    for e in entries:  # every spec must load before any simulation
        load_spec(e.spec)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if on_start is not None:
        on_start(entries, patients or 0)
    runs: dict[str, StudyRun] = {}
    if pool is None and workers > 1 and len(entries) > 1:
        with study_pool(min(workers, len(entries))) as own:
            runs = _run_parallel(own, entries, out, patients, seed, chunk_size, progress)
    elif pool is not None and len(entries) > 1:
        runs = _run_parallel(pool, entries, out, patients, seed, chunk_size, progress)
    else:
        for e in entries:
            cb = None
            if progress is not None:
                def cb(done: int, total: int, key: str = e.key) -> None:
                    progress(key, done, total)
            runs[e.key] = run_study(e, out / "trials" / e.key, patients, seed, chunk_size, cb)
    runs = {e.key: runs[e.key] for e in entries}  # the library's order, however they ran
    rows = [r for r in targets.rows if r.study in wanted]
    errors = [e for e in targets.errors if e.study in wanted or not e.study]
    by_study: dict[str, set[str]] = {}
    for r in targets.rows:
        by_study.setdefault(r.study, set()).add(r.endpoint)
    cuts = data_cuts(targets.rows)
    records = [compare_row(r, mapping, library, runs, by_study[r.study], cuts.get(r.study))
               for r in rows]
    records += error_records(errors, targets)
    table = pd.DataFrame(records, columns=list(CSV_COLUMNS)).sort_values(
        "line", kind="stable").reset_index(drop=True)
    for c in ("inside_published_ci", "within_10_points", "passes"):
        table[c] = table[c].astype("boolean")
    table["n_simulated"] = table["n_simulated"].astype("Int64")
    summary = {
        "targets": str(Path(targets.path).name),
        "specs": str(library.path.name),
        "patients_per_arm": patients,
        "seed": seed,
        "points": POINTS,
        "parameter_set": {**parameter_sets.describe(), "status": parameter_set_status()},
        "studies": {k: {"spec": r.entry.spec.name, "served": list(r.entry.studies),
                        "patients_per_arm": r.spec.population.size, "seed": r.spec.seed,
                        "arms": [a.name for a in r.spec.arms],
                        "follow_up_days": r.spec.follow_up_days,
                        "unexpressed": list(r.entry.unexpressed),
                        "stopped_patients": r.stopped}
                    for k, r in runs.items()},
        "stopped_patients": sum(r.stopped for r in runs.values()),
        "row_errors": [str(e) for e in errors],
        **summarise(table),
        "headline": headline_summary(table),
    }
    write_text_atomic(out / "validation.csv", table.to_csv(index=False, lineterminator="\n",
                                                           float_format="%.6g"))
    write_text_atomic(out / "summary.json", json.dumps(_json_safe(summary), indent=1,
                                                      ensure_ascii=False))
    result = ValidationResult(out, table, summary, errors, runs)
    if report:
        from cartsim.validate.report import build_report

        write_text_atomic(out / "report.html", build_report(result))
    return result
