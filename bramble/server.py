"""``bramble server``: the control-plane process.

Today it opens the store, keeps it compacted and waits for SIGINT or SIGTERM, then
closes the store cleanly (in-flight writes finish, the WAL is checkpointed). The
apiserver, scheduler, controllers and the embedded agent join here as they are built.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

from controlplane.store import default_url, open_store
from controlplane.store.compactor import Compactor

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServerOptions:
    data_dir: Path
    store_url: str | None = None
    compact_interval: float = 300.0


async def run(options: ServerOptions, *, ready: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM. Raises StoreUnusable/Unavailable if the store cannot open."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Install the handlers before anything slow, so an early signal is never lost.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        url = options.store_url or default_url(options.data_dir)
        store = await open_store(url)
        compactor = asyncio.create_task(
            Compactor(store, interval=options.compact_interval).run(), name="store-compactor"
        )
        logger.info("server ready store=%r", store.description)
        if ready is not None:
            ready.set()
        try:
            await stop.wait()
            logger.info("server stopping")
        finally:
            compactor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await compactor
            await store.close()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    logger.info("server stopped")
