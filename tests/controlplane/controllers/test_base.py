"""The controller base and manager against a real apiserver: caches synced before
workers start, handlers enqueue, reconcile converges, failures are retried, and a
requeue_after comes back."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from api import errors
from api.client import ApiClient
from controlplane.controllers.base import Context, Controller, Expectations, Result
from tests.controlplane.controllers.harness import CONFIGMAPS, running
from tests.support.waiting import wait_for


class Mirror(Controller):
    """Copies a ConfigMap's data["value"] into its annotation "mirror"; fails the first
    reconcile of every key (to prove the retry) and asks to see "again" keys later."""

    name: ClassVar[str] = "mirror"
    failed: ClassVar[set[str]] = set()
    seen_unsynced: ClassVar[bool] = False
    requeued: ClassVar[asyncio.Event]

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.configmaps = self.informer(CONFIGMAPS)
        self.configmaps.add_handlers(
            on_add=self.enqueue, on_update=lambda _old, new: self.enqueue(new)
        )
        self.reconciled: dict[str, int] = {}

    async def reconcile(self, key: str) -> Result | None:
        if not self.configmaps.synced.is_set():
            Mirror.seen_unsynced = True
        obj = self.configmaps.get(key)
        if obj is None or not obj["metadata"]["name"].startswith("mirror-"):
            return None
        self.reconciled[key] = self.reconciled.get(key, 0) + 1
        if self.reconciled[key] == 5:
            Mirror.requeued.set()
        if key not in Mirror.failed:
            Mirror.failed.add(key)
            raise errors.ServiceUnavailable("a transient failure")
        value = (obj.get("data") or {}).get("value", "")
        if (obj["metadata"].get("annotations") or {}).get("mirror") != value:
            ns, name = key.split("/")
            patch = {"metadata": {"annotations": {"mirror": value}}}
            await self.ctx.client.patch(CONFIGMAPS, ns, name, patch)
        return Result(requeue_after=0.05) if name_of(key).endswith("again") else None


def name_of(key: str) -> str:
    return key.rsplit("/", 1)[-1]


async def test_reconcile_converges_retries_and_requeues(client: ApiClient, namespace: str) -> None:
    Mirror.requeued = asyncio.Event()
    await client.create(
        CONFIGMAPS, namespace, {"metadata": {"name": "mirror-before"}, "data": {"value": "1"}}
    )
    async with running(client, [Mirror]):
        # Made before the start: seen through the initial list.
        await wait_for(
            client, CONFIGMAPS, namespace, "mirror-before",
            lambda o: (o["metadata"].get("annotations") or {}).get("mirror") == "1",
            what="mirrored", timeout=10,
        )  # fmt: skip
        await client.create(
            CONFIGMAPS, namespace, {"metadata": {"name": "mirror-again"}, "data": {"value": "2"}}
        )
        # Made after: seen through the watch, after one failed attempt.
        await wait_for(
            client, CONFIGMAPS, namespace, "mirror-again",
            lambda o: (o["metadata"].get("annotations") or {}).get("mirror") == "2",
            what="mirrored", timeout=10,
        )  # fmt: skip
        # Attempts 1 (failed), 2 (patched) and 3 (the patch's own update event); the
        # fourth and fifth come only from requeue_after, since nothing changes any more.
        await asyncio.wait_for(Mirror.requeued.wait(), 10)
    assert not Mirror.seen_unsynced


def test_expectations_hold_a_key_until_observed_or_expired() -> None:
    now = [0.0]
    expectations = Expectations(clock=lambda: now[0])
    assert expectations.satisfied("ns/rs")
    expectations.expect("ns/rs", creations=2)
    expectations.created("ns/rs")
    assert not expectations.satisfied("ns/rs")
    expectations.created("ns/rs")
    assert expectations.satisfied("ns/rs")
    expectations.expect("ns/rs", deletions=1)
    now[0] = Expectations.TTL + 1  # the delete event was lost for good
    assert expectations.satisfied("ns/rs")
