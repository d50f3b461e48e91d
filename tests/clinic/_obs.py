"""Random daily clinic observations shared by the protocol tests."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np


def random_obs(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Random but physiologically plausible observations for one day."""
    age = rng.uniform(1, 80, n)
    child = age < 12
    obs = {
        "temperature_c": rng.normal(38.0, 1.0, n).clip(35, 42),
        "map_mmhg": rng.normal(68, 12, n).clip(25, 120),
        "spo2_room_air_pct": rng.normal(94, 5, n).clip(60, 100),
        "ice_score": np.where(child, np.nan, rng.integers(0, 11, n)).astype(float),
        "capd_score": np.where(child, rng.integers(0, 20, n), np.nan).astype(float),
        "consciousness": rng.choice(4, n, p=[0.85, 0.08, 0.05, 0.02]).astype(float),
        "seizure": rng.choice(3, n, p=[0.95, 0.04, 0.01]).astype(float),
        "motor_weakness": (rng.random(n) < 0.01).astype(float),
        "cerebral_edema": rng.choice(3, n, p=[0.97, 0.02, 0.01]).astype(float),
        "il6_pg_ml": rng.lognormal(3, 1.5, n),
        "il6_baseline_pg_ml": rng.lognormal(2, 0.5, n),
        "anc_per_ul": rng.lognormal(6.5, 1.5, n),
        "platelets_per_ul": rng.lognormal(11, 0.8, n),
        "hemoglobin_g_dl": rng.normal(10, 2, n).clip(4, 17),
        "igg_mg_dl": rng.normal(600, 250, n).clip(50, 2000),
        "crp_mg_l": rng.lognormal(3, 1, n).clip(0, 900),
        "ferritin_ng_ml": rng.lognormal(7, 1, n),
        "weight_kg": np.where(child, rng.uniform(10, 45, n), rng.uniform(40, 130, n)),
        "age_y": age,
        "alive": rng.random(n) > 0.02,
    }
    return obs


def start(name: str, seed: int, n: int) -> tuple[np.random.Generator, Any, Any]:
    """A seeded generator, the shipped protocol ``name`` and its initial state for ``n``
    patients: the set-up every protocol-equivalence test begins with."""
    from cartsim.clinic.protocol import load_protocol

    policy = load_protocol(name)
    return np.random.default_rng(seed), policy, policy.initial_state(n)


def as_float(obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The observations as float64 arrays, as the simulator hands them to the protocol."""
    return {k: np.asarray(v, dtype=np.float64) for k, v in obs.items()}


def assert_same_decision(a1: dict[str, np.ndarray], s1: Any, a2: dict[str, np.ndarray],
                         s2: Any, tag: str) -> None:
    """Two protocol decisions agree: the same action keys in the same order, each action's
    dtype and values, and every field of the new state."""
    assert list(a1) == list(a2), tag
    for key in a1:
        assert a1[key].dtype == a2[key].dtype, (tag, key)
        np.testing.assert_array_equal(a1[key], a2[key], err_msg=f"{tag} {key}")
    for f in fields(s1):
        np.testing.assert_array_equal(getattr(s1, f.name), getattr(s2, f.name),
                                      err_msg=f"{tag} state {f.name}")
