"""Hollow nodes: many real node agents on the fake runtime in one process, as kubemark
runs hollow kubelets, for benchmarks that need nodes without machines.

    python -m bench.support.hollow --kubeconfig FILE --data-dir DIR --nodes N [--prefix P]

Each hollow node is the real ``agent.main.Agent`` (registration, Lease every 10 s, node
status, the pod informer on ``spec.nodeName``, pod workers, pod status writes, its
endpoint), with ``runtime="fake"`` (agent/runtime/fake.py: containers start at once and
run until stopped). What the agents would otherwise share or collide on is given per
node: the data directory (checkpoint, volumes, serving certificate), the endpoint (on
127.0.0.1, port 0: any free one), the node name. ``Agent`` installs no signal handlers
and configures no logging (``bramble agent``'s process does that), so one process can
hold many. What stays shared: the hardware probe reads this machine for every node (the
capacity and conditions of each hollow node are this machine's; pods without requests
fit 110 per node), and the process's logging (WARNING and above, to stderr).

One interpreter for all the agents: it costs one core at most, against about 50 MB and
a core's share per ``bramble agent`` process. The benchmark reads this process's CPU to
tell the agents' share from the control plane's.

Logs ``event loop lag seconds=S`` when the shared loop ran more than a second late (every
agent's Lease renewal was late by as much). Prints ``hollow nodes ready count=N`` once
every agent has registered its Node; runs
until SIGTERM or SIGINT, then stops every agent (as ``bramble agent`` stops: the fake
containers vanish with the process).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from agent.main import Agent, AgentOptions
from api import runner

logger = logging.getLogger(__name__)


def node_name(prefix: str, index: int) -> str:
    return f"{prefix}-{index:04d}"


def options_for(
    name: str, *, kubeconfig: Path, data_dir: Path, lease_interval: float
) -> AgentOptions:
    return AgentOptions(
        data_dir=data_dir / name,
        name=name,
        kubeconfig=kubeconfig,
        runtime="fake",
        address="127.0.0.1",
        endpoint_host="127.0.0.1",
        endpoint_port=0,
        lease_interval=lease_interval,
    )


async def run(
    kubeconfig: Path, data_dir: Path, *, count: int, prefix: str, lease_interval: float
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    agents = [
        Agent(options_for(node_name(prefix, i), kubeconfig=kubeconfig, data_dir=data_dir,
                          lease_interval=lease_interval))
        for i in range(count)
    ]  # fmt: skip
    readies = [asyncio.Event() for _ in agents]
    tasks = [
        asyncio.create_task(a.run(ready=r), name=f"agent {a.options.name}")
        for a, r in zip(agents, readies, strict=True)
    ]
    stopping = asyncio.create_task(stop.wait())
    lag = asyncio.create_task(watch_lag())
    try:
        all_ready = asyncio.create_task(_all(readies))
        done, _ = await asyncio.wait({all_ready, stopping, *tasks}, return_when="FIRST_COMPLETED")
        if all_ready in done:
            print(f"hollow nodes ready count={count}", flush=True)
            done, _ = await asyncio.wait({stopping, *tasks}, return_when="FIRST_COMPLETED")
        all_ready.cancel()
        for task in done:
            if task is not stopping:
                # An agent that ended on its own is a failed run: say which and why.
                error = task.exception()
                raise SystemExit(f"{task.get_name()} ended: {error!r}")
    finally:
        stopping.cancel()
        lag.cancel()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def watch_lag(*, every: float = 0.5, report: float = 1.0) -> None:
    """Log when the event loop ran late by more than ``report`` seconds: the agents'
    Lease renewals and status writes were late by as much (one loop for all of them)."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(every)
        late = loop.time() - before - every
        if late > report:
            logger.warning("event loop lag seconds=%.1f", late)


async def _all(events: list[asyncio.Event]) -> None:
    for event in events:
        await event.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--prefix", default="hollow")
    parser.add_argument("--lease-interval", type=float, default=10.0)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )  # fmt: skip
    runner.run(
        run(args.kubeconfig, args.data_dir, count=args.nodes, prefix=args.prefix,
            lease_interval=args.lease_interval)
    )  # fmt: skip


if __name__ == "__main__":
    main()
