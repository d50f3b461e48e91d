"""docs/model.md carries the generated tables as the code makes them today: the mechanisms
table (``python -m cartsim.model.layout``) and the parameter tables from "## Model
parameters" to the end (``python -m cartsim.model.parameters``). Session 41 found the
mechanisms table three sessions stale (parameter counts, a consumed quantity)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "model.md"


def test_the_mechanisms_tables_are_current() -> None:
    from cartsim.model.layout import markdown

    assert markdown() in DOC.read_text("utf-8"), (
        "docs/model.md: regenerate the mechanisms tables with python -m cartsim.model.layout")


def test_the_parameter_tables_are_current() -> None:
    from cartsim.model.parameters import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        main()
    doc = DOC.read_text("utf-8")
    tail = doc[doc.index("## Model parameters"):]
    assert tail.strip() == buf.getvalue().strip(), (
        "docs/model.md: replace everything from '## Model parameters' with the output of "
        "python -m cartsim.model.parameters")
