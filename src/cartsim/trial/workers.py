"""Worker-process set-up for the local process pool: die with the parent, named, threads.

Kept free of heavy imports so that it runs as early as possible in a freshly spawned worker
(the chunk task's modules — numba, scipy, pandas — are imported only when the first task
arrives).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

#: How often (seconds) a worker's watchdog thread checks that its parent is still alive.
PARENT_POLL_S = 0.5
#: Process name of a worker as ``ps``/``top`` show it (Linux ``comm``, at most 15 bytes).
WORKER_NAME = b"cartsim-worker"
_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15


def die_with_parent(parent_pid: int) -> None:
    """Make this worker process end when the trial process that started it dies, even by
    ``kill -9`` (which runs no clean-up in the parent).

    On Linux the kernel delivers SIGKILL to the worker as soon as its parent exits
    (``prctl(PR_SET_PDEATHSIG)``), even while the worker holds the GIL inside compiled code,
    and the worker is named ``cartsim-worker``. Everywhere, a daemon thread also polls the
    parent id and exits the worker once it has been re-parented (the only check on macOS).
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
            libc.prctl(_PR_SET_NAME, ctypes.c_char_p(WORKER_NAME), 0, 0, 0)
        except (OSError, AttributeError):  # no usable libc: the watchdog thread still runs
            pass
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_S)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="cartsim-parent-watch", daemon=True).start()


def init_worker(threads: int, parent_pid: int | None = None) -> None:
    """Process-pool initializer: parent-death handling first, then numba's thread count."""
    if parent_pid is not None:
        die_with_parent(parent_pid)
    if "numba" not in sys.modules:
        # a pool of exactly ``threads`` numba threads, idle ones sleeping: numba's OpenMP
        # layer otherwise starts one thread per core that spin-waits between the solver's
        # daily parallel regions and takes the CPU the other workers compute on (a claims run
        # in two workers spent as much system as user time and was slower than one process)
        os.environ["NUMBA_NUM_THREADS"] = str(max(1, threads))
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import numba

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))


#: Most worker processes a command starts by default (a one-study validate process peaked at
#: 0.86 GB resident, ``/usr/bin/time -f %M``, NCI CD19-28z spec).
MAX_DEFAULT_WORKERS = 8


@contextmanager
def process_pool(workers: int, threads: int = 1) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``workers`` spawned processes that end with their parent, each with a
    ``threads``-thread numba pool (:func:`init_worker`); the trial runner's chunks, validate's
    studies and the claims' arms run in it."""
    import multiprocessing as mp

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                             initializer=init_worker,
                             initargs=(threads, os.getpid())) as pool:
        yield pool


def default_workers() -> int:
    """Worker processes of ``validate``/``calibrate``/``claims`` when ``--workers`` is not
    given: the CPU count, at most :data:`MAX_DEFAULT_WORKERS`."""
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS))
