"""Load-generator processes driven by the benchmark.

Each worker is a fresh interpreter (multiprocessing "spawn") running one ``Role`` on its
own event loop, so the load's Python work never shares an interpreter lock with the
benchmark or with another role. The benchmark sends commands (a method name and its
arguments) down a pipe and reads back the result or the child's traceback. A worker
ignores SIGINT (a Ctrl-C is the benchmark's to handle), is bound to its CPUs and dies
with the benchmark (``procfs.bind``); ``stop_all`` ends them in any case.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import signal
import time
import traceback
from collections.abc import Set
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from api import runner
from bench.support import procfs
from bench.support.load import Role
from bench.support.readers import Reader
from bench.support.watchers import Watchers
from bench.support.writers import Writer

ROLES: dict[str, type[Role]] = {"writer": Writer, "reader": Reader, "watchers": Watchers}


class WorkerFailed(Exception):
    """A worker raised or died; the message carries its traceback or exit code."""


class Worker:
    def __init__(
        self, role: str, kubeconfig: Path, *, cpus: Set[int] | None, min_files: int = 4096
    ) -> None:
        self.role = role
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._proc = context.Process(
            target=_child,
            args=(role, child, cpus, kubeconfig, min_files),
            name=f"bench-{role}",
            daemon=True,
        )
        self._proc.start()
        child.close()

    @property
    def pid(self) -> int:
        assert self._proc.pid is not None
        return self._proc.pid

    def send(self, command: str, *args: object) -> None:
        self._conn.send((command, args))

    def result(self, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while not self._conn.poll(0.2):
            if not self._proc.is_alive():
                raise WorkerFailed(f"the {self.role} worker died (exit {self._proc.exitcode})")
            if time.monotonic() > deadline:
                raise WorkerFailed(f"the {self.role} worker did not answer in {timeout:g}s")
        try:
            status, value = self._conn.recv()
        except (EOFError, OSError):  # it died: the pipe reads as closed
            self._proc.join(1)
            raise WorkerFailed(
                f"the {self.role} worker died (exit {self._proc.exitcode})"
            ) from None
        if status == "error":
            raise WorkerFailed(f"the {self.role} worker failed:\n{value}")
        return value

    def call(self, command: str, *args: object, timeout: float = 600.0) -> Any:
        self.send(command, *args)
        return self.result(timeout)


def stop_all(workers: list[Worker], *, grace: float = 2.0) -> None:
    """Ask every worker to exit, then end those still running (one busy with a long
    command only reads the request after it): SIGTERM, and SIGKILL if that fails."""
    for worker in workers:
        with contextlib.suppress(OSError):
            worker._conn.send(None)
    deadline = time.monotonic() + grace
    for worker in workers:
        worker._proc.join(max(0.0, deadline - time.monotonic()))
    for worker in workers:
        if worker._proc.is_alive():
            worker._proc.terminate()
    for worker in workers:
        worker._proc.join(5)
        if worker._proc.is_alive():
            worker._proc.kill()
            worker._proc.join()
        worker._conn.close()


def _child(
    role: str, conn: Connection, cpus: Set[int] | None, kubeconfig: Path, min_files: int
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    procfs.bind(cpus, min_files=min_files)
    # On the loop bramble's own processes use (uvloop where installed): the load's TLS
    # and HTTP cost less of the one CPU the three load processes share, so less of
    # their own lateness ends up in what they time.
    runner.run(_serve(ROLES[role](kubeconfig), conn))


async def _serve(role: Role, conn: Connection) -> None:
    await role.setup()
    try:
        while True:
            message = await asyncio.to_thread(conn.recv)
            if message is None:
                return
            command, args = message
            try:
                value = await getattr(role, command)(*args)
            except Exception:
                conn.send(("error", traceback.format_exc()))
            else:
                conn.send(("ok", value))
    finally:
        await role.close()
