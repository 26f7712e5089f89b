"""``python -m controlplane.scheduler --kubeconfig FILE [--config FILE]``: the scheduler
as a process of its own, a client of the apiserver like any other.

``bramble server`` starts it this way by default, so that scheduling and the apiserver's
JSON work each have an interpreter (and a core) of their own (see bramble/server.py for
the measurement). It stops on SIGTERM or SIGINT, and also when its standard input
reaches end-of-file: the server holds the other end, so the scheduler never outlives it
(whatever ended the server). Either way the lease is released on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from controlplane.scheduler.config import ConfigError, SchedulerConfig, load
from controlplane.scheduler.run import run_scheduler

logger = logging.getLogger("controlplane.scheduler")


def _logging(level: str) -> None:
    """The same one-line format as the bramble processes (bramble/logs.py)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


async def _watch_parent(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    except (OSError, ValueError):
        return  # no pipe to watch (started by hand from a terminal)
    while await reader.read(4096):
        pass
    logger.info("scheduler: the parent went away; stopping")
    stop.set()


async def _main(kubeconfig: Path, config: SchedulerConfig, identity: str | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    parent = asyncio.create_task(_watch_parent(stop))
    scheduler = asyncio.create_task(run_scheduler(kubeconfig, config=config, identity=identity))
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({scheduler, stopped}, return_when=asyncio.FIRST_COMPLETED)
    for task in (scheduler, stopped, parent):
        task.cancel()
    for task in (scheduler, stopped, parent):
        with contextlib.suppress(asyncio.CancelledError):
            await task


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m controlplane.scheduler")
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--config", type=Path, help="a KubeSchedulerConfiguration file")
    parser.add_argument("--identity", help="the leader election identity (default: host_uuid)")
    parser.add_argument(
        "--log-level", default="info", choices=("debug", "info", "warning", "error")
    )
    args = parser.parse_args(argv)
    _logging(args.log_level)
    try:
        config = load(args.config) if args.config else SchedulerConfig()
    except ConfigError as e:
        sys.stderr.write(f"scheduler: error: {e}\n")
        return 2
    asyncio.run(_main(args.kubeconfig, config, args.identity))
    return 0


if __name__ == "__main__":
    sys.exit(main())
