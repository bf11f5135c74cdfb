"""Tests of the thread-count policy (lodetools.parallel)."""

import os
import subprocess
import sys
import time

import pytest

from lodetools import parallel


def test_explicit_request_and_small_work():
    assert parallel.cpu_threads(requested=3) == 3
    assert parallel.cpu_threads(requested=0) == 1
    assert parallel.cpu_threads(10, min_work=100) == 1


def test_idle_cores_decide(monkeypatch):
    monkeypatch.setattr(parallel, "usable_cores", lambda: 4)
    monkeypatch.setattr(parallel, "busy_cores", lambda: 0)
    assert parallel.cpu_threads(10_000, min_work=100) == 4
    monkeypatch.setattr(parallel, "busy_cores", lambda: 3)
    assert parallel.cpu_threads(10_000, min_work=100) == 1
    monkeypatch.setattr(parallel, "busy_cores", lambda: 2)
    assert parallel.cpu_threads() == 2
    monkeypatch.setattr(parallel, "_SINGLE", True)       # a worker process
    monkeypatch.setattr(parallel, "busy_cores", lambda: 0)
    assert parallel.cpu_threads() == 1


def test_usable_cores_is_the_affinity():
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this platform")
    assert 1 <= parallel.usable_cores() <= len(os.sched_getaffinity(0))


@pytest.mark.skipif(not os.path.exists("/proc/loadavg"), reason="needs /proc/loadavg")
def test_busy_machine_gets_one_thread():
    """With as many CPU-bound processes as usable cores running, the policy answers 1."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(parallel.usable_cores())]
    try:
        time.sleep(0.3)
        answers = [parallel.cpu_threads() for _ in range(5)]
    finally:
        for p in hogs:
            p.kill()
            p.wait()
    assert max(answers) == 1


def test_single_thread_process_in_a_child():
    code = ("import numba, torch; from lodetools import parallel; parallel.single_thread_process(); "
            "print(parallel.cpu_threads(), numba.get_num_threads(), torch.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["1", "1", "1"]
