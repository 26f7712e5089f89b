"""The single writer thread: group commit and compaction.

Every write goes through one thread that owns the writing connection. It takes whatever
writes are queued (up to MAX_BATCH), applies them in one transaction and commits once,
so concurrent writers share one fsync: while one batch is being synced the next one
gathers. Each write in a batch is checked (existence, compare-and-swap) against the state
left by the writes before it, so a batch is exactly equivalent to running its writes one
by one. A write that fails its check is answered with its error and writes nothing; an
SQLite error fails the whole batch, which is rolled back, so nothing is half-applied and
nothing unacknowledged becomes visible. Any other exception (a bug, never bad input: the
store checks keys and values before they get here) fails its batch the same way, and the
thread goes on with the next one.

If the thread dies all the same, it answers every write it holds or that is queued, and
``failure`` says why, so the store refuses later writes at once instead of queueing them
for a thread that will never take them.

Writes reach the thread once per turn of the event loop, as one list: a burst of writes
wakes the thread once, not once each (every wake-up is a futex call and a hand-over of
the interpreter lock). Results go back to the event loop with one
``call_soon_threadsafe`` per batch, in commit order, which is what lets the broadcaster
publish events in revision order.

Compaction runs here too, in steps of COMPACT_STEP revisions between write batches, so a
large compaction never holds the write lock for long.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from controlplane.store.errors import (
    AlreadyExists,
    Conflict,
    NotFound,
    StoreError,
    StoreUnusable,
    Unavailable,
)
from controlplane.store.interface import Event, EventType, KeyValue

logger = logging.getLogger(__name__)

MAX_BATCH = 512
COMPACT_STEP = 1000


class OpKind(enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(slots=True)
class WriteOp:
    kind: OpKind
    key: str
    name: bytes  # the key as stored: its UTF-8 form, checked by the store
    value: bytes
    expected: int | None
    future: asyncio.Future[KeyValue]


@dataclass(slots=True)
class CompactOp:
    revision: int
    future: asyncio.Future[None]


@dataclass(slots=True)
class Outcome:
    """What one batch (or compaction step) did, handed to the event loop."""

    events: list[Event] = field(default_factory=list)
    results: list[tuple[asyncio.Future[KeyValue], KeyValue | StoreError]] = field(
        default_factory=list
    )
    compacted: int | None = None
    compactions_done: list[asyncio.Future[None]] = field(default_factory=list)
    compaction_error: StoreError | None = None


@dataclass(slots=True)
class WriterStats:
    """Counters of the writer thread (read from other threads: ints, no tearing)."""

    commits: int = 0  # transactions committed, i.e. fsyncs of the WAL
    writes: int = 0  # write requests answered by those commits


_STOP = object()


def classify(path: Path, e: sqlite3.Error) -> StoreError:
    """Turn an SQLite failure during a write into the store's error, with what to do."""
    text = str(e)
    if "disk is full" in text:
        return Unavailable(f"the disk holding {path} is full; free some space and retry")
    if "disk I/O error" in text:
        return Unavailable(f"I/O error writing {path} ({text}); check the disk or SD card (dmesg)")
    if isinstance(e, sqlite3.DatabaseError) and ("malformed" in text or "not a database" in text):
        return StoreUnusable(
            f"{path} is corrupt ({text}); stop bramble and restore a backup (docs/operations.md)"
        )
    return Unavailable(f"the store could not commit to {path}: {text}")


class Writer:
    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        *,
        revision: int,
        compacted: int,
        deliver: Callable[[Outcome], None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._conn = conn
        self._path = path
        self._revision = revision
        self._compacted = compacted
        self._compact_target = compacted
        self._compact_waiters: list[asyncio.Future[None]] = []
        self._deliver = deliver
        self._loop = loop
        self._queue: queue.SimpleQueue[list[WriteOp | CompactOp] | object] = queue.SimpleQueue()
        self._outbox: list[WriteOp | CompactOp] = []  # the loop's, until handed over
        self._carry: collections.deque[WriteOp | CompactOp] = collections.deque()  # thread's
        self._thread = threading.Thread(target=self._run, name="sqlite-writer", daemon=True)
        self._batch: list[WriteOp] = []  # the writes being applied now
        self.stats = WriterStats()
        # Set (once) when the thread has died: why, as a sentence for the user.
        self.failure: str | None = None

    def start(self) -> None:
        self._thread.start()

    def submit(self, op: WriteOp | CompactOp) -> None:
        """Queue an operation (on the event loop); it reaches the thread with the others
        of this turn of the loop."""
        self._outbox.append(op)
        if len(self._outbox) == 1:
            self._loop.call_soon(self.hand_over)

    def hand_over(self) -> None:
        """Give the thread what was submitted (on the event loop)."""
        if not self._outbox:
            return
        ops, self._outbox = self._outbox, []
        self._queue.put(ops)
        if self.failure is not None:
            # The thread died after the caller checked: answer what it will never take.
            self._fail_queued()

    def stop(self) -> None:
        """Finish what is queued, checkpoint, close the connection (blocks: call from a
        thread, after ``hand_over`` on the loop)."""
        self._queue.put(_STOP)
        self._thread.join()

    # --- the thread -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._serve()
        except BaseException as e:  # the thread's last resort: answer everyone
            self.failure = (
                f"the store's writer stopped after an unexpected error ({type(e).__name__}: {e}); "
                "restart bramble server (its log has the details)"
            )
            logger.critical("store writer died path=%s", self._path, exc_info=True)
            self._rollback()
            lost = (
                f"the store's writer stopped while this write was in flight "
                f"({type(e).__name__}: {e}); its outcome is unknown, read the key again"
            )
            self._send(Outcome(results=[(op.future, Unavailable(lost)) for op in self._batch]))
            carried, self._carry = list(self._carry), collections.deque()
            self._fail(carried)
            self._fail_queued()
        finally:
            self._shutdown()

    def _fail_queued(self) -> None:
        """Answer every queued write and compaction with ``failure`` (any thread)."""
        ops: list[WriteOp | CompactOp] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, list):
                ops += item
        self._fail(ops)

    def _fail(self, ops: list[WriteOp | CompactOp]) -> None:
        reason = self.failure
        assert reason is not None
        results: list[tuple[asyncio.Future[KeyValue], KeyValue | StoreError]] = []
        compactions: list[asyncio.Future[None]] = []
        for item in ops:
            if isinstance(item, WriteOp):
                results.append((item.future, StoreUnusable(reason)))
            else:
                compactions.append(item.future)
        if results:
            self._send(Outcome(results=results))
        if compactions:
            error = StoreUnusable(reason)
            self._send(Outcome(compactions_done=compactions, compaction_error=error))

    def _serve(self) -> None:
        stopping = False
        while not stopping:
            pending_compaction = self._compact_target > self._compacted
            item = self._next(block=not pending_compaction)
            batch: list[WriteOp] = []
            while item is not None:
                if item is _STOP:
                    stopping = True
                elif isinstance(item, CompactOp):
                    self._compact_target = max(self._compact_target, item.revision)
                    self._compact_waiters.append(item.future)
                elif isinstance(item, WriteOp):
                    batch.append(item)
                if stopping or len(batch) >= MAX_BATCH:
                    break
                item = self._next(block=False)
            if batch:
                self._batch = batch
                self._send(self._commit(batch))
                self._batch = []
            if self._compact_target > self._compacted and not stopping:
                self._send(self._compact_step())
            elif self._compact_waiters:
                self._send(Outcome(compactions_done=self._take_waiters()))

    def _next(self, *, block: bool) -> WriteOp | CompactOp | object | None:
        """The next operation (or _STOP), in submission order; None if none is waiting
        and ``block`` is false."""
        if not self._carry:
            try:
                item = self._queue.get(block=block)
            except queue.Empty:
                return None
            if not isinstance(item, list):
                return item
            self._carry.extend(item)
        return self._carry.popleft()

    def _send(self, outcome: Outcome) -> None:
        # RuntimeError: the loop is closed, so nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._deliver, outcome)

    def _take_waiters(self) -> list[asyncio.Future[None]]:
        waiters, self._compact_waiters = self._compact_waiters, []
        return waiters

    def _commit(self, batch: list[WriteOp]) -> Outcome:
        outcome = Outcome()
        revision = self._revision
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            for op in batch:
                result, event = self._apply(op, revision + 1)
                outcome.results.append((op.future, result))
                if event is not None:
                    revision += 1
                    outcome.events.append(event)
            self._conn.execute("COMMIT")  # the fsync: synchronous=FULL
        except sqlite3.Error as e:
            self._rollback()
            logger.error("store write batch failed size=%d error=%s", len(batch), e)
            # One exception object per waiter: they are raised in different tasks.
            return Outcome(results=[(op.future, classify(self._path, e)) for op in batch])
        except Exception as e:
            self._rollback()
            logger.exception("store write batch failed unexpectedly size=%d", len(batch))
            failed = (
                f"the store could not apply this write because of an unexpected error "
                f"({type(e).__name__}: {e}); nothing of it was written"
            )
            return Outcome(results=[(op.future, Unavailable(failed)) for op in batch])
        self._revision = revision
        self.stats.commits += 1
        self.stats.writes += len(batch)
        return outcome

    def _apply(self, op: WriteOp, revision: int) -> tuple[KeyValue | StoreError, Event | None]:
        conn = self._conn
        name = op.name
        row = conn.execute(
            "SELECT id, deleted, create_revision FROM log WHERE name = ? ORDER BY id DESC LIMIT 1",
            (name,),
        ).fetchone()
        live = row is not None and not row[1]
        if op.kind is OpKind.CREATE:
            if live:
                return AlreadyExists(op.key), None
            conn.execute(
                "INSERT INTO log (id, name, created, deleted, create_revision, prev_revision,"
                " value) VALUES (?, ?, 1, 0, ?, 0, ?)",
                (revision, name, revision, op.value),
            )
            kv = KeyValue(op.key, op.value, revision, revision)
            return kv, Event(EventType.CREATE, kv)
        if not live:
            return NotFound(op.key), None
        current_rev, create_rev = row[0], row[2]
        if op.expected is not None and current_rev != op.expected:
            current = KeyValue(op.key, self._value_at(current_rev), create_rev, current_rev)
            return Conflict(op.key, expected=op.expected, current=current), None
        if op.kind is OpKind.UPDATE:
            value = op.value
            conn.execute(
                "INSERT INTO log (id, name, created, deleted, create_revision, prev_revision,"
                " value) VALUES (?, ?, 0, 0, ?, ?, ?)",
                (revision, name, create_rev, current_rev, value),
            )
            event_type = EventType.UPDATE
        else:
            # The deletion row stores no value: its last value is the row it supersedes,
            # which compaction keeps for as long as the deletion row itself exists. So a
            # delete costs a few bytes, and deleting is how a full disk is recovered.
            value = self._value_at(current_rev)
            conn.execute(
                "INSERT INTO log (id, name, created, deleted, create_revision, prev_revision,"
                " value) VALUES (?, ?, 0, 1, ?, ?, x'')",
                (revision, name, create_rev, current_rev),
            )
            event_type = EventType.DELETE
        kv = KeyValue(op.key, value, create_rev, revision)
        return kv, Event(event_type, kv)

    def _value_at(self, revision: int) -> bytes:
        row = self._conn.execute("SELECT value FROM log WHERE id = ?", (revision,)).fetchone()
        return bytes(row[0])

    def _compact_step(self) -> Outcome:
        """Compact the next COMPACT_STEP revisions towards the target.

        Each row in (lo, hi] supersedes the row named by its prev_revision, which goes;
        deletion rows in (lo, hi] go too (absence needs no row). After the step the table
        is exactly "compacted at hi": for every key, only its newest row at or below hi
        remains, unless that row was a deletion.
        """
        lo = self._compacted
        hi = min(lo + COMPACT_STEP, self._compact_target)
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute(
                "DELETE FROM log WHERE id IN (SELECT prev_revision FROM log"
                " WHERE id > ? AND id <= ? AND prev_revision > 0)",
                (lo, hi),
            )
            self._conn.execute("DELETE FROM log WHERE id > ? AND id <= ? AND deleted = 1", (lo, hi))
            self._conn.execute("UPDATE meta SET value = ? WHERE key = 'compact_revision'", (hi,))
            self._conn.execute("COMMIT")
        except Exception as e:
            self._rollback()
            if isinstance(e, sqlite3.Error):
                error = classify(self._path, e)
                logger.error("store compaction failed at=%d error=%s", lo, error)
            else:
                error = Unavailable(
                    f"the compaction stopped because of an unexpected error "
                    f"({type(e).__name__}: {e}); the store is intact, compact again later"
                )
                logger.exception("store compaction failed unexpectedly at=%d", lo)
            self._compact_target = self._compacted  # give up this round; callers may retry
            return Outcome(compactions_done=self._take_waiters(), compaction_error=error)
        self._compacted = hi
        outcome = Outcome(compacted=hi)
        if hi >= self._compact_target:
            self._reclaim()
            outcome.compactions_done = self._take_waiters()
        return outcome

    def _reclaim(self) -> None:
        """Give freed pages back to the file system, a bounded amount at a time."""
        try:
            # executescript, not execute: this pragma frees one page per step and returns
            # no rows, so execute() would stop after the first page.
            self._conn.executescript("PRAGMA incremental_vacuum(4000);")
        except sqlite3.Error as e:
            logger.warning("store incremental vacuum failed error=%s", e)

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error as e:
                logger.error("store rollback failed error=%s", e)

    def _shutdown(self) -> None:
        if self._compact_waiters:
            closed = Unavailable("the store closed before the compaction finished")
            self._send(Outcome(compactions_done=self._take_waiters(), compaction_error=closed))
        try:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as e:
            logger.warning("store checkpoint at close failed error=%s", e)
        self._conn.close()
