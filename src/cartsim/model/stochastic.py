"""Stochastic layer for small tumour clones (MODEL.md §3; Kimmel 2021).

After each day's deterministic integration, every clone that started the day below
``stoch_threshold`` cells is redrawn from the exact transition law of a linear birth–death
process started from its integer size, using the day's integrated per-capita birth rate and
death hazard (accumulated by the ODE, so CAR-T killing, drugs and crowding all enter). Cure
(extinction) and relapse are therefore chance events whose odds the mechanisms set. New
antigen-loss mutants of clone 0 arrive as a Poisson number per day into clone 2.

Random numbers come from the counter-based generator keyed by (seed, patient id, stream,
counter), so a patient's draws never depend on chunking or workers.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from cartsim.engine.rng import key, uniform, uniform_at
from cartsim.model.parameters import P
from cartsim.model.state import FIRST_ACCUMULATOR, N_CLONES, N_STATES, S

STREAM_ROUND = 101  # + clone; the birth–death draws use stream + 10 (STREAM_SURVIVE + clone)
STREAM_SURVIVE = 111
STREAM_SIZE = 121
STREAM_MUTANT = 131
STREAM_SANCTUARY = 141  # rounding; its birth–death draws use 151
STREAM_SEED_CNS = 143  # marrow → sanctuary arrivals
STREAM_RESEED = 161  # sanctuary → marrow arrivals into clone 0
DAY_OFFSET = 1000  # days may be negative (lymphodepletion); counters must not be
_DRAWS_PER_DAY = 1 << 22


@numba.njit(inline="always")
def _u(seed: np.uint64, pid: np.uint64, stream: int, day: int, k: int) -> float:
    ctr = np.uint64(day + DAY_OFFSET) * np.uint64(_DRAWS_PER_DAY) + np.uint64(k)
    return uniform(seed, pid, np.uint64(stream), ctr)


@numba.njit
def poisson_small(lam: float, seed: np.uint64, pid: np.uint64, stream: int, day: int) -> float:
    """Poisson draw by inversion for λ ≤ 50, normal approximation above."""
    if lam <= 0.0:
        return 0.0
    if lam > 50.0:
        u1 = _u(seed, pid, stream, day, 0)
        u2 = _u(seed, pid, stream, day, 1)
        z = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
        return max(0.0, math.floor(lam + math.sqrt(lam) * z + 0.5))
    u = _u(seed, pid, stream, day, 0)
    k = 0
    prob = math.exp(-lam)
    cdf = prob
    while u > cdf and k < 1000:
        k += 1
        prob *= lam / k
        cdf += prob
    return float(k)


@numba.njit
def birth_death(n0: int, b: float, d: float, seed: np.uint64, pid: np.uint64, stream: int,
                day: int) -> float:
    """Size after one day of a linear birth–death process with rates b, d (per day)."""
    if n0 <= 0:
        return 0.0
    r = b - d
    if abs(r) < 1e-9:
        p0 = b / (1.0 + b)
        eta = p0
    else:
        er = math.exp(r)
        p0 = d * (er - 1.0) / (b * er - d)
        eta = b * (er - 1.0) / (b * er - d)
    total = 0.0
    # one keyed run of draws per (patient, stream, day): a single mix per draw
    run = key(seed, pid, np.uint64(stream), np.uint64(day + DAY_OFFSET))
    inv_log_eta = 1.0 / math.log(eta) if 0.0 < eta < 1.0 else 0.0
    inv_log_p0 = 1.0 / math.log(p0) if 0.0 < p0 < 1.0 else 0.0
    if p0 >= 1.0:
        return 0.0
    # Walk over the surviving lineages only: the number of extinct lineages before the next
    # survivor is geometric, so a day costs two draws per survivor, not one per cell.
    k = 0
    j = 0
    while True:
        if p0 > 0.0:
            skip = math.floor(math.log(uniform_at(run, k)) * inv_log_p0)
            k += 1
            if skip >= n0 - j:
                break
            j += int(skip)
        elif j >= n0:
            break
        j += 1  # lineage j survives: 1 + Geometric(eta) cells
        if eta <= 0.0:
            total += 1.0
        else:
            total += 1.0 + math.floor(math.log(uniform_at(run, k)) * inv_log_eta)
            k += 1
    return total


@numba.njit(inline="always")
def _redraw(n_start: float, births: float, deaths: float, seed: np.uint64, pid: np.uint64,
            stream: int, day: int) -> float:
    """Round a small population to an integer by a Bernoulli draw, then one birth–death day."""
    whole = math.floor(max(n_start, 0.0))
    if _u(seed, pid, stream, day, 0) < max(n_start, 0.0) - whole:
        whole += 1.0
    return birth_death(int(whole), births, deaths, seed, pid, stream + 10, day)


@numba.njit  # simulation._stochastic_day compiles it parallel over patients
def apply_day(y_start: np.ndarray, y: np.ndarray, p: np.ndarray, seed: np.uint64,
              patient_id: np.ndarray, day: int, status: np.ndarray) -> None:
    """Redraw small clones (marrow and sanctuary), add migrants and new antigen-loss mutants,
    and reset the daily integrals.

    A population that started the day below ``stoch_threshold`` is redrawn from the
    birth–death law (emigration counts as death) and then receives a Poisson number of
    immigrants with the day's integrated flux as mean (sanctuary → marrow clone 0, marrow →
    sanctuary). Above the threshold the ODE, which carries the migration terms, stands.
    """
    for i in numba.prange(y.shape[0]):  # patients are independent (keyed streams)
        if status[i] != 0:
            continue
        pid = np.uint64(patient_id[i])
        thr = p[i, P.stoch_threshold]
        for c in range(N_CLONES):
            n_start = y_start[i, S.T0 + c]
            if n_start < thr:
                y[i, S.T0 + c] = _redraw(n_start, y[i, S.BR0 + c], y[i, S.HZ0 + c], seed, pid,
                                         STREAM_ROUND + c, day)
                if c == 0:
                    y[i, S.T0] += poisson_small(y[i, S.IMM], seed, pid, STREAM_RESEED, day)
            elif y[i, S.T0 + c] < 0.0:
                y[i, S.T0 + c] = 0.0
        if y_start[i, S.TS] < thr:
            y[i, S.TS] = _redraw(y_start[i, S.TS], y[i, S.BRS], y[i, S.HZS], seed, pid,
                                 STREAM_SANCTUARY, day)
            y[i, S.TS] += poisson_small(y[i, S.IMS], seed, pid, STREAM_SEED_CNS, day)
        elif y[i, S.TS] < 0.0:
            y[i, S.TS] = 0.0
        mutants = poisson_small(y[i, S.MUT], seed, pid, STREAM_MUTANT, day)
        y[i, S.T2] += mutants
        for k in range(FIRST_ACCUMULATOR, N_STATES):
            y[i, k] = 0.0
