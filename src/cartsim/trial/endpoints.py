"""Per-patient trial endpoints from simulated daily readouts and events.

Everything here is a pure function of arrays (patients × days), so the logic is unit-testable
on constructed trajectories without running the model. Endpoints come in families registered in
:data:`ENDPOINT_FAMILIES` (response, survival, toxicity, cytopenia, B-cell aplasia, kinetics,
procedures): each is one function of an :class:`EndpointContext` with its own ParameterSpecs,
returning its columns. :func:`compute_endpoints` runs them in order to assemble the per-patient
endpoint table of a chunk; :func:`daily_table` builds the small per-day table for plots.
Definitions are documented in ``docs/trial.md``. Adding a family is one function plus one
registry entry (and its test).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from cartsim.clinic import ctcae
from cartsim.clinic.crs import (
    astct_crs_course,
    crs_grade_all_scales,
    episode_findings,
    support_features,
    support_flags,
)
from cartsim.clinic.dosing import DEX_EQ_PER_MP_MG
from cartsim.clinic.findings import icans_findings
from cartsim.clinic.hematotox import (
    icaht_early_grade,
    icaht_late_grade,
    neutrophil_recovery_phenotype,
)
from cartsim.clinic.icans import astct_icans_grade
from cartsim.clinic.iechs import iechs_course
from cartsim.clinic.neurotox import NEURO_VERSIONS, ctcae_neuro_grade
from cartsim.clinic.protocol import HemodynamicConfig, hemodynamic_support, map_target
from cartsim.clinic.response import ball_response, lugano_ct_response, mrd_status
from cartsim.clinic.tls import (
    creatinine_component,
    creatinine_uln_mg_dl_default,
    laboratory_tls,
    tls_lab_criteria,
)
from cartsim.diseases import is_lymphoma
from cartsim.errors import UnknownNameError
from cartsim.params import ParameterSpec, ParameterTable
from cartsim.trial.outcomes import decide_deaths, infection_course

B_ALL_RANK = {"CR": 3, "CRi": 2, "NR": 1, "NE": 0}
LBCL_RANK = {"CR": 4, "PR": 3, "SD": 2, "PD": 1, "NE": 0}
RESPONSES = {"b-all": ("CR", "CRi"), "lbcl": ("CR", "PR"), "mcl": ("CR", "PR"),
             "fl": ("CR", "PR")}  # every lymphoma (cartsim.diseases.LYMPHOMAS): Lugano 2014


@dataclass
class Course:
    """Daily readouts of a group of patients: ``x[name]`` has shape (patients, days)."""

    patient_id: np.ndarray
    days: np.ndarray
    x: Mapping[str, np.ndarray]

    @classmethod
    def from_result(cls, res: Any) -> Course:
        """From a :class:`cartsim.simulation.SimulationResult`: its (patients × days) arrays
        when it has them (no long-table round trip), else its ``trajectories``."""
        if getattr(res, "daily", None) is not None:
            return cls(res.daily_ids, res.daily_days, dict(res.daily))
        return cls.from_trajectories(res.trajectories)

    @classmethod
    def from_trajectories(cls, traj: pd.DataFrame) -> Course:
        """From ``SimulationResult.trajectories`` (every patient has every day)."""
        t = traj.sort_values(["patient_id", "day"], kind="stable")
        pid = np.unique(t["patient_id"].to_numpy())
        days = np.unique(t["day"].to_numpy())
        n, d = pid.size, days.size
        if len(t) != n * d:
            raise ValueError("trajectories must hold every day for every patient")
        cols = [c for c in t.columns if c not in ("patient_id", "day")]
        return cls(pid, days, {c: t[c].to_numpy(dtype=np.float64).reshape(n, d) for c in cols})


def event_matrix(events: pd.DataFrame, patient_id: np.ndarray, days: np.ndarray,
                 name: str) -> np.ndarray | None:
    """Sum of event values per patient and day, or None when no such event exists."""
    return event_matrices(events, patient_id, days, (name,))[name]


def event_matrices(events: pd.DataFrame | None, patient_id: np.ndarray, days: np.ndarray,
                   names: tuple[str, ...]) -> dict[str, np.ndarray | None]:
    """:func:`event_matrix` for several events in one pass over the table (the event names
    are hashed once, not compared once per name; sums in row order, as ``np.add.at``)."""
    out: dict[str, np.ndarray | None] = dict.fromkeys(names)
    if events is None or events.empty:
        return out
    codes, uniques = pd.factorize(events["event"], sort=False)
    where = {str(u): k for k, u in enumerate(uniques)}
    wanted = [nm for nm in names if nm in where]
    if not wanted:
        return out
    epid = events["patient_id"].to_numpy()
    eday = events["day"].to_numpy()
    evalue = events["value"].to_numpy(dtype=np.float64)
    pi = np.searchsorted(patient_id, epid)
    di = np.searchsorted(days, eday)
    ok = (pi < patient_id.size) & (di < days.size)
    ok &= patient_id[np.minimum(pi, patient_id.size - 1)] == epid
    ok &= days[np.minimum(di, days.size - 1)] == eday
    flat = pi * days.size + di
    shape = (patient_id.size, days.size)
    for nm in wanted:
        sel = ok & (codes == where[nm])
        out[nm] = np.bincount(flat[sel], weights=evalue[sel],
                              minlength=shape[0] * shape[1]).reshape(shape)
    return out


# ------------------------------------------------------------------------- primitives
def first_day(mask: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Day of the first True per row (NaN if none)."""
    any_ = mask.any(axis=1)
    return np.where(any_, days[np.argmax(mask, axis=1)].astype(np.float64), np.nan)


def pk_metrics(days: np.ndarray, conc: np.ndarray, start: float = 0.0,
               end: float = 28.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cmax, Tmax (first day of the maximum) and trapezoidal AUC over days [start, end].

    NaN samples (after death or a failed solve) are left out; a row without samples gives NaN.
    """
    w = (days >= start) & (days <= end)
    d = days[w].astype(np.float64)
    c = conc[:, w]
    ok = np.isfinite(c)
    has = ok.any(axis=1)
    cf = np.where(ok, c, -np.inf)
    idx = np.argmax(cf, axis=1)
    cmax = np.where(has, cf[np.arange(c.shape[0]), idx], np.nan)
    tmax = np.where(has, d[idx], np.nan)
    auc = np.full(c.shape[0], np.nan)
    for i in np.flatnonzero(has):
        auc[i] = float(np.trapezoid(c[i, ok[i]], d[ok[i]])) if ok[i].sum() > 1 else 0.0
    return cmax, tmax, auc


def relapse_after_response(
    days: np.ndarray,
    blasts_pct: np.ndarray,
    cd19_negative_fraction: np.ndarray,
    response_day: np.ndarray,
    threshold_pct: float = 5.0,
    negative_if: float = 0.5,
    switch_fraction: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """B-ALL relapse: first day after the response day with marrow blasts > ``threshold_pct``;
    phenotype (:func:`relapse_phenotype`) read that day (``""`` without relapse)."""
    after = days[None, :] > np.nan_to_num(response_day, nan=np.inf)[:, None]
    with np.errstate(invalid="ignore"):
        rel = after & (blasts_pct > threshold_pct)
    day = first_day(rel, days)
    pheno = relapse_phenotype(days, day, cd19_negative_fraction, negative_if, switch_fraction)
    return day, np.where(np.isnan(day), "", pheno).astype(object)


def relapse_phenotype(days: np.ndarray, day: np.ndarray, cd19_negative_fraction: np.ndarray,
                      negative_if: float = 0.5,
                      switch_fraction: np.ndarray | None = None) -> np.ndarray:
    """The phenotype of the tumour on ``day`` (per patient): ``lineage switch`` when the
    lineage-switched (myeloid) share is ≥ ``negative_if``, else ``CD19-negative`` when the
    CD19-negative share is, else ``CD19-positive``; ``CD19-unknown`` while the site holds no
    tumour cell. A lineage switch is a CD19-negative relapse of another lineage (Lamble 2023
    Blood Adv counts the three patterns apart)."""
    k = np.searchsorted(days, np.nan_to_num(day, nan=days[0]))
    rows = np.arange(len(day))
    f = cd19_negative_fraction[rows, k]
    sw = (np.zeros(len(day)) if switch_fraction is None
          else np.nan_to_num(switch_fraction[rows, k], nan=0.0))
    return np.where(np.isnan(f), "CD19-unknown",
                    np.where(sw >= negative_if, "lineage switch",
                             np.where(f >= negative_if, "CD19-negative",
                                      "CD19-positive"))).astype(object)


def cns_relapse_after_response(days: np.ndarray, cns_cells: np.ndarray,
                               response_day: np.ndarray, positive_cells: float) -> np.ndarray:
    """B-ALL extramedullary relapse: first day after the response day with sanctuary
    (CNS/testis) tumour cells ≥ ``positive_cells`` (NaN if none)."""
    after = days[None, :] > np.nan_to_num(response_day, nan=np.inf)[:, None]
    with np.errstate(invalid="ignore"):
        return first_day(after & (cns_cells >= positive_cells), days)


def relapse_site(marrow_day: np.ndarray, cns_day: np.ndarray) -> np.ndarray:
    """Where a B-ALL relapse is first seen: ``marrow``, ``CNS`` (isolated sanctuary relapse),
    ``combined`` (both on the relapse day) or ``""`` without relapse."""
    m = np.nan_to_num(marrow_day, nan=np.inf)
    c = np.nan_to_num(cns_day, nan=np.inf)
    return np.select([np.isinf(m) & np.isinf(c), m < c, c < m], ["", "marrow", "CNS"],
                     "combined").astype(object)


def lbcl_progression(days: np.ndarray, volume_ml: np.ndarray, factor: float = 1.5,
                     min_volume_ml: float = 1.0) -> np.ndarray:
    """First day ≥ 1 on which the tumour is ≥ ``factor`` × its nadir since day 0 (and at least
    ``min_volume_ml``): Lugano's "≥ 50 % increase from nadir" applied to simulated volume."""
    post = days >= 0
    v = np.where(np.isfinite(volume_ml[:, post]), volume_ml[:, post], np.inf)
    nadir = np.minimum.accumulate(v, axis=1)
    prev = np.concatenate([np.full((v.shape[0], 1), np.inf), nadir[:, :-1]], axis=1)
    prog = (v >= factor * prev) & (v >= min_volume_ml) & np.isfinite(v) & (days[post] >= 1)
    return first_day(prog, days[post])


def time_to_event(event_day: np.ndarray, censor_day: np.ndarray,
                  origin: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(time, event flag): the event if it happened by ``censor_day``, else censored there.

    Rows with NaN origin (e.g. non-responders for DOR) get NaN time and event 0.
    """
    ev = np.isfinite(event_day) & (np.nan_to_num(event_day, nan=np.inf) <= censor_day)
    end = np.where(ev, event_day, censor_day)
    t = end - origin
    org = np.broadcast_to(np.asarray(origin, dtype=np.float64), t.shape)
    t = np.where(np.isnan(org), np.nan, t)
    return t, (ev & ~np.isnan(org)).astype(np.int8)


def _first_episode(on: np.ndarray, resolution_days: int, past_end_resolves: bool
                   ) -> tuple[np.ndarray, np.ndarray, int]:
    """Start and end column of each row's first episode (``on`` True on graded days): it ends
    on the first day after its start that opens ``k`` = ``resolution_days`` consecutive days
    at grade 0; days past follow-up count as grade 0 when ``past_end_resolves``, else as
    graded. Rows without an episode, or whose episode does not end, get the column count."""
    n, t = on.shape
    k = max(int(resolution_days), 1)
    # off_run[i, j]: grade 0 on days j .. j+k-1
    tail = np.zeros if past_end_resolves else np.ones
    pad = np.concatenate([on, tail((n, k), dtype=bool)], axis=1).astype(np.int64)
    c = np.concatenate([np.zeros((n, 1), dtype=np.int64), np.cumsum(pad, axis=1)], axis=1)
    off_run = (c[:, k:k + t] - c[:, :t]) == 0
    cols = np.arange(t)[None, :]
    start = np.where(on.any(axis=1), np.argmax(on, axis=1), t)[:, None]
    end = np.where((cols > start) & off_run, cols, t).min(axis=1)[:, None]
    return start, end, k


def episode_stats(grade: np.ndarray, days: np.ndarray, resolution_days: int = 2
                  ) -> tuple[np.ndarray, ...]:
    """Max grade, onset day (first grade ≥ 1) and duration of the first episode: the days
    graded ≥ 1 from onset until it resolves (``resolution_days`` consecutive days at grade 0),
    so a low-grade fever months later (progressing disease still engaging CAR-T) does not
    lengthen the acute episode."""
    g = np.nan_to_num(grade, nan=0.0)
    on = g >= 1
    start, end, _ = _first_episode(on, resolution_days, past_end_resolves=True)
    cols = np.arange(on.shape[1])[None, :]
    duration = (on & (cols >= start) & (cols < end)).sum(axis=1).astype(np.float64)
    return g.max(axis=1).astype(np.int8), first_day(on, days), duration


def episode_resolved(grade: np.ndarray, alive: np.ndarray, resolution_days: int = 2
                     ) -> np.ndarray:
    """1 where the first episode (grade ≥ 1) ended while the patient was alive: the
    ``resolution_days`` consecutive days at grade 0 that end it (as :func:`episode_stats`)
    were lived, not days after death or past follow-up; 0 otherwise, and for patients
    without an episode."""
    on = np.nan_to_num(grade, nan=0.0) >= 1
    n, t = on.shape
    _, end, k = _first_episode(on, resolution_days, past_end_resolves=False)
    end = end[:, 0]
    last = np.minimum(end + k - 1, t - 1)
    ok = (end < t) & alive[np.arange(n), last] & on.any(axis=1)
    return ok.astype(np.int8)


def b_cell_aplasia(days: np.ndarray, b_cells: np.ndarray, baseline: np.ndarray,
                   last_day: np.ndarray, fraction: float = 0.1, recovery_from_day: float = 0.0
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """B-cell aplasia onset (first day ≥ 0 below ``fraction`` × baseline), duration until the
    first recovery day (B cells back at or above the threshold on a day after the onset and
    not before ``recovery_from_day``), and ``ongoing`` (1 = still aplastic at last follow-up:
    duration censored at ``last_day``)."""
    post = days >= 0
    d = days[post]
    b = b_cells[:, post]
    with np.errstate(invalid="ignore"):
        low = b < fraction * baseline[:, None]
    onset = first_day(low, d)
    with np.errstate(invalid="ignore"):
        rec = ((d[None, :] > np.nan_to_num(onset, nan=np.inf)[:, None])
               & (d[None, :] >= recovery_from_day) & ~low & np.isfinite(b))
    recovery = first_day(rec, d)
    ongoing = np.isfinite(onset) & ~(np.nan_to_num(recovery, nan=np.inf) <= last_day)
    dur = np.where(ongoing, last_day - onset, recovery - onset)
    return onset, dur, ongoing.astype(np.int8)


def best_of(responses: Sequence[np.ndarray], disease: str) -> np.ndarray:
    rank = B_ALL_RANK if disease == "b-all" else LBCL_RANK
    inv = {v: k for k, v in rank.items()}
    r = np.max(np.stack([np.vectorize(rank.__getitem__, otypes=[int])(x) for x in responses]),
               axis=0)
    return np.array([inv[int(v)] for v in r], dtype=object)


# ------------------------------------------------------------------ family parameters
RESPONSE_PARAMS = ParameterTable((
    ParameterSpec("lbcl_cr_volume_ml", "mL", 0.1, 0.0, 1e3,
                  "assumed from PET physics: a Lugano 2014 CR needs every lesion at Deauville "
                  "≤ 3 (uptake ≤ liver); the partial-volume effect lowers the apparent SUV of "
                  "a lesion below ≈ 2-3× the scanner's 4-6 mm resolution (Soret 2007 J Nucl "
                  "Med 48:932), so an avid DLBCL residue (uptake several-fold the liver's, "
                  "assumed) stays above liver down to ≈ 6 mm (0.1 mL ≈ 10⁸ cells; the size "
                  "is this reasoning, not a measurement) and vanishes below it; 0.25 mL "
                  "(sessions 12-26, an 8 mm sphere PET still sees) called 195 of 656 ZUMA-1 "
                  "complete responders CR whose residue of 0.001-0.25 mL regrew in 94 % "
                  "(docs/validation.md 'Session 27'); 1 mL before session 12",
                  "LBCL tumour volume below which the response is complete"),
    ParameterSpec("progression_factor", "× nadir", 1.5, 1.0, 10.0,
                  "Lugano 2014 (≥ 50 % increase from nadir)",
                  "LBCL: tumour size relative to its nadir that counts as progression"),
    ParameterSpec("progression_min_volume_ml", "mL", 1.0, 0.0, 1e3, "assumed",
                  "LBCL: progression also needs at least this tumour volume"),
    ParameterSpec("response_window_day", "d", 91.0, 1.0, 3650.0,
                  "ELIANA/ZUMA: best response within 3 months",
                  "last assessment day at which a first response still counts"),
    ParameterSpec("cns_positive_cells", "cells", 5e8, 0.0, 1e12,
                  "assumed (half the overt CNS/testicular disease that seeds the sanctuary, "
                  "tumour.cns_overt_cells = 1e9, so that 94 % of patients coded with overt "
                  "disease are detected at baseline and the occult seeding, cns_seed_frac, "
                  "mostly is not; CSF cytology and testicular examination see bulk sanctuary "
                  "disease only; 1e8 before session 13)",
                  "B-ALL: sanctuary (CNS/testis) tumour cells at or above which extramedullary "
                  "disease is detected; CR/CRi needs it absent, and its return after a "
                  "response is a relapse"),
))
SURVIVAL_PARAMS = ParameterTable((
    ParameterSpec("relapse_blast_pct", "%", 5.0, 0.0, 100.0,
                  "clinical standard (marrow blasts > 5 % after CR is relapse)",
                  "B-ALL marrow blasts above which a responder has relapsed"),
    ParameterSpec("cd19_negative_relapse_fraction", "fraction", 0.5, 0.0, 1.0, "assumed",
                  "CD19-negative share of the tumour at relapse that makes it CD19-negative "
                  "(and lineage-switched share that makes it a lineage switch)"),
))
TOXICITY_PARAMS = ParameterTable((
    ParameterSpec("fever_c", "°C", 38.0, 37.0, 41.0, "ASTCT 2019 (fever ≥ 38.0 °C)",
                  "temperature that counts as fever for CRS grading"),
    ParameterSpec("missing_temperature_c", "°C", 36.8, 35.0, 37.9, "assumed (afebrile)",
                  "temperature assumed for days without a value"),
    ParameterSpec("episode_resolution_days", "d", 2.0, 1.0, 30.0,
                  "assumed (resolution = no CRS/ICANS findings on consecutive days)",
                  "consecutive days at grade 0 that end a CRS or ICANS episode (its duration "
                  "is counted from onset to there)"),
    ParameterSpec("child_below_age_y", "years", 12.0, 0.0, 18.0,
                  "ASTCT 2019 (CAPD below 12 years, ICE from 12)",
                  "age below which ICANS is graded with CAPD"),
    ParameterSpec("spo2_low_flow_pct", "%", 92.0, 50.0, 100.0, "assumed SpO2 ladder",
                  "no-protocol arms: SpO2 below which low-flow oxygen is given"),
    ParameterSpec("spo2_face_mask_pct", "%", 88.0, 50.0, 100.0, "assumed SpO2 ladder",
                  "no-protocol arms: SpO2 below which a face mask is used"),
    ParameterSpec("spo2_ventilation_pct", "%", 68.0, 40.0, 100.0,
                  "assumed SpO2 ladder (the default protocol's: beyond a 24-point deficit "
                  "below its 92 % target; 80 % while the readout's floor was 74 %)",
                  "no-protocol arms: SpO2 below which mechanical ventilation is used"),
    ParameterSpec("norepinephrine_ug_min_per_mmhg", "µg/min per mmHg", 2.0, 0.0, 10.0,
                  "assumed, from vasopressor practice in distributive shock: norepinephrine "
                  "is started at 0.1-0.5 µg/kg/min (7-35 µg/min at 70 kg) and titrated to a "
                  "MAP of 65; taking that to answer a MAP of 50-60 mmHg (the assumed part) "
                  "gives about 2 µg/min per mmHg of deficit, so the 20 µg/min "
                  "'high dose' of Penn/Lee/CARTOX (§1.6) falls at a 10-mmHg deficit (a "
                  "second agent at 20 mmHg, 40 µg/min ≈ 0.6 µg/kg/min). Session 20; before "
                  "it 1, which put the high dose at the second agent's 20 mmHg: "
                  "ELIANA+ENSIGN high-dose vasopressors among CRS 6.8 % against 31 "
                  "(docs/validation.md 'Session 20')",
                  "norepinephrine-equivalent dose per mmHg of MAP deficit below target, for the "
                  "older scales' high-dose vasopressor criterion"),
))
CYTOPENIA_PARAMS = ParameterTable((
    ParameterSpec("severe_neutropenia_per_ul", "cells/µL", 500.0, 0.0, 2000.0,
                  "CTCAE grade 4 neutropenia (ANC < 500/µL)",
                  "ANC below which a day counts towards anc_below_500_days"),
))
HLH_TLS_PARAMS = ParameterTable((
    ParameterSpec("ferritin_uln_ng_ml", "ng/mL", 400.0, 10.0, 5000.0,
                  "adult male ULN ≈ 300–400 ng/mL", "ferritin ULN of the IEC-HS criterion "
                  "(ferritin > 2 × max(ULN, value on day 0))"),
    ParameterSpec("hypofibrinogenemia_mg_dl", "mg/dL", 150.0, 10.0, 400.0,
                  "Hines 2023 (IEC-HS: fibrinogen < 150 mg/dL)",
                  "fibrinogen below which a day counts as hypofibrinogenaemia (IEC-HS finding; "
                  "cryoprecipitate indicated, IEC-HS grade 2)"),
    ParameterSpec("iechs_bleeding_fibrinogen_mg_dl", "mg/dL", 100.0, 10.0, 400.0,
                  "assumed [I]: bleeding is not modelled; fibrinogen < 100 mg/dL with platelets "
                  "< 20,000/µL stands for coagulopathy with bleeding (IEC-HS grade 3)",
                  "IEC-HS grade 3: fibrinogen limit of the bleeding proxy"),
    ParameterSpec("iechs_bleeding_platelets_per_ul", "cells/µL", 20_000.0, 0.0, 2e5,
                  "assumed [I] (see iechs_bleeding_fibrinogen_mg_dl)",
                  "IEC-HS grade 3: platelet limit of the bleeding proxy"),
    ParameterSpec("cytopenia_lookback_days", "d", 7.0, 1.0, 60.0, "assumed [I]",
                  "IEC-HS 'new or worsening cytopenia': neutrophil or platelet CTCAE grade ≥ 3 "
                  "after a day at grade ≤ 2 within this many previous days"),
    ParameterSpec("tls_window_first_day", "d", -3.0, -5.0, 0.0,
                  "Cairo & Bishop 2004 (3 days before therapy)",
                  "first day (from infusion) of the laboratory-TLS window"),
    ParameterSpec("tls_window_last_day", "d", 14.0, 1.0, 60.0,
                  "Cairo & Bishop 2004 use 7 days after chemotherapy starts; CAR-T killing "
                  "peaks with expansion (days 7–14), so the window runs to day 14 [I]",
                  "last day (from infusion) of the laboratory-TLS window"),
))
BCA_PARAMS = ParameterTable((
    ParameterSpec("bca_fraction_of_baseline", "fraction", 0.1, 0.0, 1.0, "assumed",
                  "B-cell aplasia: blood B cells below this fraction of the day −5 value"),
    ParameterSpec("bca_recovery_from_day", "d", 28.0, 0.0, 365.0,
                  "assumed: trials assess B-cell recovery at their follow-up visits from the "
                  "day-28 assessment on, not daily during the expansion; session 29: with the "
                  "B-progenitor output recovering in "
                  "days (model/bcells.py marrow_recovery_B) the lymphodepletion nadir's rebound "
                  "before the CAR-T peak (B cells back above the threshold around day 10, then "
                  "cleared) counted as the end of aplasia, and ELIANA responders' median "
                  "aplasia fell from 1,158 to 10 days; 0 = recovery counts from the day after "
                  "onset (the model before)",
                  "first day (from infusion) on which B cells back above the threshold end "
                  "B-cell aplasia"),
))
KINETICS_PARAMS = ParameterTable((
    ParameterSpec("pk_start_day", "d", 0.0, 0.0, 365.0, "tisagenlecleucel label (AUC0–28d)",
                  "first day of the CAR-T exposure window"),
    ParameterSpec("pk_end_day", "d", 28.0, 1.0, 365.0, "tisagenlecleucel label (AUC0–28d)",
                  "last day of the CAR-T exposure window (Cmax, Tmax, AUC)"),
))

# ----------------------------------------------------------------------------- assembly
def _at(course: Course, name: str, day: int) -> np.ndarray:
    k = int(np.searchsorted(course.days, day))
    return course.x[name][:, k]


def _physiology_support(x: Mapping[str, np.ndarray], age: np.ndarray,
                        events: dict[str, np.ndarray | None], q: dict[str, float]
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(hypotension, vasopressor count, vasopressin, oxygen device code) per patient-day:
    the protocol's own events when recorded, else what the clinic's reference haemodynamic
    rule (:class:`cartsim.clinic.protocol.HemodynamicConfig` defaults, which the shipped
    default protocol also uses) would give for the simulated MAP, and an SpO2 ladder (< 92 %
    low-flow cannula, < 88 % face mask, < 80 % mechanical ventilation; TOXICITY_PARAMS)."""
    mp = np.nan_to_num(x["map_mmhg"], nan=200.0)
    ages = np.broadcast_to(np.asarray(age, dtype=float)[:, None], mp.shape)
    _, vp_rule, vpn_rule, hyp = hemodynamic_support(HemodynamicConfig(), mp, ages,
                                                    np.ones_like(mp))
    n_vp = events.get("vasopressors")
    if n_vp is None:
        n_vp = vp_rule
    vpn = events.get("vasopressin")
    vpn = vpn_rule if vpn is None else vpn > 0
    dev = events.get("oxygen_device")
    if dev is None:
        s = np.nan_to_num(x["spo2_pct"], nan=100.0)
        dev = np.select([s < q["spo2_ventilation_pct"], s < q["spo2_face_mask_pct"],
                         s < q["spo2_low_flow_pct"]], [9, 3, 1], 0)
    return hyp, np.asarray(n_vp, dtype=int), np.asarray(vpn, dtype=bool), \
        np.asarray(dev, dtype=int)


class _Derived(Mapping[str, np.ndarray]):
    """A read-only view of ``source`` whose value for ``key`` is ``fn(key, source[key])``,
    computed on first access and kept: the endpoint families read a handful of the ~40 daily
    readouts, so masking or slicing all of them up front was wasted work (session 24)."""

    def __init__(self, source: Mapping[str, np.ndarray],
                 fn: Callable[[str, np.ndarray], np.ndarray]) -> None:
        self._source, self._fn = source, fn
        self._done: dict[str, np.ndarray] = {}

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._done:
            self._done[key] = self._fn(key, self._source[key])
        return self._done[key]

    def __contains__(self, key: object) -> bool:
        return key in self._source

    def __iter__(self) -> Iterator[str]:
        return iter(self._source)

    def __len__(self) -> int:
        return len(self._source)


# ------------------------------------------------------------------------ the registry
@dataclass
class EndpointContext:
    """What every endpoint family sees: the chunk's course and events, the trial settings, the
    resolved endpoint parameters ``q`` and shared per-patient quantities computed once
    (follow-up, deaths, the alive mask) or by an earlier family (``shared``)."""

    course: Course
    events: pd.DataFrame
    covariates: dict[str, np.ndarray]
    disease: str
    seed: int
    follow_up_days: int
    assessment_days: Sequence[int]
    crs_scale: str
    protocol_grades: bool
    death_overrides: dict[str, float] | None
    q: dict[str, float]
    shared: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.course.patient_id.size)


@dataclass(frozen=True)
class EndpointFamily:
    """One family of endpoints: ``compute(ctx)`` returns its columns (in order)."""

    name: str
    compute: Callable[[EndpointContext], dict[str, Any]]
    params: ParameterTable
    description: str


def _follow_up(ctx: EndpointContext) -> None:
    """Follow-up, deaths and the alive mask shared by every family."""
    c, x = ctx.course, ctx.course.x
    days, pid = c.days, c.patient_id
    valid = np.isfinite(x["cart_cells_per_ul"]) & (days[None, :] <= ctx.follow_up_days)
    last_valid = np.where(valid.any(axis=1),
                          days[days.size - 1 - np.argmax(valid[:, ::-1], axis=1)], 0).astype(float)
    dpost = days[days >= 0]

    def event_day(name: str, k: int = 1) -> np.ndarray | None:
        """The day of each patient's k-th event ``name`` from day 0 (NaN: fewer)."""
        m = _post_events(ctx)[name]
        if m is None:
            return None
        reached = np.cumsum(m > 0, axis=1) >= k
        return np.where(reached.any(axis=1), dpost[np.argmax(reached, axis=1)],
                        np.nan).astype(float)

    # Lugano progression on the simulated volume (the response family's rule; death only
    # truncates the series, so the first progression before death is the same)
    prog = (lbcl_progression(days, x["tumour_cells"] / 1e9, ctx.q["progression_factor"],
                             ctx.q["progression_min_volume_ml"])
            if is_lymphoma(ctx.disease) else None)
    deaths = decide_deaths(days, pid, ctx.seed, ctx.disease, ctx.covariates["age_y"],
                           x["marrow_blast_pct"], x["tumour_cells"] / 1e9, x["map_mmhg"],
                           x["spo2_pct"], x["anc_per_ul"], x["igg_mg_dl"], ctx.death_overrides,
                           hsct_day=event_day("hsct"), asct_day=event_day("asct"),
                           progression_day=prog,
                           prior_hsct=ctx.covariates.get("prior_hsct"),
                           hsct_day2=event_day("hsct", 2))
    death_day = np.where(deaths.day <= last_valid, deaths.day, np.nan)
    last_day = np.fmin(death_day, last_valid)
    alive = days[None, :] <= last_day[:, None]
    ctx.shared.update(
        death_day=death_day, cause=np.where(np.isfinite(death_day), deaths.cause, ""),
        last_day=last_day, alive=alive,
        xm=_Derived(x, lambda _k, v: np.where(alive, v, np.nan)))


def response_endpoints(ctx: EndpointContext) -> dict[str, Any]:
    """Response at each assessment (B-ALL: CR/CRi/NR with MRD; LBCL: Lugano from SPD), best
    response, responder, CR, response day, MRD-negative remission."""
    course, q, n = ctx.course, ctx.q, ctx.n
    days = course.days
    last_day, alive = ctx.shared["last_day"], ctx.shared["alive"]
    vol = course.x["tumour_cells"] / 1e9
    out: dict[str, Any] = {}
    resp_cols: list[np.ndarray] = []
    response_day = np.full(n, np.nan)
    mrd_neg_remission = np.zeros(n, dtype=np.int8)
    responses = RESPONSES[ctx.disease]
    prog_day = np.full(n, np.nan)
    if is_lymphoma(ctx.disease):  # LBCL, MCL, FL: Lugano 2014 from the SPD readout
        prog_day = lbcl_progression(days, np.where(alive, vol, np.nan), q["progression_factor"],
                                    q["progression_min_volume_ml"])
        base_spd = np.nan_to_num(_at(course, "spd_cm2", int(days[0])), nan=0.0)
    has_cns = "cns_tumour_cells" in course.x  # absent in courses built without the readout
    if ctx.disease == "b-all" and has_cns:
        out["cns_positive_d0"] = (np.nan_to_num(_at(course, "cns_tumour_cells", int(days[0])))
                                  >= q["cns_positive_cells"]).astype(np.int8)
    for a in ctx.assessment_days:
        evaluable = np.nan_to_num(last_day, nan=-1) >= a
        if ctx.disease == "b-all":
            r = np.asarray(ball_response(np.nan_to_num(np.clip(_at(course, "marrow_blast_pct", a),
                                                               0, 100)),
                                         np.nan_to_num(_at(course, "anc_per_ul", a)),
                                         np.nan_to_num(_at(course, "platelets_per_ul", a))),
                           dtype=object)
            m = np.asarray(mrd_status(np.clip(_at(course, "mrd_fraction", a) * 100, 0, 100)),
                           dtype=object)
            m = np.where(evaluable, m, "not_done")
            out[f"mrd_d{a}"] = m
            # extramedullary (CNS/testis) disease: a marrow CR with detectable sanctuary
            # disease is no remission (CNS-1 and normal testes are part of CR)
            cns_pos = (np.nan_to_num(_at(course, "cns_tumour_cells", a))
                       >= q["cns_positive_cells"]) if has_cns else np.zeros(n, dtype=bool)
            out[f"cns_d{a}"] = np.where(evaluable, np.where(cns_pos, "positive", "negative"),
                                        "not_done").astype(object)
            r = np.where(cns_pos & np.isin(r, responses), "NR", r).astype(object)
            mrd_neg_remission |= (evaluable & np.isin(r, responses) & (m == "negative")
                                  ).astype(np.int8)
        else:
            cur = np.clip(np.nan_to_num(_at(course, "spd_cm2", a)), 0, 1e4)
            r = np.asarray(lugano_ct_response(
                np.clip(base_spd, 1e-9, 1e4), cur,
                progression=np.nan_to_num(prog_day, nan=np.inf) <= a,
                all_nodes_normal=np.nan_to_num(_at(course, "tumour_cells", a)) / 1e9
                < q["lbcl_cr_volume_ml"]), dtype=object)
        r = np.where(evaluable, r, "NE").astype(object)
        out[f"response_d{a}"] = r
        resp_cols.append(r)
        first = np.isnan(response_day) & np.isin(r, responses) & (a <= q["response_window_day"])
        response_day = np.where(first, float(a), response_day)
    best = best_of(resp_cols, ctx.disease)
    out["best_response"] = best
    out["responder"] = np.isfinite(response_day).astype(np.int8)
    out["complete_response"] = np.isin(best, ["CR"]).astype(np.int8)
    out["response_day"] = response_day
    if ctx.disease == "b-all":
        out["mrd_negative_remission"] = mrd_neg_remission
        if has_cns:
            # CNS remission: overt sanctuary disease at baseline, none at an assessment
            # within the response window
            cleared = np.zeros(n, dtype=bool)
            for a in ctx.assessment_days:
                if a <= q["response_window_day"]:
                    cleared |= out[f"cns_d{a}"] == "negative"
            out["cns_remission"] = (cleared & (out["cns_positive_d0"] == 1)).astype(np.int8)
    ctx.shared.update(response_day=response_day, prog_day=prog_day)
    return out


def survival_endpoints(ctx: EndpointContext) -> dict[str, Any]:
    """Relapse/progression (with CD19 phenotype), death and its cause, infections, and the
    time-to-event endpoints EFS, OS, PFS, RFS, DOR, DSS (origin: infusion, day 0)."""
    course, q, n = ctx.course, ctx.q, ctx.n
    days, pid, x = course.days, course.patient_id, course.x
    xm, last_day = ctx.shared["xm"], ctx.shared["last_day"]
    death_day, cause = ctx.shared["death_day"], ctx.shared["cause"]
    response_day, prog_day = ctx.shared["response_day"], ctx.shared["prog_day"]
    out: dict[str, Any] = {}
    if ctx.disease == "b-all":
        switch = xm["lineage_switch_fraction"] if "lineage_switch_fraction" in xm else None
        marrow_day, pheno = relapse_after_response(
            days, xm["marrow_blast_pct"], xm["cd19_negative_tumour_fraction"], response_day,
            q["relapse_blast_pct"], q["cd19_negative_relapse_fraction"], switch)
        cns_day = (cns_relapse_after_response(days, xm["cns_tumour_cells"], response_day,
                                              ctx.q["cns_positive_cells"])
                   if "cns_tumour_cells" in xm else np.full(n, np.nan))
        rel_day = np.fmin(marrow_day, cns_day)
        out["relapse_site"] = relapse_site(marrow_day, cns_day)
        # an isolated sanctuary relapse: phenotype read in the marrow that day (as the clinic
        # does; "CD19-unknown" while the marrow holds no tumour cell)
        iso = np.isfinite(cns_day) & ~(marrow_day <= cns_day)
        pheno = np.where(iso, relapse_phenotype(days, rel_day,
                                                xm["cd19_negative_tumour_fraction"],
                                                q["cd19_negative_relapse_fraction"], switch),
                         pheno).astype(object)
        prog_day = rel_day
    else:
        rel_day = np.where(np.isfinite(response_day) & (prog_day > response_day), prog_day,
                           np.nan)
        pheno = np.where(np.isnan(rel_day), "",
                         relapse_phenotype(days, prog_day, xm["cd19_negative_tumour_fraction"],
                                           q["cd19_negative_relapse_fraction"])).astype(object)
    out["relapse"] = np.isfinite(rel_day).astype(np.int8)
    out["relapse_day"] = rel_day
    out["relapse_phenotype"] = pheno
    out["progression_day"] = prog_day
    out["death"] = np.isfinite(death_day).astype(np.int8)
    out["death_day"] = death_day
    out["death_cause"] = cause.astype(object)
    out["last_day"] = last_day
    ev = _post_events(ctx)
    ster = None
    if ev["dexamethasone"] is not None or ev["methylprednisolone"] is not None:
        zero = np.zeros((n, int((days >= 0).sum())))
        dex = zero if ev["dexamethasone"] is None else np.nan_to_num(ev["dexamethasone"])
        mp = zero if ev["methylprednisolone"] is None else np.nan_to_num(ev["methylprednisolone"])
        ster = dex + mp * DEX_EQ_PER_MP_MG
    inf = infection_course(days, pid, ctx.seed, x["anc_per_ul"], x["igg_mg_dl"], last_day,
                           ctx.death_overrides, steroid_dex_eq_mg=ster,
                           crs_grade=ev["crs_grade"], t_cells_per_ul=x.get("t_cells_per_ul"))
    out["infections"] = inf.count
    out["first_infection_day"] = inf.first_day
    out["infections_severe"] = inf.severe
    out["first_severe_infection_day"] = inf.first_severe_day
    for (a, b), c in (inf.window_count or {}).items():
        out[f"infections_d{a}_{b}"] = c
        out[f"infection_days_at_risk_d{a}_{b}"] = (inf.window_days or {})[(a, b)]
    window = [a for a in ctx.assessment_days if a <= q["response_window_day"]] \
        or [ctx.assessment_days[0]]
    failure_day = np.where(np.isfinite(response_day), np.nan, float(window[-1]))
    efs_event_day = np.fmin(np.fmin(rel_day, death_day), failure_day)
    pfs_event_day = np.fmin(prog_day, death_day)
    out["efs_days"], out["efs_event"] = time_to_event(efs_event_day, last_day)
    out["os_days"], out["os_event"] = time_to_event(death_day, last_day)
    out["pfs_days"], out["pfs_event"] = time_to_event(pfs_event_day, last_day)
    out["rfs_days"], out["rfs_event"] = time_to_event(np.fmin(rel_day, death_day), last_day,
                                                      response_day)
    # survival after relapse (origin: the relapse day; NaN for patients who did not relapse)
    out["prs_days"], out["prs_event"] = time_to_event(death_day, last_day, rel_day)
    prog_death = np.where(cause == "progression", death_day, np.nan)
    out["dor_days"], out["dor_event"] = time_to_event(np.fmin(rel_day, prog_death), last_day,
                                                      response_day)
    # disease-specific survival: death of the disease; deaths of other causes (toxicity,
    # infection, transplant) censor on their day (last_day is the death day)
    out["dss_days"], out["dss_event"] = time_to_event(prog_death, last_day)
    return out


_EVENTS = ("crs_grade", "icans_grade", "tocilizumab", "dexamethasone", "methylprednisolone",
           "vasopressors", "vasopressin", "oxygen_device", "hsct", "tumour_extinct", "asct",
           "cart_reinfusion", "salvage", "fluid_bolus_ml", "gcsf", "ivig", "siltuximab",
           "platelet_transfusion", "rbc_transfusion")


def _post_events(ctx: EndpointContext) -> dict[str, np.ndarray | None]:
    """Event matrices from day 0 on (computed once, shared by the families that need them)."""
    if "events_post" not in ctx.shared:
        c = ctx.course
        post = c.days >= 0
        mats = event_matrices(ctx.events, c.patient_id, c.days, _EVENTS)
        ctx.shared["events_post"] = {
            k: (None if (m := mats[k]) is None else m[:, post]) for k in _EVENTS}
    return ctx.shared["events_post"]


def _crs_bedside_findings(ctx: EndpointContext, xp: Mapping[str, np.ndarray],
                          crs_day: np.ndarray, temp: np.ndarray, iv_anticytokine: np.ndarray
                          ) -> dict[str, np.ndarray]:
    """The findings besides fever, blood pressure and oxygen that the older CRS scales read
    (Lee 2014, Penn, CARTOX, CTCAE v4.03), on the days of a CRS episode (``crs_day``, the
    bedside grade > 0): the CTCAE "creatinine increased" grade of the simulated creatinine
    against the age's ULN and the pre-lymphodepletion value (the kidney is the only organ the
    model has; no transaminases), fibrinogen below ``hypofibrinogenemia_mg_dl``, febrile
    neutropenia or an IV anticytokine/steroid that day (:func:`clinic.crs.episode_findings`,
    the rule real records are graded with). Empty when the course has no chemistry (courses
    built without the lab layer)."""
    x = ctx.course.x
    if "creatinine_mg_dl" not in x or "fibrinogen_mg_dl" not in x:
        return {}
    age = np.asarray(ctx.covariates["age_y"], dtype=float)
    cr = np.clip(xp["creatinine_mg_dl"], 0.0, 100.0)  # a runaway value grades 4, not an error
    cr0 = ctx.shared["xm"]["creatinine_mg_dl"][:, 0]
    uln = np.asarray(creatinine_uln_mg_dl_default(age), dtype=float)
    creat = np.asarray(ctcae.creatinine_increased_grade(
        cr, uln[:, None], np.where(np.isfinite(cr0) & (cr0 > 0), cr0, np.nan)[:, None]))
    return episode_findings(crs_day, creat, xp["fibrinogen_mg_dl"], xp["anc_per_ul"], temp,
                            iv_anticytokine,
                            fibrinogen_limit_mg_dl=ctx.q["hypofibrinogenemia_mg_dl"])


def toxicity_endpoints(ctx: EndpointContext) -> dict[str, Any]:
    """CRS and ICANS (protocol grades, or graded from physiology when no protocol manages the
    arm), CRS on the trial's scale, tocilizumab and steroid exposure, haemodynamic and
    respiratory support."""
    course, q, n = ctx.course, ctx.q, ctx.n
    age = ctx.covariates["age_y"]
    post = course.days >= 0
    dpost = course.days[post]
    ev = _post_events(ctx)
    xp = _Derived(ctx.shared["xm"], lambda _k, v: v[:, post])
    alive_p = ctx.shared["alive"][:, post]
    hyp, n_vp, vpn, dev = _physiology_support(xp, age, ev, q)
    toci = ev["tocilizumab"] if ev["tocilizumab"] is not None else np.zeros_like(hyp, float)
    dex = ev["dexamethasone"] if ev["dexamethasone"] is not None else np.zeros_like(hyp, float)
    mp = ev["methylprednisolone"] if ev["methylprednisolone"] is not None \
        else np.zeros_like(hyp, float)
    anti = (toci > 0) | (dex > 0) | (mp > 0)
    temp = np.nan_to_num(xp["temperature_c"], nan=q["missing_temperature_c"])
    fever = (temp >= q["fever_c"]) & alive_p
    hyp &= alive_p
    n_vp = np.where(alive_p, n_vp, 0)
    vpn &= alive_p
    dev = np.where(alive_p, np.clip(dev, 0, 9), 0)
    if ctx.protocol_grades:
        crs = np.where(alive_p, ev["crs_grade"] if ev["crs_grade"] is not None else 0, 0)
        icans = np.where(alive_p, ev["icans_grade"] if ev["icans_grade"] is not None else 0, 0)
        source = "protocol"
    else:
        crs = np.asarray(astct_crs_course(temp, hyp, n_vp, vpn, dev,
                                          anticytokine_given=anti).grade, dtype=float)
        crs = np.where(alive_p, crs, 0)
        enc = np.nan_to_num(xp["encephalopathy"])
        f = icans_findings(enc, ctx.seed, course.patient_id[:, None], dpost[None, :])
        ice = np.nan_to_num(xp["ice_score"], nan=10.0)
        child = (age < q["child_below_age_y"])[:, None]
        icans = np.asarray(astct_icans_grade(
            np.where(child, np.nan, ice), f["consciousness"], f["seizure"], f["motor_weakness"],
            f["cerebral_edema"], capd_score=np.where(child, f["capd_score"], np.nan),
            age_y=np.broadcast_to(age[:, None], enc.shape)), dtype=float)
        icans = np.where(alive_p, icans, 0)
        source = "physiology"
    # CTCAE neurological events from the same bedside findings (the simulator's clinician saw
    # these very draws: same seed, patient and day keys)
    enc = np.nan_to_num(xp["encephalopathy"])
    fnd = icans_findings(enc, ctx.seed, course.patient_id[:, None], dpost[None, :])
    ice_d = np.nan_to_num(xp["ice_score"], nan=10.0)
    kid = (age < q["child_below_age_y"])[:, None]
    out: dict[str, Any] = {}
    for version in NEURO_VERSIONS:
        g = np.asarray(ctcae_neuro_grade(
            np.where(kid, np.nan, ice_d), fnd["consciousness"], fnd["seizure"],
            fnd["motor_weakness"], fnd["cerebral_edema"],
            capd_score=np.where(kid, fnd["capd_score"], np.nan),
            age_y=np.broadcast_to(age[:, None], enc.shape), version=version))
        out[f"neuro_max_grade_ctcae_v{version}"] = np.where(alive_p, g, 0).max(axis=1).astype(
            np.int8)
    ctx.shared["support"] = {"n_vp": n_vp, "device": dev}
    out["crs_max_grade"], out["crs_onset_day"], out["crs_duration_days"] = \
        episode_stats(crs, dpost, int(q["episode_resolution_days"]))
    out["icans_max_grade"], out["icans_onset_day"], out["icans_duration_days"] = \
        episode_stats(icans, dpost, int(q["episode_resolution_days"]))
    out["crs_resolved"] = episode_resolved(crs, alive_p, int(q["episode_resolution_days"]))
    out["crs_grade_source"] = np.full(n, source, dtype=object)
    # the highest daily temperature while alive from day 0 (papers report fever ≥ 38.6 °C)
    out["temperature_max_c"] = np.where(
        alive_p.any(axis=1), np.where(alive_p, temp, -np.inf).max(axis=1), np.nan)
    # the older scales' "high-dose" criterion reads a norepinephrine-equivalent dose, taken
    # as proportional to the MAP deficit the vasopressors answer (first agent only)
    map_ = np.nan_to_num(xp["map_mmhg"], nan=200.0)
    deficit = np.maximum(map_target(HemodynamicConfig(), np.broadcast_to(
        np.asarray(age, dtype=float)[:, None], map_.shape)) - map_, 0.0)
    features = replace(support_features(fever, hyp, n_vp, vpn, dev, deficit,
                                        q["norepinephrine_ug_min_per_mmhg"]),
                       **_crs_bedside_findings(ctx, xp, crs > 0, temp, anti))
    scales = crs_grade_all_scales(features)
    if ctx.crs_scale not in scales:
        raise UnknownNameError("crs_scale", ctx.crs_scale, tuple(scales))
    # every scale's maximum (validation compares each paper on its own scale); ASTCT is the
    # bedside grade above, the others are re-derived from the same daily features
    for scale, grades in scales.items():
        g = crs if scale == "astct" else np.asarray(grades, dtype=float)
        out[f"crs_max_grade_{scale}"] = np.nan_to_num(g).max(axis=1).astype(np.int8)
        if scale == ctx.crs_scale:
            # days from CRS onset to the first grade 4 on the trial's own scale (NaN: never)
            out["crs_onset_to_grade4_days"] = first_day(
                (np.nan_to_num(g) >= 4) & alive_p, dpost) - out["crs_onset_day"]
    out["tocilizumab_doses"] = (toci > 0).sum(axis=1).astype(np.int64)
    out["tocilizumab_mg"] = toci.sum(axis=1)
    steroid = dex + mp * DEX_EQ_PER_MP_MG
    out["steroids_given"] = (steroid.sum(axis=1) > 0).astype(np.int8)
    out["steroid_dex_eq_mg"] = steroid.sum(axis=1)
    silt = ev["siltuximab"]
    out["siltuximab_given"] = (((silt > 0) & alive_p).any(axis=1) if silt is not None
                               else np.zeros(n, dtype=bool)).astype(np.int8)
    # haemodynamic and respiratory support over the follow-up (papers count it among the
    # patients with CRS): fluid boluses as the protocol recorded them (none recorded: none
    # given), without a protocol the hypotension the reference haemodynamic rule answers
    flags = support_flags(features)
    fluids = ev["fluid_bolus_ml"]
    fluid_day = (fluids > 0) if fluids is not None else (
        np.zeros_like(hyp) if ctx.protocol_grades else hyp)
    vaso_day = (n_vp > 0) | vpn
    out["hypotension_treated"] = ((fluid_day | vaso_day) & alive_p).any(axis=1).astype(np.int8)
    out["vasopressors_given"] = (vaso_day & alive_p).any(axis=1).astype(np.int8)
    out["high_dose_vasopressors"] = (flags["high_dose_vasopressor"] & alive_p).any(
        axis=1).astype(np.int8)
    out["oxygen_given"] = (flags["oxygen"] & alive_p).any(axis=1).astype(np.int8)
    out["ventilated"] = (flags["ventilated"] & alive_p).any(axis=1).astype(np.int8)
    ctx.shared["grades"] = {"days": dpost, "crs_grade": np.asarray(crs, dtype=float),
                            "icans_grade": np.asarray(icans, dtype=float)}
    return out


def cytopenia_endpoints(ctx: EndpointContext) -> dict[str, Any]:
    """CTCAE neutropenia/thrombocytopenia/anaemia maximum grades (all, and treatment-emergent:
    worse than before lymphodepletion), days with ANC < 500/µL,
    early and late ICAHT, and the G-CSF, IVIG and transfusions the protocol gave."""
    post = ctx.course.days >= 0
    dpost = ctx.course.days[post]
    xp = {k: ctx.shared["xm"][k][:, post]
          for k in ("anc_per_ul", "platelets_per_ul", "hemoglobin_g_dl")}
    alive_p = ctx.shared["alive"][:, post]
    anc = xp["anc_per_ul"]
    out: dict[str, Any] = {}
    out["neutropenia_max_grade"] = np.max(np.where(
        alive_p, ctcae.neutrophil_grade(np.nan_to_num(anc, nan=1e4)), 0), axis=1).astype(np.int8)
    out["thrombocytopenia_max_grade"] = np.max(np.where(
        alive_p, ctcae.platelet_grade(np.nan_to_num(xp["platelets_per_ul"], nan=1e6)), 0),
        axis=1).astype(np.int8)
    out["anemia_max_grade"] = np.max(np.where(
        alive_p, ctcae.anemia_grade(np.nan_to_num(xp["hemoglobin_g_dl"], nan=15.0)), 0),
        axis=1).astype(np.int8)
    # treatment-emergent grades, as trials count cytopenia adverse events (ICH E9: an event
    # absent before treatment, or worse than before): the worst grade after infusion when it
    # exceeds the grade of the pre-treatment count (the course's first day, before
    # lymphodepletion), else 0. A leukaemic child who starts at grade 3 anaemia and stays
    # there has no grade 3 adverse event; one who falls to grade 4 neutropenia has.
    day0 = int(ctx.course.days[0])
    for col, (name, grader, fill) in EMERGENT_CYTOPENIAS.items():
        base = (np.asarray(grader(np.clip(np.nan_to_num(_at(ctx.course, name, day0), nan=fill),
                                          0.0, _COUNT_CAP[name])), dtype=np.int8)
                if day0 < 0 else np.zeros(ctx.n, dtype=np.int8))
        worst = out[f"{col}_max_grade"]
        out[f"{col}_emergent_grade"] = np.where(worst > base, worst, 0).astype(np.int8)
    with np.errstate(invalid="ignore"):
        out["anc_below_500_days"] = ((anc < ctx.q["severe_neutropenia_per_ul"]) & alive_p
                                     ).sum(axis=1).astype(np.float64)
    out["icaht_early_grade"] = np.asarray(icaht_early_grade(anc, dpost), dtype=np.int8)
    out["icaht_late_grade"] = np.asarray(icaht_late_grade(anc, dpost), dtype=np.int8)
    out["neutrophil_recovery"] = np.asarray(neutrophil_recovery_phenotype(anc, dpost),
                                            dtype=object)
    # supportive care the protocol gave for cytopenias and low IgG (0 without a protocol)
    ev = _post_events(ctx)
    late = (dpost > 28)[None, :]
    tx = np.zeros_like(alive_p)  # any transfusion (platelets or red cells), by day
    for name in ("gcsf", "ivig", "platelet_transfusion", "rbc_transfusion"):
        m = ev[name]
        given = (m > 0) & alive_p if m is not None else np.zeros_like(alive_p)
        out[f"{name}_given"] = given.any(axis=1).astype(np.int8)
        out[f"{name}_after_d28"] = (given & late).any(axis=1).astype(np.int8)
        if name.endswith("transfusion"):  # transfusion days (one a day at most)
            out[f"{name}s"] = given.sum(axis=1).astype(np.float64)
            tx |= given
    # any transfusion by phase: early (days 0-30) and late (31-180), as ICAHT and the
    # transfusion registries count them (Vic 2024 Blood Adv 8:1573)
    for a, b in TRANSFUSION_WINDOWS:
        inside = ((dpost >= a) & (dpost <= b))[None, :]
        out[f"transfusion_d{a}_{b}"] = (tx & inside).any(axis=1).astype(np.int8)
    return out


#: The treatment-emergent cytopenia columns ``<col>_emergent_grade``: the count, its CTCAE
#: grader and the value that stands for a missing count (grade 0).
EMERGENT_CYTOPENIAS = {
    "neutropenia": ("anc_per_ul", ctcae.neutrophil_grade, 1e4),
    "thrombocytopenia": ("platelets_per_ul", ctcae.platelet_grade, 1e6),
    "anemia": ("hemoglobin_g_dl", ctcae.anemia_grade, 15.0),
}

#: Day windows (inclusive) of the ``transfusion_d<a>_<b>`` columns: the first month, the late
#: phase to month 6, months 4-6, and the six months after infusion.
TRANSFUSION_WINDOWS = ((0, 30), (31, 180), (91, 180), (0, 180))


LAB_ENDPOINT_COLUMNS = ("ferritin_ng_ml", "crp_mg_l", "fibrinogen_mg_dl", "ldh_u_l",
                        "urate_mg_dl", "potassium_mmol_l", "phosphate_mg_dl", "calcium_mg_dl",
                        "creatinine_mg_dl")
#: The CTCAE count graders' upper bounds (clinic/ctcae.py) for the counts the endpoints grade;
#: NaN stays NaN.
_COUNT_CAP = {k: ctcae.COUNT_UPPER_BOUNDS[k]
              for k in ("anc_per_ul", "platelets_per_ul", "hemoglobin_g_dl")}
_LAB_CAP = {"ferritin_ng_ml": 1e7, "crp_mg_l": 1e3, "fibrinogen_mg_dl": 2e3, "ldh_u_l": 1e6,
            "urate_mg_dl": 500.0, "potassium_mmol_l": 50.0, "phosphate_mg_dl": 500.0,
            "calcium_mg_dl": 30.0, "creatinine_mg_dl": 100.0}


def hlh_tls_endpoints(ctx: EndpointContext) -> dict[str, Any]:
    """Peak ferritin/CRP/LDH/creatinine, fibrinogen nadir and hypofibrinogenaemia, IEC-HS
    (Hines 2023: criteria, grade, onset) and Cairo–Bishop TLS (laboratory, clinical, grade)
    from the simulated labs (:mod:`cartsim.model.labs`); NaN/0 when a course has no labs."""
    n, q = ctx.n, ctx.q
    names = ("ferritin_peak_ng_ml", "crp_peak_mg_l", "ldh_peak_u_l", "creatinine_peak_mg_dl",
             "fibrinogen_nadir_mg_dl")
    if not all(c in ctx.course.x for c in LAB_ENDPOINT_COLUMNS):
        out: dict[str, Any] = {k: np.full(n, np.nan) for k in names}
        for k in ("hypofibrinogenemia", "iechs", "iechs_max_grade", "tls_laboratory",
                  "tls_clinical", "tls_max_grade"):
            out[k] = np.zeros(n, dtype=np.int8)
        out["iechs_onset_day"] = np.full(n, np.nan)
        return out
    days = ctx.course.days
    post = days >= 0
    dpost = days[post]
    # a runaway state must not stop the graders (their ranges are those of real labs)
    xm = _Derived(ctx.shared["xm"], lambda k, v: np.clip(v, 0.0, _LAB_CAP[k])
                  if k in _LAB_CAP else v)
    xp = {k: xm[k][:, post] for k in (*LAB_ENDPOINT_COLUMNS, "anc_per_ul", "platelets_per_ul")}
    alive_p = ctx.shared["alive"][:, post]
    age = np.asarray(ctx.covariates["age_y"], dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows (no valid day)
        out = {"ferritin_peak_ng_ml": np.nanmax(xp["ferritin_ng_ml"], axis=1),
               "crp_peak_mg_l": np.nanmax(xp["crp_mg_l"], axis=1),
               "ldh_peak_u_l": np.nanmax(xp["ldh_u_l"], axis=1),
               "creatinine_peak_mg_dl": np.nanmax(xp["creatinine_mg_dl"], axis=1),
               "fibrinogen_nadir_mg_dl": np.nanmin(xp["fibrinogen_mg_dl"], axis=1)}
    fib = np.nan_to_num(xp["fibrinogen_mg_dl"], nan=1e3)
    low_fib = (fib < q["hypofibrinogenemia_mg_dl"]) & alive_p
    out["hypofibrinogenemia"] = low_fib.any(axis=1).astype(np.int8)
    # IEC-HS, day by day from day 0 (the rule shared with real records)
    fer0 = xp["ferritin_ng_ml"][:, 0]
    met = np.asarray(iechs_course(
        dpost.astype(float), xp["ferritin_ng_ml"], ctx.shared["grades"]["crs_grade"],
        fibrinogen_mg_dl=xp["fibrinogen_mg_dl"],
        neutropenia_grade=np.asarray(ctcae.neutrophil_grade(
            np.nan_to_num(xp["anc_per_ul"], nan=1e4)), dtype=float),
        thrombocytopenia_grade=np.asarray(ctcae.platelet_grade(
            np.nan_to_num(xp["platelets_per_ul"], nan=1e6)), dtype=float),
        ferritin_baseline_ng_ml=fer0[:, None], ferritin_uln_ng_ml=q["ferritin_uln_ng_ml"],
        fibrinogen_limit_mg_dl=q["hypofibrinogenemia_mg_dl"],
        lookback_days=q["cytopenia_lookback_days"]), dtype=bool) & alive_p
    sup_ = ctx.shared["support"]
    cr = np.nan_to_num(xp["creatinine_mg_dl"])
    cr0 = xm["creatinine_mg_dl"][:, 0][:, None]
    uln = np.asarray(creatinine_uln_mg_dl_default(age))[:, None]
    plt = np.nan_to_num(xp["platelets_per_ul"], nan=1e6)
    severe = (cr > 3.0 * np.fmax(cr0, uln)) | (
        (fib < q["iechs_bleeding_fibrinogen_mg_dl"])
        & (plt < q["iechs_bleeding_platelets_per_ul"]))
    life = (sup_["n_vp"] > 0) | (sup_["device"] >= 9) | (cr > 6.0 * uln)
    grade = np.where(met, np.select([life, severe, low_fib], [4, 3, 2], 1), 0)
    death = ctx.shared["death_day"]
    last_met = np.where(met.any(axis=1), dpost[dpost.size - 1 - np.argmax(met[:, ::-1], axis=1)],
                        -np.inf)
    onset = first_day(met, dpost)
    died = np.isfinite(death) & (death >= np.nan_to_num(onset, nan=np.inf)) & (
        death <= last_met + 1)
    out["iechs"] = met.any(axis=1).astype(np.int8)
    out["iechs_max_grade"] = np.where(died, 5, grade.max(axis=1)).astype(np.int8)
    out["iechs_onset_day"] = onset
    # Cairo–Bishop TLS: baseline = the first (pre-lymphodepletion) day
    base = {k: xm[k][:, 0][:, None] for k in ("urate_mg_dl", "potassium_mmol_l",
                                              "phosphate_mg_dl", "calcium_mg_dl")}
    crit = tls_lab_criteria(xm["urate_mg_dl"], xm["potassium_mmol_l"], xm["phosphate_mg_dl"],
                            xm["calcium_mg_dl"], age_y=age[:, None], baseline=base)
    window = (q["tls_window_first_day"], q["tls_window_last_day"])
    lab = np.asarray(laboratory_tls(crit, days.astype(float), window), dtype=bool)
    inside = (days >= window[0]) & (days <= window[1])
    crw = np.where(inside[None, :], np.nan_to_num(xm["creatinine_mg_dl"]), 0.0)
    cr_g = np.asarray(creatinine_component(crw, np.broadcast_to(uln, crw.shape))).max(axis=1)
    # clinical TLS: its creatinine component (no arrhythmia or TLS seizure is modelled; the
    # seizures of ICANS are not TLS's)
    tls_g = np.where(lab, cr_g, 0).astype(np.int8)
    out["tls_laboratory"] = lab.astype(np.int8)
    out["tls_clinical"] = (tls_g >= 1).astype(np.int8)
    out["tls_max_grade"] = tls_g
    return out


def bca_endpoints(ctx: EndpointContext) -> dict[str, Any]:
    """B-cell aplasia onset, duration and whether it is ongoing at last follow-up."""
    x = ctx.course.x
    b0 = x["b_cells_per_ul"][:, 0]
    onset, dur, ongoing = b_cell_aplasia(ctx.course.days, ctx.shared["xm"]["b_cells_per_ul"], b0,
                                         ctx.shared["last_day"],
                                         ctx.q["bca_fraction_of_baseline"],
                                         ctx.q["bca_recovery_from_day"])
    return {"bca_onset_day": onset, "bca_duration_days": dur, "bca_ongoing": ongoing}


def kinetics_endpoints(ctx: EndpointContext) -> dict[str, Any]:
    """CAR-T cells/µL and transgene copies/µg: Cmax, Tmax and AUC over the exposure window."""
    out: dict[str, Any] = {}
    for col, tag in (("cart_cells_per_ul", "cart"), ("transgene_copies_per_ug", "copies")):
        cmax, tmax, auc = pk_metrics(ctx.course.days, ctx.shared["xm"][col],
                                     ctx.q["pk_start_day"], ctx.q["pk_end_day"])
        out[f"{tag}_cmax"], out[f"{tag}_tmax_day"], out[f"{tag}_auc0_28"] = cmax, tmax, auc
    return out


def procedure_endpoints(ctx: EndpointContext) -> dict[str, Any]:
    """HSCT consolidation (given, day) and the day the tumour went extinct."""
    n = ctx.n
    dpost = ctx.course.days[ctx.course.days >= 0]
    ev = _post_events(ctx)
    hs = ev["hsct"]
    hs_day = first_day(hs > 0, dpost) if hs is not None else np.full(n, np.nan)
    hs_day = np.where(hs_day <= np.nan_to_num(ctx.shared["last_day"], nan=-1), hs_day, np.nan)
    te = ev["tumour_extinct"]
    out = {"hsct": np.isfinite(hs_day).astype(np.int8), "hsct_day": hs_day,
           "tumour_extinct_day": (first_day(te > 0, dpost) if te is not None
                                  else np.full(n, np.nan))}
    # schedule items (trial.procedures): first autologous SCT, CAR-T re-infusion, salvage
    for name, col in (("asct", "asct_day"), ("cart_reinfusion", "reinfusion_day"),
                      ("salvage", "salvage_day")):
        m = ev[name]
        d = first_day(m > 0, dpost) if m is not None else np.full(n, np.nan)
        out[col] = np.where(d <= np.nan_to_num(ctx.shared["last_day"], nan=-1), d, np.nan)
    return out


#: The endpoint families, in the order their columns appear in patients.parquet.
ENDPOINT_FAMILIES: tuple[EndpointFamily, ...] = (
    EndpointFamily("response", response_endpoints, RESPONSE_PARAMS,
                   "response at each assessment, best response, MRD"),
    EndpointFamily("survival", survival_endpoints, SURVIVAL_PARAMS,
                   "relapse, death, infections, EFS/OS/PFS/RFS/DOR"),
    EndpointFamily("toxicity", toxicity_endpoints, TOXICITY_PARAMS,
                   "CRS, ICANS, tocilizumab and steroids"),
    EndpointFamily("cytopenia", cytopenia_endpoints, CYTOPENIA_PARAMS,
                   "CTCAE cytopenias and ICAHT"),
    EndpointFamily("hlh_tls", hlh_tls_endpoints, HLH_TLS_PARAMS,
                   "lab peaks, hypofibrinogenaemia, IEC-HS and Cairo–Bishop TLS"),
    EndpointFamily("b_cell_aplasia", bca_endpoints, BCA_PARAMS, "B-cell aplasia"),
    EndpointFamily("kinetics", kinetics_endpoints, KINETICS_PARAMS,
                   "CAR-T and transgene Cmax, Tmax, AUC"),
    EndpointFamily("procedures", procedure_endpoints, ParameterTable(()),
                   "HSCT consolidation, tumour extinction, ASCT and re-infusion days"),
)
#: Every family's parameters in one table (``compute_endpoints(params=...)`` overrides).
ENDPOINT_PARAMS = ParameterTable(tuple(s for f in ENDPOINT_FAMILIES for s in f.params))


def compute_endpoints(
    course: Course,
    events: pd.DataFrame,
    covariates: dict[str, np.ndarray],
    *,
    disease: str,
    seed: int,
    follow_up_days: int,
    assessment_days: Sequence[int],
    crs_scale: str = "astct",
    protocol_grades: bool = True,
    status: np.ndarray | None = None,
    death_overrides: dict[str, float] | None = None,
    params: dict[str, float] | None = None,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """One row per patient with every endpoint (see docs/trial.md for definitions), and the
    daily CRS/ICANS grades used (``{"days", "crs_grade", "icans_grade"}``, days ≥ 0): the
    families of :data:`ENDPOINT_FAMILIES` in order, after follow-up and deaths."""
    # blood counts above the CTCAE graders' domains are graded at the bound (normal, grade
    # 0) instead of rejected: a runaway count (a parameter set whose marrow feedback
    # overshoots) is stopped by the simulator's plausibility check the morning after it is
    # recorded, but the recorded value is in the course (session 42: before, the whole
    # trial stopped with "invalid platelets_per_ul")
    course = Course(course.patient_id, course.days, _Derived(
        course.x, lambda k, v: np.minimum(v, _COUNT_CAP[k]) if k in _COUNT_CAP else v))
    ctx = EndpointContext(course, events, covariates, disease, seed, follow_up_days,
                          assessment_days, crs_scale, protocol_grades, death_overrides,
                          ENDPOINT_PARAMS.resolve(params or {}))
    n = ctx.n
    status = np.zeros(n, dtype=np.int64) if status is None else np.asarray(status)
    _follow_up(ctx)
    out: dict[str, Any] = {"patient_id": course.patient_id,
                           "solver_status": status.astype(np.int64)}
    for k in sorted(covariates):
        out[k] = covariates[k]
    for family in ENDPOINT_FAMILIES:
        out.update(family.compute(ctx))
    return pd.DataFrame(out), ctx.shared["grades"]


#: Days kept in the per-day plot table: daily to day 28, then weekly.
def plot_days(follow_up_days: int) -> np.ndarray:
    d = list(range(0, min(28, follow_up_days) + 1)) + list(range(35, follow_up_days + 1, 7))
    if d[-1] != follow_up_days:
        d.append(follow_up_days)
    return np.asarray(d)


DAILY_COLUMNS = ("cart_cells_per_ul", "transgene_copies_per_ug", "anc_per_ul",
                 "platelets_per_ul", "b_cells_per_ul", "marrow_blast_pct", "tumour_cells")


def daily_table(course: Course, endpoints: pd.DataFrame, grades: dict[str, np.ndarray],
                follow_up_days: int) -> pd.DataFrame:
    """Small per-day table for report plots (values after death are NaN)."""
    keep = plot_days(follow_up_days)
    k = np.searchsorted(course.days, keep)
    n = course.patient_id.size
    last = endpoints["last_day"].to_numpy()
    alive = keep[None, :] <= last[:, None]
    out: dict[str, Any] = {
        "patient_id": np.repeat(course.patient_id, keep.size),
        "day": np.tile(keep, n).astype(np.int64),
    }
    for c in DAILY_COLUMNS:
        out[c] = np.where(alive, course.x[c][:, k], np.nan).reshape(-1)
    kg = np.searchsorted(grades["days"], keep)
    for g in ("crs_grade", "icans_grade"):
        out[g] = np.where(alive, grades[g][:, kg], np.nan).reshape(-1)
    return pd.DataFrame(out)
