"""Percentiles, durations as text, and the line that names the machine."""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path


def pct(samples: Sequence[float], q: float) -> float:
    """The ``q`` quantile (nearest rank); ``inf`` samples count as the slowest."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(seconds: float) -> str:
    if math.isinf(seconds):
        return "never"
    return f"{seconds * 1000:.2f} ms"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def machine() -> str:
    """CPU model, cores and Python, as every benchmark's first line starts, and how fast
    Python runs on it at the moment: a shared VM's speed varies (the same code measured
    1.8x apart within an hour here), so figures are only comparable at similar speeds."""
    return (
        f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{python_speed():.1f} M loop steps/s now"
    )


def python_speed(steps: int = 1_000_000) -> float:
    """Millions of iterations per second of a plain Python loop; best of three."""
    best = math.inf
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(steps):
            total += i
        best = min(best, time.perf_counter() - started)
    return steps / best / 1e6
