"""Command-line options that several commands share (typer ``Annotated`` aliases)."""

from __future__ import annotations

from typing import Annotated

import typer

#: ``--parameter-set`` of ``trial run``, ``validate`` and ``claims`` (docs/calibration.md).
ParameterSetOption = Annotated[str | None, typer.Option(
    "--parameter-set", help="parameter set in force: a shipped name, a TOML path (e.g. a "
                            "calibration's DIR/parameter_set.toml), or 'none' for the model's "
                            "own values (default: the installed default, docs/calibration.md)")]
