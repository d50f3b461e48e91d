"""Reading a finished (or running) trial's ``manifest.json``.

A results-layer module: the report reads manifests through it, so the report never imports the
runner that writes them (the runner imports the report, not the other way round).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cartsim.errors import InvalidInputError

#: Version of the manifest layout written by :mod:`cartsim.trial.runner`.
MANIFEST_FORMAT = 1


def read_manifest(out: Path) -> dict[str, Any]:
    """The manifest of the trial output directory ``out`` (error if there is none)."""
    f = Path(out) / "manifest.json"
    if not f.exists():
        raise InvalidInputError("DIR", "a trial output directory with manifest.json", str(out))
    return json.loads(f.read_text(encoding="utf-8"))
