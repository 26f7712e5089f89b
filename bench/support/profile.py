"""Where a process spends its time: py-spy samples, summarised per function.

``Spy`` runs ``py-spy record --format raw`` (folded stacks: one line per distinct
stack, ``frame;frame;... count``) on a running process; ``summary`` turns the file into
the functions that took the most samples by themselves ("self") and with what they
called ("total"). Only the thread holding the interpreter lock is sampled, so the
shares are of the time the server spends running Python (the SQLite thread's C work and
every thread's idle waits are left out).
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path

from bench.support import procfs

RATE = 100  # samples per second
_ROOT = str(Path(__file__).resolve().parents[2]) + "/"  # the repository
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>.*?)(?::\d+)?\)$")


class Spy:
    """py-spy recording one process for a while, on the load's CPUs."""

    def __init__(self, program: str, out: Path, *, cpus: Set[int] | None) -> None:
        self.program = program
        self.out = out
        self._cpus = cpus
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, pid: int, *, seconds: float) -> None:
        self._proc = subprocess.Popen(
            [
                self.program,
                "record",
                "--format",
                "raw",
                "--full-filenames",
                "--rate",
                str(RATE),
                "--gil",  # only the thread holding the GIL: where Python time goes
                "--nonblocking",  # never pause the server (its latencies are being measured)
                "--duration",
                str(max(1, round(seconds))),
                "--pid",
                str(pid),
                "--output",
                str(self.out),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=procfs.binder(self._cpus),
        )

    def finish(self) -> str:
        """Wait for the recording to be written; "" or what went wrong."""
        if self._proc is None:
            return "py-spy was not started"
        _, err = self._proc.communicate(timeout=60)
        if self._proc.returncode != 0 or not self.out.exists():
            return (
                f"py-spy exited with {self._proc.returncode}: {err.decode(errors='replace')[-300:]}"
            )
        return ""

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait()


@dataclass(frozen=True, slots=True)
class Row:
    function: str
    self_share: float
    total_share: float


def summary(folded: Path, *, top: int = 15) -> tuple[int, list[Row]]:
    """(samples, the ``top`` functions by self time)."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in folded.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = [_name(f) for f in stack.split(";")]
        own[frames[-1]] += count
        for name in set(frames):
            total[name] += count
    rows = [Row(name, n / samples, total[name] / samples) for name, n in own.most_common(top)]
    return samples, rows


def _name(frame: str) -> str:
    """``function (path/to/module.py:123)`` -> ``module.py:function``, with the path
    shortened to the package (``controlplane/apiserver/watch.py``) or library."""
    found = _FRAME.match(frame)
    if found is None:
        return frame
    path = found.group("file")
    for marker in ("site-packages/", "/lib/python3", _ROOT):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    if path.startswith(".") and "/" in path:  # "/lib/python3" leaves ".11/asyncio/..."
        path = path.split("/", 1)[1]
    return f"{path}:{found.group('function')}"
