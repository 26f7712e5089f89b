"""Which process used the CPU during a phase: the server and its child processes (the
scheduler, the controller manager) told apart by their command lines, plus any other
process the benchmark names, this benchmark, and everything else on the machine."""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench.support import procfs

# A child of ``bramble server``, known by a word of its command line.
_CHILDREN = (("controlplane.controllers", "controllers"), ("scheduler", "scheduler"))


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def processes(*, server: int, **others: int) -> dict[str, int]:
    """``apiserver``, ``scheduler`` and ``controllers`` (the server's children, where they
    run), then ``others`` by the names given, then ``benchmark`` (this process)."""
    found = {"apiserver": server}
    for child in children(server):
        command = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        for word, name in _CHILDREN:
            if word in command and name not in found:
                found[name] = child
                break
    return {**found, **others, "benchmark": os.getpid()}


class CpuMeter:
    """CPU seconds of each named process between ``start`` and ``stop``, as shares of one
    core over the wall time; ``everything else`` is the machine's busy time left over."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._before: dict[str, float] = {}
        self._machine = 0.0
        self._wall = 0.0

    def _read(self) -> dict[str, float]:
        seconds = {}
        for name, pid in self.pids.items():
            try:
                seconds[name] = procfs.cpu_seconds(pid)
            except OSError:  # gone: counts as nothing from here on
                seconds[name] = self._before.get(name, 0.0)
        return seconds

    def start(self) -> None:
        self._before = self._read()
        self._machine = procfs.busy_seconds()
        self._wall = time.perf_counter()

    def stop(self) -> dict[str, float]:
        wall = max(time.perf_counter() - self._wall, 1e-9)
        after = self._read()
        shares = {name: (after[name] - self._before.get(name, 0.0)) / wall for name in after}
        busy = (procfs.busy_seconds() - self._machine) / wall
        shares["everything else"] = max(0.0, busy - sum(shares.values()))
        return shares
