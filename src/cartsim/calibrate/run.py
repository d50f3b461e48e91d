"""``cartsim calibrate``: fit the calibration space to the calibration studies' published
figures, then check the fitted set on the calibration and held-out studies.

Each evaluation runs the calibration studies in-process (:func:`cartsim.validate.run.validate`
without the HTML report) with the candidate parameter set in force
(:func:`cartsim.parameter_sets.use`) and the same trial seeds every time (common random
numbers: a patient's random draws are keyed by seed, patient id and parameter name, so only the
candidate values change between evaluations), and scores it with
:func:`cartsim.calibrate.objective.compute_objective`.

The optimiser is optuna's TPE sampler (``sampler="tpe"``: a global search) or CMA-ES
(``sampler="cmaes"``, optuna's ``CmaEsSampler`` with the ``cmaes`` package: a local search that
starts at the model's own values — or the first ``start`` set — with step ``SIGMA0`` of each
dimension's range, which is what a small budget around a hand-tuned model needs). The study
lives in ``DIR/optuna.db`` (SQLite: every finished evaluation is committed transactionally), so
``--resume`` continues an interrupted run. TPE is re-seeded before each evaluation from (seed,
number of finished evaluations); CMA-ES keeps its state in the study; either way a resumed run
proposes what an uninterrupted one would: the same seed gives the same numbers.

Outputs in ``DIR``: ``parameter_set.toml`` (the fitted set, with provenance), ``trials.csv``
(every evaluation), ``objective_rows.csv`` (the best evaluation's per-row terms),
``check/before`` and ``check/after`` (validation of calibration + held-out studies with the
model's values and with the fitted set, on fresh patients), ``before_after.csv`` and
``calibration.json`` (the summary).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cartsim import parameter_sets
from cartsim.atomic import write_text_atomic
from cartsim.calibrate.objective import Objective, compute_objective
from cartsim.calibrate.space import Space, load_space
from cartsim.errors import CartsimError, InvalidInputError, OptionalDependencyError
from cartsim.parameter_sets import ParameterSet
from cartsim.validate.library import external_dir, load_library
from cartsim.validate.mapping import default_mapping
from cartsim.validate.run import resolve_specs_dir, select_entries, study_pool, validate
from cartsim.validate.targets import Targets, read_targets

STUDY_NAME = "cartsim-calibrate"
DB_NAME = "optuna.db"
CONFIG_NAME = "config.json"
#: The seed of the trials of the posterior predictive check (fresh patients, not the ones fitted).
CHECK_SEED = 1_000_003
#: Random (start-up) evaluations of TPE before it models the objective.
STARTUP = 8
SAMPLERS = ("tpe", "cmaes")
#: CMA-ES initial step, as a share of each dimension's (log-)range.
SIGMA0 = 0.15

ProgressFn = Callable[[int, int, float], None]


class CalibrationError(CartsimError):
    """A calibration that cannot run as asked (names the option)."""


@dataclass
class Evaluation:
    objective: Objective
    table: pd.DataFrame
    seconds: float
    #: patients the simulator stopped early (validate's summary.json): a candidate that stops
    #: any is refused by the search — censored courses could otherwise lower the deviance of
    #: a parameter set that breaks the model (docs/validation.md, "Patients the simulator
    #: stopped")
    stopped: int = 0


@dataclass
class CalibrationResult:
    out: Path
    parameter_set: ParameterSet
    best: float
    baseline: float
    evaluations: int
    seconds_per_evaluation: float
    summary: dict[str, Any]


class Evaluator:
    """Runs selected studies with a candidate set and scores them against the targets."""

    def __init__(self, targets_path: str | Path | None, specs: str | Path | None,
                 studies: Sequence[str], patients: int, seed: int | None, work: Path) -> None:
        self.targets_path = targets_path
        self.specs = specs
        self.mapping = default_mapping()
        self.targets: Targets = read_targets(targets_path, self.mapping)
        self.library = load_library(resolve_specs_dir(specs))
        entries, _ = select_entries(self.library, self.targets, list(studies))
        if not entries:
            raise CalibrationError(f"--studies {', '.join(studies)}: no study of the library "
                                   "has rows in the targets file")
        self.keys = [e.key for e in entries]
        self.patients = patients
        self.seed = seed
        self.work = work
        #: a process pool running whole studies (cartsim.validate.run.study_pool), or None:
        #: in-process; the numbers are the same either way
        self.pool: Executor | None = None

    def __call__(self, ps: ParameterSet | None, work: Path | None = None,
                 seed: int | None = None, report: bool = False) -> Evaluation:
        t0 = time.perf_counter()
        with parameter_sets.use(ps):
            res = validate(self.targets_path, work or self.work, patients=self.patients,
                           studies=self.keys, specs=self.specs,
                           seed=self.seed if seed is None else seed, report=report,
                           pool=self.pool)
        obj = compute_objective(res.table, self.targets, self.mapping, set(self.keys))
        return Evaluation(obj, res.table, time.perf_counter() - t0,
                          int(res.summary.get("stopped_patients", 0)))


def study_lists(space: Space, studies: Sequence[str] | None,
                held_out: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """The calibration and held-out studies: the space's, or ``studies`` / ``held_out``
    where given (the space's held-out studies then leave out any now fitted); a study in both
    is refused."""
    cal = list(studies) if studies else list(space.studies)
    held = list(held_out) if held_out is not None else \
        [s for s in space.held_out if s not in cal]
    overlap = sorted(set(cal) & set(held))
    if overlap:
        raise InvalidInputError("--held-out", "studies not in the calibration set",
                                ", ".join(overlap))
    return cal, held


def start_values(space: Space, ps: ParameterSet) -> dict[str, float]:
    """The point of ``space`` that a parameter set (e.g. an earlier calibration's result)
    names: its values where it has them, the model's own elsewhere, clipped to the bounds."""
    out: dict[str, float] = {}
    for d in space.dimensions:
        v = ps.values.get(d.parameter, {}).get(d.field)
        out[d.key] = d.current() if v is None else min(max(float(v), d.lower), d.upper)
    return out


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise OptionalDependencyError("cartsim calibrate", "calibrate") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _cmaes_sampler(optuna: Any, x0: dict[str, float], seed: int, step: float = SIGMA0) -> Any:
    try:
        import cmaes  # noqa: F401  (optuna's CmaEsSampler needs it)
    except ImportError:
        raise OptionalDependencyError("cartsim calibrate --sampler cmaes (package cmaes)",
                                      "calibrate") from None
    import warnings

    with warnings.catch_warnings():  # x0 is deprecated in optuna 4.9 but kept until 6.0
        warnings.simplefilter("ignore")
        return optuna.samplers.CmaEsSampler(x0=x0, sigma0=step, seed=seed,
                                            warn_independent_sampling=False)


def _config(space: Space, studies: Sequence[str], held_out: Sequence[str], patients: int,
            seed: int, targets: str, specs: str) -> dict[str, Any]:
    return {"space": space.name, "dimensions": [d.__dict__ for d in space.dimensions],
            "studies": list(studies), "held_out": list(held_out), "patients": patients,
            "seed": seed, "targets": targets, "specs": specs}


def _suggest(trial: Any, space: Space) -> dict[str, float]:
    return {d.key: trial.suggest_float(d.key, d.lower, d.upper, log=d.scale == "log")
            for d in space.dimensions}


def _finished(study: Any) -> list[Any]:
    optuna = _optuna()
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    return [t for t in study.get_trials(deepcopy=False) if t.state in done]


def _trials_table(study: Any, space: Space) -> pd.DataFrame:
    rows = []
    for i, t in enumerate(_finished(study)):
        rec: dict[str, Any] = {"evaluation": i, "state": t.state.name,
                               "deviance": t.value, "loglik": t.user_attrs.get("loglik"),
                               "rows_used": t.user_attrs.get("rows_used"),
                               "seconds": t.user_attrs.get("seconds"),
                               "stopped_patients": t.user_attrs.get("stopped_patients"),
                               "baseline": bool(t.user_attrs.get("baseline", False))}
        rec.update({d.key: t.params.get(d.key) for d in space.dimensions})
        rows.append(rec)
    return pd.DataFrame(rows)


def _best(study: Any) -> Any:
    optuna = _optuna()
    done = [t for t in study.get_trials(deepcopy=False)
            if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise CalibrationError("no evaluation finished (every one failed; see trials.csv)")
    # the first of the lowest (ties: the earlier evaluation, so the choice is deterministic)
    return min(done, key=lambda t: (t.value, t.number))


def compare_tables(before: pd.DataFrame, after: pd.DataFrame, held_out: set[str]
                   ) -> pd.DataFrame:
    """One line per compared targets row: published, simulated before and after, passes."""
    keep = ["study", "spec", "line", "endpoint", "timepoint", "subgroup", "unit", "published",
            "published_ci_low", "published_ci_high"]
    b = before[keep + ["simulated", "passes", "status"]].rename(
        columns={"simulated": "before", "passes": "passes_before", "status": "status_before"})
    a = after[["line", "simulated", "passes", "status"]].rename(
        columns={"simulated": "after", "passes": "passes_after", "status": "status_after"})
    t = b.merge(a, on="line", how="outer")
    t = t[(t["status_before"] == "compared") | (t["status_after"] == "compared")]
    t.insert(0, "set", ["held_out" if s in held_out else "calibration" for s in t["spec"]])
    return t.drop(columns=["status_before", "status_after"]).reset_index(drop=True)


def config_differences(path: Path, config: dict[str, Any]) -> list[str]:
    """The settings of ``config`` that differ from those recorded in ``path`` (a run's
    ``config.json``); empty when nothing is recorded or all agree (a resume may go on)."""
    if not path.is_file():
        return []
    old = json.loads(path.read_text(encoding="utf-8"))
    new = json.loads(json.dumps(config))
    return sorted(k for k in set(new) | set(old) if old.get(k) != new.get(k))


def pass_share(t: pd.DataFrame, col: str) -> dict[str, Any]:
    judged = t[col].dropna()
    k = int(judged.astype(bool).sum())
    return {"passing": k, "judged": int(len(judged)),
            "share": round(k / len(judged), 4) if len(judged) else None}


def _finite(x: float) -> float | None:
    return round(x, 4) if math.isfinite(x) else None


def _before_after(check: Evaluator, fitted: ParameterSet | None, work: Path, csv_path: Path,
                  held_out: set[str], label: str | None = None
                  ) -> tuple[Evaluation, Evaluation, pd.DataFrame]:
    """``check``'s studies with the model's own values and with ``fitted`` (into
    ``work/before`` and ``work/after``), and their row-by-row comparison written to
    ``csv_path`` (``set`` column: calibration / held_out, or ``label`` for every row)."""
    before = check(None, work / "before")
    after = check(fitted, work / "after")
    table = compare_tables(before.table, after.table, held_out)
    if label is not None:
        table["set"] = label
    write_text_atomic(csv_path, table.to_csv(index=False, lineterminator="\n",
                                             float_format="%.6g"))
    return before, after, table


def _set_summary(check: Evaluator, before: Evaluation, after: Evaluation, t: pd.DataFrame,
                 keys: set[str]) -> dict[str, Any]:
    """Deviance before/after and pass shares of the studies ``keys`` (rows ``t`` of the
    comparison table)."""
    ob = compute_objective(before.table, check.targets, check.mapping, keys)
    oa = compute_objective(after.table, check.targets, check.mapping, keys)
    return {"studies": sorted(keys), "deviance_before": _finite(ob.deviance),
            "deviance_after": _finite(oa.deviance), "rows_used": oa.used,
            "passing_before": pass_share(t, "passes_before"),
            "passing_after": pass_share(t, "passes_after")}


def external_posterior_check(out: Path, fitted: ParameterSet | None, patients: int,
                             pool: Executor | None = None,
                             studies: Sequence[str] | None = None) -> dict[str, Any]:
    """The fitted set on the external library (``cartsim/data/external``: trials outside the
    calibration file, never fitted; docs/validation.md "External check"): its studies (or
    ``studies``) validated on fresh patients (seed :data:`CHECK_SEED`) with the model's own
    values and with ``fitted``; ``external_before_after.csv`` and the shares, as
    :func:`posterior_check` does for the calibration and held-out studies."""
    d = external_dir()
    keys = list(studies) if studies else [e.key for e in load_library(d).entries]
    check = Evaluator(d / "targets.csv", d, keys, patients, CHECK_SEED, out / "check_external")
    check.pool = pool
    before, after, table = _before_after(check, fitted, out / "check_external",
                                         out / "external_before_after.csv", set(), "external")
    return _set_summary(check, before, after, table, set(check.keys))


def calibrate(out: str | Path, *, space_path: str | Path | None = None, budget: int = 30,
              patients: int = 60, studies: Sequence[str] | None = None,
              held_out: Sequence[str] | None = None, seed: int = 0,
              targets_path: str | Path | None = None, specs: str | Path | None = None,
              resume: bool = False, check: bool = True, check_patients: int | None = None,
              install: str | None = None, command: str = "",
              start: Sequence[str | Path] = (), sampler: str = "tpe",
              progress: ProgressFn | None = None, workers: int = 1,
              step: float = SIGMA0, external_check: bool = False) -> CalibrationResult:
    """Fit ``space`` to the calibration studies (see the module docstring). ``workers`` > 1
    runs each evaluation's studies in that many processes (kept for the whole run); the
    numbers do not depend on it. ``external_check`` (with ``check``) also checks the fitted set
    on the external library (:func:`external_posterior_check`)."""
    if not 1 <= workers <= 256:
        raise InvalidInputError("--workers", "an integer in [1, 256]", workers)
    if not 0.001 <= step <= 0.5:
        raise InvalidInputError("--step", "a number in [0.001, 0.5] (share of each "
                                "dimension's range)", step)
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(study_pool(workers)) if workers > 1 else None
        return _calibrate(out, space_path=space_path, budget=budget, patients=patients,
                          studies=studies, held_out=held_out, seed=seed,
                          targets_path=targets_path, specs=specs, resume=resume, check=check,
                          check_patients=check_patients, install=install, command=command,
                          start=start, sampler=sampler, progress=progress, pool=pool,
                          step=step, external_check=external_check)


def _calibrate(out: str | Path, *, space_path: str | Path | None, budget: int, patients: int,
               studies: Sequence[str] | None, held_out: Sequence[str] | None, seed: int,
               targets_path: str | Path | None, specs: str | Path | None, resume: bool,
               check: bool, check_patients: int | None, install: str | None, command: str,
               start: Sequence[str | Path], sampler: str, progress: ProgressFn | None,
               pool: Executor | None, step: float,
               external_check: bool = False) -> CalibrationResult:
    if sampler not in SAMPLERS:
        raise InvalidInputError("--sampler", f"one of {', '.join(SAMPLERS)}", sampler)
    if not 1 <= budget <= 100_000:
        raise InvalidInputError("--budget", "an integer in [1, 100000]", budget)
    if not 1 <= patients <= 1_000_000:
        raise InvalidInputError("--patients", "an integer in [1, 1000000]", patients)
    if seed < 0:
        raise InvalidInputError("--seed", "an integer >= 0", seed)
    if check_patients is not None and not 1 <= check_patients <= 1_000_000:
        raise InvalidInputError("--check-patients", "an integer in [1, 1000000]",
                                check_patients)
    if install and not check:
        raise InvalidInputError(
            "--install", "only with the posterior check (drop --no-check): a fitted set becomes "
            "the default only if it also does better on fresh patients", "--no-check")
    optuna = _optuna()
    space = load_space(space_path)
    cal, held = study_lists(space, studies, held_out)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    evaluator = Evaluator(targets_path, specs, cal, patients, None, out / "work")
    evaluator.pool = pool
    targets_name = Path(evaluator.targets.path).name
    config = _config(space, evaluator.keys, held, patients, seed, targets_name,
                     str(evaluator.library.path))
    if sampler != "tpe":  # (a TPE run's recorded settings stay as they were)
        config["sampler"] = sampler
    if sampler == "cmaes" and step != SIGMA0:
        config["step"] = step
    db = out / DB_NAME
    cfg_path = out / CONFIG_NAME
    if db.exists() and not resume:
        raise InvalidInputError("--out", "a directory without a previous calibration (or pass "
                                "--resume)", str(out))
    if resume:
        diff = config_differences(cfg_path, config)
        if diff:
            raise InvalidInputError("--resume", f"the settings recorded in {cfg_path}",
                                    f"different {', '.join(diff)}",
                                    "resume with the same space, studies, patients and seed")
    write_text_atomic(cfg_path, json.dumps(config, indent=1))
    storage = f"sqlite:///{db.resolve()}"
    study = optuna.create_study(study_name=STUDY_NAME, storage=storage, direction="minimize",
                                load_if_exists=True)

    def objective(trial: Any) -> float:
        values = _suggest(trial, space)
        ps = space.parameter_set(values, "candidate", "calibration candidate")
        ev = evaluator(ps)
        trial.set_user_attr("stopped_patients", ev.stopped)
        if ev.stopped:  # a failed trial (caught below): the search moves on
            raise CalibrationError(f"candidate {trial.number}: the simulator stopped "
                                   f"{ev.stopped} patients early; a parameter set that "
                                   "breaks the model is not a fit")
        trial.set_user_attr("loglik", ev.objective.loglik)
        trial.set_user_attr("rows_used", ev.objective.used)
        trial.set_user_attr("seconds", round(ev.seconds, 2))
        return ev.objective.deviance

    has_baseline = any(t.user_attrs.get("baseline") for t in _finished(study))
    if not has_baseline and not any(t.state == optuna.trial.TrialState.WAITING
                                    for t in study.get_trials(deepcopy=False)):
        study.enqueue_trial({d.key: d.current() for d in space.dimensions},
                            user_attrs={"baseline": True})
        for src in start:
            study.enqueue_trial(start_values(space, parameter_sets.load(src)),
                                user_attrs={"start": str(src)})
    t_start = time.perf_counter()
    n_done = len(_finished(study))
    x0 = {d.key: d.current() for d in space.dimensions}
    if start:
        x0.update(start_values(space, parameter_sets.load(start[0])))
    while n_done < budget:
        if sampler == "cmaes":
            study.sampler = _cmaes_sampler(optuna, x0, seed, step)
        else:
            study.sampler = optuna.samplers.TPESampler(
                seed=seed * 100_003 + n_done, n_startup_trials=STARTUP, multivariate=True)
        study.optimize(objective, n_trials=1, catch=(CartsimError, FloatingPointError))
        n_done = len(_finished(study))
        if progress is not None:
            done = [t.value for t in _finished(study) if t.value is not None]
            progress(n_done, budget, min(done) if done else math.nan)
    trials = _trials_table(study, space)
    write_text_atomic(out / "trials.csv", trials.to_csv(index=False, lineterminator="\n",
                                                        float_format="%.6g"))
    best = _best(study)
    base = [t for t in _finished(study) if t.user_attrs.get("baseline")]
    baseline_dev = float(base[0].value) if base and base[0].value is not None else math.nan
    secs = [float(s) for s in trials["seconds"].dropna()] if "seconds" in trials else []
    per_eval = float(statistics.median(secs)) if secs else math.nan  # the first compiles
    today = dt.datetime.now(dt.UTC)
    provenance = (f"calibrated to {targets_name}, {today.date().isoformat()}, objective "
                  f"{best.value:.2f} (deviance over {best.user_attrs.get('rows_used')} rows of "
                  f"{', '.join(evaluator.keys)}; model values {baseline_dev:.2f}), command: "
                  f"{command or 'cartsim.calibrate.calibrate()'}")
    meta = {"created": today.isoformat(timespec="seconds"), "targets": targets_name,
            "space": space.name, "objective_deviance": float(best.value),
            "objective_loglik": float(best.user_attrs.get("loglik", math.nan)),
            "baseline_deviance": baseline_dev, "calibration_studies": evaluator.keys,
            "held_out_studies": held, "patients_per_arm": patients, "seed": seed,
            "evaluations": int(len(trials)), "command": command}
    import cartsim

    meta["cartsim_version"] = cartsim.__version__
    fitted = space.parameter_set(best.params, f"calibrated-{today.date().isoformat()}",
                                 provenance, meta)
    fitted_path = parameter_sets.save(fitted, out / "parameter_set.toml")
    fitted = parameter_sets.load(fitted_path)
    # the best evaluation's per-row terms, re-run (same seeds: the same numbers)
    best_eval = evaluator(fitted)
    write_text_atomic(out / "objective_rows.csv", best_eval.objective.terms.to_csv(
        index=False, lineterminator="\n", float_format="%.6g"))
    summary: dict[str, Any] = {
        "space": space.name, "targets": targets_name, "calibration_studies": evaluator.keys,
        "held_out_studies": held, "patients_per_arm": patients, "seed": seed,
        "evaluations": int(len(trials)), "seconds_per_evaluation": _finite(per_eval),
        "wall_seconds_this_run": round(time.perf_counter() - t_start, 1),
        "objective": {"before": _finite(baseline_dev), "after": _finite(float(best.value)),
                      "rows_used": best_eval.objective.used,
                      "rows_skipped": best_eval.objective.skipped,
                      "per_study_after": best_eval.objective.per_study()},
        "fitted": {d.key: best.params[d.key] for d in space.dimensions},
        "model_values": {d.key: d.current() for d in space.dimensions},
        "command": command,
    }
    if check:
        summary["check"] = posterior_check(out, evaluator, held, fitted,
                                           check_patients or patients)
        if external_check:
            summary["check"]["external"] = external_posterior_check(
                out, fitted, check_patients or patients, evaluator.pool)
    if install:
        refused = install_refusal(summary.get("check", {}))
        if refused:
            summary["install_refused"] = refused
        else:
            path = parameter_sets.install(fitted, install)
            summary["installed"] = str(path)
    write_text_atomic(out / "calibration.json", json.dumps(summary, indent=1, default=str))
    shutil.rmtree(out / "work", ignore_errors=True)
    return CalibrationResult(out, fitted, float(best.value), baseline_dev, int(len(trials)),
                             per_eval, summary)


def install_refusal(check: dict[str, Any]) -> str | None:
    """Why a fitted set must not become the default, or None: its deviance on fresh patients
    (the posterior check) must fall on the calibration studies and not rise on the held-out
    ones. The objective itself is measured on the specs' own seeds, where a few hundred
    patients per arm reward noise (docs/calibration.md, sessions 6, 18 and 48)."""
    cal = check.get("calibration")
    if not isinstance(cal, dict):
        return "no posterior check on fresh patients was run"
    before, after = cal.get("deviance_before"), cal.get("deviance_after")
    if before is None or after is None or not after < before:
        return (f"on fresh patients the calibration studies' deviance went {before} -> {after} "
                "(it must fall)")
    held = check.get("held_out")
    if isinstance(held, dict):
        hb, ha = held.get("deviance_before"), held.get("deviance_after")
        if hb is None or ha is None or ha > hb:
            return (f"on fresh patients the held-out studies' deviance went {hb} -> {ha} "
                    "(it must not rise)")
    return None


def posterior_check(out: Path, evaluator: Evaluator, held_out: Sequence[str],
                    fitted: ParameterSet, patients: int) -> dict[str, Any]:
    """Validate calibration + held-out studies on fresh patients (seed :data:`CHECK_SEED`)
    with the model's own values and with ``fitted``: ``before_after.csv`` and the shares."""
    keys = list(evaluator.keys)
    held_keys: list[str] = []
    if held_out:
        entries, _ = select_entries(evaluator.library, evaluator.targets, list(held_out))
        held_keys = [e.key for e in entries if e.key not in keys]
    check = Evaluator(evaluator.targets_path, evaluator.specs, keys + held_keys, patients,
                      CHECK_SEED, out / "check")
    check.pool = evaluator.pool
    before, after, table = _before_after(check, fitted, out / "check", out / "before_after.csv",
                                         set(held_keys))
    res: dict[str, Any] = {"seed": CHECK_SEED, "patients_per_arm": patients}
    for name, sub_keys in (("calibration", set(keys)), ("held_out", set(held_keys))):
        if not sub_keys:
            continue
        res[name] = _set_summary(check, before, after, table[table["set"] == name], sub_keys)
    return res
