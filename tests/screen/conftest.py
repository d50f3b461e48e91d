"""Shared fixtures for the screen tests (data copied into tests/screen/data with licences)."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Folder of the copied fixture tables."""
    return DATA
