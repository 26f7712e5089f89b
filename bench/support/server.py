"""A real ``bramble server`` in a subprocess, for benchmarks.

Started exactly as a person starts it (``python -m bramble server --data-dir D --listen
127.0.0.1:0``, plus ``--no-agent`` where the server has that option), in its own session
so that a Ctrl-C in the terminal reaches only the benchmark, which then stops the server
in order: SIGTERM, a clean shutdown, SIGKILL if that takes too long. The server also
gets SIGTERM if the benchmark itself dies (``procfs.bind``), so no run leaves a server
behind. Its log goes to ``D/server.log``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.support import procfs

_READY = re.compile(r"server ready .*url=(\S+) kubeconfig=(\S+)")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


class ServerFailed(Exception):
    """The server did not start, or died; the message ends with its log's tail."""


@dataclass(frozen=True, slots=True)
class Running:
    pid: int
    url: str
    kubeconfig: Path


class BrambleServer:
    def __init__(
        self,
        data_dir: Path,
        *,
        min_files: int = 4096,
        args: Sequence[str] = (),
        controllers: bool = False,
    ) -> None:
        """``controllers``: keep the server's controller manager (bench/controllers.py
        measures it, with hollow nodes that renew their Leases); off by default."""
        self.data_dir = data_dir
        self._args = list(args)
        self._controllers = controllers
        self.log = data_dir / "server.log"
        self._min_files = min_files
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Running:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "bramble", "server"]
        command += ["--data-dir", str(self.data_dir), "--listen", "127.0.0.1:0"]
        command += [f for f in _no_agent() if not (self._controllers and f == "--no-controllers")]
        command += self._args
        with self.log.open("wb") as log:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=procfs.binder(None, min_files=self._min_files),
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            found = _READY.search(self.log.read_text(errors="replace"))
            if found:
                return Running(self._proc.pid, found.group(1), Path(found.group(2)))
            if self._proc.poll() is not None:
                raise ServerFailed(f"the server exited with {self._proc.returncode}" + self.tail())
            time.sleep(0.1)
        raise ServerFailed(f"no 'server ready' line within {START_TIMEOUT:g}s" + self.tail())

    def check(self) -> None:
        """Raise ServerFailed if the server is gone."""
        if self._proc is not None and self._proc.poll() is not None:
            raise ServerFailed(f"the server exited with {self._proc.returncode}" + self.tail())

    def describe(self, *, wait: float = 0.0) -> str:
        """Whether the server still runs (after up to ``wait`` seconds for it to finish
        exiting), and the end of its log: what a failed run should show."""
        if self._proc is None:
            return "the server was not started"
        try:
            code = self._proc.wait(wait)
        except subprocess.TimeoutExpired:
            return "the server is still running" + self.tail()
        # A negative code is the signal that ended it (-15: SIGTERM from outside).
        return f"the server exited with {code}" + self.tail()

    def stop(self) -> None:
        """Stop the server if it runs; safe to call more than once."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "; its log ends:\n" + "\n".join(text)

    def complaints(self) -> list[str]:
        """The WARNING and ERROR lines of the server's log."""
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return []
        found = []
        for i, line in enumerate(lines):
            if " WARNING " in line or " ERROR " in line:
                # with the traceback that follows, if any: it says what went wrong
                tail = [t for t in lines[i + 1 : i + 40] if t.startswith((" ", "Traceback"))]
                found.append("\n".join([line, *tail]))
        return found


def _no_agent() -> list[str]:
    """``--no-agent`` when this bramble's server embeds a node agent: the benchmark
    measures the control plane, and an agent would compete with it for the CPU. Also
    ``--no-controllers`` when it has them: the benchmarks' hollow nodes renew no Lease
    (or renew it on their own schedule), and the node lifecycle controller would taint
    them unreachable and evict their pods in the middle of a measurement."""
    usage = subprocess.run(
        [sys.executable, "-m", "bramble", "server", "--help"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [flag for flag in ("--no-agent", "--no-controllers") if flag in usage]
