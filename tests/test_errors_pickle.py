"""cartsim's errors survive the trip from a worker process (pickling) unchanged.

Before session 41 a spec error raised in a claims or validation worker reached the parent
re-created from its message alone: SpecError took the message as its list of issues and
printed it one character per line; InvalidInputError and its subclasses could not be
re-created at all (TypeError)."""

from __future__ import annotations

import pickle
from concurrent.futures import ProcessPoolExecutor

import pytest

from cartsim.calibrate.space import SpaceError
from cartsim.errors import (
    CartsimError,
    InvalidInputError,
    OptionalDependencyError,
    UnknownNameError,
)
from cartsim.trial.spec import SpecError

ERRORS = [
    SpecError(["arms[0].protocol: cannot load protocol 'x'", "population.size: must be > 0"]),
    SpecError(["seed: must be a whole number"], source="spec f.toml"),
    InvalidInputError("--patients", "[1, 100000]", 0),
    InvalidInputError("obs['alive']", "true/false", "NaN", hint="no NaN"),
    UnknownNameError("disease", "cll", ["b-all", "lbcl"]),
    OptionalDependencyError("the Dask executor", "dask"),
    SpaceError("space.toml: no [[parameter]]"),
    CartsimError("plain"),
]


@pytest.mark.parametrize("err", ERRORS, ids=lambda e: type(e).__name__)
def test_error_pickles_to_the_same_error(err: CartsimError) -> None:
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err)
    assert str(back) == str(err)
    assert back.__dict__ == err.__dict__


def _raise_spec_error() -> None:
    raise SpecError(["arms[0].dose: must be > 0"])


def test_spec_error_from_a_worker_keeps_its_issues() -> None:
    with ProcessPoolExecutor(1) as pool:
        fut = pool.submit(_raise_spec_error)
        with pytest.raises(SpecError) as info:
            fut.result()
    assert info.value.issues == ["arms[0].dose: must be > 0"]
    assert str(info.value) == "invalid trial spec (1 problem):\n  arms[0].dose: must be > 0"


def test_a_failed_study_is_named_and_pickles() -> None:
    """validate names the study whose simulation failed, in-process and from a worker."""
    from cartsim.validate.run import StudyRunError

    err = StudyRunError("eliana", "studies/eliana.toml",
                        "invalid platelets_per_ul: got 1.1e7; allowed: a number in [0, 1e+07]")
    assert str(err).startswith("study eliana (studies/eliana.toml): invalid platelets_per_ul")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is StudyRunError and str(back) == str(err) and back.study == "eliana"
