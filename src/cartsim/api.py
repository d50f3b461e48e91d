"""The notebook-facing trial API: ``Trial.from_toml(path).run()`` → :class:`TrialResult`.

A thin facade over :mod:`cartsim.trial` (spec, runner, summary, statistics) and
:mod:`cartsim.report`; everything it does is also reachable from the command line
(``cartsim trial run``). Import it as ``cartsim.Trial`` / ``cartsim.TrialResult``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cartsim.errors import InvalidInputError
from cartsim.trial.spec import TrialSpec, load_spec, validate_spec

if TYPE_CHECKING:
    import pandas as pd

    from cartsim.trial.stats import KaplanMeier


class Trial:
    """A validated virtual-trial spec, ready to run.

    ``Trial.from_toml("examples/eliana.toml")``, ``Trial.from_dict({...})`` or
    ``Trial(spec)`` with a :class:`~cartsim.trial.spec.TrialSpec`.
    """

    def __init__(self, spec: TrialSpec) -> None:
        if not isinstance(spec, TrialSpec):
            raise InvalidInputError("spec", "a cartsim.TrialSpec", type(spec).__name__)
        self.spec = spec

    @classmethod
    def from_toml(cls, path: str | Path) -> Trial:
        """Read and validate a TOML spec (every bad field is reported at once)."""
        return cls(load_spec(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trial:
        """Validate a spec given as a dict (the TOML file's structure)."""
        return cls(validate_spec(data))

    def with_overrides(self, size: int | None = None, seed: int | None = None) -> Trial:
        """The same trial with another patients-per-arm ``size`` and/or ``seed``."""
        return Trial(self.spec.with_overrides(size=size, seed=seed))

    def __repr__(self) -> str:
        arms = ", ".join(a.name for a in self.spec.arms)
        return (f"Trial({self.spec.name!r}, {self.spec.population.size} patients per arm, "
                f"arms: {arms}, seed {self.spec.seed})")

    def run(
        self,
        out: str | Path | None = None,
        *,
        chunk_size: int = 50,
        workers: int = 1,
        executor: str = "local",
        resume: bool = False,
        report: bool | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> TrialResult:
        """Simulate every arm and compute endpoints and statistics.

        ``out``: output directory (patients.parquet, daily.parquet, summary.json, CSVs,
        report.html); ``None`` runs into a temporary directory that lives as long as the
        returned result. ``report`` defaults to True with ``out`` and False without.
        """
        tmp = None
        if out is None:
            tmp = tempfile.TemporaryDirectory(prefix="cartsim-trial-")
            out = Path(tmp.name) / "trial"
        from cartsim.trial.runner import run_trial

        run = run_trial(self.spec, Path(out), chunk_size=chunk_size, workers=workers,
                        executor=executor, resume=resume,
                        report=(tmp is None) if report is None else report, progress=progress)
        return TrialResult(run.out, self.spec, run.patients, _tmp=tmp)

    def trace(self, names: Sequence[str], days: Sequence[int] | str = "0-28",
              arm: int | str = 0, patients: int | None = None,
              ids: Sequence[int] | None = None) -> pd.DataFrame:
        """Model states, parameters, core readouts, laboratory values or drawn covariates
        (``names``, e.g. ``["IL6", "MY", "K_fever", "temperature_c", "ferritin_ng_ml",
        "noxa_low"]``) of one arm's virtual
        patients at the start of each of ``days`` ("0-28", "0,7,14" or a list), re-simulated
        as the trial runner does: a long table (arm, patient_id, day, one column per name).
        ``ids`` traces those patients of the trial (its ``patient_id``) instead of the arm's
        first ``patients``. See :mod:`cartsim.trial.trace`."""
        from cartsim.trial.trace import parse_days, trace_arm

        d = parse_days(days) if isinstance(days, str) else [int(x) for x in days]
        return trace_arm(self.spec, list(names), d, arm=arm, patients=patients, ids=ids)


class TrialResult:
    """A finished trial: per-patient ``patients`` table, ``summary``, Kaplan–Meier fits and the
    HTML report. ``TrialResult.load(dir)`` reopens a finished output directory."""

    def __init__(self, out: Path, spec: TrialSpec, patients: pd.DataFrame,
                 _tmp: tempfile.TemporaryDirectory[str] | None = None) -> None:
        self.out = Path(out)
        self.spec = spec
        self.patients = patients
        self._tmp = _tmp  # keeps a temporary output directory alive with the result

    @classmethod
    def load(cls, out: str | Path) -> TrialResult:
        """Reopen the finished trial in ``out`` (its manifest and patients.parquet)."""
        import pandas as pd

        from cartsim.trial.manifest import read_manifest

        out = Path(out)
        man = read_manifest(out)
        if not (out / "patients.parquet").exists():
            raise InvalidInputError("DIR", "a finished trial directory (with patients.parquet)",
                                    str(out))
        return cls(out, validate_spec(man["spec"]), pd.read_parquet(out / "patients.parquet"))

    def __repr__(self) -> str:
        return (f"TrialResult({self.spec.name!r}, {len(self.patients)} patients, "
                f"out={str(self.out)!r})")

    @property
    def arms(self) -> list[str]:
        return [a.name for a in self.spec.arms]

    @cached_property
    def daily(self) -> pd.DataFrame:
        """The per-day plot table (daily.parquet)."""
        import pandas as pd

        return pd.read_parquet(self.out / "daily.parquet")

    @cached_property
    def summary(self) -> dict[str, Any]:
        """Rates with CIs, KM landmarks and medians, arm comparisons, subgroups, status
        counts (the content of summary.json, tables as DataFrames)."""
        from cartsim.trial.summary import build_summary

        return build_summary(self.patients, self.spec)

    def km(self, endpoint: str, arm: str | None = None,
           conf_type: str = "log-log") -> KaplanMeier:
        """Kaplan–Meier fit of ``endpoint`` (efs, os, pfs, rfs or dor) in ``arm`` (default:
        the first arm); rows where the endpoint does not apply (e.g. DOR of non-responders)
        are left out."""
        from cartsim.trial.stats import KaplanMeier
        from cartsim.trial.summary import TIME_TO_EVENT

        if endpoint not in TIME_TO_EVENT:
            raise InvalidInputError("endpoint", "one of " + ", ".join(TIME_TO_EVENT), endpoint)
        arm = self.arms[0] if arm is None else arm
        if arm not in self.arms:
            raise InvalidInputError("arm", "one of " + ", ".join(self.arms), arm)
        df = self.patients
        sub = df[(df["arm"] == arm) & df[f"{endpoint}_days"].notna()]
        return KaplanMeier(conf_type=conf_type).fit(sub[f"{endpoint}_days"],
                                                    sub[f"{endpoint}_event"], label=arm)

    def report(self, path: str | Path | None = None) -> Path:
        """Write the self-contained HTML report (default ``out/report.html``); returns its
        path."""
        from cartsim.report.html import write_report

        built = write_report(self.out)
        if path is None or Path(path).resolve() == built.resolve():
            return built
        from cartsim.atomic import write_text_atomic

        write_text_atomic(Path(path), built.read_text(encoding="utf-8"))
        return Path(path)
