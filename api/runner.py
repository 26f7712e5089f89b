"""Running a bramble process's main coroutine: on uvloop where it is installed (libuv's
loop and compiled TLS: the apiserver's writes and lists take about half the time, see
docs/benchmarks.md), on asyncio's own loop otherwise (32-bit ARM has no uvloop wheels).
Every long-lived process (server, agent, scheduler, controllers) starts through here."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

from api import gctune

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the fastest loop available; ``BRAMBLE_LOOP=asyncio``
    forces asyncio's (to compare, or to rule the loop out when debugging). The garbage
    collector is tuned for a long-running server first (api/gctune.py)."""
    gctune.tune()
    if os.environ.get("BRAMBLE_LOOP") != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run(main)
    return asyncio.run(main)
