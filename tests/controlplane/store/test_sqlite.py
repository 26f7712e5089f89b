"""What only the SQLite backend promises: durability settings, group commit, watch
catch-up beyond the in-memory ring, bounded growth, clear refusals of bad files, and a
writer thread that no error can leave silently dead."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.store import (
    Event,
    EventType,
    Expired,
    KeyValue,
    NotFound,
    StoreError,
    StoreUnusable,
    Unavailable,
)
from controlplane.store.compactor import Compactor
from controlplane.store.sqlite import schema
from controlplane.store.sqlite.store import SqliteStore
from controlplane.store.sqlite.writer import MAX_BATCH, WriteOp, Writer


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


# --- durability -----------------------------------------------------------------------


def test_writer_connection_is_durable(db: Path) -> None:
    conn = schema.open_database(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: fsync per commit
        assert conn.execute("PRAGMA application_id").fetchone()[0] == schema.APPLICATION_ID
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    finally:
        conn.close()
    assert db.stat().st_mode & 0o777 == 0o600  # it will hold the cluster's secrets


async def test_concurrent_writes_share_commits(db: Path) -> None:
    store = await SqliteStore.open(db)
    try:
        await asyncio.gather(*(store.create(f"/k/{i}", b"v") for i in range(256)))
        stats = store.stats
        assert stats.writes == 256
        # Group commit: many writes per fsync when they arrive together.
        assert stats.commits <= 256 // 8, stats
    finally:
        await store.close()


async def test_reopen_keeps_state_and_continues_revisions(db: Path) -> None:
    store = await SqliteStore.open(db)
    a = await store.create("/a", b"1")
    await store.create("/b", b"2")
    gone = await store.delete("/b")  # the newest row is a deletion...
    await store.compact(gone.mod_revision)  # ...and compaction removes it
    await store.close()

    store = await SqliteStore.open(db)
    try:
        assert await store.current_revision() == gone.mod_revision
        assert await store.get("/a") == a
        c = await store.create("/c", b"3")
        assert c.mod_revision == gone.mod_revision + 1  # never reused
        assert await store.compacted_revision() == gone.mod_revision
    finally:
        await store.close()


# --- watch ------------------------------------------------------------------------------


async def test_watch_catches_up_from_the_database(db: Path) -> None:
    store = await SqliteStore.open(db)
    try:
        kv = await store.create("/w/k", b"0")
        first = kv.mod_revision
        for i in range(1, 3000):  # far more than the in-memory ring holds
            kv = await store.update("/w/k", str(i).encode(), expected_revision=kv.mod_revision)
        await store.create("/other", b"x")
        seen = []
        async with await store.watch("/w/", from_revision=first - 1) as watch:
            async with asyncio.timeout(20):
                async for event in watch:
                    seen.append(event)
                    if len(seen) == 3000:
                        break
        assert [e.revision for e in seen] == list(range(first, first + 3000))
        assert seen[0].type is EventType.CREATE
        assert [e.kv.value for e in seen[-2:]] == [b"2998", b"2999"]
    finally:
        await store.close()


async def test_an_open_watch_overtaken_by_compaction_is_expired(db: Path) -> None:
    store = await SqliteStore.open(db)
    try:
        watch = await store.watch("/", from_revision=await store.current_revision())
        # Nobody reads the watch while more changes go by than the ring holds...
        kvs = await asyncio.gather(*(store.create(f"/o/{i:05d}", b"v") for i in range(1500)))
        # ...and their history is compacted: the watch cannot deliver them any more.
        await store.compact(max(kv.mod_revision for kv in kvs))
        seen: list[int] = []

        async def drain() -> None:
            async with asyncio.timeout(20):
                async for event in watch:
                    seen.append(event.revision)

        with pytest.raises(Expired) as info:
            await drain()
        assert seen == sorted(kv.mod_revision for kv in kvs)[: len(seen)]  # no gap before it
        assert info.value.compacted == max(kv.mod_revision for kv in kvs)
        await watch.close()
    finally:
        await store.close()


async def test_an_acknowledged_write_is_ready_on_open_watches(db: Path) -> None:
    # What lets the apiserver answer a write without waiting a turn of the event loop
    # for its watch cache (cache.WatchCache.wait_for).
    store = await SqliteStore.open(db)
    try:
        async with await store.watch("/r/", from_revision=await store.current_revision()) as w:
            a = await store.create("/r/a", b"1")
            b = await store.create("/r/b", b"2")
            assert [(e.kv.key, e.revision) for e in w.ready()] == [
                ("/r/a", a.mod_revision),
                ("/r/b", b.mod_revision),
            ]
            assert w.ready() == []
    finally:
        await store.close()


async def test_a_slow_watcher_misses_nothing(db: Path) -> None:
    store = await SqliteStore.open(db)
    try:
        start = await store.current_revision()
        watch = await store.watch("/", from_revision=start)
        # Nobody reads the watch while 5000 writes go by.
        await asyncio.gather(*(store.create(f"/s/{i:05d}", b"v" * 512) for i in range(5000)))
        revisions = []
        async with asyncio.timeout(30):
            async for event in watch:
                revisions.append(event.revision)
                if len(revisions) == 5000:
                    break
        await watch.close()
        assert revisions == list(range(start + 1, start + 5001))
    finally:
        await store.close()


async def test_closing_the_store_ends_watches(db: Path) -> None:
    store = await SqliteStore.open(db)
    watch = await store.watch("/", from_revision=0)
    waiting = asyncio.create_task(anext(watch, None))
    await asyncio.sleep(0)  # let it start waiting
    await store.close()
    async with asyncio.timeout(5):
        assert await waiting is None


# --- compaction keeps the file bounded ------------------------------------------------


async def test_compaction_leaves_one_row_per_live_key(db: Path) -> None:
    store = await SqliteStore.open(db)
    try:
        kvs = [await store.create(f"/c/{i:03d}", b"x" * 2000) for i in range(100)]
        for _ in range(20):
            kvs = list(
                await asyncio.gather(
                    *(
                        store.update(kv.key, os.urandom(2000), expected_revision=kv.mod_revision)
                        for kv in kvs
                    )
                )
            )
        for kv in kvs[50:]:
            await store.delete(kv.key)
        grown = db.stat().st_size + Path(str(db) + "-wal").stat().st_size
        await store.compact(await store.current_revision())
        remaining = await asyncio.to_thread(_count_rows, db)
        assert remaining == 50
        assert len((await store.list("/c/")).items) == 50
        # Free pages go back to the file system once the WAL is checkpointed.
        await store.close()
        assert db.stat().st_size < grown / 4
    finally:
        await store.close()


async def test_periodic_compaction_bounds_the_open_store(db: Path) -> None:
    """Steady churn (100 keys of 2 KB rewritten round after round) with the Compactor
    ticking between rounds, as ``bramble server`` runs it: the database and its WAL stop
    growing while the store stays open, instead of keeping every revision."""
    store = await SqliteStore.open(db)
    compactor = Compactor(store, min_retain=100)
    try:
        kvs = [await store.create(f"/churn/{i:03d}", b"x" * 2000) for i in range(100)]

        async def round_of_updates() -> None:
            nonlocal kvs
            kvs = list(await asyncio.gather(*(
                store.update(kv.key, os.urandom(2000), expected_revision=kv.mod_revision)
                for kv in kvs
            )))  # fmt: skip

        def size() -> int:
            return db.stat().st_size + Path(str(db) + "-wal").stat().st_size

        sizes = []
        for _ in range(30):
            await round_of_updates()
            await compactor.tick()
            sizes.append(size())
        # 3000 revisions of 2 KB were written (about 6 MB of history); once compaction
        # has caught up, the files hold one interval's worth and stay flat.
        assert max(sizes[10:]) <= 2 * max(sizes[:10]), sizes
        assert sizes[-1] < 6_000_000, sizes
        assert await asyncio.to_thread(_count_rows, db) <= 300  # live keys plus one round
    finally:
        await store.close()


def _count_rows(db: Path) -> int:
    conn = raw(db)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM log").fetchone()[0])
    finally:
        conn.close()


# --- files that are not ours, or not well ---------------------------------------------


async def test_a_file_that_is_not_sqlite_is_refused_untouched(db: Path) -> None:
    junk = os.urandom(8192)
    db.write_bytes(junk)
    with pytest.raises(StoreUnusable, match="not a SQLite database"):
        await SqliteStore.open(db)
    assert db.read_bytes() == junk


async def test_another_programs_database_is_refused_untouched(db: Path) -> None:
    conn = raw(db)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.execute("INSERT INTO users VALUES ('ada')")
    conn.close()
    before = db.read_bytes()
    with pytest.raises(StoreUnusable, match=r"not a bramble store.*users"):
        await SqliteStore.open(db)
    assert db.read_bytes() == before


async def test_a_newer_schema_is_refused(db: Path) -> None:
    store = await SqliteStore.open(db)
    await store.create("/a", b"1")
    await store.close()
    conn = raw(db)
    conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreUnusable, match="newer bramble"):
        await SqliteStore.open(db)


async def test_a_corrupt_file_is_refused(db: Path) -> None:
    store = await SqliteStore.open(db)
    await asyncio.gather(*(store.create(f"/k/{i:04d}", b"v" * 300) for i in range(500)))
    await store.close()
    data = bytearray(db.read_bytes())
    page = 4096
    assert len(data) > 8 * page
    data[3 * page : 6 * page] = os.urandom(3 * page)  # scribble over b-tree pages
    db.write_bytes(bytes(data))
    with pytest.raises(StoreUnusable, match=r"corrupt|unreadable|malformed"):
        await SqliteStore.open(db)


async def test_a_second_process_is_refused(db: Path) -> None:
    store = await SqliteStore.open(db)
    try:
        with pytest.raises(
            StoreUnusable, match=rf"in use by another process \(pid {os.getpid()}\)"
        ):
            await SqliteStore.open(db)
        assert (await store.create("/still/works", b"1")).value == b"1"
    finally:
        await store.close()
    again = await SqliteStore.open(db)  # closing released the lock
    await again.close()


async def test_an_impossible_path_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StoreUnusable, match="cannot create"):
        await SqliteStore.open(tmp_path / "file" / "state.db")


# --- a full disk ------------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: real ENOSPC from the kernel."""
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


async def test_a_full_disk_fails_writes_clearly_and_loses_nothing(tiny_disk: Path) -> None:
    (tiny_disk / "ballast").write_bytes(b"\0" * 384 * 1024)  # space to free later
    store = await SqliteStore.open(tiny_disk / "state.db")
    try:
        acknowledged = {}
        error: Unavailable | None = None
        for i in range(10_000):
            try:
                kv = await store.create(f"/fill/{i:05d}", os.urandom(4000))
            except Unavailable as e:
                error = e
                break
            acknowledged[kv.key] = kv.value
        assert error is not None, "the disk never filled"
        assert "full" in str(error)
        assert len(acknowledged) > 10
        # Everything acknowledged is still there, and reads still work.
        for key, value in list(acknowledged.items())[-5:]:
            assert (await store.get(key)).value == value
        # Free space: writing works again.
        await asyncio.to_thread(_free_space, tiny_disk)
        for key in list(acknowledged)[:20]:
            await store.delete(key)
    except Unavailable as e:
        pytest.fail(f"the store did not recover after space was freed: {e}")
    finally:
        await store.close()
    store = await SqliteStore.open(tiny_disk / "state.db")
    try:
        remaining = {kv.key for kv in (await store.list("/fill/")).items}
        assert remaining == set(list(acknowledged)[20:])
    finally:
        await store.close()


def _free_space(directory: Path) -> None:
    (directory / "ballast").unlink(missing_ok=True)


# --- the writer thread meets an unexpected error ----------------------------------------


async def test_an_unexpected_error_fails_only_its_batch_and_the_writer_goes_on(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply = Writer._apply

    def poisoned(
        self: Writer, op: WriteOp, revision: int
    ) -> tuple[KeyValue | StoreError, Event | None]:
        if op.key == "/poison":
            raise RuntimeError("injected fault")
        return apply(self, op, revision)

    monkeypatch.setattr(Writer, "_apply", poisoned)
    store = await SqliteStore.open(db)
    try:
        async with asyncio.timeout(10):  # a dead writer would leave these hanging
            before = await store.create("/before", b"1")
            with pytest.raises(Unavailable, match=r"unexpected error.*nothing of it was written"):
                await store.create("/poison", b"x")
            after = await store.create("/after", b"2")
        assert after.mod_revision == before.mod_revision + 1  # the failed write took none
        with pytest.raises(NotFound):
            await store.get("/poison")
        assert [kv.key for kv in (await store.list("/")).items] == ["/after", "/before"]
    finally:
        await store.close()
    store = await SqliteStore.open(db)  # and the file holds exactly the same
    try:
        assert [kv.key for kv in (await store.list("/")).items] == ["/after", "/before"]
    finally:
        await store.close()


class _Fatal(BaseException):
    """An error no guard in the writer catches: its thread dies of it."""


def fatal(self: Writer, op: WriteOp, revision: int) -> tuple[KeyValue | StoreError, Event | None]:
    """Writer._apply that kills the writer thread."""
    raise _Fatal("injected fault")


async def test_when_the_writer_thread_dies_every_write_fails_at_once(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await SqliteStore.open(db)
    try:
        kept = await store.create("/kept", b"1")
        monkeypatch.setattr(Writer, "_apply", fatal)
        async with asyncio.timeout(10):
            # The writes the thread held or had queued when it died are answered...
            outcomes = await asyncio.gather(
                *(store.create(f"/in-flight/{i}", b"x") for i in range(4)),
                return_exceptions=True,
            )
            assert all(isinstance(o, StoreError) for o in outcomes), outcomes
            assert any("outcome is unknown" in str(o) for o in outcomes), outcomes
            # ...and later ones are refused at once, saying what to do.
            with pytest.raises(StoreUnusable, match=r"writer stopped.*restart bramble server"):
                await store.create("/later", b"y")
            with pytest.raises(StoreUnusable):
                await store.compact(kept.mod_revision)
        assert await store.get("/kept") == kept  # reads still work
    finally:
        await store.close()


async def test_a_writer_that_dies_answers_the_writes_beyond_its_batch_too(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes reach the thread a loop turn's worth at a time; a turn of more than a batch
    leaves some carried over, and a thread that dies answers those as well."""

    store = await SqliteStore.open(db)
    try:
        monkeypatch.setattr(Writer, "_apply", fatal)
        count = MAX_BATCH + 88
        async with asyncio.timeout(10):
            outcomes = await asyncio.gather(
                *(store.create(f"/burst/{i}", b"x") for i in range(count)),
                return_exceptions=True,
            )
        assert all(isinstance(o, StoreError) for o in outcomes), outcomes
        unknown = [o for o in outcomes if "outcome is unknown" in str(o)]
        refused = [o for o in outcomes if isinstance(o, StoreUnusable)]
        assert (len(unknown), len(refused)) == (MAX_BATCH, 88)
    finally:
        await store.close()
