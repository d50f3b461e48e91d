"""Counter-based random numbers keyed by (seed, patient, stream, counter).

A draw is a pure function of its key, so a patient's random numbers do not depend on which
chunk or worker simulates it, nor on the order in which patients are processed
(ARCHITECTURE.md, "Randomness"). The key words are absorbed one at a time into a 64-bit state
through the SplitMix64 finaliser (Steele, Lea & Flood 2014), a bijective mixer with full
avalanche; the top 53 bits give a double in (0, 1). :func:`uniform` (numba) and
:func:`uniform_np` (NumPy, vectorised) return bit-identical values.
"""

from __future__ import annotations

import numba
import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_SCALE = 1.0 / 9007199254740992.0  # 2**-53


@numba.njit(cache=True, inline="always")
def _mix(z: np.uint64) -> np.uint64:
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@numba.njit(cache=True)
def uniform(seed: np.uint64, patient: np.uint64, stream: np.uint64, counter: np.uint64) -> float:
    """A double in the open interval (0, 1) determined by the four key words."""
    z = _mix(np.uint64(seed) + _GOLDEN)
    z = _mix(z ^ (np.uint64(patient) + _GOLDEN))
    z = _mix(z ^ (np.uint64(stream) + _GOLDEN))
    z = _mix(z ^ (np.uint64(counter) + _GOLDEN))
    return (float(z >> _S11) + 0.5) * _SCALE


def _mix_np(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def uniform_np(
    seed: int, patient: np.ndarray | int, stream: int, counter: np.ndarray | int
) -> np.ndarray:
    """Vectorised twin of :func:`uniform` (broadcasts ``patient`` and ``counter``)."""
    with np.errstate(over="ignore"):
        pat = np.asarray(patient, dtype=np.uint64)
        ctr = np.asarray(counter, dtype=np.uint64)
        z = _mix_np(np.asarray(np.uint64(seed) + _GOLDEN, dtype=np.uint64))
        z = _mix_np(z ^ (pat + _GOLDEN))
        z = _mix_np(z ^ (np.uint64(stream) + _GOLDEN))
        z = _mix_np(z ^ (ctr + _GOLDEN))
        return ((z >> _S11).astype(np.float64) + 0.5) * _SCALE


@numba.njit(cache=True)
def key(seed: np.uint64, patient: np.uint64, stream: np.uint64, counter: np.uint64) -> np.uint64:
    """The 64-bit key of (seed, patient, stream, counter), for a run of draws from it."""
    z = _mix(np.uint64(seed) + _GOLDEN)
    z = _mix(z ^ (np.uint64(patient) + _GOLDEN))
    z = _mix(z ^ (np.uint64(stream) + _GOLDEN))
    return _mix(z ^ (np.uint64(counter) + _GOLDEN))


@numba.njit(cache=True, inline="always")
def uniform_at(k: np.uint64, j: int) -> float:
    """The j-th double in (0, 1) of the run keyed by ``k`` (one mix per draw: SplitMix64)."""
    z = _mix(k + np.uint64(j + 1) * _GOLDEN)
    return (float(z >> _S11) + 0.5) * _SCALE
