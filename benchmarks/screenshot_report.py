"""Render a trial's report.html in headless Chromium and check the PNG is non-trivial.

Usage: python benchmarks/screenshot_report.py DIR/report.html [--png out.png]
Exit status 0 when the screenshot exists and shows more than a blank page.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


def screenshot(html: Path, png: Path, chromium: str = CHROMIUM, timeout: float = 120.0) -> Path:
    """Screenshot ``html`` into ``png`` (1400 × 6000 px) with headless Chromium."""
    exe = chromium if Path(chromium).exists() else shutil.which("chromium")
    if exe is None:
        raise FileNotFoundError("chromium not found")
    with tempfile.TemporaryDirectory() as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
               f"--screenshot={png}", "--window-size=1400,6000", "--hide-scrollbars",
               Path(html).resolve().as_uri()]
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout)
    return png


def png_stats(png: Path) -> dict[str, float]:
    """Size, dimensions and the share of non-white pixels of a PNG."""
    import numpy as np
    from matplotlib.image import imread

    img = imread(str(png))
    rgb = img[..., :3]
    nonwhite = float((rgb < 0.95).any(axis=-1).mean())
    colours = len(np.unique((rgb.reshape(-1, 3) * 255).astype(np.uint8), axis=0))
    return {"bytes": png.stat().st_size, "width": img.shape[1], "height": img.shape[0],
            "nonwhite_fraction": nonwhite, "colours": colours}


def is_nontrivial(stats: dict[str, float]) -> bool:
    return (stats["bytes"] > 50_000 and stats["nonwhite_fraction"] > 0.02
            and stats["colours"] > 50)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("html", type=Path)
    ap.add_argument("--png", type=Path, default=None)
    a = ap.parse_args(argv)
    png = a.png or a.html.with_suffix(".png")
    screenshot(a.html, png)
    st = png_stats(png)
    print(f"{png}: {st}")
    return 0 if is_nontrivial(st) else 1


if __name__ == "__main__":
    sys.exit(main())
