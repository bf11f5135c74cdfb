"""How many CPU threads a parallel kernel may use: one policy for every CPU-parallel path.

Used by the compiled c2f flow kernels (:mod:`lodetools.flow.c2f`), the
averaging kernel (:mod:`lodetools.synth._averaging_kernels`) and the runner's
worker processes (:mod:`lodetools.runner`).

Why a policy and not simply "every core": the parallel kernels synchronise
their threads often (the c2f SOR wavefront once per block of rows). When other
processes keep the cores busy, a thread that waits at such a barrier for a
thread that is not scheduled loses its time slice, and two threads end up
several times slower than one (measured on a 2-core machine with two competing
CPU-bound processes: 11 to 41 s instead of 4 to 9 s for c2f on the 741x500
motorcycle pair, with OpenMP threads that spin; 15 s instead of 6 s with
threads that sleep). So:

* **one thread** for small work (below the caller's ``min_work``: starting a
  parallel region costs more than it saves), in worker processes (the workers
  already share the cores: :func:`single_thread_process`), and when the cores
  are busy;
* otherwise as many threads as there are **idle usable cores**: the usable
  cores are this process's CPU affinity (``os.sched_getaffinity``), capped by a
  cgroup CPU quota; the busy ones are the runnable tasks of the whole machine
  at this instant other than the caller (``procs_running`` in ``/proc/loadavg``,
  the median of three reads), so a decision follows the load of the moment,
  not the one-minute average (which lags by a minute);
* numba's **workqueue** threading layer (unless the user chose one with
  ``NUMBA_THREADING_LAYER``): its waiting threads sleep on a condition
  variable, whichever library loaded OpenMP first. numba's OpenMP layer shares
  the process's OpenMP runtime: when torch has loaded it, its threads spin at
  every barrier and ``OMP_WAIT_POLICY`` set afterwards is ignored.

Callers decide once per unit of work (c2f: per pyramid level), so a load that
starts during a run is seen at the next level.
"""

from __future__ import annotations

import os
import sys

_SINGLE = False


def numba_started() -> bool:
    """Whether numba has loaded its CPU target's implementation registries in this process.

    numba does so on the first kernel it compiles or loads from its cache,
    whichever kernel it is (importing ``numba.np.npyimpl`` with ``scipy.linalg``:
    with ``import numba``, about 0.45-0.65 s on the 2-core development machine);
    after that a cached kernel loads in about 15 ms. The numpy engines of the
    demosaic and the c2f flow (equal to the numba kernels bit for bit) are
    chosen for small inputs only while this is ``False``.

    Returns
    -------
    bool
    """
    return "numba.np.npyimpl" in sys.modules


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup (v2) CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max", encoding="ascii") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            n = min(n, max(1, int(int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


def busy_cores() -> int:
    """Runnable tasks on the machine right now other than the calling thread (``/proc/loadavg``).

    0 where the file does not exist (not Linux): then every usable core counts as idle.
    """
    reads = []
    for _ in range(3):
        try:
            with open("/proc/loadavg", encoding="ascii") as f:
                reads.append(int(f.read().split()[3].split("/")[0]))
        except (OSError, ValueError, IndexError):
            return 0
    return max(0, sorted(reads)[1] - 1)


def cpu_threads(work: int | None = None, *, min_work: int = 0, requested: int | None = None) -> int:
    """Threads a parallel kernel should use now (see the module docstring).

    Parameters
    ----------
    work : int, optional
        Size of the work (e.g. pixels); below ``min_work`` one thread.
    min_work : int
        Smallest work worth several threads.
    requested : int, optional
        An explicit thread count from the user: returned as is (at least 1).

    Returns
    -------
    int
        At least 1, at most :func:`usable_cores`.
    """
    if requested is not None:
        return max(1, int(requested))
    if _SINGLE or (work is not None and work < min_work):
        return 1
    cores = usable_cores()
    if cores == 1:
        return 1
    return max(1, min(cores, cores - busy_cores()))


def use_numba_workqueue() -> None:
    """Select numba's workqueue threading layer (sleeping waiters) unless the user chose a layer.

    Takes effect only before numba's first parallel launch in the process.
    """
    if "NUMBA_THREADING_LAYER" not in os.environ:
        import numba

        numba.config.THREADING_LAYER = "workqueue"


def single_thread_process() -> None:
    """Make this process compute on one thread (worker processes: the workers already share the cores).

    Sets the policy (:func:`cpu_threads` returns 1), numba's, OpenCV's and torch's thread counts.
    """
    global _SINGLE
    _SINGLE = True
    import sys

    os.environ["NUMBA_NUM_THREADS"] = "1"
    if "numba" in sys.modules:
        sys.modules["numba"].set_num_threads(1)
    try:
        import cv2

        cv2.setNumThreads(1)
    except Exception:
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
