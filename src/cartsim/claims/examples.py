"""The example specs (``examples/*.toml``) run as virtual trials, for the claims document.

Each example is run as it ships except for its size (the claims' patients per arm) and, when
given, the root seed; every arm is summarised by the endpoints the papers headline: response,
complete response, 12-month EFS (B-ALL) or PFS (lymphoma) and OS, CRS and ICANS of grade
>= 3 (ASTCT), and relapse or progression after response. No figure is compared with a
published one here: the examples are demonstrations of what a spec can express (MCL and FL,
salvage drugs, HSCT consolidation, re-infusion, ...), and the claims above are the tests.
"""

from __future__ import annotations

import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cartsim.claims.measure import Estimate, arm_estimate
from cartsim.claims.run import _simulate_arm
from cartsim.claims.schema import Endpoint
from cartsim.errors import InvalidInputError

#: the landmark of the survival columns (days). Event and censoring days are whole days, so
#: S(365) = S(365.25); 365 lets a spec followed for exactly 365 days show its 12-month figures.
LANDMARK_DAYS = 365.0
#: (column label, endpoint) per arm; ``{surv}`` is EFS for B-ALL, PFS for the lymphomas
COLUMNS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("response", {"kind": "rate", "expr": "responder == 1"}),
    ("CR", {"kind": "rate", "expr": "complete_response == 1"}),
    ("{surv} 12 mo", {"kind": "km", "event": "{surv}", "day": LANDMARK_DAYS}),
    ("OS 12 mo", {"kind": "km", "event": "os", "day": LANDMARK_DAYS}),
    ("CRS ≥ 3", {"kind": "rate", "expr": "crs_max_grade >= 3"}),
    ("ICANS ≥ 3", {"kind": "rate", "expr": "icans_max_grade >= 3"}),
    ("relapse/progression", {"kind": "rate", "expr": "relapse == 1"}),
)


@dataclass
class ExampleArm:
    arm: str
    n: int
    values: dict[str, Estimate] = field(default_factory=dict)


@dataclass
class ExampleResult:
    name: str
    path: str
    disease: str
    follow_up_days: int
    arms: list[ExampleArm] = field(default_factory=list)
    seconds: float = 0.0

    def record(self) -> dict[str, Any]:
        return {"example": self.name, "path": self.path, "disease": self.disease,
                "follow_up_days": self.follow_up_days, "seconds": round(self.seconds, 1),
                "arms": [{"arm": a.arm, "n": a.n,
                          **{k: e.value for k, e in a.values.items()}} for a in self.arms]}


def example_paths(directory: Path) -> list[Path]:
    """The example specs of ``directory`` (``*.toml``, sorted); an error if there are none."""
    if not directory.is_dir():
        raise InvalidInputError("--examples", "a directory of trial specs (TOML)", str(directory))
    paths = sorted(directory.glob("*.toml"))
    if not paths:
        raise InvalidInputError("--examples", "a directory holding at least one *.toml spec",
                                str(directory))
    return paths


def run_example(path: Path, patients: int, seed: int | None = None,
                chunk_size: int = 250) -> ExampleResult:
    """Run one example spec at ``patients`` per arm and summarise every arm."""
    from cartsim.trial.spec import load_spec, validate_spec

    load_spec(path)  # the file's own errors first, named by its path
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    raw.setdefault("population", {})["size"] = patients
    if seed is not None:
        raw["seed"] = seed
    spec = validate_spec(raw, f"example {path}", base_dir=path.parent)
    surv = "efs" if spec.population.disease == "b-all" else "pfs"
    with tempfile.TemporaryDirectory(prefix="cartsim-example-") as tmp:
        # the claims' own one-trial runner (a temporary trial directory, removed after)
        patients_df, seconds = _simulate_arm(spec, str(Path(tmp) / "trial"), chunk_size)
    out = ExampleResult(path.stem, str(path), spec.population.disease, spec.follow_up_days,
                        seconds=seconds)
    for name, df in patients_df.groupby("arm", sort=False):
        arm = ExampleArm(str(name), len(df))
        for label, ep in COLUMNS:
            label = label.format(surv=surv.upper())
            e = {k: (v.format(surv=surv) if isinstance(v, str) else v) for k, v in ep.items()}
            if e["kind"] == "km" and spec.follow_up_days < LANDMARK_DAYS:
                continue
            arm.values[label] = arm_estimate(pd.DataFrame(df), Endpoint(**e))
        out.arms.append(arm)
    return out


def run_examples(directory: Path, patients: int, seed: int | None = None,
                 progress: Any = None) -> list[ExampleResult]:
    """Every example spec of ``directory``, in name order."""
    paths = example_paths(directory)
    results = []
    for k, p in enumerate(paths):
        results.append(run_example(p, patients, seed))
        if progress is not None:
            progress(k + 1, len(paths), p.name)
    return results


def markdown(results: list[ExampleResult]) -> str:
    """The examples section of the claims document."""
    lines = ["", "## The example specs", "",
             "Every spec in `examples/` run as it ships (its own seed, the claims' patients per "
             "arm; `cartsim claims --examples examples`). Figures are % with 95 % CIs (Wilson; "
             "Kaplan–Meier log-log); EFS for B-ALL, PFS for the lymphomas; CRS and ICANS on the "
             "ASTCT scale. These are demonstrations of what the specs express, not tests: "
             "the claims above are the tests.", ""]
    labels = [lab for lab, _ in COLUMNS]
    lines.append("| example | arm | n | " + " | ".join(
        lab.format(surv="EFS/PFS") for lab in labels) + " |")
    lines.append("|---|---|---|" + "---|" * len(labels))
    for r in results:
        surv = "EFS" if r.disease == "b-all" else "PFS"
        for a in r.arms:
            cells = []
            for lab in labels:
                e = a.values.get(lab.format(surv=surv))
                cells.append("–" if e is None else e.fmt("%"))
            lines.append(f"| {r.name} ({r.disease}, {r.follow_up_days} d) | {a.arm} | {a.n} | "
                         + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
