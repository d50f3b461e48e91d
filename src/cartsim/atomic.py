"""Atomic file output: a writer fills a temporary file in the destination folder, then rename.

Readers never see a half-written file, and a killed run leaves either the old file or the new
one. The temporary file gets the permissions an ordinary ``open()`` would give (0666 less the
umask), not the owner-only mode of :func:`tempfile.mkstemp`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

#: Options of every Parquet file cartsim writes: zstd (smaller than the default snappy at about
#: the same speed; issue 12 item 3) with dictionary encoding of repeated values (pyarrow's
#: default, stated here so that it stays).
PARQUET_OPTIONS: dict[str, object] = {"compression": "zstd", "compression_level": 3,
                                      "use_dictionary": True}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike[str], writer: Callable[[Path], None]) -> Path:
    """Write ``path`` atomically: ``writer(tmp)`` fills a temporary file, then it is renamed."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        writer(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return dest


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda t: t.write_text(text, encoding="utf-8"))


def check_output_dir(path: str | os.PathLike[str], field: str = "--out") -> Path:
    """Check, before any work is done, that ``path`` can be an output directory: it is a
    directory or does not exist yet, and its nearest existing ancestor is a writable directory.
    Raises :class:`cartsim.errors.InvalidInputError` naming ``field`` otherwise."""
    from cartsim.errors import InvalidInputError

    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InvalidInputError(field, "a directory (new or existing), not a file", str(p))
    anc = p if p.exists() else p.parent
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        raise InvalidInputError(field, "a path whose parents are directories", str(p),
                                f"{anc} is a file")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise InvalidInputError(field, "a writable location", str(p),
                                f"no permission to write in {anc}")
    return p
