"""The one guard every long-lived agent task starts through (kopf's ``aiotasks.guard``).

The agent must never lose a running workload because something else failed (issue 4):
a loop that raises (a bug, a full or read-only disk, an error nobody foresaw) is logged
with its traceback and started again after a pause, instead of ending the TaskGroup and
with it the agent. A loop that returns, which a long-lived one never should, is logged
and restarted too. Cancellation passes through: it is how the agent stops.

One-shot tasks (``restart_after=None``) are logged when they fail and then end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

logger = logging.getLogger(__name__)

RESTART_AFTER = 5.0  # seconds: long enough not to spin on a fault that persists


async def guard(
    run: Callable[[], Coroutine[Any, Any, None]],
    *,
    name: str,
    restart_after: float | None = RESTART_AFTER,
) -> None:
    """Run ``run()``; when it raises or returns, log it and (unless ``restart_after`` is
    None) run it again after ``restart_after`` seconds."""
    while True:
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("agent task failed task=%s", name)
        else:
            if restart_after is None:
                return
            logger.error("agent task ended unexpectedly task=%s", name)
        if restart_after is None:
            return
        await asyncio.sleep(restart_after)
