"""One virtual patient or a cohort, day by day: ``simulate(cohort, product, ...)``.

Wires the model (vector field, stochastic layer, readouts), the engine (compiled solver, daily
loop, schedule) and, when given, the clinic's management protocol. Returns a
:class:`SimulationResult` with daily readouts in lab units, an events table and per-patient
status codes (a failing patient never aborts the cohort).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numba
import numpy as np
import pandas as pd

from cartsim.atomic import atomic_write
from cartsim.engine.schedule import ScheduleItem
from cartsim.engine.simulate import run_daily
from cartsim.engine.solver import cached_array, detect_sparsity, make_integrator, model_digest
from cartsim.errors import InvalidInputError
from cartsim.model import readouts, stochastic
from cartsim.model.parameters import P
from cartsim.model.state import FIRST_ACCUMULATOR, N_STATES, STATE_INFO, S
from cartsim.model.system import rhs
from cartsim.population import Cohort, build, doses
from cartsim.products import Product

#: Supportive care a protocol chooses from physiology, recorded as events (name → unit).
SUPPORT_EVENTS = {
    "fluid_bolus_ml": "mL",
    "vasopressors": "agents",
    "vasopressin": "flag",
    "oxygen_device": "code (cartsim.clinic.OXYGEN_DEVICES)",
}
# How the encephalopathy state E (dimensionless) maps to the ICANS bedside findings (assumed
# thresholds, uncalibrated; docs/clinic.md): CAPD rises as 27·E²/(E² + 1) (≥ 9 is abnormal from
# E ≈ 0.7); consciousness drops a level at E = 2, 4, 8 (awakens to voice, to touch,
# unarousable); seizures above E = 6; cerebral oedema above E = 10.
CAPD_MAX = 27.0
ENC_CONSCIOUSNESS = (2.0, 4.0, 8.0)
ENC_SEIZURE = 6.0
ENC_EDEMA = 10.0

#: Per-patient status when the model's state leaves the physiological range the clinic
#: accepts (non-finite or impossible vital signs); the patient stops, the cohort goes on.
STATUS_IMPLAUSIBLE = 4
LD_FIRST_DAY = -5
LD_DAYS = (-5, -4, -3)
DEFAULT_RTOL = 1e-5


class Procedure(Protocol):
    """A day-start intervention other than the clinic's drugs (HSCT, re-infusion, ...).

    ``apply`` may change ``y`` in place for the patients it chooses and returns what it did as
    ``{event_name: (amount per patient, unit)}``; non-zero amounts become rows of the events
    table. It sees the model's state ``y`` (n, N_STATES), parameters ``p`` (n, N_PARAMS,
    read-only: the solver continues a patient across days unless its ``y`` changes) and
    per-patient status (0 = running).
    """

    def apply(
        self, day: int, y: np.ndarray, p: np.ndarray, status: np.ndarray
    ) -> dict[str, tuple[np.ndarray, str]]: ...


class ManagementProtocol(Protocol):
    """What the simulator needs from a clinic protocol (see cartsim.clinic.protocol)."""

    def initial_state(self, n: int) -> Any: ...

    def decide(
        self, day: int, obs: dict[str, np.ndarray], state: Any
    ) -> tuple[dict[str, np.ndarray], Any]: ...


def default_atol() -> np.ndarray:
    """Absolute tolerances per state: 10⁻³ cells for populations, tighter for concentrations."""
    atol = np.full(N_STATES, 1e-6)
    for i, (_, unit, _) in enumerate(STATE_INFO):
        if unit == "cells":
            atol[i] = 1e-3
        elif unit == "cells/µL":
            atol[i] = 1e-4
    return atol


_INTEGRATOR: Callable[..., None] | None = None


def model_sparsity(n_samples: int = 120, seed: int = 20261121) -> np.ndarray:
    """The Jacobian pattern of the model's vector field, detected numerically.

    Samples cover both diseases, single- and triple-target constructs, parameters scattered
    log-normally around their defaults and states spread over 12 orders of magnitude with
    some exactly zero, so that every branch of the vector field is visited.
    """
    from dataclasses import replace

    from cartsim.products import get_product

    rng = np.random.default_rng(seed)
    base = get_product("tisagenlecleucel")
    tri = replace(base, construct=replace(base.construct, targets=("CD19", "CD20", "CD22"),
                                                 format="tandem"))
    ps, ys = [], []
    for disease, prod in (("b-all", base), ("lbcl", tri), ("b-all", tri)):
        n = n_samples // 3
        cohort = Cohort(disease, weight_kg=rng.uniform(10, 100, n), age_y=rng.uniform(1, 80, n),
                        cd19_negative_fraction=rng.uniform(0, 0.5, n),
                        pdl1=rng.uniform(0, 1, n), dr_defect=rng.uniform(0, 1, n))
        p, y = build(cohort, prod, seed=0)
        ps.append(p * np.exp(rng.normal(0.0, 0.3, p.shape)))
        scale = 10.0 ** rng.uniform(-3, 11, y.shape)
        yy = np.abs(y) * np.exp(rng.normal(0, 1, y.shape)) + rng.uniform(0, 1, y.shape) * scale
        yy[rng.uniform(size=y.shape) < 0.1] = 0.0
        ys.append(yy)
    return detect_sparsity(rhs, np.concatenate(ys), np.concatenate(ps))


def integrator() -> Callable[..., None]:
    """The compiled per-patient solver for this model (built once per process).

    RODAS4 (L-stable, order 4) with a finite-difference Jacobian over the states that feed
    back (accumulators excluded) and coloured by the model's sparsity pattern. Continuous
    output: a patient steps across day boundaries (its daily state is the interpolant) and
    restarts only on a day when a schedule item, the clinic, a procedure or the stochastic
    layer changed its state; the daily integrals feeding the stochastic layer are returned
    per day.
    """
    global _INTEGRATOR
    if _INTEGRATOR is None:
        _INTEGRATOR = make_integrator(
            rhs, n_states=N_STATES, method="rodas4", n_jac=FIRST_ACCUMULATOR,
            autonomous=True, cache=True, jac_sparsity=cached_sparsity(), dense=True,
            interval_integrals=FIRST_ACCUMULATOR,
        )
    return _INTEGRATOR


def cached_sparsity() -> np.ndarray:
    """:func:`model_sparsity`, detected once per model source (hash of ``cartsim.model``)
    and machine, then read from the on-disk cache: detecting it compiles the right-hand
    side a second time, which a warm process must not pay."""
    return cached_array("model-sparsity", model_digest(rhs), model_sparsity).astype(bool)


def _stochastic_day() -> Callable[..., None]:
    """The stochastic layer's daily kernel, compiled with numba's on-disk cache.

    numba checks only the defining file for staleness, so the kernel is compiled under a
    name carrying a hash of the model package and of the generator it inlines
    (``cartsim.engine.rng``): editing either compiles afresh instead of loading stale code.
    """
    global _STOCHASTIC_DAY
    if _STOCHASTIC_DAY is None:
        import hashlib
        import types

        from cartsim.engine import rng

        h = hashlib.sha256(str(model_digest(rhs)).encode())
        h.update(Path(rng.__file__).read_bytes())
        py = stochastic.apply_day.py_func
        name = f"apply_day_{h.hexdigest()[:16]}"
        fn = types.FunctionType(py.__code__, py.__globals__, name, py.__defaults__,
                                py.__closure__)
        fn.__qualname__ = name
        _STOCHASTIC_DAY = numba.njit(cache=True)(fn)
    return _STOCHASTIC_DAY


_STOCHASTIC_DAY: Callable[..., None] | None = None


@dataclass
class SimulationResult:
    """Daily readouts (one row per patient and day), events, and per-patient status."""

    trajectories: pd.DataFrame
    events: pd.DataFrame
    status: np.ndarray
    steps: np.ndarray
    seed: int
    meta: dict[str, Any] = field(default_factory=dict)

    def patient(self, patient_id: int) -> pd.DataFrame:
        t = self.trajectories
        return t[t["patient_id"] == patient_id].reset_index(drop=True)

    def write(self, out: Path, plot: bool = True) -> None:
        """Write trajectories.parquet, events.parquet (and trajectories.png) atomically."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        _atomic_parquet(self.trajectories, out / "trajectories.parquet", self.meta)
        _atomic_parquet(self.events, out / "events.parquet", self.meta)
        if plot:
            from cartsim.report.trajectories import plot_trajectories

            tmp = out / ".trajectories.png.tmp.png"
            plot_trajectories(self.trajectories, tmp)
            os.replace(tmp, out / "trajectories.png")


def _atomic_parquet(df: pd.DataFrame, path: Path, meta: dict[str, Any]) -> None:
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), b"cartsim": json.dumps(meta, default=str).encode()}
    )
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def _action_jumps(
    actions: dict[str, np.ndarray], y: np.ndarray, p: np.ndarray
) -> dict[str, tuple[np.ndarray, str]]:
    """Turn a clinic protocol's actions into state jumps; returns what was given."""
    w = p[:, P.weight_kg]
    given: dict[str, tuple[np.ndarray, str]] = {}

    def take(name: str) -> np.ndarray:
        a = actions.get(name)
        return np.zeros(y.shape[0]) if a is None else np.asarray(a, dtype=np.float64)

    toci = take("tocilizumab_mg")
    y[:, S.TOCI] += toci / (p[:, P.toci_vd] * w)
    given["tocilizumab"] = (toci, "mg")
    dex = take("dexamethasone_mg")
    mp = take("methylprednisolone_mg")
    y[:, S.STER] += dex + mp * (0.75 / 4.0)  # dexamethasone equivalents
    given["dexamethasone"] = (dex, "mg")
    given["methylprednisolone"] = (mp, "mg")
    ana = take("anakinra_mg")
    y[:, S.ANAK] += ana
    given["anakinra"] = (ana, "mg")
    sil = take("siltuximab_mg")
    y[:, S.SILT] += sil / (0.06 * w)
    given["siltuximab"] = (sil, "mg")
    ivig = take("ivig_g")
    y[:, S.IgG] += ivig * 1000.0 / (0.45 * w) * 0.5  # g into plasma dL, ~50% recovery
    given["ivig"] = (ivig, "g")
    gcsf = take("gcsf").astype(bool)
    y[:, S.GCSF] += gcsf.astype(np.float64)
    given["gcsf"] = (gcsf.astype(np.float64), "dose")
    return given


def _implausible(obs: dict[str, np.ndarray]) -> np.ndarray:
    """Patients whose observations are non-finite or outside the protocol's accepted ranges."""
    from cartsim.clinic.protocol import OBS_SPEC

    n = next(iter(obs.values())).shape[0]
    bad = np.zeros(n, dtype=bool)
    for key, (lo, hi) in OBS_SPEC.items():
        v = obs.get(key)
        if v is None or key in ("alive",):
            continue
        v = np.asarray(v, dtype=np.float64)
        bad |= np.isinf(v) | (v < lo) | (v > hi)
        if key in _VITAL_OBS:
            bad |= np.isnan(v)
    return bad


_VITAL_OBS = ("temperature_c", "map_mmhg", "spo2_room_air_pct", "il6_pg_ml", "anc_per_ul")


def icans_findings(enc: np.ndarray) -> dict[str, np.ndarray]:
    """Bedside ICANS findings implied by the encephalopathy state (any array shape)."""
    return {
        "capd_score": np.rint(CAPD_MAX * enc**2 / (enc**2 + 1.0)),
        "consciousness": np.digitize(enc, ENC_CONSCIOUSNESS).astype(np.float64),
        "seizure": np.where(enc > ENC_SEIZURE, 1.0, 0.0),
        "cerebral_edema": np.where(enc > ENC_EDEMA, 1.0, 0.0),
    }


def observations(y: np.ndarray, p: np.ndarray, baseline_il6: np.ndarray) -> dict[str, np.ndarray]:
    """What the virtual clinician sees today (the protocol's ``obs`` contract)."""
    r = readouts.compute(y, p)
    enc = r["encephalopathy"]
    icans = icans_findings(enc)
    age = p[:, P.age_y]
    n = y.shape[0]
    return {
        "temperature_c": r["temperature_c"],
        "map_mmhg": r["map_mmhg"],
        "spo2_room_air_pct": r["spo2_pct"],
        "ice_score": np.where(age >= 12, r["ice_score"], np.nan),
        "capd_score": np.where(age < 12, icans["capd_score"], np.nan),
        "consciousness": icans["consciousness"],
        "seizure": icans["seizure"],
        "motor_weakness": np.zeros(n),
        "cerebral_edema": icans["cerebral_edema"],
        "il6_pg_ml": r["il6_pg_ml"],
        "il6_baseline_pg_ml": baseline_il6,
        "anc_per_ul": r["anc_per_ul"],
        "platelets_per_ul": r["platelets_per_ul"],
        "hemoglobin_g_dl": r["hemoglobin_g_dl"],
        "igg_mg_dl": r["igg_mg_dl"],
        # CRP and ferritin are not modelled yet: reported as missing, never invented
        "crp_mg_l": np.full(n, np.nan),
        "ferritin_ng_ml": np.full(n, np.nan),
        "weight_kg": p[:, P.weight_kg],
        "age_y": age,
        "alive": np.ones(n, dtype=bool),
    }


def simulate(
    cohort: Cohort,
    product: Product,
    days: int = 365,
    seed: int = 0,
    *,
    protocol: ManagementProtocol | None = None,
    variability: bool = True,
    overrides: dict[str, float] | None = None,
    rtol: float = DEFAULT_RTOL,
    progress: Callable[[int], None] | None = None,
    procedures: Sequence[Procedure] = (),
    lymphodepletion: bool = True,
) -> SimulationResult:
    """Simulate ``cohort`` treated with ``product`` from day −5 (lymphodepletion) to ``days``.

    Lymphodepletion (Flu/Cy) on days −5, −4, −3 (unless ``lymphodepletion=False``) and the
    infusion on day 0 are schedule items.
    Each day from day 0 each of ``procedures`` acts, then the ``protocol`` (if any) observes
    and treats; what they give is recorded in the events table.
    """
    if not isinstance(days, int) or not 1 <= days <= 3650:
        raise InvalidInputError("days", "an integer in [1, 3650]", days)
    if not isinstance(seed, int) or seed < 0:
        raise InvalidInputError("seed", "a non-negative integer", seed)
    if not 1e-10 <= rtol <= 1e-2:
        raise InvalidInputError("rtol", "[1e-10, 1e-2]", rtol)
    p, y = build(cohort, product, seed, variability=variability, overrides=overrides)
    n = cohort.n
    dose = doses(cohort, product)
    mem = product.construct.memory_fraction
    schedule = (
        [ScheduleItem(d, int(S.LD), 1.0, "lymphodepletion", "Flu/Cy day") for d in LD_DAYS]
        if lymphodepletion else []
    )
    schedule += [
        ScheduleItem(0, int(S.M_b), mem * dose, "infusion_memory", "cells"),
        ScheduleItem(0, int(S.E_b), (1.0 - mem) * dose, "infusion_effector", "cells"),
    ]
    pid = cohort.patient_id
    assert pid is not None
    # events accumulate as arrays (one DataFrame at the end: thousands of small frames cost
    # a fifth of a trial's run time)
    ev_pid: list[np.ndarray] = []
    ev_day: list[np.ndarray] = []
    ev_name: list[np.ndarray] = []
    ev_value: list[np.ndarray] = []
    ev_unit: list[np.ndarray] = []

    def add_events(day: int, event: str, amount: np.ndarray, unit: str) -> None:
        mask = amount != 0
        k = int(np.count_nonzero(mask))
        if k:
            ev_pid.append(pid[mask])
            ev_day.append(np.full(k, day, dtype=np.int64))
            ev_name.append(np.full(k, event, dtype=object))
            ev_value.append(amount[mask].astype(np.float64))
            ev_unit.append(np.full(k, unit, dtype=object))

    def on_schedule(day: int, item: ScheduleItem, given: np.ndarray) -> None:
        if item.event == "infusion_memory":
            return
        if item.event == "infusion_effector":
            add_events(day, "cart_infusion", dose * (given != 0), "cells")
        else:
            add_events(day, item.event, given, item.unit)

    baseline_il6 = p[:, P.il6_base].copy()
    pstate = protocol.initial_state(n) if protocol is not None else None

    def on_day_start(day: int, y_: np.ndarray, status: np.ndarray) -> None:
        nonlocal pstate
        if day < 0:
            return
        for proc in procedures:
            for name, (amt, unit) in proc.apply(day, y_, p, status).items():
                add_events(day, name, np.where(status == 0, np.asarray(amt, float), 0.0), unit)
        if protocol is None:
            return
        obs = observations(y_, p, baseline_il6)
        bad = _implausible(obs) & (status == 0)
        if bad.any():  # a runaway patient leaves the cohort with its own status code
            status[bad] = STATUS_IMPLAUSIBLE
            add_events(day, "implausible_state", bad.astype(np.float64), "flag")
        obs["alive"] = status == 0
        for v in obs.values():
            if v.dtype.kind == "f":
                v[status != 0] = np.nan
        actions, pstate = protocol.decide(day, obs, pstate)
        for name, (amt, unit) in _action_jumps(actions, y_, p).items():
            add_events(day, name, np.where(status == 0, amt, 0.0), unit)
        for grade in ("crs_grade", "icans_grade"):
            if grade in actions:
                add_events(day, grade, np.asarray(actions[grade], dtype=np.float64), "ASTCT")
        for name, unit in SUPPORT_EVENTS.items():
            if name in actions:
                amt = np.asarray(actions[name], dtype=np.float64)
                add_events(day, name, np.where(status == 0, amt, 0.0), unit)

    s_seed = np.uint64(seed)
    stochastic_day = _stochastic_day()
    extinct_seen = np.zeros(n, dtype=bool)

    def on_day_end(day: int, y0: np.ndarray, y_: np.ndarray, status: np.ndarray) -> None:
        stochastic_day(y0, y_, p, s_seed, pid, day, status)
        tum = y_[:, S.T0] + y_[:, S.T1] + y_[:, S.T2] + y_[:, S.TS]
        new_ext = (tum <= 0.0) & ~extinct_seen & (status == 0)
        if new_ext.any():
            extinct_seen[new_ext] = True
            add_events(day + 1, "tumour_extinct", new_ext.astype(np.float64), "flag")

    n_days = days - LD_FIRST_DAY + 1
    cols = list(readouts.compute(y[:1], p[:1]).keys())
    store = {c: np.empty((n_days, n)) for c in cols}

    def record(day: int, y_: np.ndarray, status: np.ndarray) -> None:
        r = readouts.compute(y_, p)
        k = day - LD_FIRST_DAY
        for c in cols:
            store[c][k] = np.where(status == 0, r[c], np.nan)

    clone_cols = [int(S.T0), int(S.T1), int(S.T2), int(S.TS)]
    thr = p[:, P.stoch_threshold][:, None]

    def jumps_next(day: int, y_: np.ndarray) -> np.ndarray:
        # the stochastic layer will redraw every non-empty clone that starts the day below
        # its threshold (a speed hint only: a wrong guess costs steps, never accuracy)
        c = y_[:, clone_cols]
        return ((c > 0.0) & (c < thr)).any(axis=1)

    stats = run_daily(
        integrator(), y, p, LD_FIRST_DAY, days, schedule, rtol=rtol, atol=default_atol(),
        on_schedule=on_schedule, on_day_start=on_day_start, on_day_end=on_day_end,
        record=record, progress=progress, dense=True, jumps_next=jumps_next,
    )
    day_axis = np.arange(LD_FIRST_DAY, days + 1)
    if np.unique(pid).size == n:
        # rows ordered by (patient_id, day) straight from the (days, patients) store: no sort
        order = np.argsort(pid, kind="stable")
        traj = pd.DataFrame({
            "patient_id": np.repeat(pid[order], n_days),
            "day": np.tile(day_axis, n),
            **{c: store[c][:, order].T.reshape(-1) for c in cols},
        })
    else:
        traj = pd.DataFrame({
            "patient_id": np.tile(pid, n_days),
            "day": np.repeat(day_axis, n),
            **{c: store[c].reshape(-1) for c in cols},
        }).sort_values(["patient_id", "day"], kind="stable").reset_index(drop=True)
    bad = stats.status != 0
    if bad.any():
        add_events(days, "solver_failure", stats.status.astype(np.float64), "status code")
    events = (
        pd.DataFrame({
            "patient_id": np.concatenate(ev_pid), "day": np.concatenate(ev_day),
            "event": np.concatenate(ev_name), "value": np.concatenate(ev_value),
            "unit": np.concatenate(ev_unit),
        })
        if ev_pid
        else pd.DataFrame({"patient_id": [], "day": [], "event": [], "value": [], "unit": []})
    )
    events = events.sort_values(["patient_id", "day", "event"], kind="stable").reset_index(
        drop=True
    )
    meta = {
        "seed": seed, "product": product.name, "disease": cohort.disease, "days": days,
        "variability": variability, "rtol": rtol, "lymphodepletion": lymphodepletion,
        "protocol": None if protocol is None else getattr(protocol, "name", str(protocol)),
        "procedures": [type(pr).__name__ for pr in procedures],
    }
    return SimulationResult(traj, events, stats.status, stats.steps, seed, meta)
