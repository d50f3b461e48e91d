"""Trial-layer outcomes the model itself does not have: death, and HSCT consolidation.

Death is decided from the *simulated* state after the simulation, never from a published rate:

* **progression death** — the simulated tumour burden stays at or above a lethal level
  (B-ALL: marrow blasts ≥ ``lethal_blast_pct``; LBCL: tumour volume ≥ ``lethal_tumour_volume_ml``)
  on every day of a ``lethal_burden_days`` window; death on the last day of the window;
* **toxicity death** — simulated circulatory or respiratory collapse: MAP below
  ``toxicity_map_fraction`` × the age-normal baseline MAP, or SpO2 on room air below
  ``toxicity_spo2_pct``, on ``toxicity_days`` consecutive days; death on the last of them;
* **infection death** — a daily hazard
  ``h = infection_base_hazard × (neutropenia_hazard_ratio if ANC < 500/µL) ×
  (hypogammaglobulinaemia_hazard_ratio if IgG < igg_low_mg_dl)``; on day ``d`` the patient dies
  if ``u(seed, patient, stream, d) < 1 − exp(−h)`` with the keyed counter-based generator, so the
  draw depends only on (seed, patient id, day), never on chunking.

The earliest of the three is the death day and cause.

Infection episodes of any severity (:func:`infection_episodes`) follow the same structure with
their own hazard ``infection_any_base_hazard`` × the same ANC and IgG multipliers: an episode
starts on day ``d`` when the keyed draw falls below ``1 − exp(−h)`` and no episode started in
the previous ``infection_episode_days`` days. Every number is a
:class:`~cartsim.params.ParameterSpec` with units and provenance; a spec's ``[death]`` table may
override them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cartsim.engine.rng import uniform_np
from cartsim.model.mechanism import Model
from cartsim.model.parameters import P
from cartsim.model.state import CART_BLOOD, CART_TISSUE, CLONE_STATES, S
from cartsim.params import ParameterSpec, ParameterTable
from cartsim.population import stream_id

DEATH_PARAMS = ParameterTable((
    ParameterSpec("lethal_blast_pct", "%", 90.0, 50.0, 100.0,
                  "assumed (near-total marrow replacement)",
                  "B-ALL marrow blasts at or above which the burden counts as lethal"),
    ParameterSpec("lethal_tumour_volume_ml", "mL", 500.0, 10.0, 1e4,
                  "assumed (≈ 5×10¹¹ lymphoma cells)",
                  "LBCL tumour volume at or above which the burden counts as lethal"),
    ParameterSpec("lethal_burden_days", "d", 30.0, 1.0, 365.0, "assumed",
                  "consecutive days of lethal burden before progression death"),
    ParameterSpec("toxicity_map_fraction", "× baseline MAP", 0.6, 0.1, 1.0,
                  "assumed (refractory shock)",
                  "MAP below this fraction of the age-normal baseline counts as collapse"),
    ParameterSpec("toxicity_spo2_pct", "%", 80.0, 50.0, 95.0,
                  "assumed (refractory hypoxaemia)",
                  "SpO2 on room air below which oxygenation counts as collapsed"),
    ParameterSpec("toxicity_days", "d", 2.0, 1.0, 30.0, "assumed",
                  "consecutive days of collapse before toxicity death"),
    ParameterSpec("infection_base_hazard", "1/d", 2e-5, 0.0, 0.1,
                  "assumed (≈ 0.7 %/year background infection mortality)",
                  "daily infection-death hazard with normal ANC and IgG"),
    ParameterSpec("neutropenia_hazard_ratio", "–", 25.0, 1.0, 1000.0,
                  "assumed (order of magnitude of infection risk at ANC < 500/µL, "
                  "Bodey 1966)",
                  "hazard multiplier on days with ANC < 500/µL"),
    ParameterSpec("hypogammaglobulinaemia_hazard_ratio", "–", 3.0, 1.0, 100.0, "assumed",
                  "hazard multiplier on days with IgG below igg_low_mg_dl"),
    ParameterSpec("igg_low_mg_dl", "mg/dL", 400.0, 0.0, 2000.0,
                  "assumed (usual IVIG replacement threshold)",
                  "IgG below which hypogammaglobulinaemia raises the infection hazard"),
    ParameterSpec("infection_any_base_hazard", "1/d", 5e-4, 0.0, 0.5,
                  "assumed (≈ 17 %/year background infections of any grade in "
                  "heavily pre-treated patients)",
                  "daily hazard of a new infection episode with normal ANC and IgG"),
    ParameterSpec("infection_episode_days", "d", 14.0, 1.0, 90.0, "assumed",
                  "days after an episode starts during which no new episode is counted"),
    ParameterSpec("trm_hazard", "1/d", 1.2e-3, 0.0, 0.1,
                  "assumed (order of the 10–20 % first-year non-relapse mortality after "
                  "myeloablative allo-HSCT for ALL in remission; no figure in "
                  "shared/reference): with trm_decay_days 100 the cumulative hazard is 0.12",
                  "transplant-related (GVHD, infection, organ toxicity) death hazard on the "
                  "day of allogeneic HSCT"),
    ParameterSpec("trm_decay_days", "d", 100.0, 1.0, 3650.0,
                  "assumed (non-relapse mortality concentrates in the first months)",
                  "e-folding time of the transplant-related death hazard after HSCT"),
))
INFECTION_STREAM = stream_id("trial.death.infection")
INFECTION_ANY_STREAM = stream_id("trial.infection.any")
TRM_STREAM = stream_id("trial.death.transplant")
DEATH_CAUSES = ("progression", "toxicity", "infection", "transplant")


def death_params(overrides: dict[str, float] | None = None) -> dict[str, float]:
    """Defaults updated with validated overrides."""
    return DEATH_PARAMS.resolve(overrides or {})


def baseline_map(age_y: np.ndarray) -> np.ndarray:
    """Age-normal MAP used by the model (``population.build``): 70 mmHg < 12 y, else 85."""
    return np.where(np.asarray(age_y) < 12, 70.0, 85.0)


def _first_run_end(mask: np.ndarray, length: int) -> np.ndarray:
    """Index (along the last axis) of the day that completes the first run of ``length``
    consecutive True values, or -1."""
    n, d = mask.shape
    run = np.zeros(n, dtype=np.int64)
    out = np.full(n, -1, dtype=np.int64)
    for k in range(d):
        run = np.where(mask[:, k], run + 1, 0)
        hit = (run >= length) & (out < 0)
        out[hit] = k
    return out


@dataclass
class Deaths:
    day: np.ndarray  # float, NaN = alive at end of follow-up
    cause: np.ndarray  # object: "" when alive


def decide_deaths(
    days: np.ndarray,
    patient_id: np.ndarray,
    seed: int,
    disease: str,
    age_y: np.ndarray,
    marrow_blast_pct: np.ndarray,
    tumour_volume_ml: np.ndarray,
    map_mmhg: np.ndarray,
    spo2_pct: np.ndarray,
    anc_per_ul: np.ndarray,
    igg_mg_dl: np.ndarray,
    params: dict[str, float] | None = None,
    hsct_day: np.ndarray | None = None,
) -> Deaths:
    """Death day and cause per patient from daily simulated readouts (patients × days).

    ``days`` is the day axis (only days ≥ 0 are considered). NaN readouts (a failed solve)
    never cause death. ``hsct_day`` (NaN: none) starts the transplant-related death hazard
    ``trm_hazard × exp(−(day − hsct_day) / trm_decay_days)``, drawn like infection death.
    """
    q = death_params(params)
    d = np.asarray(days)
    keep = d >= 0
    d = d[keep]
    n = len(patient_id)

    def cut(a: np.ndarray) -> np.ndarray:
        return np.asarray(a, dtype=np.float64)[:, keep]

    with np.errstate(invalid="ignore"):
        if disease == "b-all":
            burden = cut(marrow_blast_pct) >= q["lethal_blast_pct"]
        else:
            burden = cut(tumour_volume_ml) >= q["lethal_tumour_volume_ml"]
        collapse = (cut(map_mmhg) < q["toxicity_map_fraction"] * baseline_map(age_y)[:, None]) \
            | (cut(spo2_pct) < q["toxicity_spo2_pct"])
    h = infection_hazard(cut(anc_per_ul), cut(igg_mg_dl), q["infection_base_hazard"], q)
    u = uniform_np(seed, np.asarray(patient_id, dtype=np.uint64)[:, None], INFECTION_STREAM,
                   d.astype(np.uint64)[None, :])
    infected = u < -np.expm1(-h)
    candidates = np.full((n, len(DEATH_CAUSES)), np.inf)
    k_prog = _first_run_end(burden, int(q["lethal_burden_days"]))
    k_tox = _first_run_end(collapse, int(q["toxicity_days"]))
    k_inf = np.where(infected.any(axis=1), np.argmax(infected, axis=1), -1)
    k_trm = np.full(n, -1, dtype=np.int64)
    if hsct_day is not None:
        since = d[None, :] - np.asarray(hsct_day, dtype=np.float64)[:, None]
        with np.errstate(invalid="ignore"):
            h_trm = np.where(since >= 0, q["trm_hazard"]
                             * np.exp(-np.maximum(since, 0.0) / q["trm_decay_days"]), 0.0)
        h_trm = np.nan_to_num(h_trm)
        u_trm = uniform_np(seed, np.asarray(patient_id, dtype=np.uint64)[:, None], TRM_STREAM,
                           d.astype(np.uint64)[None, :])
        trm = u_trm < -np.expm1(-h_trm)
        k_trm = np.where(trm.any(axis=1), np.argmax(trm, axis=1), -1)
    for j, k in enumerate((k_prog, k_tox, k_inf, k_trm)):
        candidates[:, j] = np.where(k >= 0, d[np.maximum(k, 0)], np.inf)
    first = np.argmin(candidates, axis=1)
    day = candidates[np.arange(n), first]
    died = np.isfinite(day)
    cause = np.where(died, np.asarray(DEATH_CAUSES, dtype=object)[first], "")
    return Deaths(np.where(died, day, np.nan), cause.astype(object))


def infection_hazard(anc_per_ul: np.ndarray, igg_mg_dl: np.ndarray, base: float,
                     q: dict[str, float]) -> np.ndarray:
    """Daily hazard from simulated ANC and IgG (0 where either is missing)."""
    anc = np.asarray(anc_per_ul, dtype=np.float64)
    igg = np.asarray(igg_mg_dl, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        h = base * np.where(anc < 500.0, q["neutropenia_hazard_ratio"], 1.0)
        h = h * np.where(igg < q["igg_low_mg_dl"], q["hypogammaglobulinaemia_hazard_ratio"], 1.0)
    return np.where(np.isfinite(anc) & np.isfinite(igg), h, 0.0)


def infection_episodes(
    days: np.ndarray,
    patient_id: np.ndarray,
    seed: int,
    anc_per_ul: np.ndarray,
    igg_mg_dl: np.ndarray,
    last_day: np.ndarray,
    params: dict[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Number of infection episodes and the first episode's day, per patient.

    Days after ``last_day`` (death or end of follow-up) are not at risk; only days ≥ 0 count.
    """
    q = death_params(params)
    d = np.asarray(days)
    keep = d >= 0
    d = d[keep]
    h = infection_hazard(np.asarray(anc_per_ul)[:, keep], np.asarray(igg_mg_dl)[:, keep],
                         q["infection_any_base_hazard"], q)
    u = uniform_np(seed, np.asarray(patient_id, dtype=np.uint64)[:, None], INFECTION_ANY_STREAM,
                   d.astype(np.uint64)[None, :])
    onset = (u < -np.expm1(-h)) & (d[None, :] <= np.asarray(last_day, dtype=float)[:, None])
    n = onset.shape[0]
    count = np.zeros(n, dtype=np.int64)
    first = np.full(n, np.nan)
    free_from = np.full(n, -np.inf)
    gap = q["infection_episode_days"]
    for k, day in enumerate(d):  # loop over days (vectorised over patients)
        new = onset[:, k] & (day >= free_from)
        count += new
        first = np.where(new & np.isnan(first), float(day), first)
        free_from = np.where(new, day + gap, free_from)
    return count, first


# ------------------------------------------------------------------------------ HSCT
#: Default log10 tumour kill of myeloablative conditioning, at every site (assumed).
HSCT_LOG_KILL = ParameterSpec("hsct_log_kill", "log10", 3.0, 0.0, 12.0,
                              "assumed (myeloablative TBI-based conditioning, which also reaches "
                              "the CNS/testis sanctuary)",
                              "log10 reduction of every tumour clone, at every site, at HSCT")


class HsctProcedure:
    """Allogeneic HSCT consolidation as a day-start :class:`~cartsim.simulation.Procedure`.

    On ``day``, running patients whose simulated MRD fraction (tumour / (tumour + marrow))
    is below ``if_mrd_below`` are transplanted:

    * conditioning reduces every tumour clone by ``log_kill`` log10 at *every* site (marrow or
      nodes and the CNS/testis sanctuary);
    * if ``ablate_cart``, conditioning removes all (autologous) CAR-T cells;
    * the graft is given (dose route ``hsct_graft`` of the :mod:`cartsim.model.gvl` add-on):
      donor reconstitution then builds graft-versus-leukaemia killing of every clone.

    Transplant-related mortality is a death cause of the trial layer
    (:func:`decide_deaths`, ``trm_*`` parameters). The event ``hsct`` (flag) lands in the
    events table.
    """

    addons = ("gvl",)

    def __init__(self, day: int, if_mrd_below: float = 1e-4,
                 log_kill: float = HSCT_LOG_KILL.default, ablate_cart: bool = True,
                 graft: bool = True) -> None:
        self.day = int(day)
        self.if_mrd_below = float(if_mrd_below)
        self.log_kill = HSCT_LOG_KILL.validate(log_kill, "hsct.log_kill")
        self.ablate_cart = ablate_cart
        self.graft = graft
        self._graft_state: int | None = None

    def bind(self, model: Model) -> None:
        """Learn where the graft state sits in the composed model's state vector."""
        has = any(m.name == "gvl" for m in model.addons)
        self._graft_state = int(model.S["GRAFT"]) if has else None

    def eligible(self, y: np.ndarray, p: np.ndarray, status: np.ndarray) -> np.ndarray:
        tumour = np.maximum(y[:, list(CLONE_STATES)], 0.0).sum(axis=1)
        mrd = tumour / (tumour + p[:, P.marrow_cells])
        return (status == 0) & (mrd < self.if_mrd_below)

    def apply(
        self, day: int, y: np.ndarray, p: np.ndarray, status: np.ndarray
    ) -> dict[str, tuple[np.ndarray, str]]:
        n = y.shape[0]
        if day != self.day:
            return {"hsct": (np.zeros(n), "flag")}
        go = self.eligible(y, p, status)
        kill = 10.0 ** (-self.log_kill)
        for s in (*CLONE_STATES, int(S.TS)):
            y[go, s] *= kill
        if self.ablate_cart:
            for s in (*CART_BLOOD, *CART_TISSUE):
                y[go, s] = 0.0
        if self.graft and self._graft_state is not None:
            y[go, self._graft_state] = 1.0
        return {"hsct": (go.astype(np.float64), "flag")}
