"""The Podman bridge's thread pool: a plain bounded pool, except that its threads never
hold up the process's exit."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from concurrent.futures import CancelledError

import pytest

from agent.runtime.threads import DaemonThreadPool


def test_results_and_exceptions_come_back() -> None:
    pool = DaemonThreadPool(2, name="t")
    try:
        assert pool.submit(sum, [1, 2, 3]).result(timeout=5) == 6
        with pytest.raises(ZeroDivisionError):
            pool.submit(lambda: 1 // 0).result(timeout=5)
    finally:
        pool.shutdown()


def test_at_most_max_workers_run_at_once_and_idle_threads_are_reused() -> None:
    pool = DaemonThreadPool(2, name="t")
    gate = threading.Event()
    running: list[str] = []
    lock = threading.Lock()

    def work() -> str:
        with lock:
            running.append(threading.current_thread().name)
        gate.wait(5)
        return threading.current_thread().name

    try:
        futures = [pool.submit(work) for _ in range(5)]
        deadline = time.monotonic() + 5
        while len(running) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # polling a condition with a deadline
        assert len(running) == 2  # the other three wait for a thread
        gate.set()
        names = {f.result(timeout=5) for f in futures}
        assert names <= {"t_0", "t_1"}
    finally:
        pool.shutdown()


def test_shutdown_cancels_what_has_not_started_and_refuses_more() -> None:
    pool = DaemonThreadPool(1, name="t")
    gate = threading.Event()
    busy = pool.submit(gate.wait, 5)
    queued = pool.submit(lambda: "never")
    pool.shutdown(wait=False, cancel_futures=True)
    with pytest.raises(RuntimeError):
        pool.submit(lambda: None)
    gate.set()
    assert busy.result(timeout=5) is True
    with pytest.raises(CancelledError):
        queued.result(timeout=5)


async def test_it_serves_run_in_executor() -> None:
    pool = DaemonThreadPool(1, name="t")
    try:
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(pool, pow, 2, 10) == 1024
    finally:
        pool.shutdown(wait=False)  # joining would block the loop


def test_a_call_still_running_does_not_hold_up_the_exit() -> None:
    script = (
        "import time\n"
        "from agent.runtime.threads import DaemonThreadPool\n"
        "pool = DaemonThreadPool(1, name='t')\n"
        "pool.submit(time.sleep, 60)\n"
        "pool.shutdown(wait=False)\n"
    )
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
    assert time.monotonic() - started < 10  # not the call's 60 s
