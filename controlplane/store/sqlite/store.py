"""The embedded SQLite store: one file, a kine-style revision log, group commit, no polling.

Threads and ownership:

* the **writer thread** (writer.py) owns the only writing connection; every create,
  update, delete and compaction goes through its queue;
* a small pool of **reader threads**, each with its own read-only connection, serves
  get, list and the database half of watch; WAL mode lets them read while the writer
  commits, each read in one snapshot transaction;
* the **event loop** owns the broadcaster and the futures; the writer hands each
  committed batch back with one ``call_soon_threadsafe``, and this class publishes the
  events *before* resolving the writers' futures, so when a write is acknowledged its
  event is already visible to watchers and to ``current_revision()``.

The file is locked for the life of the store (schema.FileLock): a second process could
not wake this one's watchers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from controlplane.store import continuation
from controlplane.store.broadcast import Broadcaster
from controlplane.store.errors import (
    Expired,
    InvalidArgument,
    NotFound,
    StoreError,
    StoreUnusable,
    Unavailable,
)
from controlplane.store.interface import (
    MAX_VALUE_BYTES,
    Event,
    EventType,
    KeyValue,
    ListResult,
    WatchBase,
    encode_key,
    prefix_end,
)
from controlplane.store.sqlite import schema
from controlplane.store.sqlite.writer import (
    CompactOp,
    OpKind,
    Outcome,
    WriteOp,
    Writer,
    WriterStats,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

_EventPage = tuple[list[Event], int]  # (events, new cursor); named here because the
# classes below define a method called `list`

# Rows a watcher reads from the database at a time when catching up from old history.
_CATCH_UP_ROWS = 500


class SqliteStore:
    """Store backed by one SQLite file. Create with ``await SqliteStore.open(path)``."""

    def __init__(
        self,
        path: Path,
        *,
        lock: schema.FileLock,
        conn: sqlite3.Connection,
        revision: int,
        compacted: int,
        reader_threads: int,
    ) -> None:
        self._path = path
        self._lock = lock
        self._loop = asyncio.get_running_loop()
        self._broadcaster = Broadcaster(revision)
        self._compacted = compacted
        self._closed = False
        self._readers = _Readers(path, threads=reader_threads)
        self._writer = Writer(
            conn,
            path,
            revision=revision,
            compacted=compacted,
            deliver=self._deliver,
            loop=self._loop,
        )
        self._writer.start()

    @classmethod
    async def open(cls, path: Path, *, reader_threads: int = 2) -> SqliteStore:
        """Open or create the store file. Raises StoreUnusable with the reason."""
        path = await asyncio.to_thread(lambda: path.expanduser().absolute())
        lock = schema.FileLock(path)
        try:
            await asyncio.to_thread(_prepare_dir, path)
            await asyncio.to_thread(lock.acquire)
            conn = await asyncio.to_thread(schema.open_database, path)
        except BaseException:
            lock.release()
            raise
        try:
            revision, compacted = await asyncio.to_thread(_read_positions, conn)
        except sqlite3.DatabaseError as e:
            conn.close()
            lock.release()
            raise schema.unusable(path, e) from e
        logger.info("store opened path=%s revision=%d compacted=%d", path, revision, compacted)
        return cls(
            path,
            lock=lock,
            conn=conn,
            revision=revision,
            compacted=compacted,
            reader_threads=reader_threads,
        )

    @property
    def description(self) -> str:
        return f"sqlite {self._path}"

    @property
    def path(self) -> Path:
        return self._path

    @property
    def stats(self) -> WriterStats:
        """Commits and writes so far: writes/commits is the group-commit factor."""
        return self._writer.stats

    # --- reads ------------------------------------------------------------------------

    async def current_revision(self) -> int:
        return self._broadcaster.revision

    async def compacted_revision(self) -> int:
        return self._compacted

    async def get(self, key: str, *, revision: int | None = None) -> KeyValue:
        return await self._read(_get, key, encode_key(key), revision)

    async def list(
        self,
        prefix: str,
        *,
        revision: int | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> ListResult:
        if limit is not None and limit < 0:
            raise InvalidArgument(f"limit must not be negative (got {limit})")
        start = name = encode_key(prefix, prefix=True)
        if continue_token is not None:
            cont = continuation.decode(continue_token)
            if revision is not None and revision != cont.revision:
                raise InvalidArgument("a revision cannot be given together with a continue token")
            if not cont.start_key.startswith(start):
                raise InvalidArgument("the continue token belongs to another list")
            revision, start = cont.revision, cont.start_key
        return await self._read(_list, name, start, revision, limit or None)

    # --- writes -----------------------------------------------------------------------

    async def create(self, key: str, value: bytes) -> KeyValue:
        return await self._write(OpKind.CREATE, key, value, None)

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> KeyValue:
        return await self._write(OpKind.UPDATE, key, value, expected_revision)

    async def delete(self, key: str, *, expected_revision: int | None = None) -> KeyValue:
        return await self._write(OpKind.DELETE, key, b"", expected_revision)

    async def _write(self, kind: OpKind, key: str, value: bytes, expected: int | None) -> KeyValue:
        name = encode_key(key)
        if len(value) > MAX_VALUE_BYTES:
            raise InvalidArgument(
                f"value of {len(value)} bytes for {key!r} is larger than the store's "
                f"limit of {MAX_VALUE_BYTES} bytes"
            )
        self._check_writable()
        future: asyncio.Future[KeyValue] = self._loop.create_future()
        self._writer.submit(WriteOp(kind, key, name, value, expected, future))
        return await future

    async def compact(self, revision: int) -> None:
        self._check_writable()
        current = self._broadcaster.revision
        if revision > current:
            raise InvalidArgument(
                f"cannot compact to revision {revision}: the store is at {current}"
            )
        if revision <= self._compacted:
            return
        future: asyncio.Future[None] = self._loop.create_future()
        self._writer.submit(CompactOp(revision, future))
        await future

    def _deliver(self, outcome: Outcome) -> None:
        """Runs on the loop, once per batch, in commit order."""
        self._broadcaster.publish(outcome.events)
        if outcome.compacted is not None:
            self._compacted = outcome.compacted
        for future, result in outcome.results:
            if future.done():  # the writer gave up waiting; the write still happened
                continue
            if isinstance(result, StoreError):
                future.set_exception(result)
            else:
                future.set_result(result)
        for done in outcome.compactions_done:
            if done.done():
                continue
            if outcome.compaction_error is not None:
                done.set_exception(outcome.compaction_error)
            else:
                done.set_result(None)

    # --- watch ------------------------------------------------------------------------

    async def watch(self, prefix: str, *, from_revision: int) -> _Watch:
        encode_key(prefix, prefix=True)
        self._check_open()
        if from_revision < self._compacted:
            raise Expired(
                from_revision, compacted=self._compacted, current=self._broadcaster.revision
            )
        return _Watch(self, prefix, from_revision)

    async def _events_after(self, prefix: bytes, after: int, upto: int) -> _EventPage:
        return await self._read(_events_after, prefix, after, upto, _CATCH_UP_ROWS)

    # --- lifecycle --------------------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writer.hand_over()  # what this turn of the loop submitted goes first
        await asyncio.to_thread(self._writer.stop)
        self._broadcaster.close()
        await asyncio.to_thread(self._readers.close)
        self._lock.release()
        logger.info("store closed path=%s revision=%d", self._path, self._broadcaster.revision)

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("the store is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self._writer.failure is not None:
            # Nobody would take the write: refuse it now rather than let it wait forever.
            raise StoreUnusable(self._writer.failure)

    async def _read(self, fn: Callable[..., T], *args: object) -> T:
        self._check_open()
        return await self._loop.run_in_executor(self._readers.pool, self._readers.call, fn, args)


class _Watch(WatchBase):
    """A watcher's cursor over the broadcaster, falling back to the database."""

    def __init__(self, store: SqliteStore, prefix: str, cursor: int) -> None:
        self._store = store
        self._prefix = prefix
        self._prefix_bytes = prefix.encode()
        self._cursor = cursor
        self._pending: deque[Event] = deque()
        self._closed = False

    def __aiter__(self) -> _Watch:
        return self

    def ready(self) -> list[Event]:
        # While _fill reads history from the database, the broadcaster cannot hold what
        # follows the cursor (that is why it reads): nothing is taken twice.
        self._take_published()
        events = list(self._pending)
        self._pending.clear()
        return events

    def _take_published(self) -> bool:
        """Move what the broadcaster holds after the cursor to pending; False when the
        broadcaster no longer holds all of it."""
        bc = self._store._broadcaster
        if self._cursor >= bc.revision:
            return True
        events = bc.since(self._cursor)
        if events is None:
            return False
        self._cursor = events[-1].revision
        self._pending.extend(e for e in events if e.kv.key.startswith(self._prefix))
        return True

    async def __anext__(self) -> Event:
        while not self._pending:
            if self._closed:
                raise StopAsyncIteration
            await self._fill()
        return self._pending.popleft()

    async def _fill(self) -> None:
        bc = self._store._broadcaster
        if self._cursor >= bc.revision:
            if bc.closed:
                self._closed = True
                return
            await bc.wait_beyond(self._cursor)
            return
        if self._take_published():
            return
        # Too far behind for the ring: read the history from the database, bounded.
        found, self._cursor = await self._store._events_after(
            self._prefix_bytes, self._cursor, bc.revision
        )
        self._pending.extend(found)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._store._broadcaster.wake()


class _Readers:
    """A thread pool whose threads each keep one read-only connection."""

    def __init__(self, path: Path, *, threads: int) -> None:
        self._path = path
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sqlite-read")

    def call(self, fn: Callable[..., T], args: tuple[object, ...]) -> T:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = schema.connect(self._path, writer=False)
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        try:
            conn.execute("BEGIN")
            try:
                return fn(conn, *args)
            finally:
                conn.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            if "malformed" in str(e):
                raise schema.unusable(self._path, e) from e
            raise Unavailable(f"reading {self._path} failed: {e}") from e

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        with self._conns_lock:
            for conn in self._conns:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._conns.clear()


# --- queries, run on a reader thread inside one read transaction ---------------------


def _positions(conn: sqlite3.Connection) -> tuple[int, int]:
    """(current revision, compacted revision) of this snapshot."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'log'").fetchone()
    compacted = conn.execute("SELECT value FROM meta WHERE key = 'compact_revision'").fetchone()
    return (row[0] if row else 0), compacted[0]


def _check_revision(revision: int, current: int, compacted: int) -> None:
    if revision < compacted:
        raise Expired(revision, compacted=compacted, current=current)
    if revision > current:
        raise InvalidArgument(f"revision {revision} is in the future; the store is at {current}")


def _get(conn: sqlite3.Connection, key: str, name: bytes, revision: int | None) -> KeyValue:
    current, compacted = _positions(conn)
    bound = current if revision is None else revision
    _check_revision(bound, current, compacted)
    row = conn.execute(
        "SELECT id, deleted, create_revision, value FROM log"
        " WHERE name = ? AND id <= ? ORDER BY id DESC LIMIT 1",
        (name, bound),
    ).fetchone()
    if row is None or row[1]:
        raise NotFound(key)
    return KeyValue(key, bytes(row[3]), row[2], row[0])


def _list(
    conn: sqlite3.Connection,
    prefix: bytes,
    start: bytes,
    revision: int | None,
    limit: int | None,
) -> ListResult:
    current, compacted = _positions(conn)
    at = current if revision is None else revision
    _check_revision(at, current, compacted)
    end = prefix_end(prefix)
    # SQLite takes the bare columns from the row holding MAX(id): the key's newest row
    # at or below the revision; HAVING drops keys whose newest row is a deletion.
    sql = (
        "SELECT name, MAX(id), deleted, create_revision, value FROM log"
        " WHERE name >= ? AND id <= ?"
        + (" AND name < ?" if end is not None else "")
        + " GROUP BY name HAVING deleted = 0 ORDER BY name"
        + (" LIMIT ?" if limit is not None else "")
    )
    params: list[object] = [start, at]
    if end is not None:
        params.append(end)
    if limit is not None:
        params.append(limit + 1)
    rows = conn.execute(sql, params).fetchall()
    token = None
    if limit is not None and len(rows) > limit:
        rows = rows[:limit]
        token = continuation.encode(at, bytes(rows[-1][0]) + b"\x00")
    items = [KeyValue(bytes(r[0]).decode(), bytes(r[4]), r[3], r[1]) for r in rows]
    return ListResult(items=items, revision=at, continue_token=token)


def _events_after(
    conn: sqlite3.Connection, prefix: bytes, after: int, upto: int, limit: int
) -> tuple[list[Event], int]:
    """Events under ``prefix`` in (after, upto], at most ``limit``; and the new cursor."""
    _, compacted = _positions(conn)
    if after < compacted:
        raise Expired(after, compacted=compacted, current=upto)
    end = prefix_end(prefix)
    # A deletion row's value is that of the row it supersedes (see writer.py).
    sql = (
        "SELECT l.id, l.name, l.created, l.deleted, l.create_revision,"
        " CASE WHEN l.deleted THEN p.value ELSE l.value END"
        " FROM log l LEFT JOIN log p ON l.deleted = 1 AND p.id = l.prev_revision"
        " WHERE l.id > ? AND l.id <= ? AND l.name >= ?"
        + (" AND l.name < ?" if end is not None else "")
        + " ORDER BY l.id LIMIT ?"
    )
    params: list[object] = [after, upto, prefix]
    if end is not None:
        params.append(end)
    params.append(limit)
    rows = conn.execute(sql, params).fetchall()
    events = []
    for rid, name, created, deleted, create_rev, value in rows:
        kind = EventType.CREATE if created else EventType.DELETE if deleted else EventType.UPDATE
        events.append(
            Event(kind, KeyValue(bytes(name).decode(), bytes(value or b""), create_rev, rid))
        )
    cursor = rows[-1][0] if len(rows) == limit else upto
    return events, cursor


def _read_positions(conn: sqlite3.Connection) -> tuple[int, int]:
    conn.execute("BEGIN")
    try:
        return _positions(conn)
    finally:
        conn.execute("COMMIT")


def _prepare_dir(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as e:
        raise StoreUnusable(
            f"cannot create the directory {path.parent} for the store: {e.strerror}"
        ) from e
