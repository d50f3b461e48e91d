"""Fever in continuous remission: the share of a study's patients in remission (responder,
alive, not relapsed) whose temperature is ≥ 38 °C on days 60, 180, 365 and 730.

Usage (repository root): ``python benchmarks/remission_fever.py eliana [200]`` — a study-library
spec name and the number of patients (the spec's seed; the parameter set in force, e.g.
``CARTSIM_PARAMETER_SET=path.toml``). docs/model.md "Silent B-cell aplasia" quotes it.

The endpoints come from the trial (``Trial.run``), the temperature and blood pressure on the
four days from ``Trial.trace`` (the same patients re-simulated to the last day of interest;
values agree with the trial's within the solver tolerance).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from cartsim.api import Trial
from cartsim.validate.library import default_specs_dir

DAYS = (60, 180, 365, 730)


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "eliana"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    trial = Trial.from_toml(default_specs_dir() / f"{name}.toml").with_overrides(size=n)
    days = [d for d in DAYS if d <= trial.spec.follow_up_days]
    with tempfile.TemporaryDirectory() as tmp:
        pt = trial.run(Path(tmp) / "run", report=False).patients
    pt = pt[pt["arm_index"] == 0].set_index("patient_id")
    tr = trial.trace(["temperature_c", "map_mmhg"], days=days)
    print(f"{name}, {n} patients: day, patients in remission, febrile (>= 38 °C), MAP < 70 mmHg")
    for d in days:
        t = tr[tr["day"] == d].set_index("patient_id").loc[pt.index]
        rem = (((pt.death_day.isna()) | (pt.death_day > d))
               & ((pt.relapse_day.isna()) | (pt.relapse_day > d))
               & (pt.responder == 1)).to_numpy()
        temp, mapp = t["temperature_c"].to_numpy(), t["map_mmhg"].to_numpy()
        print(f"{d:5d} {rem.sum():5d} {np.mean(temp[rem] >= 38.0):7.3f} "
              f"{np.mean(mapp[rem] < 70.0):7.3f}")


if __name__ == "__main__":
    main()
