"""The generated analytic-Jacobian source is kept on disk: a fresh process reads it instead of
generating it again (seconds), and the same source lets numba's cached solver load."""

from __future__ import annotations

import numpy as np
import pytest

from cartsim.model import autodiff, layout
from cartsim.model import mechanism as mech


def test_generated_jacobian_is_read_back_from_the_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CARTSIM_CACHE_DIR", str(tmp_path))
    model = layout.CORE
    first = mech._jacobian_code(model)
    assert not isinstance(first, str)
    files = list((tmp_path / "generated").glob("jacobian-*.npz"))
    assert len(files) == 1 and mech.jacobian_cache_key(model)[:32] in files[0].name

    def boom(*args, **kwargs):
        raise AssertionError("regenerated despite the cache")

    monkeypatch.setattr(autodiff, "jacobian_source", boom)
    second = mech._jacobian_code(model)
    assert not isinstance(second, str)
    assert second[0] == first[0]  # the same source: the same module, numba cache key
    assert np.array_equal(second[2], first[2]) and second[2].dtype == bool
    assert set(second[1]) == {"np", "math"}


def test_cache_key_follows_the_source_and_the_layout(monkeypatch) -> None:
    from dataclasses import replace

    model = layout.CORE
    key = mech.jacobian_cache_key(model)
    assert key == mech.jacobian_cache_key(replace(model))
    assert key != mech.jacobian_cache_key(replace(model, source=model.source + "\n"))
    assert key != mech.jacobian_cache_key(replace(model, states=model.states[::-1]))


@pytest.mark.parametrize("broken", ["reason", "garbage"])
def test_a_cached_failure_or_a_damaged_file(tmp_path, monkeypatch, broken) -> None:
    monkeypatch.setenv("CARTSIM_CACHE_DIR", str(tmp_path))
    model = layout.CORE
    path = tmp_path / "generated" / f"jacobian-{mech.jacobian_cache_key(model)[:32]}.npz"
    path.parent.mkdir(parents=True)
    if broken == "reason":
        np.savez(path, reason=np.array("not differentiable: test"))
        assert mech._jacobian_code(model) == "not differentiable: test"
    else:
        path.write_bytes(b"not an npz")
        got = mech._jacobian_code(model)  # generated afresh
        assert not isinstance(got, str) and got[2].any()
    if broken == "garbage":  # and written again
        with np.load(path, allow_pickle=False) as z:
            assert str(z["source"]) == got[0]
