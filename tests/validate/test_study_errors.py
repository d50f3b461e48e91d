"""A study whose simulation fails stops validate with an error that names the study (session
42: before, a worker's error reached the parent as the bare message, e.g. "invalid
platelets_per_ul", with nothing to say which of thirty studies or which spec it came from)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cartsim.errors import InvalidInputError
from cartsim.validate.library import StudyEntry, default_specs_dir
from cartsim.validate.run import StudyRunError, run_study


def test_a_failing_study_is_named_and_leaves_nothing_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cartsim.trial.runner as runner

    def boom(*_a: object, **_k: object) -> None:
        raise InvalidInputError("platelets_per_ul", "a number in [0, 1e+07]", 1.1e7)

    monkeypatch.setattr(runner, "run_trial", boom)
    spec = default_specs_dir() / "eliana.toml"
    entry = StudyEntry(studies=("ELIANA",), spec=spec)
    with pytest.raises(StudyRunError, match=r"^study eliana \(.*eliana\.toml\): invalid "
                                           r"platelets_per_ul") as info:
        run_study(entry, tmp_path / "trials" / "eliana", 10, None, 10, None)
    assert isinstance(info.value.__cause__, InvalidInputError)
    assert list((tmp_path / "trials").iterdir()) == []  # the temporary run directory is gone
