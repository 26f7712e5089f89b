"""Periodic compaction, the same for every backend, so the store stays bounded.

As the Kubernetes apiserver does for etcd, each tick compacts to the revision the store
had at the previous tick, so at least one interval of history always remains for
watchers that reconnect; ``min_retain`` keeps a floor of revisions on a quiet cluster.
"""

from __future__ import annotations

import asyncio
import logging

from controlplane.store.errors import StoreError
from controlplane.store.interface import Store

logger = logging.getLogger(__name__)


class Compactor:
    def __init__(self, store: Store, *, interval: float = 300.0, min_retain: int = 1000) -> None:
        self._store = store
        self._interval = interval
        self._min_retain = min_retain
        self._previous: int | None = None  # the revision at the previous tick
        self.compacted = 0

    async def tick(self) -> int | None:
        """One round: compact if there is history old enough; return the new floor."""
        current = await self._store.current_revision()
        previous, self._previous = self._previous, current
        if previous is None:
            return None
        target = min(previous, current - self._min_retain)
        if target <= self.compacted:
            return None
        await self._store.compact(target)
        self.compacted = target
        logger.info("store compacted revision=%d current=%d", target, current)
        return target

    async def run(self) -> None:
        """Tick every interval until cancelled; a failed round is logged and retried."""
        while True:
            try:
                await self.tick()
            except StoreError as e:
                logger.warning("store compaction failed error=%s", e)
            await asyncio.sleep(self._interval)
