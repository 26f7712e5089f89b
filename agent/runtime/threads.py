"""A thread pool whose threads never hold up the agent's exit (for the Podman bridge).

``concurrent.futures.ThreadPoolExecutor`` joins its threads when the interpreter exits,
so a Podman call still running then (a stop waiting out a 30-second grace period, a
pull) kept a stopped agent alive until the call returned. The agent abandons such calls
instead: Podman finishes the operation by itself, and whoever relists next sees the
outcome. Daemon threads do exactly that. Otherwise this is a plain pool: threads start
on demand up to ``max_workers``, an idle one takes the next call, enough for
``loop.run_in_executor``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_Work = tuple[Future[Any], Callable[[], Any]]


class DaemonThreadPool(Executor):
    def __init__(self, max_workers: int, *, name: str) -> None:
        self._max_workers = max_workers
        self._name = name
        self._work: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)  # released by a thread that finished a call
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._shutdown = False

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._work.put((future, lambda: fn(*args, **kwargs)))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self._max_workers:
                thread = threading.Thread(
                    target=self._run, name=f"{self._name}_{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        return future

    def _run(self) -> None:
        while (work := self._work.get()) is not None:
            future, call = work
            if future.set_running_or_notify_cancel():
                try:
                    result = call()
                except BaseException as e:  # handed to whoever waits on the future
                    future.set_exception(e)
                else:
                    future.set_result(result)
            del work, future, call  # no reference to a result while idle
            self._idle.release()
        self._work.put(None)  # the end, for the next thread

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                while True:
                    try:
                        work = self._work.get_nowait()
                    except queue.Empty:
                        break
                    if work is not None:
                        work[0].cancel()
            self._work.put(None)
        if wait:
            for thread in self._threads:
                thread.join()
