"""Processes and network: workers die with a killed trial, a local Dask cluster stays on the
loopback interface, progress is plain lines when stderr is not a terminal."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
SPEC = """
name = "procs"
seed = 3
follow_up_days = 60
assessment_days = [28]
[population]
disease = "b-all"
size = 12
[[arms]]
name = "tisa"
product = "tisagenlecleucel"
"""


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            out.append(int(d.name))
    return out


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_when_the_trial_process_is_killed(tmp_path: Path) -> None:
    spec = tmp_path / "procs.toml"
    spec.write_text(SPEC, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from cartsim.cli import app; app()", "trial", "run", str(spec),
         "--out", str(tmp_path / "out"), "--workers", "2", "--chunk-size", "3", "--no-report"],
        env={**os.environ, "PYTHONPATH": str(SRC)}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    workers: list[int] = []
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            workers = [c for c in _children(proc.pid) if _comm(c) == "cartsim-worker"]
            if len(workers) >= 2:
                break
            time.sleep(0.1)
        assert len(workers) >= 2, "the trial did not start two named worker processes"
        time.sleep(1.0)  # let the workers get busy (importing, compiling, simulating)
        os.kill(proc.pid, signal.SIGKILL)  # the parent only, not its process group
        proc.wait()
        deadline = time.time() + 5
        while time.time() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.1)
        survivors = [w for w in workers if _alive(w)]
        assert not survivors, f"workers {survivors} outlived their killed parent"
    finally:
        for pid in [proc.pid, *workers]:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        proc.wait()


def test_local_dask_cluster_listens_on_loopback_only(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``--address`` the scheduler and its dashboard bind to 127.0.0.1 (the dashboard
    used to listen on 0.0.0.0:8787, reachable from the whole network)."""
    distributed = pytest.importorskip("dask.distributed")
    from cartsim.trial.runner import run_trial
    from cartsim.trial.spec import load_spec

    real = distributed.LocalCluster
    seen: dict[str, object] = {}

    class Captured(Exception):
        pass

    def spy(**kwargs):  # type: ignore[no-untyped-def]
        seen["kwargs"] = kwargs
        with real(**{**kwargs, "n_workers": 0}) as cluster:
            sched = cluster.scheduler
            seen["scheduler"] = sched.address
            server = getattr(sched, "http_server", None)
            seen["http"] = [] if server is None else [
                s.getsockname()[0] for s in server._sockets.values()]
        raise Captured

    monkeypatch.setattr(distributed, "LocalCluster", spy)
    spec = tmp_path / "procs.toml"
    spec.write_text(SPEC, encoding="utf-8")
    with pytest.raises(Captured):
        run_trial(load_spec(spec), tmp_path / "out", executor="dask", workers=2, report=False)
    assert str(seen["scheduler"]).startswith("tcp://127.0.0.1:")
    assert seen["http"] and all(h == "127.0.0.1" for h in seen["http"]), seen["http"]  # type: ignore[union-attr]
    kw = seen["kwargs"]
    assert isinstance(kw, dict)
    assert str(kw.get("worker_dashboard_address", "")).startswith("127.0.0.1")


def test_progress_is_plain_lines_when_not_a_terminal() -> None:
    from rich.console import Console

    from cartsim.progress import progress

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False)
    with progress("trial", "patients", 100, console) as update:
        for done in range(0, 101, 5):
            update(done, 100)
    text = buf.getvalue()
    lines = text.splitlines()
    assert "\r" not in text and "\x1b" not in text
    assert lines[0].startswith("trial: 0/100 patients (0%)")
    assert lines[-1].startswith("trial: 100/100 patients (100%)")
    assert 5 <= len(lines) <= 12  # about one line per 10 %, not one per update
    assert all(" elapsed" in ln for ln in lines)


def test_trial_cli_progress_plain_in_a_batch_job(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """``cartsim trial run`` with stderr captured (not a terminal) reports plain lines."""
    from typer.testing import CliRunner

    import cartsim.trial.runner as runner
    from cartsim.cli import app
    from cartsim.errors import CartsimError

    def fake_run(spec, out, *, progress=None, **kw):  # type: ignore[no-untyped-def]
        for done in (0, 6, 12):
            progress(done, 12)
        raise CartsimError("stopped by the test")

    monkeypatch.setattr(runner, "run_trial", fake_run)
    spec = tmp_path / "procs.toml"
    spec.write_text(SPEC, encoding="utf-8")
    r = CliRunner().invoke(app, ["trial", "run", str(spec), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert "trial: 6/12 patients (50%)" in r.output
    assert "trial: 12/12 patients (100%)" in r.output
    assert "\r" not in r.output and "\x1b" not in r.output
