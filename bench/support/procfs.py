"""Reading a process's memory and CPU time from /proc, and binding a child process to
CPUs and to the life of its parent (Linux only, as the benchmarks are)."""

from __future__ import annotations

import ctypes
import os
import resource
import signal
from collections.abc import Callable, Set
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_TICKS = os.sysconf("SC_CLK_TCK")


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(f"/proc/{pid}/status has no {field}")


def rss_bytes(pid: int) -> int:
    """Resident memory now (VmRSS)."""
    return _status_kib(pid, "VmRSS") * 1024


def peak_rss_bytes(pid: int) -> int:
    """The largest resident memory the process ever had (VmHWM)."""
    return _status_kib(pid, "VmHWM") * 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of all the process's threads so far."""
    # The command name (field 2) may hold spaces; the fields after its ")" are fixed.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def busy_seconds() -> float:
    """CPU time the whole machine has spent busy (all CPUs, all processes) since boot."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICKS


def load_cpus() -> frozenset[int] | None:
    """The CPU the load runs on: the last one allowed, None when only one is allowed."""
    cpus = sorted(os.sched_getaffinity(0))
    return frozenset(cpus[-1:]) if len(cpus) >= 2 else None


def bind(cpus: Set[int] | None, *, min_files: int = 0) -> None:
    """In a child process, first thing: die with the parent (SIGTERM), run only on
    ``cpus``, and allow at least ``min_files`` open files (1000 watches are 1000
    sockets; the default soft limit is often 1024)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if cpus:
        os.sched_setaffinity(0, cpus)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < min_files:
        wanted = min_files if hard == resource.RLIM_INFINITY else min(min_files, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def binder(cpus: Set[int] | None, *, min_files: int = 0) -> Callable[[], None]:
    """``bind`` as a ``subprocess.Popen(preexec_fn=...)``: it runs between fork and
    exec, so every thread the program later starts inherits the CPU set."""
    return lambda: bind(cpus, min_files=min_files)
