"""One virtual patient or a cohort, day by day: ``simulate(cohort, product, ...)``.

Wires the model (vector field, stochastic layer, readouts), the engine (compiled solver, daily
loop, schedule) and, when given, the clinic's management protocol. Returns a
:class:`SimulationResult` with daily readouts in lab units, an events table and per-patient
status codes (a failing patient never aborts the cohort).
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numba
import numpy as np
import pandas as pd

from cartsim.atomic import PARQUET_OPTIONS, atomic_write
from cartsim.clinic.dosing import DEX_EQ_PER_MP_MG
from cartsim.clinic.findings import icans_findings
from cartsim.engine.schedule import ScheduleItem
from cartsim.engine.simulate import run_daily
from cartsim.engine.solver import cached_array, detect_sparsity, make_integrator, model_digest
from cartsim.errors import InvalidInputError
from cartsim.lymphodepletion import LD_MAX_EXPOSURE
from cartsim.model import labs, layout, readouts, stochastic
from cartsim.model.mechanism import Model, analytic_jacobian
from cartsim.model.parameters import P
from cartsim.model.state import S
from cartsim.parameter_sets import active as active_parameter_set
from cartsim.params import ParameterSpec, ParameterTable
from cartsim.population import Cohort, build, doses
from cartsim.products import Product
from cartsim.status import Status

#: Supportive care a protocol chooses from physiology, recorded as events (name → unit).
SUPPORT_EVENTS = {
    "fluid_bolus_ml": "mL",
    "vasopressors": "agents",
    "vasopressin": "flag",
    "oxygen_device": "code (cartsim.clinic.OXYGEN_DEVICES)",
}
#: Per-patient status when the model's state leaves the physiological range the clinic
#: accepts (non-finite or impossible vital signs); the patient stops, the cohort goes on.
STATUS_IMPLAUSIBLE = int(Status.IMPLAUSIBLE)
#: Constants of the simulator (schedule, solver tolerances, drug distribution volumes) with
#: units and provenance; the values are what the simulator always used.
SIMULATION_PARAMS = ParameterTable((
    ParameterSpec("ld_first_day", "d", -5.0, -14.0, -2.0,
                  "Flu/Cy label schedule (days −5 to −3 before infusion)",
                  "first lymphodepletion day, also the first simulated day"),
    ParameterSpec("ld_n_days", "d", 3.0, 1.0, 5.0, "Flu/Cy label schedule",
                  "consecutive lymphodepletion days"),
    ParameterSpec("default_rtol", "–", 1e-5, 1e-10, 1e-2,
                  "docs/model.md Solver (accuracy against a 1e-10 reference)",
                  "default relative solver tolerance"),
    ParameterSpec("siltuximab_vd_l_per_kg", "L/kg", 0.06, 0.01, 1.0,
                  "siltuximab label (central volume ≈ 4.5 L in 75 kg)",
                  "siltuximab distribution volume"),
    ParameterSpec("plasma_dl_per_kg", "dL/kg", 0.45, 0.2, 1.0,
                  "≈ 45 mL plasma per kg body weight", "plasma volume IVIG distributes into"),
    ParameterSpec("ivig_recovery", "fraction", 0.5, 0.0, 1.0,
                  "assumed (~50 % of infused IgG stays intravascular)",
                  "fraction of an IVIG dose recovered in plasma"),
    ParameterSpec("platelet_increment_per_ul", "cells/µL", 30000.0, 0.0, 200000.0,
                  "assumed from the dose: an adult apheresis unit (≈ 3×10¹¹ platelets, about "
                  "two-thirds recovered after splenic pooling) into ≈ 5 L of blood raises the "
                  "count by ≈ 40,000/µL, 20,000-40,000 in practice; weight-based doses in "
                  "children (10-15 mL/kg) give the same rise",
                  "rise of the circulating platelet count by one platelet transfusion (the "
                  "transfused platelets' own state PTX, cartsim.model.marrow)"),
    ParameterSpec("rbc_unit_ml", "mL", 300.0, 100.0, 600.0,
                  "one adult unit of packed red cells (≈ 250-350 mL)",
                  "volume of one red-cell transfusion in an adult (the cap of the weight-based "
                  "dose)"),
    ParameterSpec("rbc_ml_per_kg", "mL/kg", 10.0, 5.0, 20.0,
                  "paediatric red-cell dosing 10-15 mL/kg (the lower end)",
                  "weight-based red-cell volume per transfusion, capped at rbc_unit_ml"),
    ParameterSpec("rbc_ml_per_kg_per_g_dl", "mL/kg per g/dL", 4.5, 2.0, 10.0,
                  "rule of thumb: 4-5 mL/kg of packed red cells raise haemoglobin by 1 g/dL "
                  "(so one 300-mL unit ≈ 1 g/dL in a 70-kg adult)",
                  "packed red cells per kg that raise haemoglobin by 1 g/dL"),
    ParameterSpec("ice_min_age_y", "years", 12.0, 0.0, 18.0,
                  "ASTCT 2019 (ICE from age 12; CAPD below)",
                  "age from which the ICE score is observed instead of CAPD"),
))
_Q = SIMULATION_PARAMS.defaults()
LD_FIRST_DAY = int(_Q["ld_first_day"])
LD_DAYS = tuple(range(LD_FIRST_DAY, LD_FIRST_DAY + int(_Q["ld_n_days"])))
DEFAULT_RTOL = _Q["default_rtol"]


def _ld_units(lymphodepletion: bool | float) -> float:
    """Daily exposure units of ``simulate``'s ``lymphodepletion`` (True = the reference
    course, False = none, a number = that many reference courses)."""
    if isinstance(lymphodepletion, bool | np.bool_):
        return 1.0 if lymphodepletion else 0.0
    try:
        x = float(lymphodepletion)
    except (TypeError, ValueError):
        raise InvalidInputError("lymphodepletion", "True, False or an exposure in "
                                f"[0, {LD_MAX_EXPOSURE:g}] reference courses",
                                lymphodepletion) from None
    if not (math.isfinite(x) and 0.0 <= x <= LD_MAX_EXPOSURE):
        raise InvalidInputError("lymphodepletion", "True, False or an exposure in "
                                f"[0, {LD_MAX_EXPOSURE:g}] reference courses", lymphodepletion)
    return x


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


@dataclass(frozen=True)
class Dose:
    """A dose of a drug that a mechanism declares (:class:`cartsim.model.mechanism.DoseRoute`):
    ``amount`` (scalar or per patient, in the route's unit) at the start of ``day``. A dose
    of an add-on mechanism's drug brings that mechanism into the simulated model."""

    name: str
    day: int
    amount: float | np.ndarray


def default_atol(model: Model | None = None) -> np.ndarray:
    """Absolute tolerances per state: 10⁻³ cells for populations, tighter for concentrations
    (each state's :meth:`~cartsim.model.mechanism.StateSpec.tolerance`)."""
    return (model or layout.CORE).atol()


_INTEGRATORS: dict[tuple[int, str], Callable[..., None]] = {}


def model_sparsity(n_samples: int = 120, seed: int = 20261121,
                   model: Model | None = None) -> np.ndarray:
    """The Jacobian pattern of the model's vector field: the numerically detected pattern
    (:func:`detected_sparsity`) joined with the structural one of the generated analytic
    Jacobian (:func:`cartsim.model.mechanism.analytic_jacobian`) where the generator can
    differentiate the model.

    The structural pattern holds every entry the detection can find and does not depend on
    where the random samples fall: a parameter added to the model (which shifts the samples)
    once made a marginal entry (d M_b / d X_t) drop out of the detected pattern, and with it
    the finite-difference colouring and every trajectory's last bits (session 20).
    """
    m = model or layout.CORE
    pat = detected_sparsity(n_samples, seed, model)
    got = analytic_jacobian(m)  # generated (or read from the cache), compiled only if called
    if not isinstance(got, str):
        pat = pat | np.asarray(got[1], dtype=bool)
    return pat


def detected_sparsity(n_samples: int = 120, seed: int = 20261121,
                      model: Model | None = None) -> np.ndarray:
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
        p, y = build(cohort, prod, seed=0, model=model)
        ps.append(p * np.exp(rng.normal(0.0, 0.3, p.shape)))
        scale = 10.0 ** rng.uniform(-3, 11, y.shape)
        yy = np.abs(y) * np.exp(rng.normal(0, 1, y.shape)) + rng.uniform(0, 1, y.shape) * scale
        yy[rng.uniform(size=y.shape) < 0.1] = 0.0
        ys.append(yy)
    m = model or layout.CORE
    return detect_sparsity(m.rhs, np.concatenate(ys), np.concatenate(ps))


#: Jacobian of the solver's implicit stages: ``"analytic"`` (generated from the mechanisms'
#: source, :mod:`cartsim.model.autodiff`) or ``"fd"`` (coloured forward differences, the
#: solver before session 6); ``CARTSIM_JACOBIAN`` overrides the default.
JACOBIANS = ("analytic", "fd")


def jacobian_kind(jacobian: str | None = None) -> str:
    """The Jacobian the solver uses: ``jacobian``, else ``$CARTSIM_JACOBIAN``, else
    ``"analytic"``."""
    kind = jacobian or os.environ.get("CARTSIM_JACOBIAN") or "analytic"
    if kind not in JACOBIANS:
        raise InvalidInputError("jacobian (argument or CARTSIM_JACOBIAN)",
                                " or ".join(JACOBIANS), kind)
    return kind


def integrator(model: Model | None = None, jacobian: str | None = None) -> Callable[..., None]:
    """The compiled per-patient solver for ``model`` (default: the core model; built once per
    process, model and Jacobian kind).

    RODAS4 (L-stable, order 4). Its Jacobian (``jacobian``, see :func:`jacobian_kind`) is
    analytic: generated with the right-hand side from the mechanisms' own source, only its
    structurally non-zero entries (:func:`cartsim.model.mechanism.analytic_jacobian`); for a
    model whose source the generator cannot differentiate, or with ``"fd"``, it is a
    finite-difference Jacobian over the states that feed back (accumulators excluded),
    coloured by the model's sparsity pattern. Either way the LU of the stage matrix follows
    the sparsity pattern. Continuous
    output: a patient steps across day boundaries (its daily state is the interpolant) and
    restarts only on a day when a schedule item, the clinic, a procedure or the stochastic
    layer changed its state; the daily integrals feeding the stochastic layer are returned
    per day.
    """
    m = model or layout.CORE
    kind = jacobian_kind(jacobian)
    found = _INTEGRATORS.get((id(m), kind))
    if found is None:
        jac, sparsity = None, None
        if kind == "analytic":
            got = analytic_jacobian(m)
            if isinstance(got, str):
                warnings.warn(f"model {m.n_states} states: no analytic Jacobian ({got}); "
                              f"using finite differences", RuntimeWarning, stacklevel=2)
            else:
                jac, sparsity = got
        # continuous output for every model: the core accumulators (the daily integrals)
        # are a block in the middle of the state vector once add-on states follow them, and
        # the solver is told where that block ends (before session 28 an add-on model, e.g.
        # any trial arm with HSCT and its GVL add-on, stopped its solver every day).
        # Every model's solver is cached on disk: its generated right-hand side names the
        # hash of every mechanism source and of the layout, so a changed add-on (or layout)
        # compiles afresh instead of loading stale code (add-on models used to recompile in
        # every process, ~85 s per study with HSCT consolidation).
        found = make_integrator(
            m.rhs, n_states=m.n_states, method="rodas4", jac=jac, n_jac=m.n_jac,
            autonomous=True, cache=True,
            jac_sparsity=cached_sparsity(m) if sparsity is None else sparsity,
            dense=True, interval_integrals=m.first_accumulator,
            interval_integrals_end=m.n_core_states,
        )
        _INTEGRATORS[(id(m), kind)] = found
    return found


def cached_sparsity(model: Model | None = None) -> np.ndarray:
    """:func:`model_sparsity`, detected once per model source (hash of its generated
    right-hand side) and machine, then read from the on-disk cache: detecting it compiles the
    right-hand side a second time, which a warm process must not pay."""
    m = model or layout.CORE
    # (v2: the detected pattern joined with the generated one since session 20; a pattern
    # cached by the detection alone must not be read back)
    return cached_array("model-sparsity-v2", model_digest(m.rhs),
                        lambda: model_sparsity(model=m)).astype(bool)


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

        h = hashlib.sha256(str(model_digest(stochastic.apply_day)).encode())
        h.update(Path(rng.__file__).read_bytes())
        py = stochastic.apply_day.py_func
        name = f"apply_day_{h.hexdigest()[:16]}"
        fn = types.FunctionType(py.__code__, py.__globals__, name, py.__defaults__,
                                py.__closure__)
        fn.__qualname__ = name
        # parallel over patients: ~0.5 µs each, 6 % of a 2,000-patient clinic run serial
        _STOCHASTIC_DAY = numba.njit(cache=True, parallel=True)(fn)
    return _STOCHASTIC_DAY


_STOCHASTIC_DAY: Callable[..., None] | None = None

#: Days of readouts buffered before they are transposed into the per-patient arrays.
_RECORD_BLOCK = 32


@dataclass
class SimulationResult:
    """Daily readouts (one row per patient and day), events, and per-patient status.

    ``simulate`` fills ``daily`` (each readout as a (patients sorted by id, days) array,
    NaN after a patient stopped, on the day axis ``daily_days``) and builds the long
    ``trajectories`` table only when it is first read: endpoints work on the arrays.
    """

    _trajectories: pd.DataFrame | None
    events: pd.DataFrame
    status: np.ndarray
    steps: np.ndarray
    seed: int
    meta: dict[str, Any] = field(default_factory=dict)
    #: Patient id of each entry of ``status``/``steps`` (the cohort's order).
    patient_id: np.ndarray | None = None
    daily: dict[str, np.ndarray] | None = None
    daily_days: np.ndarray | None = None
    daily_ids: np.ndarray | None = None

    @property
    def trajectories(self) -> pd.DataFrame:
        """Daily readouts, one row per patient and day, ordered by (patient_id, day)."""
        if self._trajectories is None:
            assert self.daily is not None and self.daily_days is not None
            assert self.daily_ids is not None
            n, d = self.daily_ids.size, self.daily_days.size
            self._trajectories = pd.DataFrame({
                "patient_id": np.repeat(self.daily_ids, d),
                "day": np.tile(self.daily_days, n),
                **{c: v.reshape(-1) for c, v in self.daily.items()},
            })
        return self._trajectories

    def _status_ids(self) -> np.ndarray:
        if self.patient_id is not None:
            return np.asarray(self.patient_id)
        return np.sort(self.trajectories["patient_id"].unique())

    def patient(self, patient_id: int) -> pd.DataFrame:
        t = self.trajectories
        return t[t["patient_id"] == patient_id].reset_index(drop=True)

    @property
    def patient_ids(self) -> np.ndarray:
        """Patient ids, sorted: the rows of :meth:`array` (``status`` follows the cohort's
        order, given by ``patient_id``)."""
        if self.daily_ids is not None:
            return self.daily_ids.copy()
        return np.unique(self.trajectories["patient_id"].to_numpy())

    @property
    def days(self) -> np.ndarray:
        """Days of the readouts (day 0 = infusion), the columns of :meth:`array`."""
        if self.daily_days is not None:
            return self.daily_days.copy()
        return np.unique(self.trajectories["day"].to_numpy())

    @property
    def readouts(self) -> list[str]:
        """Names of the daily readouts (lab units in the name)."""
        if self.daily is not None:
            return list(self.daily)
        return [c for c in self.trajectories.columns if c not in ("patient_id", "day")]

    def array(self, readout: str) -> np.ndarray:
        """One readout as an array (patients × days); NaN after a patient stopped."""
        if readout not in self.readouts:
            raise InvalidInputError("readout", "one of " + ", ".join(self.readouts), readout)
        if self.daily is not None:
            return self.daily[readout].copy()
        t = self.trajectories.sort_values(["patient_id", "day"], kind="stable")
        return t[readout].to_numpy(dtype=np.float64).reshape(self.patient_ids.size,
                                                            self.days.size)

    def to_frame(self) -> pd.DataFrame:
        """Daily readouts, one row per patient and day, with each patient's ``status`` code
        (:class:`cartsim.Status`; 0 = simulated to the end)."""
        codes = pd.Series(np.asarray(self.status, dtype=np.int64), index=self._status_ids())
        out = self.trajectories.copy()
        out["status"] = codes.reindex(out["patient_id"]).to_numpy()
        return out

    def failures(self) -> pd.DataFrame:
        """Patients that stopped early: id, status code, label and what to change."""
        ids = self._status_ids()
        bad = np.flatnonzero(np.asarray(self.status) != 0)
        return pd.DataFrame({
            "patient_id": ids[bad], "status": np.asarray(self.status)[bad].astype(np.int64),
            "label": [Status(int(c)).label for c in np.asarray(self.status)[bad]],
            "message": [Status(int(c)).message for c in np.asarray(self.status)[bad]],
        })

    def plot(self, path: str | Path | None = None, max_lines: int = 60) -> Any:
        """Trajectory figure (CAR-T, tumour, B cells, IL-6, temperature, ANC): a matplotlib
        ``Figure``; also written as PNG when ``path`` is given."""
        from cartsim.report.trajectories import trajectory_figure

        fig = trajectory_figure(self.trajectories, max_lines, events=self.events)
        if path is not None:
            fig.savefig(path, dpi=110, format="png")
        return fig

    def write(self, out: Path, plot: bool = True) -> None:
        """Write trajectories.parquet, events.parquet (and trajectories.png) atomically."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        _atomic_parquet(self.trajectories, out / "trajectories.parquet", self.meta)
        _atomic_parquet(self.events, out / "events.parquet", self.meta)
        if plot:
            from cartsim.report.trajectories import plot_trajectories

            tmp = out / ".trajectories.png.tmp.png"
            plot_trajectories(self.trajectories, tmp, events=self.events)
            os.replace(tmp, out / "trajectories.png")


def _atomic_parquet(df: pd.DataFrame, path: Path, meta: dict[str, Any]) -> None:
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), b"cartsim": json.dumps(meta, default=str).encode()}
    )
    atomic_write(path, lambda tmp: pq.write_table(table, tmp, **PARQUET_OPTIONS))


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
    y[:, S.STER] += dex + mp * DEX_EQ_PER_MP_MG  # dexamethasone equivalents
    given["dexamethasone"] = (dex, "mg")
    given["methylprednisolone"] = (mp, "mg")
    ana = take("anakinra_mg")
    y[:, S.ANAK] += ana
    given["anakinra"] = (ana, "mg")
    sil = take("siltuximab_mg")
    y[:, S.SILT] += sil / (_Q["siltuximab_vd_l_per_kg"] * w)
    given["siltuximab"] = (sil, "mg")
    ivig = take("ivig_g")
    y[:, S.IgG] += ivig * 1000.0 / (_Q["plasma_dl_per_kg"] * w) * _Q["ivig_recovery"]  # g→mg
    given["ivig"] = (ivig, "g")
    plt_tx = take("platelet_transfusion") > 0
    y[:, S.PTX] += np.where(plt_tx, _Q["platelet_increment_per_ul"], 0.0)
    given["platelet_transfusion"] = (plt_tx.astype(np.float64), "transfusion")
    rbc_tx = take("rbc_transfusion") > 0
    rbc_ml = np.minimum(_Q["rbc_ml_per_kg"] * w, _Q["rbc_unit_ml"])
    y[:, S.HB] += np.where(rbc_tx, rbc_ml / (_Q["rbc_ml_per_kg_per_g_dl"] * w), 0.0)
    given["rbc_transfusion"] = (rbc_tx.astype(np.float64), "transfusion")
    gcsf = take("gcsf").astype(bool)
    # the G-CSF state is the course itself (held while it runs): a day that continues the
    # course leaves the state as it was, so the solver need not restart
    y[:, S.GCSF] = gcsf.astype(np.float64)
    given["gcsf"] = (gcsf.astype(np.float64), "dose")
    return given


def _implausible(obs: dict[str, np.ndarray]) -> np.ndarray:
    """Patients whose observations are non-finite or outside the protocol's accepted ranges
    (missing, NaN, is accepted except in the vital signs of :data:`_VITAL_OBS`)."""
    keys, lo, hi, vital = _obs_ranges()
    present = [j for j, k in enumerate(keys) if k in obs]
    a = np.stack([np.asarray(obs[keys[j]], dtype=np.float64) for j in present])
    idx = np.asarray(present)
    with np.errstate(invalid="ignore"):
        # the bounds are finite, so ±inf fails them; NaN fails neither comparison
        bad = (a < lo[idx, None]) | (a > hi[idx, None])
        bad |= vital[idx, None] & np.isnan(a)
    return bad.any(axis=0)


@functools.cache
def _obs_ranges() -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
    """The checked observation keys with their lower and upper bounds and vital flags."""
    from cartsim.clinic.protocol import OBS_SPEC

    keys = tuple(k for k in OBS_SPEC if k != "alive")
    return (keys, np.array([OBS_SPEC[k][0] for k in keys]),
            np.array([OBS_SPEC[k][1] for k in keys]),
            np.array([k in _VITAL_OBS for k in keys]))


_VITAL_OBS = ("temperature_c", "map_mmhg", "spo2_room_air_pct", "il6_pg_ml", "anc_per_ul")


def _lab(values: dict[str, np.ndarray] | None, name: str, n: int) -> np.ndarray:
    if values is None or name not in values:
        return np.full(n, np.nan)
    return np.asarray(values[name], dtype=np.float64).copy()


def observations(y: np.ndarray, p: np.ndarray, baseline_il6: np.ndarray,
                 seed: int | None = None, patient_id: np.ndarray | None = None,
                 day: int | None = None, lab_values: dict[str, np.ndarray] | None = None,
                 computed: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """What the virtual clinician sees today (the protocol's ``obs`` contract); with
    ``seed``, ``patient_id`` and ``day`` the neurological chance events are drawn; CRP and
    ferritin come from ``lab_values`` (today's :class:`cartsim.model.labs.LabCourse` readouts,
    missing without them). ``computed``: ``readouts.compute(y, p)`` when the caller has it
    (the arrays may be changed)."""
    r = readouts.compute(y, p) if computed is None else computed
    enc = r["encephalopathy"]
    icans = icans_findings(enc, seed, patient_id, day)
    age = p[:, P.age_y]
    n = y.shape[0]
    return {
        "temperature_c": r["temperature_c"],
        "map_mmhg": r["map_mmhg"],
        "spo2_room_air_pct": r["spo2_pct"],
        "ice_score": np.where(age >= _Q["ice_min_age_y"], r["ice_score"], np.nan),
        "capd_score": np.where(age < _Q["ice_min_age_y"], icans["capd_score"], np.nan),
        "consciousness": icans["consciousness"],
        "seizure": icans["seizure"],
        "motor_weakness": icans["motor_weakness"],
        "cerebral_edema": icans["cerebral_edema"],
        "il6_pg_ml": r["il6_pg_ml"],
        "il6_baseline_pg_ml": baseline_il6,
        "anc_per_ul": r["anc_per_ul"],
        "platelets_per_ul": r["platelets_per_ul"],
        "hemoglobin_g_dl": r["hemoglobin_g_dl"],
        "igg_mg_dl": r["igg_mg_dl"],
        # CRP and ferritin: the slow lab states of the day (missing when not given)
        "crp_mg_l": _lab(lab_values, "crp_mg_l", n),
        "ferritin_ng_ml": _lab(lab_values, "ferritin_ng_ml", n),
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
    lymphodepletion: bool | float = True,
    drugs: Sequence[Dose] = (),
) -> SimulationResult:
    """Simulate ``cohort`` treated with ``product`` from day −5 (lymphodepletion) to ``days``.

    Lymphodepletion (Flu/Cy) on days −5, −4, −3 (unless ``lymphodepletion=False``; a number
    is the course's exposure in reference courses,
    :func:`cartsim.lymphodepletion.lymphodepletion_exposure`) and the infusion on day 0 are
    schedule items.
    Each day from day 0 each of ``procedures`` acts, then the ``protocol`` (if any) observes
    and treats; what they give is recorded in the events table. ``drugs`` are scheduled
    drugs (:class:`Dose`); the simulated model is the core model plus the add-on mechanisms
    whose drugs they give (:func:`cartsim.model.layout.model`).
    """
    if not isinstance(days, int) or not 1 <= days <= 3650:
        raise InvalidInputError("days", "an integer in [1, 3650]", days)
    if not isinstance(seed, int) or seed < 0:
        raise InvalidInputError("seed", "a non-negative integer", seed)
    if not 1e-10 <= rtol <= 1e-2:
        raise InvalidInputError("rtol", "[1e-10, 1e-2]", rtol)
    ld_units = _ld_units(lymphodepletion)
    addons: set[str] = set()
    for d in drugs:
        try:
            addons.add(layout.addon_for_dose(d.name))
        except ValueError as exc:
            raise InvalidInputError("drugs", str(exc), d.name) from None
        if not isinstance(d.day, int) or not LD_FIRST_DAY <= d.day < days:
            raise InvalidInputError(f"dose {d.name} day",
                                    f"an integer in [{LD_FIRST_DAY}, {days - 1}]", d.day)
        amt = np.asarray(d.amount, dtype=np.float64)
        if not (np.isfinite(amt).all() and (amt >= 0).all()):
            raise InvalidInputError(f"dose {d.name} amount", "finite and >= 0", d.amount)
    for proc in procedures:  # a procedure may need an add-on (HSCT: the graft's GVL)
        addons.update(getattr(proc, "addons", ()))
    model = layout.model(addons - {""})
    for proc in procedures:
        bind = getattr(proc, "bind", None)
        if bind is not None:
            bind(model)
    p, y = build(cohort, product, seed, variability=variability, overrides=overrides,
                 model=model if model.addons else None)
    n = cohort.n
    dose = doses(cohort, product)
    mem = product.construct.memory_fraction
    schedule = (
        [ScheduleItem(d, int(S.LD), ld_units, "lymphodepletion", "Flu/Cy day")
         for d in LD_DAYS]
        if ld_units > 0.0 else []
    )
    schedule += [
        ScheduleItem(0, int(S.M_b), mem * dose, "infusion_memory", "cells"),
        ScheduleItem(0, int(S.E_b), (1.0 - mem) * dose, "infusion_effector", "cells"),
    ]
    drug_given: dict[tuple[int, str], np.ndarray] = {}  # dose amounts, for the events table
    for d in drugs:
        route, _ = model.doses[d.name]
        amt = np.broadcast_to(np.asarray(d.amount, dtype=np.float64), (n,))
        drug_given[(d.day, d.name)] = drug_given.get((d.day, d.name), 0.0) + amt
        inc = amt if route.convert is None else route.convert(amt, p, model.P)
        schedule.append(ScheduleItem(d.day, int(model.S[route.state]), inc, d.name, route.unit))
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
        recorded["day"] = None  # the state changed since the day's readouts were recorded
        if item.event == "infusion_memory":
            return
        if item.event == "infusion_effector":
            add_events(day, "cart_infusion", dose * (given != 0), "cells")
        elif (day, item.event) in drug_given:
            amount = drug_given.pop((day, item.event))
            add_events(day, item.event, np.where(given != 0, amount, 0.0), item.unit)
        else:
            add_events(day, item.event, given, item.unit)

    #: the readouts of the last recorded day (the clinic observes the same state next
    #: morning unless a schedule item or a procedure changed it)
    recorded: dict[str, Any] = {"day": None}
    baseline_il6 = p[:, P.il6_base].copy()
    pstate = protocol.initial_state(n) if protocol is not None else None
    # slow lab states (CRP, ferritin, …) advance with each recorded day and never feed back
    # (the parameter set in force may replace the lab constants' defaults; overrides win)
    pset = active_parameter_set()
    lab_set = ({} if pset is None else
               {s.name: pset.apply(s).default for s in labs.LAB_PARAMS if s.name in pset.values})
    lab_course = labs.LabCourse(p, {**lab_set, **(overrides or {})})
    latest_labs: dict[str, np.ndarray] = {}

    def on_day_start(day: int, y_: np.ndarray, status: np.ndarray) -> None:
        nonlocal pstate
        if day < 0:
            return
        reuse = protocol is not None and recorded["day"] == day
        y_seen = y_.copy() if reuse and procedures else None
        for proc in procedures:
            for name, (amt, unit) in proc.apply(day, y_, p, status).items():
                add_events(day, name, np.where(status == 0, np.asarray(amt, float), 0.0), unit)
        if protocol is None:
            return
        # the readouts recorded at the end of yesterday, unless a schedule item or a
        # procedure changed the state since (the same numbers, computed once); a procedure
        # that acted on nobody today leaves the state bit for bit as it was recorded
        r = None
        if reuse and (y_seen is None or np.array_equal(y_seen, y_)):
            r = {k: v.copy() for k, v in recorded["r"].items()}
        obs = observations(y_, p, baseline_il6, seed, pid, day, latest_labs, computed=r)
        bad = _implausible(obs) & (status == 0)
        if bad.any():  # a runaway patient leaves the cohort with its own status code
            status[bad] = STATUS_IMPLAUSIBLE
            add_events(day, "implausible_state", bad.astype(np.float64), "flag")
        obs["alive"] = status == 0
        gone = status != 0
        if gone.any():
            for v in obs.values():
                if v.dtype.kind == "f":
                    v[gone] = np.nan
        # the shipped Policy skips the input checks the state check above already made
        decide = getattr(protocol, "decide_trusted", protocol.decide)
        actions, pstate = decide(day, obs, pstate)
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
    cols = list(readouts.compute(y[:1], p[:1]).keys()) + list(labs.LAB_COLUMNS)
    # The daily readouts go to (patients sorted by id, days) arrays, the layout the endpoints
    # read: each day lands in a small (days, patients) buffer, and every _RECORD_BLOCK days the
    # buffer is transposed into place. (A whole (days, patients) store transposed at the end
    # held the readouts twice: ~1 GB more at 10,000 patients × 365 days.)
    order = np.argsort(pid, kind="stable")
    in_order = bool(np.array_equal(order, np.arange(n)))
    store = {c: np.empty((n, n_days)) for c in cols}
    buf = {c: np.empty((_RECORD_BLOCK, n)) for c in cols}
    block = [0, 0]  # first day index of the buffer, days in it

    def flush() -> None:
        k0, m = block
        for c in cols:
            b = buf[c][:m]
            store[c][:, k0:k0 + m] = (b if in_order else b[:, order]).T
        block[0], block[1] = k0 + m, 0

    def record(day: int, y_: np.ndarray, status: np.ndarray) -> None:
        r = readouts.compute(y_, p)
        if protocol is not None:
            recorded.update(day=day, r=dict(r))
        r.update(lab_course.step(day, y_))
        latest_labs.update(r)
        j = block[1]
        if day - LD_FIRST_DAY != block[0] + j:
            raise RuntimeError(f"readouts of day {day} recorded out of order")
        alive = status == 0
        if alive.all():  # (most days: no copy through np.where)
            for c in cols:
                buf[c][j] = r[c]
        else:
            for c in cols:
                buf[c][j] = np.where(alive, r[c], np.nan)
        block[1] = j + 1
        if block[1] == _RECORD_BLOCK:
            flush()

    clone_cols = [int(S.T0), int(S.T1), int(S.T2), int(S.TS)]
    thr = p[:, P.stoch_threshold][:, None]

    def redrawn(y_: np.ndarray) -> np.ndarray:
        # the stochastic layer will redraw every non-empty clone that starts the day below
        # its threshold (an empty one stays empty unless migrants arrive)
        c = y_[:, clone_cols]
        return (c > 0.0) & (c < thr)

    def jumps_next(day: int, y_: np.ndarray) -> np.ndarray:
        # a speed hint only: a wrong guess costs steps, never accuracy
        return redrawn(y_).any(axis=1)

    skip = np.zeros(y.shape, dtype=bool)

    def overwritten(day: int, y_: np.ndarray) -> np.ndarray:
        # the ODE's value of a redrawn clone at the day's end is replaced by the draw (which
        # uses only the clone's start-of-day size and the day's integrated rates): its
        # error must not shrink the steps of the states that are kept
        skip[:, clone_cols] = redrawn(y_)
        return skip

    stats = run_daily(
        integrator(model), y, p, LD_FIRST_DAY, days, schedule, rtol=rtol,
        atol=default_atol(model),
        on_schedule=on_schedule, on_day_start=on_day_start, on_day_end=on_day_end,
        record=record, progress=progress, dense=True,
        jumps_next=jumps_next, overwritten=overwritten,
    )
    flush()
    day_axis = np.arange(LD_FIRST_DAY, days + 1)
    traj: pd.DataFrame | None = None
    daily: dict[str, np.ndarray] | None = None
    daily_ids: np.ndarray | None = None
    if np.unique(pid).size == n:
        # the long table is built from these arrays only if someone reads ``trajectories``
        daily = store
        daily_ids = pid[order].copy()
    else:
        traj = pd.DataFrame({
            "patient_id": np.repeat(pid[order], n_days),
            "day": np.tile(day_axis, n),
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
        "variability": variability, "rtol": rtol, "lymphodepletion": ld_units,
        "protocol": None if protocol is None else getattr(protocol, "name", str(protocol)),
        "procedures": [type(pr).__name__ for pr in procedures],
        "mechanisms": [m.name for m in model.mechanisms],
    }
    return SimulationResult(traj, events, stats.status, stats.steps, seed, meta, pid.copy(),
                            daily=daily, daily_days=day_axis if daily is not None else None,
                            daily_ids=daily_ids)
