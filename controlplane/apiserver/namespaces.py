"""Namespace deletion: empty a terminating namespace, then let it go.

A deleted namespace gets ``deletionTimestamp`` and phase Terminating (objects.py) but
keeps the ``kubernetes`` finalizer in ``spec.finalizers``. This loop deletes everything
in it (pods gracefully, as Kubernetes' namespace controller does) and, once nothing is
left, removes that finalizer, which completes the deletion. Level-triggered: it looks at
the cache each round, so a restart simply carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from api import errors
from api.resources import RESOURCES, by_kind
from controlplane.apiserver.cache import Watcher
from controlplane.apiserver.objects import DeleteOptions, Objects

logger = logging.getLogger(__name__)

NAMESPACES = by_kind("", "Namespace")
assert NAMESPACES is not None
_CONTENT = [r for r in RESOURCES if r.namespaced and r.group != "metrics.k8s.io"]
_RECHECK = 1.0  # seconds between rounds while a namespace is still emptying


class NamespaceFinalizer:
    def __init__(self, objects: Objects) -> None:
        self._objects = objects

    def terminating(self) -> list[str]:
        assert NAMESPACES is not None
        cache = self._objects.cache.resource(NAMESPACES)
        return [e.name for e in cache.objects.values() if e.deleting]

    async def run(self) -> None:
        assert NAMESPACES is not None
        cache = self._objects.cache.resource(NAMESPACES)
        watcher = Watcher(0)  # woken by every namespace change
        cache.add_watcher(watcher)
        try:
            await self._loop(watcher)
        finally:
            cache.remove_watcher(watcher)

    async def _loop(self, watcher: Watcher) -> None:
        while True:
            watcher.event.clear()
            pending = self.terminating()
            for name in pending:
                try:
                    await self.finalize(name)
                except errors.ApiError as e:
                    logger.warning("namespace cleanup failed namespace=%s error=%s", name, e)
            timeout = _RECHECK if pending else None
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow the
            # cancel of the server's stop when a change arrives at the same moment, and
            # the stop then waits for this task forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await watcher.event.wait()

    async def finalize(self, namespace: str) -> bool:
        """One round for one namespace; True when it is gone."""
        while True:
            remaining, removed_any = 0, False
            for resource in _CONTENT:
                for entry in self._objects.cache.resource(resource).snapshot(namespace):
                    if entry.deleting:
                        remaining += 1
                        continue  # already going
                    try:
                        _, removed = await self._objects.delete(
                            resource, namespace, entry.name, DeleteOptions()
                        )
                    except errors.NotFound:
                        continue
                    removed_any = removed_any or removed
                    remaining += 0 if removed else 1
            if remaining:
                return False
            # What went at once is not waited for (no round's delay), but the namespace
            # goes only after a pass that found it empty: events may still arrive.
            if not removed_any:
                break
        assert NAMESPACES is not None

        def drop_finalizer(obj: dict[str, Any]) -> dict[str, Any]:
            spec = obj.setdefault("spec", {})
            spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != "kubernetes"]
            if not spec["finalizers"]:
                del spec["finalizers"]
            return obj

        with contextlib.suppress(errors.NotFound):
            await self._objects.guaranteed_update(
                NAMESPACES, None, namespace, drop_finalizer, admit=False
            )
        logger.info("namespace deleted namespace=%s", namespace)
        return True
