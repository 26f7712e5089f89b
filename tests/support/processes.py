"""Processes of a test cluster: started, watched, signalled and found again.

``Service`` is one long-running program (a node's Podman service, agent or sshd) started
in a session of its own, with its output in a log file a person can read after the run;
``wait_for_log`` waits for a line with a deadline, failing early when the program exits.

``start_time``/``alive`` identify a process by pid *and* start time, so that cleanup
from a record written by an earlier run never signals a process that merely reuses the
pid; ``descendants`` and ``comm`` find the children of a process and what it runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


class ClusterError(RuntimeError):
    """A part of the cluster did not come up; the message says which and shows its log."""


def wait_until(
    condition: Callable[[], Any], *, timeout: float, what: str, every: float = 0.1
) -> Any:
    """Poll ``condition`` until it returns something truthy; ClusterError at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = condition()
        if last:
            return last
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})")
        time.sleep(every)  # polling a condition with a deadline


class Service:
    """One long-running program of a node, in the node's namespaces, logging to a file.

    Started in a session of its own so that a Ctrl-C in the terminal reaches the owner
    only, which then stops everything in order."""

    def __init__(self, name: str, command: Sequence[str], log: Path, env: dict[str, str]):
        self.name = name
        self.command = list(command)
        self.log_path = log
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=self.env,
                cwd=self.log_path.parent,  # conmon writes files (an "oom" marker) here
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        if self.running():
            os.kill(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL its whole process group (a crash: no chance to clean up)."""
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM (after SIGCONT, in case it is frozen), then SIGKILL; the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_for_log(self, text: str, *, timeout: float = READY_TIMEOUT, since: int = 0) -> None:
        """Until ``text`` appears in the log after offset ``since``; ClusterError (with the
        log) at the deadline or when the program exits first."""

        def seen() -> bool:
            if text in self.log()[since:]:
                return True
            if not self.running():
                raise ClusterError(f"{self.name} exited before logging {text!r}:\n{self.log()}")
            return False

        try:
            wait_until(seen, timeout=timeout, what=f"{self.name} logging {text!r}")
        except ClusterError as e:
            raise ClusterError(f"{e}\n{self.log()[-4000:]}") from None


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks (field 22 of /proc/PID/stat): with the pid
    it names one process for good, so a reused pid is never mistaken for ours."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def alive(pid: int, start: str | None) -> bool:
    return start is not None and start_time(pid) == start


def descendants(pid: int) -> list[int]:
    """Every descendant of ``pid`` (the server's scheduler process, for one)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def comm(pid: int) -> str:
    """The process's program name (``/proc/PID/comm``), or "" when it is gone."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""
