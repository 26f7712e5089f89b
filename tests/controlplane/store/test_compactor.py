"""Periodic compaction against every backend, driven tick by tick (no timers)."""

from __future__ import annotations

import pytest

from controlplane.store import Expired, Store
from controlplane.store.compactor import Compactor


async def test_each_tick_compacts_to_the_previous_ticks_revision(store: Store, prefix: str) -> None:
    compactor = Compactor(store, interval=60, min_retain=5)
    kv = await store.create(prefix + "k", b"0")
    first = kv.mod_revision
    kv = await store.update(prefix + "k", b"1", expected_revision=kv.mod_revision)
    assert await compactor.tick() is None  # the first tick only remembers where it was
    at_first_tick = await store.current_revision()
    for i in range(20):
        kv = await store.update(prefix + "k", str(i).encode(), expected_revision=kv.mod_revision)
    floor = await compactor.tick()
    assert floor == at_first_tick  # one interval of history is always kept
    assert first < floor
    with pytest.raises(Expired):
        await store.get(prefix + "k", revision=first)
    assert (await store.get(prefix + "k")).value == b"19"
    # A quiet store: nothing new beyond min_retain, nothing to do.
    assert await compactor.tick() is not None
    assert await compactor.tick() is None


async def test_min_retain_keeps_recent_history(store: Store, prefix: str) -> None:
    compactor = Compactor(store, interval=60, min_retain=1_000_000)
    kv = await store.create(prefix + "k", b"0")
    await compactor.tick()
    for i in range(10):
        kv = await store.update(prefix + "k", str(i).encode(), expected_revision=kv.mod_revision)
    assert await compactor.tick() is None
    assert (await store.get(prefix + "k", revision=kv.create_revision)).value == b"0"
