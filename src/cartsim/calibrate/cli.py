"""``cartsim calibrate`` (mounted by cartsim.cli)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from cartsim.errors import CartsimError
from cartsim.trial.workers import default_workers

console = Console(stderr=True)


def _fail(e: CartsimError) -> NoReturn:
    from rich.markup import escape

    console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
    raise typer.Exit(2) from None


def _names(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [s.strip() for v in values for s in v.split(",") if s.strip()]


def calibrate_command(
    out: Annotated[Path, typer.Option("--out", help="output directory (checkpoint, fitted set, "
                                                    "posterior predictive check)")],
    space: Annotated[Path | None, typer.Option(
        help="calibration space TOML (default: cartsim/data/calibration/space.toml)")] = None,
    budget: Annotated[int, typer.Option(help="objective evaluations in all (the first is the "
                                             "model's own values)")] = 30,
    patients: Annotated[int, typer.Option(help="virtual patients per study arm in each "
                                               "evaluation")] = 60,
    studies: Annotated[list[str] | None, typer.Option(
        "--studies", help="calibration studies (replaces the space's list): spec names or "
                          "targets study values, repeated or comma-separated")] = None,
    held_out: Annotated[list[str] | None, typer.Option(
        "--held-out", help="held-out studies, checked but not fitted (replaces the space's "
                           "list; 'none' for none)")] = None,
    seed: Annotated[int, typer.Option(help="optimiser seed (the trials keep their specs' "
                                           "seeds: common random numbers)")] = 0,
    targets: Annotated[Path | None, typer.Option(
        help="targets CSV (default: the shipped clinical_targets.csv)")] = None,
    specs: Annotated[Path | None, typer.Option(
        help="study library directory with index.toml (default: the shipped library)")] = None,
    resume: Annotated[bool, typer.Option(help="continue the calibration in --out")] = False,
    check: Annotated[bool, typer.Option(help="posterior predictive check: validate before vs "
                                             "after on fresh patients")] = True,
    check_patients: Annotated[int | None, typer.Option(
        help="patients per arm of the check (default: --patients)")] = None,
    external_check: Annotated[bool, typer.Option(
        help="with the check, also validate before vs after on the external library (trials "
             "outside the calibration file, never fitted: docs/validation.md 'External "
             "check'): DIR/external_before_after.csv")] = True,
    install: Annotated[str | None, typer.Option(
        help="also install the fitted set under this name as cartsim's default "
             "(cartsim/data/parameter_sets/), only if the posterior check on fresh patients "
             "lowers the calibration studies' deviance and does not raise the held-out ones' "
             "(needs the check)")] = None,
    sampler: Annotated[str, typer.Option(
        help="optimiser: tpe (global search) or cmaes (local search from the model's values "
             "or the first --start set; needs the cmaes package)")] = "tpe",
    step: Annotated[float, typer.Option(
        help="cmaes: initial step as a share of each dimension's (log-)range; smaller for "
             "refining a hand-tuned model")] = 0.15,
    workers: Annotated[int | None, typer.Option(
        help="worker processes running each evaluation's studies in parallel, kept for the "
             "whole run (default: the CPU count, at most 8; the numbers do not depend on "
             "it)")] = None,
    start: Annotated[list[str] | None, typer.Option(
        help="warm start: evaluate these parameter sets (name or TOML, e.g. an earlier "
             "calibration's parameter_set.toml) right after the model's own values; "
             "repeated or comma-separated")] = None,
) -> None:
    """Fit upstream parameter distributions to the published figures of the calibration
    studies (docs/calibration.md): DIR/parameter_set.toml, trials.csv, before_after.csv,
    calibration.json."""
    from cartsim.calibrate.run import calibrate
    from cartsim.progress import progress as progress_bar

    held = _names(held_out)
    if held is not None and [h.lower() for h in held] == ["none"]:
        held = []
    command = "cartsim " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    try:
        with progress_bar("calibrate", "evaluations", budget, console) as bar:
            def progress(done: int, total: int, best: float) -> None:
                bar(done, total)
                console.print(f"evaluation {done}/{total}: best deviance {best:.2f}",
                              highlight=False)

            res = calibrate(out, space_path=space, budget=budget, patients=patients,
                            studies=_names(studies), held_out=held, seed=seed,
                            targets_path=targets, specs=specs, resume=resume, check=check,
                            check_patients=check_patients, install=install, command=command,
                            start=_names(start) or (), sampler=sampler, progress=progress,
                            workers=workers if workers is not None else default_workers(),
                            step=step, external_check=external_check)
    except CartsimError as e:
        _fail(e)
    s = res.summary
    o = s["objective"]
    console.print(f"objective (deviance, lower is better) on {', '.join(s['calibration_studies'])}"
                  f": model values {o['before']}, fitted {o['after']} "
                  f"({o['rows_used']} rows used, {o['rows_skipped']} skipped); "
                  f"{res.evaluations} evaluations, {res.seconds_per_evaluation:.1f} s each",
                  highlight=False)
    for k, v in s["fitted"].items():
        console.print(f"  {k} = {v:.4g} (model {s['model_values'][k]:.4g})", highlight=False)
    for name, c in s.get("check", {}).items():
        if not isinstance(c, dict):
            continue
        pb, pa = c["passing_before"], c["passing_after"]
        console.print(f"check on fresh patients, {name} studies: deviance "
                      f"{c['deviance_before']} -> {c['deviance_after']}; rows passing "
                      f"{pb['passing']}/{pb['judged']} -> {pa['passing']}/{pa['judged']}",
                      highlight=False)
    if not check:
        console.print("[bold]the fitted set was not checked on fresh patients (--no-check): "
                      "its objective was measured on the specs' own seeds, where a few hundred "
                      "patients per arm can reward noise; check it (cartsim validate "
                      "--replicates 3 --parameter-set DIR/parameter_set.toml) before use[/bold]")
    if "install_refused" in s:
        console.print(f"[bold]not installed as the default: {s['install_refused']}[/bold]",
                      highlight=False)
    console.print(f"written: {res.out}/parameter_set.toml, trials.csv, objective_rows.csv, "
                  + ("before_after.csv, " if "check" in s else "")
                  + ("external_before_after.csv, " if "external" in s.get("check", {}) else "")
                  + "calibration.json"
                  + (f"; installed as the default: {s['installed']}" if "installed" in s
                     else ""))


def sensitivity_command(
    out: Annotated[Path, typer.Option("--out", help="output directory (rerun with the same "
                                                    "settings to resume)")],
    space: Annotated[Path | None, typer.Option(
        help="calibration space TOML whose dimensions are probed (default: "
             "cartsim/data/calibration/space.toml)")] = None,
    patients: Annotated[int, typer.Option(help="virtual patients per study arm in each "
                                               "validation run")] = 200,
    step: Annotated[float, typer.Option(
        help="probe step as a share of each dimension's (log-)range")] = 0.1,
    trust: Annotated[float, typer.Option(
        help="trust region of the linearised proposal, in steps (0: no proposal)")] = 2.0,
    studies: Annotated[list[str] | None, typer.Option(
        "--studies", help="calibration studies (replaces the space's list; the only ones in "
                          "the proposal's objective)")] = None,
    held_out: Annotated[list[str] | None, typer.Option(
        "--held-out", help="held-out studies, probed and reported but not in the proposal's "
                           "objective (replaces the space's list; 'none' for none)")] = None,
    start: Annotated[str | None, typer.Option(
        help="start from this parameter set (name or TOML) instead of the model's values")]
        = None,
    seed: Annotated[int | None, typer.Option(
        help="trial seed for every study (default: each spec's own seed)")] = None,
    targets: Annotated[Path | None, typer.Option(
        help="targets CSV (default: the shipped clinical_targets.csv)")] = None,
    specs: Annotated[Path | None, typer.Option(
        help="study library directory with index.toml (default: the shipped library)")] = None,
    workers: Annotated[int | None, typer.Option(
        help="worker processes running each validation's studies (default: the CPU count, "
             "at most 8; the numbers do not depend on it)")] = None,
    reference: Annotated[Path | None, typer.Option(
        help="validation.csv of cartsim validate at the same start with more patients: the "
             "proposal starts from its values (the slopes still come from the probes)")] = None,
    max_dims: Annotated[int | None, typer.Option(
        help="move at most this many dimensions in the proposal, chosen by greedy forward "
             "selection (default: all at once)")] = None,
) -> None:
    """Which upstream quantity moves which published figure: each dimension of the
    calibration space one step down and up, the library validated at each point with the same
    patients (docs/calibration.md "Sensitivity"): DIR/sensitivity_rows.csv,
    sensitivity_dimensions.csv, sensitivity.png, proposal.toml, sensitivity.json."""
    from cartsim.calibrate.sensitivity import sensitivity
    from cartsim.calibrate.space import load_space
    from cartsim.progress import progress as progress_bar

    held = _names(held_out)
    if held is not None and [h.lower() for h in held] == ["none"]:
        held = []
    command = "cartsim " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    try:
        from cartsim import parameter_sets
        from cartsim.calibrate.sensitivity import plan, start_point

        sp = load_space(space)
        n_probes = len(plan(sp, start_point(sp, parameter_sets.load(start) if start else None),
                            step))
        with progress_bar("sensitivity", "validation runs", n_probes, console) as bar:
            def progress(done: int, total: int, name: str) -> None:
                bar(done, total)
                console.print(f"run {done}/{total}: {name}", highlight=False)

            res = sensitivity(out, space_path=space, studies=_names(studies), held_out=held,
                              patients=patients, step=step, trust=trust, start=start, seed=seed,
                              targets_path=targets, specs=specs,
                              workers=workers if workers is not None else default_workers(),
                              progress=progress, reference=reference, max_dims=max_dims,
                              command=command)
    except CartsimError as e:
        _fail(e)
    s = res.summary
    b = s["baseline"]
    console.print(f"start: {b['passing']}/{b['judged']} rows passing; calibration deviance "
                  f"{b['deviance_calibration']:.1f}", highlight=False)
    d = res.dimensions
    for r in d.to_dict("records"):
        console.print(f"  {r['dimension']}: deviance {r['deviance_calibration_minus']:.1f} / "
                      f"{r['deviance_calibration_plus']:.1f} (down / up); rows gained "
                      f"{r['gained_minus']} / {r['gained_plus']}, lost {r['lost_minus']} / "
                      f"{r['lost_plus']}", highlight=False)
    reach = s["reach"]
    console.print(f"failing rows: {reach['failing_rows']}; passing after one step of some "
                  f"dimension: {len(reach['passing_after_one_step'])}; moved by no dimension: "
                  f"{len(reach['moved_by_no_dimension'])}", highlight=False)
    p = s["proposal"]
    if p["changed"]:
        pc, pb = p["predicted_passing_calibration"], p["baseline_passing_calibration"]
        console.print(f"linearised proposal (validate it before use): calibration deviance "
                      f"{p['baseline_deviance_calibration']:.1f} -> "
                      f"{p['predicted_deviance_calibration']:.1f}, rows passing "
                      f"{pb['passing']}/{pb['judged']} -> {pc['passing']}/{pc['judged']}; "
                      + ", ".join(f"{k} {v:+.2f} steps" for k, v in p["steps"].items()),
                      highlight=False)
        for i, st in enumerate(p.get("path", []), 1):
            console.print(f"  forward selection {i}: + {st['added']}: calibration deviance "
                          f"{st['deviance_calibration']:.1f}, held-out "
                          f"{st['deviance_held_out']}", highlight=False)
    from cartsim.status import stopped_warning

    bad = s.get("probes_with_stopped_patients") or {}
    msg = stopped_warning(sum(bad.values()),
                          "under the probes " + ", ".join(f"{k} {v}" for k, v in bad.items()))
    if msg is not None:
        console.print(f"[bold yellow]{msg}[/]", highlight=False, soft_wrap=True)
    console.print(f"written: {res.out}/sensitivity_rows.csv, sensitivity_dimensions.csv, "
                  "sensitivity.png, proposal.toml, proposal_rows.csv, sensitivity.json",
                  highlight=False)
