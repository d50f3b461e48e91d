"""A minimal SAS XPORT v5 writer (character variables only) for test fixtures.

Written from the SAS transport-format layout (TS-140): 80-byte header records, 140-byte
NAMESTR records, observations padded to 80 bytes. pandas can read XPT but not write it.
"""

from __future__ import annotations

import struct
from pathlib import Path


def write_xpt_chars(path: Path, name: str, columns: dict[str, list[str]]) -> None:
    """A SAS XPORT v5 file with character variables only (test fixture writer)."""
    names = list(columns)
    nrow = len(columns[names[0]])
    lengths = [max(1, max(len(str(v)) for v in columns[c])) for c in names]

    def rec(text: str) -> bytes:
        return text.ljust(80).encode("ascii")

    date = "01JAN24:00:00:00"
    out = rec("HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!" + "0" * 30)
    out += rec("SAS     SAS     SASLIB  9.4     Linux   " + " " * 24 + date)
    out += rec(date)
    out += rec("HEADER RECORD*******MEMBER  HEADER RECORD!!!!!!!"
               + "0" * 17 + "16" + "0" * 8 + "140")
    out += rec("HEADER RECORD*******DSCRPTR HEADER RECORD!!!!!!!" + "0" * 30)
    out += rec("SAS     " + name.upper().ljust(8) + "SASDATA 9.4     Linux   " + " " * 24 + date)
    out += rec(date + " " * 16 + " " * 40 + "        ")
    out += rec("HEADER RECORD*******NAMESTR HEADER RECORD!!!!!!!000000" + f"{len(names):04d}"
               + "0" * 20)
    ns = b""
    pos = 0
    for k, (c, ln) in enumerate(zip(names, lengths, strict=True)):
        ns += struct.pack(">hhhh8s40s8shhh2s8shhl52s", 2, 0, ln, k + 1,
                          c.upper().ljust(8).encode(), b" " * 40, b" " * 8, 0, 0, 0, b"  ",
                          b" " * 8, 0, 0, pos, b"\0" * 52)
        pos += ln
    ns += b" " * (-len(ns) % 80)
    out += ns
    out += rec("HEADER RECORD*******OBS     HEADER RECORD!!!!!!!" + "0" * 30)
    data = b""
    for i in range(nrow):
        for c, ln in zip(names, lengths, strict=True):
            data += str(columns[c][i]).ljust(ln).encode("ascii")
    data += b" " * (-len(data) % 80)
    out += data
    with open(path, "wb") as fh:
        fh.write(out)

