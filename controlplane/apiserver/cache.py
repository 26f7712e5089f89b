"""The watch cache: every object in memory, fed by one store watch, serving lists and
watches without reading the store.

At start the cache lists everything under ``/registry/`` at revision R, then watches from
R. Each change goes to its resource's ``ResourceCache``: the current objects by key, and
a bounded history of changes that watches replay from. One global ``revision`` (the
newest change seen, of any resource) is what lists report and what watches resume from.

Objects are kept as their JSON bytes with ``resourceVersion`` already set, plus the few
facts selectors need (labels, selectable fields): a list is a join of byte strings, a
watch event one more, and memory stays close to the size of the JSON.

If the store watch fails the cache resumes from its revision; if that history was
compacted (the cache fell too far behind) it lists again and starts a new history, and
watches older than that get 410 Gone, after which clients relist (as with Kubernetes).
All of this runs on the event loop.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from api.resources import Resource
from controlplane import store as st
from controlplane.apiserver import fields, storage

logger = logging.getLogger(__name__)

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"


@dataclass(frozen=True, slots=True)
class Entry:
    """One object as the cache holds it."""

    key: str
    namespace: str
    name: str
    revision: int
    raw: bytes  # the object's JSON, metadata.resourceVersion included
    labels: Mapping[str, str]
    fields: Mapping[str, str]
    deleting: bool  # metadata.deletionTimestamp is set

    def obj(self) -> dict[str, Any]:
        """A fresh, mutable copy of the object."""
        value: dict[str, Any] = orjson.loads(self.raw)
        return value


@dataclass(frozen=True, slots=True)
class Change:
    type: str  # ADDED, MODIFIED, DELETED
    entry: Entry  # the new state; for DELETED the last state, at the deletion's revision
    previous: Entry | None  # the state before a MODIFIED or DELETED

    @property
    def revision(self) -> int:
        return self.entry.revision


def make_entry(resource: Resource, key: str, value: bytes, revision: int) -> Entry:
    obj = storage.decode(value, revision)
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    return Entry(
        key=key,
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        revision=revision,
        raw=orjson.dumps(obj),
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
        fields=fields.selectable(
            resource.group, resource.kind, obj, namespaced=resource.namespaced
        ),
        deleting=bool(meta.get("deletionTimestamp")),
    )


# Fields a watch can be indexed by (as Kubernetes' watch cache "triggers"): a watch whose
# field selector pins one of them is woken only by changes to objects with that value.
INDEXED_FIELDS = ("spec.nodeName", "metadata.name")


class Watcher:
    """One watch's place in a resource's history, and its wake-up.

    ``cursor`` is the revision up to which the watch has seen (or skipped) every change;
    ``event`` is set when a change it may care about arrives. An indexed watcher is woken
    only by changes whose object (new or previous state) has ``index``'s value, and is
    handed those changes (``pending``, as Kubernetes' cacheWatcher has its input
    channel): with hundreds of agents each watching its node's pods, one woken watch
    must not read every other node's changes since it last ran. A watch that lets more
    than the cache's history pile up ``overflowed``: it ends with 410 and the client
    lists again.
    """

    __slots__ = ("cursor", "event", "index", "overflowed", "pending")

    def __init__(self, cursor: int, index: tuple[str, str] | None = None) -> None:
        self.cursor = cursor
        self.index = index
        self.event = asyncio.Event()
        self.pending: list[Change] = []
        self.overflowed = False

    def offer(self, change: Change, limit: int) -> None:
        """A change that concerns this indexed watcher."""
        if len(self.pending) >= limit:
            self.overflowed = True
            self.pending.clear()
        elif not self.overflowed:
            self.pending.append(change)
        self.event.set()

    def take(self) -> list[Change] | None:
        """The changes offered since the last take, or None once overflowed."""
        if self.overflowed:
            return None
        changes, self.pending = self.pending, []
        return changes


_by_key = operator.attrgetter("key")


class ResourceCache:
    """The objects of one resource, the recent history of their changes, and the
    watchers to wake when a change arrives."""

    def __init__(self, resource: Resource, *, max_events: int, max_bytes: int) -> None:
        self.resource = resource
        self.objects: dict[str, Entry] = {}
        self._history: list[Change] = []
        self._history_bytes = 0
        self._max_events = max_events
        self._max_bytes = max_bytes
        # Every change after `floor` is in the history; watches from older revisions
        # cannot be served (410).
        self.floor = 0
        self._watchers: set[Watcher] = set()  # woken by every change
        self._indexed: dict[tuple[str, str], set[Watcher]] = {}

    def add_watcher(self, watcher: Watcher) -> None:
        if watcher.index is None:
            self._watchers.add(watcher)
        else:
            self._indexed.setdefault(watcher.index, set()).add(watcher)

    def remove_watcher(self, watcher: Watcher) -> None:
        if watcher.index is None:
            self._watchers.discard(watcher)
            return
        peers = self._indexed.get(watcher.index)
        if peers is not None:
            peers.discard(watcher)
            if not peers:
                del self._indexed[watcher.index]

    def reset(self, entries: Iterable[Entry], revision: int) -> None:
        self.objects = {e.key: e for e in entries}
        self._history.clear()
        self._history_bytes = 0
        self.floor = revision
        self.wake()

    def apply(self, change: Change) -> None:
        if change.type == DELETED:
            self.objects.pop(change.entry.key, None)
        else:
            self.objects[change.entry.key] = change.entry
        self._history.append(change)
        self._history_bytes += len(change.entry.raw)
        if len(self._history) > self._max_events or self._history_bytes > self._max_bytes:
            self._trim()
        for watcher in self._watchers:
            watcher.event.set()
        if self._indexed:
            values = {
                (field, value)
                for field in INDEXED_FIELDS
                for state in (change.entry, change.previous)
                if state is not None and (value := state.fields.get(field)) is not None
            }
            for key in values:
                for watcher in self._indexed.get(key, ()):
                    watcher.offer(change, self._max_events)

    def _trim(self) -> None:
        # Drop the older quarter at once: amortised O(1) per change.
        cut = max(1, len(self._history) // 4)
        dropped = self._history[:cut]
        del self._history[:cut]
        self._history_bytes -= sum(len(c.entry.raw) for c in dropped)
        self.floor = dropped[-1].revision
        # An indexed watcher that was not woken had nothing in what was dropped: it may
        # move past it (else it would get 410 for changes it never cared about).
        for peers in self._indexed.values():
            for watcher in peers:
                if not watcher.event.is_set() and watcher.cursor < self.floor:
                    watcher.cursor = self.floor

    def changes_after(self, revision: int) -> list[Change] | None:
        """Changes with a revision above ``revision``, or None when they are forgotten."""
        if revision < self.floor:
            return None
        start = bisect.bisect_right(self._history, revision, key=lambda c: c.revision)
        return self._history[start:]

    def snapshot(self, namespace: str | None = None) -> list[Entry]:
        """Current objects (of one namespace), in key order."""
        entries: Iterable[Entry] = self.objects.values()
        if namespace is not None:
            entries = [e for e in entries if e.namespace == namespace]
        return sorted(entries, key=_by_key)

    def wake(self) -> None:
        """Wake every watcher (a reset, or the cache stopping)."""
        for watcher in self._watchers:
            watcher.event.set()
        for peers in self._indexed.values():
            for watcher in peers:
                watcher.event.set()


class WatchCache:
    def __init__(
        self,
        store: st.Store,
        resources: Iterable[Resource],
        *,
        max_events: int = 4096,
        max_bytes: int = 16 << 20,
    ) -> None:
        self._store = store
        self._caches: dict[tuple[str, str], ResourceCache] = {
            (r.group, r.plural): ResourceCache(r, max_events=max_events, max_bytes=max_bytes)
            for r in resources
        }
        self.revision = 0
        self.healthy = False
        self._revision_waiters: dict[int, list[asyncio.Future[None]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._watch: st.WatchStream | None = None  # the store watch _follow reads

    def resource(self, resource: Resource) -> ResourceCache:
        return self._caches[(resource.group, resource.plural)]

    async def start(self) -> None:
        """Load everything, then follow the store. Returns once the cache is complete."""
        await self._load()
        self._task = asyncio.create_task(self._follow(), name="watch-cache")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for cache in self._caches.values():
            cache.wake()

    async def wait_for(self, revision: int, limit: float) -> bool:
        """Wait until the cache has seen ``revision``; False if it did not within ``limit``
        seconds."""
        if self.revision >= revision:
            return True
        # What the store has already published, applied now rather than when the
        # following task next runs: a write's event is published before the write is
        # acknowledged, so its writer is answered without waiting a turn of the loop.
        if self._watch is not None:
            for event in self._watch.ready():
                self._apply(event)
            if self.revision >= revision:
                return True
        future = asyncio.get_running_loop().create_future()
        self._revision_waiters.setdefault(revision, []).append(future)
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel
            # that arrives as the awaited future completes (the task then runs on).
            async with asyncio.timeout(limit):
                await asyncio.shield(future)
        except TimeoutError:
            return False
        return True

    # --- feeding ----------------------------------------------------------------------

    async def _load(self) -> None:
        entries: dict[tuple[str, str], list[Entry]] = {k: [] for k in self._caches}
        token: str | None = None
        revision = 0
        while True:
            page = await self._store.list(storage.ROOT, limit=1000, continue_token=token)
            revision = page.revision
            for kv in page.items:
                located = self._locate(kv.key)
                if located is not None:
                    entries[(located.resource.group, located.resource.plural)].append(
                        make_entry(located.resource, kv.key, kv.value, kv.mod_revision)
                    )
            token = page.continue_token
            if token is None:
                break
        for k, cache in self._caches.items():
            cache.reset(entries[k], revision)
        self._advance(revision)
        self.healthy = True
        logger.info(
            "watch cache loaded revision=%d objects=%d",
            revision,
            sum(len(v) for v in entries.values()),
        )

    async def _follow(self) -> None:
        delay = 0.1
        while True:
            try:
                async with await self._store.watch(storage.ROOT, from_revision=self.revision) as w:
                    self.healthy = True
                    delay = 0.1
                    self._watch = w
                    try:
                        async for event in w:
                            self._apply(event)
                    finally:
                        self._watch = None
                # The stream ended (store closing): resume unless cancelled.
            except st.Expired:
                logger.warning("watch cache fell behind compaction; listing again")
                await self._reload()
            except st.StoreError as e:
                self.healthy = False
                logger.warning("watch cache lost the store error=%s; retrying in %.1fs", e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _reload(self) -> None:
        while True:
            try:
                await self._load()
                return
            except st.StoreError as e:
                self.healthy = False
                logger.warning("watch cache cannot list the store error=%s", e)
                await asyncio.sleep(1.0)

    def _locate(self, key: str) -> ResourceCache | None:
        parsed = storage.parse_key(key)
        if parsed is None:
            return None
        return self._caches.get((parsed[0], parsed[1]))

    def _apply(self, event: st.Event) -> None:
        cache = self._locate(event.kv.key)
        if cache is not None:
            entry = make_entry(cache.resource, event.kv.key, event.kv.value, event.revision)
            previous = cache.objects.get(event.kv.key)
            if event.type is st.EventType.DELETE:
                kind = DELETED
            else:
                kind = ADDED if previous is None else MODIFIED
            cache.apply(Change(kind, entry, previous))
        self._advance(event.revision)

    def _advance(self, revision: int) -> None:
        if revision <= self.revision:
            return
        self.revision = revision
        if self._revision_waiters:
            for r in [r for r in self._revision_waiters if r <= revision]:
                for future in self._revision_waiters.pop(r):
                    if not future.done():
                        future.set_result(None)
