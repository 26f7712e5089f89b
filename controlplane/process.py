"""What a control-plane component needs to run as a process of its own (``python -m
controlplane.scheduler``, ``python -m controlplane.controllers``): the bramble log
format, and a main that stops on SIGTERM or SIGINT and also when standard input reaches
end-of-file. ``bramble server`` holds the other end of that pipe, so a component never
outlives the server, whatever ended it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger(__name__)

LOG_LEVELS = ("debug", "info", "warning", "error")


def setup_logging(level: str) -> None:
    """The same one-line format as the bramble processes (bramble/logs.py)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


async def _watch_parent(stop: asyncio.Event, name: str) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    except (OSError, ValueError):
        return  # no pipe to watch (started by hand from a terminal)
    while await reader.read(4096):
        pass
    logger.info("%s: the parent went away; stopping", name)
    stop.set()


async def run_until_stopped(name: str, component: Coroutine[Any, Any, None]) -> None:
    """Run ``component`` until it returns, a signal arrives or the parent goes away;
    cancelling it lets it release what it holds (its lease)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    parent = asyncio.create_task(_watch_parent(stop, name))
    main = asyncio.create_task(component, name=name)
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({main, stopped}, return_when=asyncio.FIRST_COMPLETED)
    for task in (main, stopped, parent):
        task.cancel()
    for task in (main, stopped, parent):
        with contextlib.suppress(asyncio.CancelledError):
            await task
