"""Watch streams, served from the watch cache (kubectl-surface.md section 8).

One newline-delimited JSON event per change, flushed as it happens. Without a
resourceVersion (or with "0") the stream first sends every current object as ADDED;
with one, it replays the changes after it, or answers 410 Gone when they are forgotten.
A change that makes an object start or stop matching the selectors is sent as ADDED or
DELETED, as Kubernetes does. With ``allowWatchBookmarks`` an idle stream carries BOOKMARK
events, so clients can resume from a recent revision. ``sendInitialEvents`` (watch-list)
ends the initial events with the ``k8s.io/initial-events-end`` bookmark.

A slow client only slows its own stream (each write waits while its connection's buffer
is full, httpd.py); a
client so slow that the cache forgot its place gets an ERROR event with code 410 and the
stream ends, after which it relists.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from api import errors
from controlplane.apiserver import respond
from controlplane.apiserver.cache import ADDED, DELETED, MODIFIED, Change, Entry, Watcher
from controlplane.apiserver.handlers import Selection, int_param, parse_rv, selection
from controlplane.apiserver.httpd import Answer, Request, Stream
from controlplane.apiserver.metrics import Metrics
from controlplane.apiserver.objects import Objects
from controlplane.apiserver.routes import Target

logger = logging.getLogger(__name__)

BOOKMARK_INTERVAL = 5.0  # seconds between bookmarks on an idle stream


def _event_line(kind: str, raw: bytes) -> bytes:
    return b'{"type":"' + kind.encode() + b'","object":' + raw + b"}\n"


class _Encoder:
    """Turns entries into event lines: the cached bytes, or a one-row Table each."""

    def __init__(self, sel: Selection, *, as_table: bool, include: str) -> None:
        self._sel = sel
        self._table = as_table
        self._include = include
        self._columns_sent = False

    def line(self, kind: str, entry: Entry, *, revision: int | None = None) -> bytes:
        if not self._table and revision is None:
            return _event_line(kind, entry.raw)
        obj = entry.obj()
        if revision is not None:
            obj["metadata"]["resourceVersion"] = str(revision)
        if not self._table:
            return _event_line(kind, orjson.dumps(obj))
        table = respond.table(
            self._sel.resource, [obj], revision=int(obj["metadata"]["resourceVersion"]),
            include=self._include,
        )  # fmt: skip
        return _event_line(kind, orjson.dumps(table))


def _convert(change: Change, sel: Selection) -> tuple[str, Entry, int | None] | None:
    """The event a change is for this watcher, if any (selector transitions included)."""
    now = sel.matches(change.entry)
    if change.type == DELETED:
        return (DELETED, change.entry, None) if now else None
    previous = change.previous
    if previous is None:
        before = False
    elif previous.labels == change.entry.labels and previous.fields == change.entry.fields:
        before = now  # most updates (leases, status) change neither: no second match
    else:
        before = sel.matches(previous)
    if change.type == ADDED or (now and not before):
        return (ADDED, change.entry, None) if now else None
    if now:
        return MODIFIED, change.entry, None
    if before and change.previous is not None:
        # Stopped matching: the previous state, at this change's revision.
        return DELETED, change.previous, change.revision
    return None


def _bookmark(sel: Selection, revision: int, *, initial_end: bool = False) -> bytes:
    meta: dict[str, Any] = {"resourceVersion": str(revision)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    obj = {"kind": sel.resource.kind, "apiVersion": sel.resource.api_version, "metadata": meta}
    return _event_line("BOOKMARK", orjson.dumps(obj))


def _expired(revision: int, current: int) -> errors.Expired:
    return errors.Expired(f"too old resource version: {revision} ({current})")


async def serve(request: Request, objects: Objects, target: Target, metrics: Metrics) -> Answer:
    query = request.query
    sel = selection(target, query)
    cache = objects.cache
    resource_cache = cache.resource(sel.resource)
    bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
    send_initial = query.get("sendInitialEvents") == "true"
    timeout = int_param(query, "timeoutSeconds")
    rv = query.get("resourceVersion") or None
    encoder = _Encoder(
        sel,
        as_table=respond.wants_table(request.headers.get("Accept", "")),
        include=respond.include_object(query),
    )

    initial: list[Entry] = []
    if rv in (None, "0") or send_initial:
        # No await from here to the cursor: the snapshot is exactly at the cursor.
        cursor = cache.revision
        initial = [e for e in resource_cache.snapshot(sel.namespace) if sel.matches(e)]
    else:
        cursor = parse_rv(rv)
        if resource_cache.changes_after(cursor) is None:
            raise _expired(cursor, cache.revision)

    stream = _Stream(sel, encoder, bookmarks=bookmarks, send_initial=send_initial)
    watchers = metrics.watchers.labels(sel.resource.plural)
    watchers.inc()
    watcher = Watcher(cursor, sel.index)
    resource_cache.add_watcher(watcher)
    try:
        return await stream.run(request, objects, initial, watcher, limit=timeout)
    finally:
        resource_cache.remove_watcher(watcher)
        watchers.dec()


class _Stream:
    def __init__(
        self, sel: Selection, encoder: _Encoder, *, bookmarks: bool, send_initial: bool
    ) -> None:
        self.sel = sel
        self.encoder = encoder
        self.bookmarks = bookmarks
        self.send_initial = send_initial

    async def run(
        self,
        request: Request,
        objects: Objects,
        initial: list[Entry],
        watcher: Watcher,
        *,
        limit: int | None,
    ) -> Answer:
        sel = self.sel
        response = Stream(request)
        try:
            await response.prepare()
            await self._stream(response, objects, initial, watcher, limit=limit)
        except ConnectionResetError:
            # The client closed its watch before the headers went out or between two
            # of our writes: nobody is left to answer.
            logger.debug("watch client went away resource=%s", sel.resource.plural)
        return response

    async def _stream(
        self,
        response: Stream,
        objects: Objects,
        initial: list[Entry],
        watcher: Watcher,
        *,
        limit: int | None,
    ) -> None:
        sel, encoder = self.sel, self.encoder
        cache = objects.cache
        resource_cache = cache.resource(sel.resource)
        loop = asyncio.get_running_loop()
        lines = [encoder.line(ADDED, entry) for entry in initial]
        if self.send_initial:
            lines.append(_bookmark(sel, watcher.cursor, initial_end=True))
        await respond.write_slices(response, respond.slices(lines))

        # Two timers at most, each armed once (not one per wake-up): the end of the
        # watch, and the next bookmark.
        deadline = loop.time() + limit if limit else None
        timers = []
        if deadline is not None:
            timers.append(loop.call_at(deadline, watcher.event.set))
        next_bookmark = loop.time() + BOOKMARK_INTERVAL
        if self.bookmarks:
            timers.append(loop.call_at(next_bookmark, watcher.event.set))
        index = watcher.index
        caught_up = False  # an indexed watcher reads the history once, then its own changes
        try:
            while True:
                watcher.event.clear()
                if index is None or not caught_up:
                    changes = resource_cache.changes_after(watcher.cursor)
                    watcher.pending.clear()  # all in `changes` too
                    caught_up = True
                else:
                    changes = watcher.take()
                # Taken with no await since the changes: every change of this resource up
                # to `seen` that concerns this watch is in `changes`, so the cursor may move
                # there once they are sent.
                seen = cache.revision
                if changes is None:
                    expired = _expired(watcher.cursor, seen)
                    await response.write(_event_line("ERROR", orjson.dumps(expired.status())))
                    break
                # One write for all that arrived since the last wake (fewer, larger TLS
                # records and sends as the load grows).
                lines = []
                for change in changes:
                    if index is not None and not _concerns(change, index):
                        continue
                    event = _convert(change, sel)
                    if event is not None:
                        kind, entry, revision = event
                        lines.append(encoder.line(kind, entry, revision=revision))
                watcher.cursor = max(watcher.cursor, seen)
                now = loop.time()
                if self.bookmarks and now >= next_bookmark:
                    lines.append(_bookmark(sel, watcher.cursor))
                    next_bookmark = now + BOOKMARK_INTERVAL
                    timers.append(loop.call_at(next_bookmark, watcher.event.set))
                await respond.write_slices(response, respond.slices(lines))
                if deadline is not None and now >= deadline:
                    break
                await watcher.event.wait()
        finally:
            for timer in timers:
                timer.cancel()
        await response.write_eof()


def _concerns(change: Change, index: tuple[str, str]) -> bool:
    """Whether a change can matter to a watch indexed by ``index`` (cheap pre-check)."""
    field, value = index
    if change.entry.fields.get(field) == value:
        return True
    return change.previous is not None and change.previous.fields.get(field) == value
