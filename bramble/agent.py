"""``bramble agent`` as a process: signals, and the agent's run."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from agent.main import Agent, AgentOptions

logger = logging.getLogger(__name__)


async def run_agent(options: AgentOptions) -> None:
    """Run until SIGINT/SIGTERM; the containers keep running after the agent stops."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    agent = Agent(options)
    task = asyncio.create_task(agent.run(), name="agent")
    waiter = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # raises the agent's error
        logger.info("agent stopping (containers keep running)")
    finally:
        waiter.cancel()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
