"""Fever in continuous remission: the share of a study's patients in remission (responder,
alive, not relapsed) whose temperature is ≥ 38 °C on days 60, 180, 365 and 730.

Usage (repository root): ``python benchmarks/remission_fever.py eliana [200]`` — a study-library
spec name and the number of patients (the spec's seed; the parameter set in force, e.g.
``CARTSIM_PARAMETER_SET=path.toml``). docs/model.md "Silent B-cell aplasia" quotes it.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import numpy as np

import cartsim.simulation as simulation
from cartsim.trial import runner
from cartsim.trial.spec import validate_spec

STUDIES = Path(__file__).resolve().parents[1] / "src" / "cartsim" / "data" / "studies"


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "eliana"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    with open(STUDIES / f"{name}.toml", "rb") as f:
        spec = validate_spec(tomllib.load(f))
    kept = {}
    simulate = simulation.simulate

    def keep(*args, **kwargs):  # type: ignore[no-untyped-def]
        kept["result"] = simulate(*args, **kwargs)
        return kept["result"]

    simulation.simulate = keep  # the runner looks it up at call time
    try:
        table, _ = runner.simulate_chunk(spec, 0, np.arange(n))
    finally:
        simulation.simulate = simulate
    res = kept["result"]
    days, ids = res.daily_days, res.daily_ids
    temp, mapp = res.daily["temperature_c"], res.daily["map_mmhg"]
    pt = table.set_index("patient_id").loc[ids]
    print(f"{name}, {n} patients: day, patients in remission, febrile (>= 38 °C), MAP < 70 mmHg")
    for d in (60, 180, 365, 730):
        if d > days.max():
            continue
        j = int(np.searchsorted(days, d))
        rem = (((pt.death_day.isna()) | (pt.death_day > d))
               & ((pt.relapse_day.isna()) | (pt.relapse_day > d))
               & (pt.responder == 1)).to_numpy()
        print(f"{d:5d} {rem.sum():5d} {np.mean(temp[rem, j] >= 38.0):7.3f} "
              f"{np.mean(mapp[rem, j] < 70.0):7.3f}")


if __name__ == "__main__":
    main()
