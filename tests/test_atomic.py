"""Atomic output: ordinary permissions, nothing left behind when the writer fails."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cartsim.atomic import atomic_write, write_text_atomic


def test_written_file_has_umask_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        out = write_text_atomic(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert out.read_text() == "x"


def test_failing_writer_leaves_old_file_and_no_temp(tmp_path: Path) -> None:
    dest = tmp_path / "b.txt"
    dest.write_text("old")

    def boom(p: Path) -> None:
        p.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(dest, boom)
    assert dest.read_text() == "old"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["b.txt"]
