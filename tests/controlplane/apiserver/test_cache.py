"""The watch cache's fan-out: who is woken by a change, and what an idle indexed watch
skips when history is trimmed."""

from __future__ import annotations

from asyncio import sslproto
from pathlib import Path

import orjson
import pytest

from api.resources import resource
from controlplane.apiserver import storage
from controlplane.apiserver.cache import (
    ADDED,
    MODIFIED,
    Change,
    ResourceCache,
    WatchCache,
    Watcher,
    make_entry,
)
from controlplane.apiserver.server import TLS_READ_BUFFER, shrink_tls_buffers
from controlplane.store import open_store

PODS = resource("", "Pod")


def change(name: str, node: str, revision: int, previous: Change | None = None) -> Change:
    pod = {"metadata": {"name": name, "namespace": "default"}, "spec": {"nodeName": node}}
    key = storage.key(PODS, "default", name)
    entry = make_entry(PODS, key, orjson.dumps(pod), revision)
    return Change(MODIFIED if previous else ADDED, entry, previous.entry if previous else None)


def test_indexed_watchers_wake_only_for_their_objects() -> None:
    cache = ResourceCache(PODS, max_events=100, max_bytes=1 << 20)
    everything = Watcher(0)
    on_a = Watcher(0, ("spec.nodeName", "a"))
    on_b = Watcher(0, ("spec.nodeName", "b"))
    for w in (everything, on_a, on_b):
        cache.add_watcher(w)
    first = change("p1", "a", 1)
    cache.apply(first)
    assert everything.event.is_set()
    assert on_a.event.is_set()
    assert not on_b.event.is_set()
    for w in (everything, on_a, on_b):
        w.event.clear()
    # Moving a pod from a to b concerns both: a sees it leave, b sees it arrive.
    cache.apply(change("p1", "b", 2, previous=first))
    assert on_a.event.is_set()
    assert on_b.event.is_set()
    cache.remove_watcher(on_b)
    on_b.event.clear()
    cache.apply(change("p2", "b", 3))
    assert not on_b.event.is_set()


def test_an_idle_indexed_watch_is_carried_past_trimmed_history() -> None:
    cache = ResourceCache(PODS, max_events=8, max_bytes=1 << 20)
    quiet = Watcher(0, ("spec.nodeName", "quiet-node"))
    busy = Watcher(0)  # not indexed: it must read every change, or get 410
    cache.add_watcher(quiet)
    cache.add_watcher(busy)
    for revision in range(1, 40):
        cache.apply(change(f"p{revision}", "elsewhere", revision))
    assert cache.floor > 0
    assert quiet.cursor >= cache.floor  # nothing it cared about was dropped: no 410
    assert cache.changes_after(quiet.cursor) is not None
    assert busy.cursor == 0
    assert cache.changes_after(busy.cursor) is None  # it fell behind: 410, then relist


def test_an_indexed_watcher_is_handed_only_its_changes_once_each() -> None:
    cache = ResourceCache(PODS, max_events=100, max_bytes=1 << 20)
    on_a = Watcher(0, ("spec.nodeName", "a"))
    cache.add_watcher(on_a)
    first = change("p1", "a", 1)
    cache.apply(first)
    cache.apply(change("other", "b", 2))
    second = change("p1", "a", 3, previous=first)  # both states on a: handed once
    cache.apply(second)
    moved = change("p1", "b", 4, previous=second)  # leaving a concerns a
    cache.apply(moved)
    assert on_a.take() == [first, second, moved]
    assert on_a.take() == []


def test_an_indexed_watcher_that_lets_too_much_pile_up_overflows() -> None:
    cache = ResourceCache(PODS, max_events=8, max_bytes=1 << 20)
    slow = Watcher(0, ("spec.nodeName", "a"))
    cache.add_watcher(slow)
    for revision in range(1, 9):
        cache.apply(change(f"p{revision}", "a", revision))
    assert slow.take() is not None
    for revision in range(9, 18):
        cache.apply(change(f"p{revision}", "a", revision))
    assert slow.take() is None  # its stream ends with 410; the client lists again
    cache.apply(change("p18", "a", 18))
    assert slow.take() is None


def test_tls_read_buffers_are_shrunk() -> None:
    shrink_tls_buffers()
    assert sslproto.SSLProtocol.max_size == TLS_READ_BUFFER


async def test_a_write_is_in_the_cache_as_soon_as_the_store_acknowledges_it(
    tmp_path: Path,
) -> None:
    # The apiserver answers a write once its cache has it (read-your-writes); with the
    # embedded store that takes no turn of the event loop: wait_for finishes at once.
    store = await open_store(f"sqlite://{tmp_path / 'state.db'}")
    cache = WatchCache(store, [PODS])
    await cache.start()
    try:
        pod = {"metadata": {"name": "p", "namespace": "default"}, "spec": {"nodeName": "a"}}
        kv = await store.create(storage.key(PODS, "default", "p"), orjson.dumps(pod))
        waiting = cache.wait_for(kv.mod_revision, 10)
        with pytest.raises(StopIteration) as finished:
            waiting.send(None)  # one step: it must not suspend
        assert finished.value.value is True
        assert [e.name for e in cache.resource(PODS).snapshot()] == ["p"]
    finally:
        await cache.stop()
        await store.close()
