"""Speed of the full model, this tree against a reference tree, in one interleaved run.

Reports, for each source tree (this one and, with ``--ref``, another checkout such as a
``git worktree`` of the commit before the speed work):

* patient-days/s of ``simulate()`` on a paediatric B-ALL cohort (tisagenlecleucel, weights
  10–80 kg, ages 2–25, blasts 5–95 %, variability and the stochastic layer on), with the
  default management protocol in the daily loop ("clinic") and without it ("no clinic"),
  at each ``--sizes`` N, with patient-days per CPU-second (user + system time of the
  process: less sensitive than wall time to other load on a shared machine), the share of
  wall time spent in the solver, solver steps per patient-day and the peak RSS;
* the start-up time of ``cartsim simulate --patients 1 --days 30`` in a fresh process, with
  empty numba and cartsim caches (first run on a machine), again (second run, warm cache),
  and once more after another process composed a different model (the ``gvl`` add-on, as a
  trial arm with HSCT consolidation does): its generated right-hand side lands in the same
  cache directory, which must not invalidate the core model's cached solver;
* with ``--warm-starts N``, N more fresh-process runs of that command (with its PNG) on the
  tree's ordinary caches (``~/.cache/cartsim``, numba's ``__pycache__``; one run first fills
  them), trees alternating: wall and CPU seconds (user + system) per run, minimum and median,
  and whether the trees wrote the same ``trajectories.parquet`` and ``events.parquet``; this
  is issue 12's "≤ 3 s start" measurement (``--sizes --no-cold --warm-starts 5``);
* with ``--calibration N``, one evaluation of ``cartsim calibrate``'s objective (issue 12
  item 5): every calibration study of the shipped space (``src/cartsim/data/calibration/
  space.toml``) validated at N patients per arm with the model's own values and scored
  against ``clinical_targets.csv``, in one process as ``cartsim calibrate --workers 1``
  runs it (numba's threads on the machine's cores), after a first, untimed evaluation that
  loads every solver; the deviance is printed so that the trees' numbers can be compared
  (a tree without
  ``cartsim.calibrate``, such as a96a784, reports that it has none);
* with ``--trial N``, one trial chunk end to end (``cartsim.trial.runner.simulate_chunk`` on
  ``examples/eliana.toml`` with N patients, default protocol, 365 days; ``--trial-spec``
  another spec, the same file for both trees): simulation, clinic, endpoints and the per-day
  report table, in patient-days/s and per CPU-second.

Every measurement runs in a fresh Python process (``PYTHONPATH=<tree>/src``); the trees
alternate in a shuffled order within each repetition, so that load on a shared machine
hits both alike, and the ratios (this / reference) are the robust numbers. Compilation or
cache loading is excluded from the throughput (a 2-patient warm-up call runs first).

Usage::

    git worktree add /tmp/cartsim-ref a96a784
    python benchmarks/bench_speed.py --ref /tmp/cartsim-ref --sizes 2000 10000 --days 365 \
        --trial 2000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, resource, sys, time
import numpy as np
from cartsim.population import Cohort
from cartsim.products import get_product
from cartsim.simulation import simulate
n, days, clinic = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
policy = None
if clinic:
    from cartsim.clinic import load_protocol
    policy = load_protocol("default")
prod = get_product("tisagenlecleucel")
t = time.perf_counter()
simulate(Cohort("b-all", weight_kg=np.full(2, 30.0), age_y=np.full(2, 10.0),
                marrow_blasts_pct=np.full(2, 50.0)), prod, days=3, protocol=policy)
warm = time.perf_counter() - t
rng = np.random.default_rng(0)
cohort = Cohort("b-all", weight_kg=rng.uniform(10, 80, n), age_y=rng.uniform(2, 25, n),
                marrow_blasts_pct=rng.uniform(5, 95, n))
import cartsim.simulation as sim
solver = sim.integrator()
solver_wall = [0.0]


def timed(*args):
    t0 = time.perf_counter()
    solver(*args)
    solver_wall[0] += time.perf_counter() - t0


sim.integrator = lambda *a, **k: timed
ru = resource.getrusage(resource.RUSAGE_SELF)
cpu0 = ru.ru_utime + ru.ru_stime
t = time.perf_counter()
r = simulate(cohort, prod, days=days, seed=1, protocol=policy)
wall = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_SELF)
cpu = ru.ru_utime + ru.ru_stime - cpu0
pdays = n * (days + 6)  # day -5 .. days
print(json.dumps({"wall": wall, "warmup": warm, "pd_per_s": pdays / wall,
                  "pd_per_cpu_s": pdays / cpu, "solver_share": solver_wall[0] / wall,
                  "steps_per_pd": float(r.steps.sum()) / (n * (days + 5)),
                  "failed": int((r.status != 0).sum()),
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


_TRIAL_CHILD = r"""
import json, resource, sys, time, tomllib
import numpy as np
from cartsim.trial.runner import simulate_chunk
from cartsim.trial.spec import validate_spec
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "rb") as f:
    spec = validate_spec(tomllib.load(f))
t = time.perf_counter()
simulate_chunk(spec, 0, np.arange(2))
warm = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_SELF)
cpu0 = ru.ru_utime + ru.ru_stime
t = time.perf_counter()
table, daily = simulate_chunk(spec, 0, np.arange(n))
wall = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_SELF)
cpu = ru.ru_utime + ru.ru_stime - cpu0
pdays = n * (spec.follow_up_days + 6)
print(json.dumps({"wall": wall, "warmup": warm, "pd_per_s": pdays / wall,
                  "pd_per_cpu_s": pdays / cpu, "rows": len(daily),
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


_CALIB_CHILD = r"""
import json, resource, sys, tempfile, time
from pathlib import Path
try:
    from cartsim.calibrate.run import Evaluator
    from cartsim.calibrate.space import load_space
except ImportError:
    print(json.dumps({"missing": True}))
    raise SystemExit(0)
n = int(sys.argv[1])
space = load_space(None)
with tempfile.TemporaryDirectory(prefix="bench-speed-calib-") as tmp:
    ev = Evaluator(None, None, list(space.studies), n, None, Path(tmp) / "work")
    t = time.perf_counter()
    ev(None, Path(tmp) / "warm")
    warm = time.perf_counter() - t
    ru = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = ru.ru_utime + ru.ru_stime
    e = ev(None, Path(tmp) / "timed")
    ru = resource.getrusage(resource.RUSAGE_SELF)
    cpu = ru.ru_utime + ru.ru_stime - cpu0
print(json.dumps({"wall": e.seconds, "cpu": cpu, "warmup": warm, "studies": len(ev.keys),
                  "objective": float(e.objective.deviance),
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


#: extra environment per tree name (``--ref-env``), e.g. CARTSIM_JACOBIAN=fd
_EXTRA_ENV: dict[str, dict[str, str]] = {}


def _env(tree: Path | tuple[Path, str], cache: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    if isinstance(tree, tuple):
        tree, name = tree
        env.update(_EXTRA_ENV.get(name, {}))
    env["PYTHONPATH"] = str(tree / "src")
    if cache is not None:
        env["NUMBA_CACHE_DIR"] = cache
        env["CARTSIM_CACHE_DIR"] = cache  # generated right-hand sides (model.mechanism)
    return env


def trial_chunk(tree: Path | tuple[Path, str], n: int, spec: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _TRIAL_CHILD, str(n), str(spec)],
                         env=_env(tree), capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def calibration_evaluation(tree: Path | tuple[Path, str], n: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _CALIB_CHILD, str(n)], env=_env(tree),
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def compose_other_model(tree: Path | tuple[Path, str], cache: str) -> None:
    """Compose the core model plus the ``gvl`` add-on in a separate process (writes its
    generated right-hand side into the shared cache directory)."""
    subprocess.run([sys.executable, "-c",
                    "from cartsim.model import layout; layout.model({'gvl'})"],
                   env=_env(tree, cache), capture_output=True, check=True)


def throughput(tree: Path | tuple[Path, str], n: int, days: int, clinic: bool) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(n), str(days), str(int(clinic))],
                         env=_env(tree), capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cold_start(tree: Path | tuple[Path, str], cache: str) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-speed-out-") as out:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cartsim", "simulate", "--product",
                        "tisagenlecleucel", "--disease", "b-all", "--out", out, "--patients",
                        "1", "--days", "30"], env=_env(tree, cache), capture_output=True,
                       check=True)
        return time.perf_counter() - t


def warm_start(tree: Path | tuple[Path, str]) -> dict[str, object]:
    """One fresh ``cartsim simulate --patients 1 --days 30`` (PNG included) on the tree's
    ordinary caches: wall and CPU seconds, and the Parquet files' digests."""
    with tempfile.TemporaryDirectory(prefix="bench-speed-warm-") as tmp:
        out = Path(tmp) / "run"
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cartsim", "simulate", "--product",
                        "tisagenlecleucel", "--disease", "b-all", "--out", str(out),
                        "--patients", "1", "--days", "30"], env=_env(tree),
                       capture_output=True, check=True)
        wall = time.perf_counter() - t
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        digest = hashlib.sha256(b"".join(
            (out / f).read_bytes() for f in ("trajectories.parquet", "events.parquet")))
        return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime - ru0.ru_utime - ru0.ru_stime,
                "digest": digest.hexdigest()[:16]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", type=Path, help="reference source tree (has src/cartsim)")
    ap.add_argument("--sizes", type=int, nargs="*", default=[2000, 10000])
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--no-cold", action="store_true", help="skip the start-up timing")
    ap.add_argument("--warm-starts", type=int, default=0, metavar="N",
                    help="time N fresh-process one-patient runs on warm caches per tree")
    ap.add_argument("--trial", type=int, nargs="*", default=[],
                    help="also time one ELIANA trial chunk of each of these sizes")
    ap.add_argument("--calibration", type=int, nargs="*", default=[], metavar="N",
                    help="also time one calibration objective evaluation (the shipped "
                         "space's calibration studies at N patients per arm)")
    ap.add_argument("--trial-spec", type=Path, default=HERE / "examples" / "eliana.toml",
                    metavar="SPEC.toml",
                    help="the spec of --trial (default examples/eliana.toml; e.g. "
                         "src/cartsim/data/studies/eliana.toml, whose HSCT after relapse "
                         "brings the gvl add-on, for the add-on model's solver)")
    ap.add_argument("--ref-env", nargs="*", default=[], metavar="KEY=VALUE",
                    help="environment of the reference tree's processes; with --ref . and "
                         "CARTSIM_JACOBIAN=fd, compares the analytic Jacobian with finite "
                         "differences in one tree")
    ap.add_argument("--this-env", nargs="*", default=[], metavar="KEY=VALUE",
                    help="environment of this tree's processes")
    a = ap.parse_args()
    trial_spec = a.trial_spec.resolve()
    trees = {"this": HERE}
    if a.ref is not None:
        trees["ref"] = a.ref.resolve()
    for kv in a.ref_env:
        k, _, v = kv.partition("=")
        _EXTRA_ENV.setdefault("ref", {})[k] = v
    for kv in a.this_env:
        k, _, v = kv.partition("=")
        _EXTRA_ENV.setdefault("this", {})[k] = v
    for name in list(trees):
        trees[name] = (trees[name], name)  # type: ignore[assignment]
    rng = random.Random(0)
    res: dict[tuple[str, int, bool], list[dict[str, float]]] = {}
    cold: dict[str, list[tuple[float, float, float]]] = {k: [] for k in trees}
    chunk: dict[tuple[str, int], list[dict[str, float]]] = {}
    warm: dict[str, list[dict[str, object]]] = {k: [] for k in trees}
    calib: dict[tuple[str, int], list[dict[str, float]]] = {}
    if a.warm_starts:
        for name in trees:  # fill (or check) the caches: not timed
            warm_start(trees[name])
        for i in range(a.warm_starts):
            order = list(trees)
            rng.shuffle(order)
            for name in order:
                w = warm_start(trees[name])
                warm[name].append(w)
                print(f"[warm {i}] {name}: {w['wall']:.2f} s wall, {w['cpu']:.2f} CPU-s, "
                      f"outputs {w['digest']}", flush=True)
    for rep in range(a.reps):
        if not a.no_cold:
            order = list(trees)
            rng.shuffle(order)
            for name in order:
                with tempfile.TemporaryDirectory(prefix="bench-speed-numba-") as cache:
                    first = cold_start(trees[name], cache)
                    second = cold_start(trees[name], cache)
                    compose_other_model(trees[name], cache)
                    third = cold_start(trees[name], cache)
                cold[name].append((first, second, third))
                print(f"[rep {rep}] {name}: start-up first {first:.1f} s, second {second:.1f} s, "
                      f"after another model was composed {third:.1f} s", flush=True)
        for n in a.calibration:
            order = list(trees)
            rng.shuffle(order)
            for name in order:
                r = calibration_evaluation(trees[name], n)
                calib.setdefault((name, n), []).append(r)
                if r.get("missing"):
                    print(f"[rep {rep}] {name}: no cartsim.calibrate in this tree", flush=True)
                    continue
                print(f"[rep {rep}] {name}: calibration objective, {r['studies']:.0f} studies "
                      f"x {n} patients: {r['wall']:.1f} s ({r['cpu']:.1f} CPU-s; first "
                      f"evaluation {r['warmup']:.1f} s), deviance {r['objective']:.3f}, "
                      f"peak RSS {r['rss_mib']:.0f} MiB", flush=True)
        for n in a.trial:
            order = list(trees)
            rng.shuffle(order)
            for name in order:
                r = trial_chunk(trees[name], n, trial_spec)
                chunk.setdefault((name, n), []).append(r)
                print(f"[rep {rep}] {name}: trial chunk N={n}: {r['wall']:.1f} s, "
                      f"{r['pd_per_s']:,.0f} patient-days/s, {r['pd_per_cpu_s']:,.0f} "
                      f"patient-days per CPU-second, peak RSS {r['rss_mib']:.0f} MiB", flush=True)
        for n in a.sizes:
            for clinic in (True, False):
                order = list(trees)
                rng.shuffle(order)
                for name in order:
                    r = throughput(trees[name], n, a.days, clinic)
                    res.setdefault((name, n, clinic), []).append(r)
                    print(f"[rep {rep}] {name}: N={n} days={a.days} "
                          f"{'clinic' if clinic else 'no clinic'}: {r['wall']:.1f} s, "
                          f"{r['pd_per_s']:,.0f} patient-days/s, {r['steps_per_pd']:.3f} "
                          f"steps/patient-day, {r['pd_per_cpu_s']:,.0f} patient-days per "
                          f"CPU-second, solver {100 * r['solver_share']:.0f}% of wall, "
                          f"peak RSS {r['rss_mib']:.0f} MiB, "
                          f"{r['failed']} failed", flush=True)

    def med(xs: list[float]) -> float:
        return statistics.median(xs)

    if a.sizes or a.trial:
        print("\nmedians over repetitions" + (" (ratio = this / ref)" if "ref" in trees else ""))
        print(f"{'N':>7} {'protocol':>9} {'tree':>5} {'patient-days/s':>15} {'ratio':>6} "
              f"{'per CPU-s':>10} {'ratio':>6} {'steps/pd':>9} {'RSS MiB':>8}")
    for n in a.sizes:
        for clinic in (True, False):
            for name in trees:
                rs = res[(name, n, clinic)]
                rate = med([r["pd_per_s"] for r in rs])
                cpu = med([r["pd_per_cpu_s"] for r in rs])
                ratio = ratio_cpu = ""
                if name == "this" and "ref" in trees:
                    ref = res[("ref", n, clinic)]
                    ratio = f"{rate / med([r['pd_per_s'] for r in ref]):.2f}"
                    ratio_cpu = f"{cpu / med([r['pd_per_cpu_s'] for r in ref]):.2f}"
                print(f"{n:>7} {'clinic' if clinic else 'none':>9} {name:>5} {rate:>15,.0f} "
                      f"{ratio:>6} {cpu:>10,.0f} {ratio_cpu:>6} "
                      f"{med([r['steps_per_pd'] for r in rs]):>9.3f} "
                      f"{med([r['rss_mib'] for r in rs]):>8.0f}")
    for n in a.trial:
        for name in trees:
            rs = chunk[(name, n)]
            rate = med([r["pd_per_s"] for r in rs])
            cpu = med([r["pd_per_cpu_s"] for r in rs])
            ratio = ratio_cpu = ""
            if name == "this" and "ref" in trees:
                ref = chunk[("ref", n)]
                ratio = f"{rate / med([r['pd_per_s'] for r in ref]):.2f}"
                ratio_cpu = f"{cpu / med([r['pd_per_cpu_s'] for r in ref]):.2f}"
            print(f"{n:>7} {'trial':>9} {name:>5} {rate:>15,.0f} {ratio:>6} {cpu:>10,.0f} "
                  f"{ratio_cpu:>6} {'':>9} {med([r['rss_mib'] for r in rs]):>8.0f}")
    for n in a.calibration:
        for name in trees:
            rs = [r for r in calib[(name, n)] if not r.get("missing")]
            if not rs:
                print(f"calibration objective, {n} patients ({name}): no cartsim.calibrate")
                continue
            wall = med([r["wall"] for r in rs])
            ratio = ""
            ref = [r for r in calib.get(("ref", n), []) if not r.get("missing")]
            if name == "this" and ref:
                ratio = f", {med([r['wall'] for r in ref]) / wall:.2f}x the reference's speed"
            print(f"calibration objective, {rs[0]['studies']:.0f} studies x {n} patients "
                  f"({name}): {wall:.1f} s per evaluation (median of {len(rs)}){ratio}; "
                  f"deviance {rs[0]['objective']:.3f}")
    for name, ws in warm.items():
        if ws:
            walls = [float(w["wall"]) for w in ws]  # type: ignore[arg-type]
            cpus = [float(w["cpu"]) for w in ws]  # type: ignore[arg-type]
            print(f"warm start `cartsim simulate --patients 1 --days 30` ({name}), "
                  f"{len(ws)} runs: wall min {min(walls):.2f} s, median {med(walls):.2f} s; "
                  f"CPU min {min(cpus):.2f} s, median {med(cpus):.2f} s")
    digests = {str(w["digest"]) for ws in warm.values() for w in ws}
    if digests:
        print("trajectories.parquet + events.parquet: "
              + ("identical in every run" if len(digests) == 1 else f"{len(digests)} variants"))
    for name, xs in cold.items():
        if xs:
            print(f"start-up `cartsim simulate --patients 1 --days 30` ({name}): first run "
                  f"{med([x[0] for x in xs]):.1f} s, second run {med([x[1] for x in xs]):.1f} s, "
                  f"after another model was composed {med([x[2] for x in xs]):.1f} s")


if __name__ == "__main__":
    main()
