"""``cartsim sensitivity``: which upstream quantity moves which published figure.

A local, one-at-a-time sensitivity analysis of the validation table around the model's own
values (or a parameter set's): every dimension of a calibration space (docs/calibration.md) is
moved one ``step`` down and one ``step`` up in its normalised coordinate (the share of its
log- or linear range) with every other quantity at its value, and the study library is
validated at each point with the same trial seeds (common random numbers: the patients are
the same, only the parameter differs, so a row's change is the parameter's effect and not a
new sample). 2k + 1 validation runs for k dimensions.

What it answers, per compared targets row and dimension: the simulated value one step down and
up, whether the row passes at each, and which way the parameter must go to move the row towards
the published figure; per dimension: the objective (deviance, :mod:`cartsim.calibrate.objective`)
and the rows passing at each point. It says which failing rows the space can reach at all
(issue 10: "choose what to fit") and which need a mechanism instead.

From the same runs, a **linearised proposal**: each row's value as a linear function of the
normalised coordinates (the central difference), the calibration studies' deviance of those
predicted values minimised inside a trust region of ``trust`` steps (scipy L-BFGS-B). It is a
suggestion to validate (``cartsim validate --parameter-set DIR/proposal.toml``), not a result:
the trials are not linear in their parameters and the prediction ignores interactions. Only the
calibration studies (the space's or ``--studies``) enter the proposal's objective; the held-out
studies' predicted figures are reported beside it.

Outputs in ``DIR`` (each written atomically): ``evaluations/`` (each run's validation table;
a rerun with the same settings reuses them, so an interrupted analysis resumes),
``sensitivity_rows.csv`` (row x dimension), ``sensitivity_dimensions.csv``, ``proposal.toml``,
``proposal_rows.csv``, ``sensitivity.json`` and ``sensitivity.png`` (failing rows x dimensions).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cartsim import parameter_sets
from cartsim.atomic import atomic_write, write_text_atomic
from cartsim.calibrate.objective import Z95, ci_sd, compute_objective
from cartsim.calibrate.run import (
    CalibrationError,
    Evaluator,
    config_differences,
    pass_share,
    study_lists,
)
from cartsim.calibrate.space import Dimension, Space, load_space
from cartsim.errors import InvalidInputError
from cartsim.parameter_sets import ParameterSet
from cartsim.validate.run import POINTS, passes_at, select_entries

CONFIG_NAME = "config.json"
SIDES = ("minus", "plus")
#: A row "moves" when a step changes it by at least this share of its tolerance.
MOVE_SHARE = 0.1

ProgressFn = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Probe:
    """One validation run of the analysis: ``dim`` moved to ``value`` (normalised ``u``)."""

    dim: Dimension | None  # None: the starting point
    side: str
    u: float
    value: float

    @property
    def name(self) -> str:
        return "baseline" if self.dim is None else f"{self.dim.key}__{self.side}"


@dataclass
class SensitivityResult:
    out: Path
    summary: dict[str, Any]
    rows: pd.DataFrame
    dimensions: pd.DataFrame


def to_unit(d: Dimension, x: float) -> float:
    """``x`` as a share of ``d``'s range (log or linear, per its scale)."""
    if d.scale == "log":
        return (math.log(x) - math.log(d.lower)) / (math.log(d.upper) - math.log(d.lower))
    return (x - d.lower) / (d.upper - d.lower)


def from_unit(d: Dimension, u: float) -> float:
    """The value at share ``u`` of ``d``'s range (the inverse of :func:`to_unit`; a ``u``
    outside [0, 1] gives a value outside the range)."""
    if d.scale == "log":
        return float(math.exp(math.log(d.lower) + u * (math.log(d.upper) - math.log(d.lower))))
    return float(d.lower + u * (d.upper - d.lower))


def start_point(space: Space, start: ParameterSet | None) -> dict[str, float]:
    """The starting value of every dimension: ``start``'s where it names one, else the
    model's own (not clipped: a model value outside a dimension's box is where the analysis
    starts, so that the starting run is the model itself)."""
    out: dict[str, float] = {}
    for d in space.dimensions:
        v = start.values.get(d.parameter, {}).get(d.field) if start is not None else None
        out[d.key] = d.model_value() if v is None else float(v)
    return out


def plan(space: Space, x0: dict[str, float], step: float) -> list[Probe]:
    """The starting point, then each dimension one ``step`` down and up. A step that would
    leave the dimension's box is clipped to the box when the start is inside it (a dimension
    at a bound is probed on one side only) and dropped when the start is outside it and the
    step leads further away."""
    probes = [Probe(None, "baseline", math.nan, math.nan)]
    for d in space.dimensions:
        u0 = to_unit(d, x0[d.key])
        inside = 0.0 <= u0 <= 1.0
        for side, sign in zip(SIDES, (-1.0, 1.0), strict=True):
            u = u0 + sign * step
            if u < 0.0 or u > 1.0:
                if inside:
                    u = min(max(u, 0.0), 1.0)
                elif (u < 0.0 and sign < 0) or (u > 1.0 and sign > 0):
                    continue
            if abs(u - u0) < 1e-9:
                continue
            probes.append(Probe(d, side, u, from_unit(d, u)))
    return probes


def probe_set(start: ParameterSet | None, probe: Probe) -> ParameterSet | None:
    """The parameter set in force for ``probe``: ``start`` (``None``: the model's own values)
    with the probed dimension moved; the starting run is ``start`` itself."""
    if probe.dim is None:
        return start
    values = {k: dict(v) for k, v in (start.values.items() if start is not None else ())}
    values.setdefault(probe.dim.parameter, {})[probe.dim.field] = float(probe.value)
    return ParameterSet(f"sensitivity-{probe.name}", "cartsim sensitivity probe", values)


def _tolerance(rec: dict[str, Any], value: float) -> float:
    """The half-width that decides passing on the side of ``value``: the published CI's (as
    the objective reads it, :func:`cartsim.calibrate.objective.ci_sd`), or
    :data:`~cartsim.validate.run.POINTS` for a percentage without a CI; NaN where neither
    applies."""
    lo, hi = rec.get("published_ci_low"), rec.get("published_ci_high")
    lo = None if lo is None or pd.isna(lo) else float(lo)
    hi = None if hi is None or pd.isna(hi) else float(hi)
    if lo is not None or hi is not None:
        sd = ci_sd(float(rec["published"]), lo, hi, value)
        return sd * Z95 if sd is not None else math.nan
    return POINTS if rec.get("unit") == "percent" else math.nan


def _pass(rec: dict[str, Any], value: float) -> bool | None:
    lo, hi = rec.get("published_ci_low"), rec.get("published_ci_high")
    return passes_at(float(rec["published"]), None if pd.isna(lo) else float(lo),
                     None if pd.isna(hi) else float(hi), str(rec.get("unit")), value)


class _Runner:
    """Runs (or reuses) the probes' validation tables in ``out/evaluations``."""

    def __init__(self, evaluator: Evaluator, start: ParameterSet | None, out: Path) -> None:
        self.evaluator = evaluator
        self.start = start
        self.dir = out / "evaluations"
        self.dir.mkdir(parents=True, exist_ok=True)
        #: probe name -> patients the simulator stopped under it (probes run by this version)
        self.stopped: dict[str, int] = {}

    def table(self, probe: Probe) -> tuple[pd.DataFrame, float, bool]:
        path = self.dir / f"{probe.name}.csv"
        stopped = self.dir / f"{probe.name}.stopped"  # patients the simulator stopped
        if path.is_file():
            if stopped.is_file():
                self.stopped[probe.name] = int(stopped.read_text())
            return pd.read_csv(path), 0.0, True
        ev = self.evaluator(probe_set(self.start, probe), self.evaluator.work / probe.name)
        write_text_atomic(stopped, f"{ev.stopped}\n")
        self.stopped[probe.name] = ev.stopped
        write_text_atomic(path, ev.table.to_csv(index=False, lineterminator="\n",
                                                float_format="%.10g"))
        return pd.read_csv(path), ev.seconds, False


def _deviance(table: pd.DataFrame, ev: Evaluator, keys: set[str]) -> float:
    if not keys:
        return math.nan
    return float(compute_objective(table, ev.targets, ev.mapping, keys).deviance)


def _judged(table: pd.DataFrame, keys: set[str] | None = None) -> tuple[int, int]:
    t = table[table["status"] == "compared"]
    if keys is not None:
        t = t[t["spec"].isin(keys)]
    share = pass_share(t, "passes")
    return int(share["passing"]), int(share["judged"])


def sensitivity(out: str | Path, *, space_path: str | Path | None = None,
                studies: Sequence[str] | None = None, held_out: Sequence[str] | None = None,
                patients: int = 200, step: float = 0.1, trust: float = 2.0,
                start: str | Path | None = None, seed: int | None = None,
                targets_path: str | Path | None = None, specs: str | Path | None = None,
                workers: int = 1, progress: ProgressFn | None = None,
                reference: str | Path | None = None, max_dims: int | None = None,
                command: str = "") -> SensitivityResult:
    """Run the analysis (module docstring) and write its outputs into ``out``.

    ``reference``: a ``validation.csv`` of ``cartsim validate`` at the same starting point with
    more patients per arm; the proposal then starts from its values (matched by targets line)
    and only the slopes come from this analysis's runs."""
    from cartsim.validate.run import study_pool

    if not 1 <= workers <= 256:
        raise InvalidInputError("--workers", "an integer in [1, 256]", workers)
    if not 0.005 <= step <= 0.5:
        raise InvalidInputError("--step", "a number in [0.005, 0.5] (share of each "
                                "dimension's range)", step)
    if not 0.0 <= trust <= 20.0:
        raise InvalidInputError("--trust", "a number in [0, 20] (steps)", trust)
    if not 1 <= patients <= 1_000_000:
        raise InvalidInputError("--patients", "an integer in [1, 1000000]", patients)
    if max_dims is not None and not 1 <= max_dims <= 1000:
        raise InvalidInputError("--max-dims", "an integer >= 1 (or leave it out: all)",
                                max_dims)
    space = load_space(space_path)
    cal, held = study_lists(space, studies, held_out)
    start_set = parameter_sets.load(start) if start is not None else None
    x0 = start_point(space, start_set)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    evaluator = Evaluator(targets_path, specs, cal + held, patients, seed, out / "work")
    cal_entries, _ = select_entries(evaluator.library, evaluator.targets, cal)
    cal_keys = {e.key for e in cal_entries}
    held_keys = set(evaluator.keys) - cal_keys
    if not cal_keys:
        raise CalibrationError(f"--studies {', '.join(cal)}: no study of the library has rows "
                               "in the targets file")
    config = {"space": space.name, "dimensions": [d.__dict__ for d in space.dimensions],
              "studies": sorted(evaluator.keys), "patients": patients, "step": step,
              "start": x0, "seed": seed, "targets": Path(evaluator.targets.path).name,
              "specs": str(evaluator.library.path)}
    cfg_path = out / CONFIG_NAME
    diff = config_differences(cfg_path, config)
    if diff:
        raise InvalidInputError("--out", "an empty directory, or one holding an analysis "
                                "with the same settings (to resume it)", str(out),
                                f"{cfg_path} records different {', '.join(diff)}")
    write_text_atomic(cfg_path, json.dumps(config, indent=1))
    probes = plan(space, x0, step)
    t_start = time.perf_counter()
    tables: dict[str, pd.DataFrame] = {}
    seconds: list[float] = []
    with contextlib.ExitStack() as stack:
        if workers > 1:
            evaluator.pool = stack.enter_context(study_pool(workers))
        runner = _Runner(evaluator, start_set, out)
        for i, probe in enumerate(probes):
            tables[probe.name], secs, reused = runner.table(probe)
            if not reused:
                seconds.append(secs)
            if progress is not None:
                progress(i + 1, len(probes), probe.name)
    rows, dims = _analyse(space, x0, step, probes, tables, evaluator, cal_keys, held_keys)
    start_table = tables["baseline"]
    if reference is not None:
        start_table = _reference_table(start_table, reference)
    proposal = _propose(space, x0, step, trust, rows, start_table, evaluator, cal_keys,
                        held_keys, max_dims, start_set)
    base_pass = _judged(tables["baseline"])
    summary: dict[str, Any] = {
        "space": space.name, "studies": sorted(evaluator.keys),
        "calibration_studies": sorted(cal_keys), "held_out_studies": sorted(held_keys),
        "patients_per_arm": patients, "step": step, "trust_steps": trust,
        "start": x0, "evaluations": len(probes),
        "seconds_per_evaluation": round(float(np.median(seconds)), 1) if seconds else None,
        "wall_seconds_this_run": round(time.perf_counter() - t_start, 1),
        "baseline": {"passing": base_pass[0], "judged": base_pass[1],
                     "deviance_calibration": _deviance(tables["baseline"], evaluator,
                                                       cal_keys),
                     "deviance_held_out": _deviance(tables["baseline"], evaluator, held_keys)},
        "reach": _reach(rows),
        # probes under which the simulator stopped patients early: their rows are computed on
        # censored courses (docs/validation.md "Patients the simulator stopped")
        "probes_with_stopped_patients": {k: v for k, v in runner.stopped.items() if v},
        "proposal": proposal["summary"],
        "proposal_start": str(reference) if reference is not None else "the analysis's own "
                          "starting run",
        "command": command,
    }
    write_text_atomic(out / "sensitivity_rows.csv", rows.to_csv(
        index=False, lineterminator="\n", float_format="%.6g"))
    write_text_atomic(out / "sensitivity_dimensions.csv", dims.to_csv(
        index=False, lineterminator="\n", float_format="%.6g"))
    write_text_atomic(out / "proposal_rows.csv", proposal["rows"].to_csv(
        index=False, lineterminator="\n", float_format="%.6g"))
    parameter_sets.save(proposal["set"], out / "proposal.toml")
    write_text_atomic(out / "sensitivity.json", json.dumps(summary, indent=1, default=str))
    png = heatmap_png(rows)
    if png is not None:
        atomic_write(out / "sensitivity.png", lambda tmp: tmp.write_bytes(png))
    return SensitivityResult(out, summary, rows, dims)


def _reference_table(base: pd.DataFrame, reference: str | Path) -> pd.DataFrame:
    """``base`` with the simulated values, n and passes of a larger validation run at the
    same point (rows matched by targets line; rows the reference did not compare keep
    ``base``'s)."""
    try:
        ref = pd.read_csv(reference)
    except (OSError, ValueError) as e:
        raise InvalidInputError("--reference", "a validation.csv written by cartsim validate",
                                str(reference), str(e)) from None
    need = {"line", "status", "simulated", "n_simulated", "passes"}
    if not need <= set(ref.columns):
        raise InvalidInputError("--reference", "a validation.csv with columns "
                                + ", ".join(sorted(need)), str(reference),
                                "missing " + ", ".join(sorted(need - set(ref.columns))))
    ref = ref[ref["status"] == "compared"].set_index("line")
    out = base.copy()
    hit = out["line"].isin(ref.index) & (out["status"] == "compared")
    for c in ("simulated", "n_simulated", "passes"):
        out[c] = out[c].astype(object)
        out.loc[hit, c] = ref.loc[out.loc[hit, "line"], c].to_numpy()
    out["simulated"] = out["simulated"].astype(float)
    out["n_simulated"] = pd.to_numeric(out["n_simulated"], errors="coerce")
    return out


ROW_KEYS = ("line", "study", "spec", "endpoint", "timepoint", "subgroup", "unit", "published",
            "published_ci_low", "published_ci_high")


def _analyse(space: Space, x0: dict[str, float], step: float, probes: list[Probe],
             tables: dict[str, pd.DataFrame], ev: Evaluator, cal_keys: set[str],
             held_keys: set[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    base = tables["baseline"]
    comp = base[base["status"] == "compared"]
    recs = comp[list(ROW_KEYS) + ["simulated", "passes"]].to_dict("records")
    by_probe = {name: t.set_index("line")["simulated"] for name, t in tables.items()}
    out_rows: list[dict[str, Any]] = []
    dim_rows: list[dict[str, Any]] = []
    for d in space.dimensions:
        u0 = to_unit(d, x0[d.key])
        sides = {p.side: p for p in probes if p.dim is not None and p.dim.key == d.key}
        for rec in recs:
            line = rec["line"]
            b = float(rec["simulated"])
            r: dict[str, Any] = {k: rec[k] for k in ROW_KEYS}
            r["set"] = "calibration" if rec["spec"] in cal_keys else "held_out"
            r.update(dimension=d.key, baseline=b, passes_baseline=rec["passes"])
            pts = []
            for side in SIDES:
                p = sides.get(side)
                v = float(by_probe[p.name].get(line, math.nan)) if p is not None else math.nan
                r[f"value_{side}"] = p.value if p is not None else math.nan
                r[f"simulated_{side}"] = v
                r[f"passes_{side}"] = _pass(rec, v) if math.isfinite(v) else None
                if p is not None and math.isfinite(v):
                    pts.append((p.u, v))
            pts.append((u0, b))
            slope = _slope(pts)
            r["change_per_step"] = slope * step
            tol = _tolerance(rec, b)
            gap = float(rec["published"]) - b
            # + : raising the parameter moves the row towards the published figure
            r["towards_per_step"] = (math.copysign(1.0, gap) * r["change_per_step"] / tol
                                     if math.isfinite(tol) and gap != 0 else math.nan)
            out_rows.append(r)
        rec_d: dict[str, Any] = {"dimension": d.key, "why": d.why, "scale": d.scale,
                                 "lower": d.lower, "upper": d.upper, "start": x0[d.key]}
        for side in SIDES:
            p = sides.get(side)
            t = tables.get(p.name) if p is not None else None
            rec_d[f"value_{side}"] = p.value if p is not None else math.nan
            rec_d[f"deviance_calibration_{side}"] = \
                _deviance(t, ev, cal_keys) if t is not None else math.nan
            rec_d[f"deviance_held_out_{side}"] = \
                _deviance(t, ev, held_keys) if t is not None else math.nan
            rec_d[f"passing_{side}"] = _judged(t)[0] if t is not None else math.nan
        dim_rows.append(rec_d)
    rows = pd.DataFrame(out_rows)
    dims = pd.DataFrame(dim_rows)
    k0, n0 = _judged(base)
    dims.insert(6, "passing_baseline", k0)
    dims.insert(7, "judged", n0)
    dims.insert(8, "deviance_calibration_baseline", _deviance(base, ev, cal_keys))
    dims.insert(9, "deviance_held_out_baseline", _deviance(base, ev, held_keys))
    for side in SIDES:
        g = rows[(rows["passes_baseline"] == False) & (rows[f"passes_{side}"] == True)]  # noqa: E712
        lost = rows[(rows["passes_baseline"] == True) & (rows[f"passes_{side}"] == False)]  # noqa: E712
        dims[f"gained_{side}"] = [int((g["dimension"] == k).sum()) for k in dims["dimension"]]
        dims[f"lost_{side}"] = [int((lost["dimension"] == k).sum()) for k in dims["dimension"]]
    moved = rows[rows["towards_per_step"].abs() >= MOVE_SHARE]
    dims["rows_moved"] = [int((moved["dimension"] == k).sum()) for k in dims["dimension"]]
    return rows, dims


def _slope(pts: list[tuple[float, float]]) -> float:
    """Least-squares slope through (u, value) points (the central difference for three
    equally spaced points; the one-sided difference at a bound)."""
    if len(pts) < 2:
        return math.nan
    u = np.array([p[0] for p in pts])
    v = np.array([p[1] for p in pts])
    if np.ptp(u) == 0:
        return math.nan
    return float(np.polyfit(u, v, 1)[0])


def _true(x: Any) -> bool:
    return x is not None and not pd.isna(x) and bool(x)


def _reach(rows: pd.DataFrame) -> dict[str, Any]:
    """Failing rows (baseline) that some single step makes pass, and those no step moves."""
    failing = rows[rows["passes_baseline"] == False]  # noqa: E712
    lines = sorted(set(failing["line"]))
    reachable = sorted({int(r["line"]) for r in failing.to_dict("records")
                        if _true(r["passes_minus"]) or _true(r["passes_plus"])})
    still = failing.groupby("line")["towards_per_step"].apply(
        lambda s: bool((s.abs() < MOVE_SHARE).all() or s.isna().all()))
    return {"failing_rows": len(lines), "passing_after_one_step": reachable,
            "moved_by_no_dimension": sorted(int(k) for k, v in still.items()
                                            if v and int(k) not in reachable)}


class FastDeviance:
    """The objective's deviance (:func:`cartsim.calibrate.objective.compute_objective`) of a
    fixed set of compared rows as a vectorised function of their simulated values: each row's
    term kind (binomial on the published n, normal on the published CI, on the log scale for
    ratios) is read once from ``row_term`` at the starting values, so that a search over many
    candidate values costs microseconds, not a pass over the table (tested equal to
    ``compute_objective``)."""

    def __init__(self, comp: pd.DataFrame, ev: Evaluator, keys: set[str]) -> None:
        obj = compute_objective(comp, ev.targets, ev.mapping, keys)
        terms = obj.terms.set_index("line")
        self.index: list[int] = []
        kind: list[int] = []  # 0 binomial, 1 normal, 2 normal on log
        k, n, nsim, pub, sd_up, sd_down = [], [], [], [], [], []
        for i, rec in enumerate(comp.to_dict("records")):
            if rec["spec"] not in keys or rec["line"] not in terms.index:
                continue
            t = terms.loc[rec["line"]]
            if isinstance(t, pd.DataFrame):
                t = t.iloc[0]
            if not bool(t["used"]):
                continue
            method = str(t["method"])
            lo = rec.get("published_ci_low")
            hi = rec.get("published_ci_high")
            lo = None if lo is None or pd.isna(lo) else float(lo)
            hi = None if hi is None or pd.isna(hi) else float(hi)
            p0 = float(rec["published"])
            self.index.append(i)
            if method.startswith("binomial"):
                kind.append(0)
                n_pub = int(t["n_published"])
                k.append(int(round(p0 / 100.0 * n_pub)))
                n.append(n_pub)
                ns = rec.get("n_simulated")
                nsim.append(int(ns) if ns is not None and not pd.isna(ns) else 0)
                pub.append(p0)
                sd_up.append(1.0)
                sd_down.append(1.0)
                continue
            log = method.startswith("normal on log")
            kind.append(2 if log else 1)
            if log:
                p0, lo, hi = (math.log(p0), math.log(lo) if lo and lo > 0 else None,
                              math.log(hi) if hi and hi > 0 else None)
            pub.append(p0)
            sd_up.append(float(ci_sd(p0, lo, hi, p0) or math.nan))
            sd_down.append(float(ci_sd(p0, lo, hi, p0 - 1.0) or math.nan))
            k.append(0)
            n.append(1)
            nsim.append(0)
        self.kind = np.array(kind, dtype=np.int64)
        self.k = np.array(k, dtype=float)
        self.n = np.array(n, dtype=float)
        self.nsim = np.array(nsim, dtype=float)
        self.pub = np.array(pub, dtype=float)
        self.sd_up = np.array(sd_up, dtype=float)
        self.sd_down = np.array(sd_down, dtype=float)
        self.rows = np.array(self.index, dtype=np.int64)
        b = self.kind == 0
        with np.errstate(divide="ignore", invalid="ignore"):
            from scipy import stats as sps

            self._sat = np.where(b, sps.binom.logpmf(self.k, self.n, self.k / self.n), 0.0)

    def __call__(self, values: np.ndarray) -> float:
        """Deviance at ``values`` (simulated values of every row of ``comp``, in order)."""
        from scipy import stats as sps

        x = np.asarray(values, dtype=float)[self.rows]
        dev = np.zeros(len(x))
        b = self.kind == 0
        if b.any():
            share = x[b] / 100.0
            p = np.where(self.nsim[b] > 0, (share * self.nsim[b] + 0.5) / (self.nsim[b] + 1.0),
                         share)
            p = np.clip(p, 1e-12, 1.0 - 1e-12)
            ll = sps.binom.logpmf(self.k[b], self.n[b], p)
            dev[b] = np.maximum(0.0, -2.0 * (ll - self._sat[b]))
        nrm = ~b
        if nrm.any():
            xs = np.where(self.kind[nrm] == 2, np.log(np.maximum(x[nrm], 1e-300)), x[nrm])
            sd = np.where(xs >= self.pub[nrm], self.sd_up[nrm], self.sd_down[nrm])
            z = (xs - self.pub[nrm]) / sd
            dev[nrm] = z * z
        return float(dev.sum())


def _propose(space: Space, x0: dict[str, float], step: float, trust: float,
             rows: pd.DataFrame, base: pd.DataFrame, ev: Evaluator, cal_keys: set[str],
             held_keys: set[str], max_dims: int | None = None,
             start: ParameterSet | None = None) -> dict[str, Any]:
    """Minimise the calibration studies' deviance of the linearised rows in a trust region:
    over every dimension at once (``max_dims`` None), or over the ``max_dims`` dimensions
    chosen by greedy forward selection (each round adds the dimension whose best move, with
    the chosen ones re-optimised, lowers the deviance most; the path is reported)."""
    from scipy.optimize import minimize

    dims = list(space.dimensions)
    u0 = np.array([to_unit(d, x0[d.key]) for d in dims])
    comp = base[base["status"] == "compared"].reset_index(drop=True)
    lines = comp["line"].to_numpy()
    slope = np.zeros((len(comp), len(dims)))
    for j, d in enumerate(dims):
        r = rows[rows["dimension"] == d.key].set_index("line")
        per_step = r["change_per_step"].reindex(lines).to_numpy(dtype=float)
        s = np.where(np.isfinite(per_step), per_step / step, 0.0)
        slope[:, j] = s
    b = comp["simulated"].to_numpy(dtype=float)
    recs = comp.to_dict("records")
    pct = np.array([r.get("unit") == "percent" for r in recs])

    def predicted(du: np.ndarray) -> np.ndarray:
        v = b + slope @ du
        return np.where(pct, np.clip(v, 0.0, 100.0), np.maximum(v, 1e-9))

    def table_at(du: np.ndarray) -> pd.DataFrame:
        t = comp.copy()
        t["simulated"] = predicted(du)
        return t

    dev_cal = FastDeviance(comp, ev, cal_keys) if cal_keys else None
    dev_held = FastDeviance(comp, ev, held_keys) if held_keys else None

    def f(du: np.ndarray) -> float:
        return dev_cal(predicted(du)) if dev_cal is not None else 0.0

    # the box of trust steps, inside the dimensions' bounds (a start outside a dimension's
    # bounds may stay where it is or move towards them)
    lo = np.minimum(0.0, np.maximum(-trust * step, -u0))
    hi = np.maximum(0.0, np.minimum(trust * step, 1.0 - u0))
    zero = np.zeros(len(dims))

    def optimise(active: list[int]) -> tuple[np.ndarray, float]:
        if not active:
            return zero.copy(), f(zero)

        def g(x: np.ndarray) -> float:
            du = zero.copy()
            du[active] = x
            return f(du)

        res = minimize(g, np.zeros(len(active)), method="L-BFGS-B",
                       bounds=list(zip(lo[active], hi[active], strict=True)),
                       options={"eps": 1e-5, "maxiter": 300})
        du = zero.copy()
        if res.fun < g(np.zeros(len(active))):
            du[active] = res.x
        return du, f(du)

    path: list[dict[str, Any]] = []
    if trust <= 0 or dev_cal is None:
        du = zero
    elif max_dims is None or max_dims >= len(dims):
        du, _ = optimise(list(range(len(dims))))
    else:
        chosen: list[int] = []
        du = zero
        best = f(zero)
        for _ in range(max_dims):
            trial = [(optimise(chosen + [j]), j) for j in range(len(dims)) if j not in chosen]
            (du_j, dev_j), j = min(trial, key=lambda t: (t[0][1], t[1]))
            if not dev_j < best - 1e-9:
                break
            chosen.append(j)
            du, best = du_j, dev_j
            path.append({"added": dims[j].key, "deviance_calibration": round(best, 3),
                         "deviance_held_out": round(dev_held(predicted(du)), 3)
                         if dev_held is not None else None,
                         "steps": {dims[i].key: round(float(du[i] / step), 3)
                                   for i in chosen}})
    pred = predicted(du)
    # (an unmoved dimension keeps its starting value exactly, not a round trip through u)
    values = {d.key: from_unit(d, float(u0[j] + du[j])) if abs(du[j]) > 1e-6 else x0[d.key]
              for j, d in enumerate(dims)}
    changed = {d.key: values[d.key] for j, d in enumerate(dims) if abs(du[j]) > 1e-6}
    # the set names the start's values and the moved dimensions, nothing else: every other
    # parameter keeps the model's own value
    ps_values = {k: dict(v) for k, v in (start.values.items() if start is not None else ())}
    for d in dims:
        if d.key in changed:
            ps_values.setdefault(d.parameter, {})[d.field] = values[d.key]
    ps = ParameterSet(
        "sensitivity-proposal",
        "linearised proposal of cartsim sensitivity (space " + space.name + "); not validated: "
        "run cartsim validate --parameter-set on it", ps_values,
        {"changed": changed, "start": x0})
    out_rows = comp[list(ROW_KEYS) + ["simulated", "passes"]].rename(
        columns={"simulated": "baseline", "passes": "passes_baseline"})
    out_rows.insert(3, "set", ["calibration" if s in cal_keys else "held_out"
                               for s in comp["spec"]])
    out_rows["predicted"] = pred
    out_rows["passes_predicted"] = [_pass(r, float(x)) for r, x in zip(recs, pred, strict=True)]
    tp = table_at(du)
    tp["passes"] = out_rows["passes_predicted"].to_numpy()

    def share(t: pd.DataFrame, keys: set[str]) -> dict[str, int]:
        k, n = _judged(t, keys)
        return {"passing": k, "judged": n}

    summary = {
        "changed": changed, "steps": {d.key: round(float(du[j] / step), 3)
                                      for j, d in enumerate(dims) if abs(du[j]) > 1e-6},
        "max_dims": max_dims, "path": path,
        "predicted_deviance_calibration": _deviance(tp, ev, cal_keys),
        "baseline_deviance_calibration": _deviance(comp, ev, cal_keys),
        "predicted_deviance_held_out": _deviance(tp, ev, held_keys),
        "baseline_deviance_held_out": _deviance(comp, ev, held_keys),
        "predicted_passing_calibration": share(tp, cal_keys),
        "baseline_passing_calibration": share(comp, cal_keys),
        "predicted_passing_held_out": share(tp, held_keys),
        "baseline_passing_held_out": share(comp, held_keys),
        "note": "linear prediction from one-at-a-time steps; validate before use",
    }
    return {"set": ps, "rows": out_rows, "summary": summary}


def heatmap_png(rows: pd.DataFrame, max_rows: int = 80) -> bytes | None:
    """Failing rows (baseline) x dimensions: the movement towards the published figure per
    step up, in units of the row's tolerance (green: raising the parameter helps)."""
    failing = rows[rows["passes_baseline"] == False]  # noqa: E712
    if failing.empty:
        return None
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = failing.pivot_table(index="line", columns="dimension", values="towards_per_step",
                            aggfunc="first")
    dims = list(dict.fromkeys(rows["dimension"]))
    m = m.reindex(columns=[d for d in dims if d in m.columns])
    m = m.loc[m.abs().max(axis=1).sort_values(ascending=False).index[:max_rows]]
    first = failing.drop_duplicates("line").set_index("line")
    labels = [f"{ln} {first.loc[ln, 'spec']} {first.loc[ln, 'endpoint']}"[:60] for ln in m.index]
    fig, ax = plt.subplots(figsize=(max(7.0, 4.0 + 0.4 * m.shape[1]),
                                    2.0 + 0.22 * m.shape[0]))
    im = ax.imshow(np.clip(m.to_numpy(dtype=float), -1, 1), cmap="RdYlGn", vmin=-1, vmax=1,
                   aspect="auto")
    ax.set_xticks(range(m.shape[1]), m.columns, rotation=90, fontsize=7)
    ax.set_yticks(range(m.shape[0]), labels, fontsize=6)
    ax.set_title("failing rows (target line, study spec, endpoint): movement towards the\n"
                 "published figure per step up, as a share of the row's tolerance\n"
                 "(green: raising the parameter helps; red: lowering it helps)", fontsize=8)
    fig.colorbar(im, ax=ax, shrink=0.5)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
