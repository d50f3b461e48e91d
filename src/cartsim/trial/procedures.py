"""Salvage and consolidation as schedule items of a trial arm (issue 11 item 5).

Each item of ``[[arms.schedule]]`` (see :mod:`cartsim.trial.spec`) becomes a day-start
:class:`~cartsim.simulation.Procedure`: a *trigger* decides, per patient, the day its course
starts, and the course acts on fixed offsets from that day. Everything is data applied as
state jumps between days: no equation of the model changes, so an arm without items simulates
exactly the core model.

Triggers (read from the simulated state ``y``, as the clinician would from a marrow or a scan):

* ``day`` — on ``day`` for every running patient;
* ``mrd_negative_cr`` — on the first day in ``window`` (inclusive) on which the simulated MRD
  fraction (site tumour / (site tumour + normal marrow cells), the ``mrd_fraction`` readout)
  is below ``mrd_below`` and the CNS/testis sanctuary holds fewer than ``cns_positive_cells``
  tumour cells (B-ALL);
* ``relapse`` — B-ALL: marrow blasts at or above ``relapse_blast_pct`` after having been below
  it on a day ≥ 1 (a remission), or sanctuary disease at ``cns_positive_cells``; LBCL: tumour
  volume at least ``progression_factor`` × its nadir since day 0 and at least
  ``progression_min_volume_ml`` (Lugano progression) — the same thresholds the endpoints use
  (:mod:`cartsim.trial.endpoints`). ``delay_days`` after the trigger the course starts.

A patient's course starts at most once per item. Courses:

* :class:`TransplantCourse` — allogeneic HSCT (conditioning kill of every clone at every site,
  CAR-T ablation, donor graft with graft-versus-leukaemia from :mod:`cartsim.model.gvl`;
  event ``hsct``) or autologous SCT (high-dose conditioning and CAR-T ablation, no graft,
  no GVL; event ``asct``). Transplant-related mortality is a trial-layer death cause
  (:func:`cartsim.trial.outcomes.decide_deaths`: ``trm_*`` and ``asct_trm_*``).
* :class:`SalvageCourse` — salvage cytoreduction (chemo-/immunotherapy after relapse): every
  clone at every site × 10^−log_kill, the log kill drawn per patient (chemosensitivity), CAR-T
  removed only with ``ablate_cart``; no graft, no transplant mortality (event ``salvage``).
* :class:`ReinfusionCourse` — a second CAR-T dose, with lymphodepletion (Flu/Cy on start days
  0, 1, 2 and cells on day 5, as the first infusion) or without (cells on day 0). Host
  rejection of the construct (``k_reject`` in :mod:`cartsim.model.cart`) grows with the host
  T cells' niche occupancy, so cells given without lymphodepletion to a reconstituted host are
  rejected faster: the blunting emerges from the state, it is not a rule here.
* :class:`DrugCourse` — ``doses`` doses of ``amount`` (the dose route's unit) every
  ``every_days`` days of a drug a mechanism declares as a dose route (e.g. ``iap_inhibitor``);
  the drug's add-on mechanism joins the simulated model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np

from cartsim.model.burden import blast_fraction_array
from cartsim.model.mechanism import Model
from cartsim.model.parameters import P
from cartsim.model.state import CART_BLOOD, CART_TISSUE, CLONE_STATES, S
from cartsim.params import ParameterSpec, ParameterTable
from cartsim.trial.outcomes import SALVAGE_PARAMS, mrd_fraction, site_tumour

if TYPE_CHECKING:
    from cartsim.trial.spec import Distribution

#: Defaults of the schedule items' procedures, with units and provenance (spec fields override).
SCHEDULE_PARAMS = ParameterTable((
    ParameterSpec("asct_log_kill", "log10", 2.0, 0.0, 12.0,
                  "assumed (BEAM/BEAC high-dose chemotherapy for chemosensitive relapsed "
                  "lymphoma; less than the 3 log of TBI-based myeloablative allo "
                  "conditioning, hsct_log_kill)",
                  "log10 reduction of every tumour clone, at every site, at autologous SCT"),
    ParameterSpec("reinfusion_ld_to_cells_days", "d", 5.0, 2.0, 14.0,
                  "Flu/Cy label schedule (days −5 to −3 before infusion), as the first "
                  "infusion", "days from the first lymphodepletion day to the re-infusion"),
    ParameterSpec("allo_hsct_mrd_below", "fraction", 1e-4, 1e-7, 1.0,
                  "clinical standard (MRD-negative: < 0.01 % by flow cytometry)",
                  "MRD fraction below which a patient is eligible for allogeneic HSCT / the "
                  "mrd_negative_cr trigger fires"),
))
_Q = SCHEDULE_PARAMS.defaults()

Events = dict[str, tuple[np.ndarray, str]]


def _salvage_q() -> dict[str, float]:
    """SALVAGE_PARAMS' values in force (the parameter set may replace their defaults)."""
    from cartsim.parameter_sets import effective_specs

    return {s.name: s.default for s in effective_specs(SALVAGE_PARAMS)}


def salvage_early_relapse() -> tuple[float, float]:
    """(factor, days) of the early-relapse salvage multiplier in force (SALVAGE_PARAMS)."""
    q = _salvage_q()
    return q["salvage_early_relapse_factor"], q["salvage_early_relapse_days"]


def salvage_log_kill() -> Distribution:
    """The population distribution of a salvage course's log10 kill (the parameter set in
    force may replace ``SALVAGE_PARAMS``)."""
    from cartsim.trial.spec import Distribution

    q = _salvage_q()
    return Distribution(kind="truncnormal", mean=q["salvage_log_kill_mean"],
                        sd=q["salvage_log_kill_sd"], lower=0.0, upper=8.0)


def _cytoreduce(y: np.ndarray, go: np.ndarray, kill: float | np.ndarray,
                ablate_cart: bool) -> None:
    """Every tumour clone at every site × ``kill`` (a factor, or one per patient) for the
    patients in ``go``; their CAR-T removed if ``ablate_cart``."""
    factor = np.where(go, kill, 1.0)
    for s in (*CLONE_STATES, int(S.TS)):
        y[:, s] *= factor
    if ablate_cart:
        for s in (*CART_BLOOD, *CART_TISSUE):
            y[go, s] = 0.0


class Trigger:
    """When each patient's course starts (see the module docstring). Stateful per simulation:
    build a new one (a new procedure) for every ``simulate`` call."""

    def __init__(self, kind: str, day: int | None = None,
                 window: tuple[int, int] | None = None, mrd_below: float | None = None,
                 delay_days: int = 0, thresholds: dict[str, float] | None = None) -> None:
        from cartsim.trial.endpoints import RESPONSE_PARAMS, SURVIVAL_PARAMS

        if kind not in ("day", "mrd_negative_cr", "relapse"):
            raise ValueError(f"unknown trigger {kind!r}")
        self.kind = kind
        self.day = day
        self.window = window
        self.mrd_below = _Q["allo_hsct_mrd_below"] if mrd_below is None else mrd_below
        self.delay_days = int(delay_days)
        q = {**RESPONSE_PARAMS.defaults(), **SURVIVAL_PARAMS.defaults(), **(thresholds or {})}
        self.q = q
        self._fired: np.ndarray | None = None
        self._remission: np.ndarray | None = None
        self._nadir: np.ndarray | None = None

    def starts(self, day: int, y: np.ndarray, p: np.ndarray, status: np.ndarray,
               start: np.ndarray) -> None:
        """Write today's new course start days into ``start`` (NaN = not started)."""
        n = y.shape[0]
        if self._fired is None:
            self._fired = np.zeros(n, dtype=bool)
            self._remission = np.zeros(n, dtype=bool)
            self._nadir = np.full(n, np.inf)
        run = status == 0
        if self.kind == "day":
            hit = run & (day == self.day)
        elif self.kind == "mrd_negative_cr":
            lo, hi = self.window  # type: ignore[misc]
            clear = (mrd_fraction(y, p) < self.mrd_below) \
                & (np.maximum(y[:, S.TS], 0.0) < self.q["cns_positive_cells"])
            hit = run & (lo <= day <= hi) & clear
        else:
            lbcl = p[:, P.disease_lbcl] > 0.5
            site = site_tumour(y)
            blasts = 100.0 * blast_fraction_array(site, p[:, P.marrow_cells],
                                                  p[:, P.ball_packing])
            cns = np.maximum(y[:, S.TS], 0.0) >= self.q["cns_positive_cells"]
            below = blasts < self.q["relapse_blast_pct"]
            ball_rel = self._remission & (~below | cns)
            self._remission |= below & ~cns & (day >= 1)
            vol = site / 1e9
            lbcl_prog = (vol >= self.q["progression_factor"] * self._nadir) \
                & (vol >= self.q["progression_min_volume_ml"])
            self._nadir = np.minimum(self._nadir, vol)
            hit = run & np.where(lbcl, lbcl_prog, ball_rel)
        new = hit & ~self._fired
        self._fired |= new
        start[new] = day + self.delay_days


class _Course(ABC):
    """A procedure: a trigger plus actions on offsets from each patient's start day."""

    addons: tuple[str, ...] = ()
    offsets: tuple[int, ...] = (0,)

    def __init__(self, trigger: Trigger) -> None:
        self.trigger = trigger
        self._start: np.ndarray | None = None

    def bind(self, model: Model) -> None:  # noqa: B027 - optional hook
        """Learn the composed model's layout (add-on states)."""

    @abstractmethod
    def act(self, k: int, go: np.ndarray, y: np.ndarray, p: np.ndarray) -> Events:
        """Apply action ``k`` to the patients in ``go`` (in place on ``y``); the events."""

    def apply(self, day: int, y: np.ndarray, p: np.ndarray, status: np.ndarray) -> Events:
        n = y.shape[0]
        if self._start is None:
            self._start = np.full(n, np.nan)
        self.trigger.starts(day, y, p, status, self._start)
        out: Events = {}
        for k, off in enumerate(self.offsets):
            go = (self._start + off == day) & (status == 0)
            if not go.any():
                continue
            for name, (amt, unit) in self.act(k, go, y, p).items():
                prev = out.get(name)
                out[name] = ((amt if prev is None else prev[0] + amt), unit)
        return out


class TransplantCourse(_Course):
    """Allogeneic (``allogeneic=True``: graft and GVL, event ``hsct``) or autologous (event
    ``asct``) stem-cell transplant: conditioning × 10^−log_kill on every clone at every site,
    CAR-T ablation (``ablate_cart``). Patients above ``if_mrd_below`` (when given) on the
    transplant day are not transplanted."""

    def __init__(self, trigger: Trigger, allogeneic: bool, log_kill: float,
                 ablate_cart: bool = True, graft: bool = True,
                 if_mrd_below: float | None = None) -> None:
        super().__init__(trigger)
        self.allogeneic = allogeneic
        self.log_kill = float(log_kill)
        self.ablate_cart = ablate_cart
        self.graft = graft and allogeneic
        self.if_mrd_below = if_mrd_below
        self.addons = ("gvl",) if self.graft else ()
        self.event = "hsct" if allogeneic else "asct"
        self._graft_state: int | None = None

    def bind(self, model: Model) -> None:
        self._graft_state = int(model.S["GRAFT"]) if any(
            m.name == "gvl" for m in model.addons) else None

    def act(self, k: int, go: np.ndarray, y: np.ndarray, p: np.ndarray) -> Events:
        if self.if_mrd_below is not None:
            go = go & (mrd_fraction(y, p) < self.if_mrd_below)
        _cytoreduce(y, go, 10.0 ** (-self.log_kill), self.ablate_cart)
        if self.graft and self._graft_state is not None:
            y[go, self._graft_state] = 1.0
        return {self.event: (go.astype(np.float64), "flag")}


class SalvageCourse(_Course):
    """Salvage cytoreduction: every tumour clone at every site × 10^−``log_kill`` (per patient,
    in the cohort's order), CAR-T removed if ``ablate_cart``; event ``salvage`` (the log kill
    given, log10)."""

    def __init__(self, trigger: Trigger, log_kill: np.ndarray, ablate_cart: bool = False,
                 early_factor: float = 1.0, early_days: float = 0.0) -> None:
        super().__init__(trigger)
        self.log_kill = np.asarray(log_kill, dtype=np.float64)
        self.ablate_cart = ablate_cart
        self.early_factor = float(early_factor)
        self.early_days = float(early_days)

    def act(self, k: int, go: np.ndarray, y: np.ndarray, p: np.ndarray) -> Events:
        lk = self.log_kill
        if self.early_factor != 1.0 and self._start is not None:
            # a course that starts soon after the infusion answers an early, more refractory
            # relapse (SALVAGE_PARAMS salvage_early_relapse_*)
            lk = np.where(self._start <= self.early_days, lk * self.early_factor, lk)
        _cytoreduce(y, go, 10.0 ** (-lk), self.ablate_cart)
        return {"salvage": (np.where(go, lk, 0.0), "log10")}


class ReinfusionCourse(_Course):
    """A second CAR-T infusion of ``dose_cells`` (per patient, in the cohort's order) with the
    product's ``memory_fraction``; with ``lymphodepletion`` Flu/Cy units on start days 0–2
    and the cells on ``reinfusion_ld_to_cells_days``."""

    def __init__(self, trigger: Trigger, dose_cells: np.ndarray, memory_fraction: float,
                 lymphodepletion: bool = True) -> None:
        super().__init__(trigger)
        self.dose_cells = np.asarray(dose_cells, dtype=np.float64)
        self.memory_fraction = float(memory_fraction)
        self.lymphodepletion = lymphodepletion
        gap = int(_Q["reinfusion_ld_to_cells_days"])
        self.offsets = (0, 1, 2, gap) if lymphodepletion else (0,)

    def act(self, k: int, go: np.ndarray, y: np.ndarray, p: np.ndarray) -> Events:
        if k < len(self.offsets) - 1:  # a lymphodepletion day
            y[go, S.LD] += 1.0
            return {"reinfusion_ld": (go.astype(np.float64), "Flu/Cy day")}
        dose = np.where(go, self.dose_cells, 0.0)
        # the new effectors arrive with full cytokine competence (model cart.py QC): the
        # effector pool's mean competence is the cell-weighted mix
        e_old = y[:, S.E_b] + y[:, S.E_t]
        e_new = (1.0 - self.memory_fraction) * dose
        tot = e_old + e_new
        mixed = (y[:, S.QC] * e_old + e_new) / np.where(tot > 0.0, tot, 1.0)
        y[:, S.QC] = np.where(go & (tot > 0.0), mixed, y[:, S.QC])
        y[:, S.M_b] += self.memory_fraction * dose
        y[:, S.E_b] += (1.0 - self.memory_fraction) * dose
        return {"cart_reinfusion": (dose, "cells")}


class DrugCourse(_Course):
    """``doses`` doses of ``amount`` (route unit) of dose route ``drug``, ``every_days`` apart."""

    def __init__(self, trigger: Trigger, drug: str, amount: float, doses: int = 1,
                 every_days: int = 1) -> None:
        from cartsim.model import layout

        super().__init__(trigger)
        self.drug = drug
        self.amount = float(amount)
        addon = layout.addon_for_dose(drug)  # ValueError names the known routes
        self.addons = (addon,) if addon else ()
        self.offsets = tuple(i * int(every_days) for i in range(int(doses)))
        self._route: Any = None
        self._state: int | None = None
        self._P: Any = None

    def bind(self, model: Model) -> None:
        route, _ = model.doses[self.drug]
        self._route, self._state, self._P = route, int(model.S[route.state]), model.P

    def act(self, k: int, go: np.ndarray, y: np.ndarray, p: np.ndarray) -> Events:
        assert self._state is not None, "bind() first"
        amt = np.where(go, self.amount, 0.0)
        inc = amt if self._route.convert is None else self._route.convert(amt, p, self._P)
        y[:, self._state] += np.where(go, inc, 0.0)
        return {self.drug: (amt, self._route.unit)}
