"""The Store contract, run against every backend (SQLite on a temporary file, a real
single-member etcd on loopback). A backend is correct when all of this passes."""

from __future__ import annotations

import asyncio

import pytest

from controlplane.store import (
    MAX_VALUE_BYTES,
    AlreadyExists,
    Conflict,
    Event,
    EventType,
    Expired,
    InvalidArgument,
    NotFound,
    Store,
    Unavailable,
    WatchStream,
    open_store,
)


async def take(watch: WatchStream, n: int, timeout: float = 10.0) -> list[Event]:
    """The next ``n`` events (failing the test if they do not come)."""
    events: list[Event] = []
    async with asyncio.timeout(timeout):
        async for event in watch:
            events.append(event)
            if len(events) == n:
                break
    return events


# --- create, get, update, delete ------------------------------------------------------


async def test_create_then_get(store: Store, prefix: str) -> None:
    kv = await store.create(prefix + "a", b"one")
    assert kv.value == b"one"
    assert kv.create_revision == kv.mod_revision > 0
    assert await store.get(prefix + "a") == kv
    assert await store.current_revision() >= kv.mod_revision


async def test_create_existing_fails_and_changes_nothing(store: Store, prefix: str) -> None:
    kv = await store.create(prefix + "a", b"one")
    with pytest.raises(AlreadyExists):
        await store.create(prefix + "a", b"two")
    assert await store.get(prefix + "a") == kv


async def test_update_with_the_current_revision(store: Store, prefix: str) -> None:
    created = await store.create(prefix + "a", b"one")
    updated = await store.update(prefix + "a", b"two", expected_revision=created.mod_revision)
    assert updated.value == b"two"
    assert updated.mod_revision > created.mod_revision
    assert updated.create_revision == created.create_revision
    assert await store.get(prefix + "a") == updated


async def test_update_with_a_stale_revision_conflicts(store: Store, prefix: str) -> None:
    created = await store.create(prefix + "a", b"one")
    current = await store.update(prefix + "a", b"two", expected_revision=created.mod_revision)
    with pytest.raises(Conflict) as info:
        await store.update(prefix + "a", b"three", expected_revision=created.mod_revision)
    assert info.value.current == current
    assert await store.get(prefix + "a") == current


async def test_update_and_delete_of_a_missing_key(store: Store, prefix: str) -> None:
    with pytest.raises(NotFound):
        await store.update(prefix + "nope", b"x", expected_revision=1)
    with pytest.raises(NotFound):
        await store.delete(prefix + "nope")
    with pytest.raises(NotFound):
        await store.delete(prefix + "nope", expected_revision=1)
    with pytest.raises(NotFound):
        await store.get(prefix + "nope")


@pytest.mark.parametrize("expected", [0, 1, 10**12], ids=["expecting-0", "expecting-1", "far"])
async def test_compare_and_swap_on_a_missing_key_is_not_found_and_writes_nothing(
    store: Store, prefix: str, expected: int
) -> None:
    # An absent key has mod_revision 0 in etcd: expecting 0 must not create it.
    before = await store.current_revision()
    with pytest.raises(NotFound):
        await store.update(prefix + "nope", b"x", expected_revision=expected)
    with pytest.raises(NotFound):
        await store.delete(prefix + "nope", expected_revision=expected)
    with pytest.raises(NotFound):
        await store.get(prefix + "nope")
    assert (await store.list(prefix)).items == []
    assert await store.current_revision() == before


async def test_compare_and_swap_on_a_deleted_key_is_not_found_and_writes_nothing(
    store: Store, prefix: str
) -> None:
    created = await store.create(prefix + "gone", b"x")
    await store.delete(prefix + "gone")
    before = await store.current_revision()
    for expected in (0, created.mod_revision):
        with pytest.raises(NotFound):
            await store.update(prefix + "gone", b"back", expected_revision=expected)
        with pytest.raises(NotFound):
            await store.delete(prefix + "gone", expected_revision=expected)
    with pytest.raises(NotFound):
        await store.get(prefix + "gone")
    assert await store.current_revision() == before


async def test_delete_compare_and_swap(store: Store, prefix: str) -> None:
    created = await store.create(prefix + "a", b"one")
    current = await store.update(prefix + "a", b"two", expected_revision=created.mod_revision)
    with pytest.raises(Conflict):
        await store.delete(prefix + "a", expected_revision=created.mod_revision)
    deleted = await store.delete(prefix + "a", expected_revision=current.mod_revision)
    assert deleted.value == b"two"  # the last value
    assert deleted.mod_revision > current.mod_revision
    with pytest.raises(NotFound):
        await store.get(prefix + "a")
    again = await store.create(prefix + "a", b"three")
    assert again.create_revision > deleted.mod_revision


async def test_get_at_an_old_revision(store: Store, prefix: str) -> None:
    v1 = await store.create(prefix + "a", b"one")
    v2 = await store.update(prefix + "a", b"two", expected_revision=v1.mod_revision)
    gone = await store.delete(prefix + "a")
    assert (await store.get(prefix + "a", revision=v1.mod_revision)).value == b"one"
    assert (await store.get(prefix + "a", revision=v2.mod_revision)).value == b"two"
    with pytest.raises(NotFound):
        await store.get(prefix + "a", revision=gone.mod_revision)
    with pytest.raises(NotFound):
        await store.get(prefix + "a", revision=v1.mod_revision - 1)


async def test_empty_key_is_invalid(store: Store) -> None:
    with pytest.raises(InvalidArgument):
        await store.create("", b"x")


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("a\udc80", id="lone-low-surrogate"),
        pytest.param("\ud83d/x", id="lone-high-surrogate"),
    ],
)
async def test_keys_that_are_not_valid_text_are_invalid_and_write_nothing(
    store: Store, prefix: str, bad: str
) -> None:
    key = prefix + bad
    before = await store.current_revision()
    async with asyncio.timeout(10):  # a store that lost the write would hang here
        with pytest.raises(InvalidArgument, match="not valid Unicode"):
            await store.create(key, b"x")
        with pytest.raises(InvalidArgument):
            await store.update(key, b"x", expected_revision=0)
        with pytest.raises(InvalidArgument):
            await store.delete(key)
        with pytest.raises(InvalidArgument):
            await store.get(key)
        with pytest.raises(InvalidArgument):
            await store.list(key)
        with pytest.raises(InvalidArgument):
            await store.watch(key, from_revision=before)
    assert await store.current_revision() == before
    assert (await store.list(prefix)).items == []
    # The store is unharmed: a good key right after is written and read back.
    kv = await store.create(prefix + "good", b"y")
    assert await store.get(prefix + "good") == kv


async def test_keys_are_unicode(store: Store, prefix: str) -> None:
    kv = await store.create(prefix + "brombeere/größe-🫐", b"x")
    assert (await store.get(prefix + "brombeere/größe-🫐")).key == kv.key
    listed = await store.list(prefix + "brombeere/")
    assert [i.key for i in listed.items] == [kv.key]


# --- list -------------------------------------------------------------------------------


async def test_list_by_prefix_in_key_order(store: Store, prefix: str) -> None:
    for name in ["pods/b", "pods/a", "pods2/x", "pod", "pods/c/d"]:
        await store.create(prefix + name, name.encode())
    await store.delete(prefix + "pods/b")
    listed = await store.list(prefix + "pods/")
    assert [kv.key for kv in listed.items] == [prefix + "pods/a", prefix + "pods/c/d"]
    assert listed.revision == await store.current_revision()
    assert listed.continue_token is None


async def test_list_at_an_old_revision(store: Store, prefix: str) -> None:
    a = await store.create(prefix + "a", b"1")
    await store.create(prefix + "b", b"1")
    snapshot = await store.current_revision()
    await store.update(prefix + "a", b"2", expected_revision=a.mod_revision)
    await store.delete(prefix + "b")
    await store.create(prefix + "c", b"1")
    then = await store.list(prefix, revision=snapshot)
    assert [(kv.key, kv.value) for kv in then.items] == [(prefix + "a", b"1"), (prefix + "b", b"1")]
    assert then.revision == snapshot
    now = await store.list(prefix)
    assert [(kv.key, kv.value) for kv in now.items] == [(prefix + "a", b"2"), (prefix + "c", b"1")]


async def test_paged_list_is_consistent_across_writes(store: Store, prefix: str) -> None:
    for i in range(25):
        await store.create(f"{prefix}k{i:02d}", b"v")
    first = await store.list(prefix, limit=10)
    assert len(first.items) == 10
    assert first.continue_token is not None
    # Writes between pages must not show up in later pages of the same list.
    await store.create(prefix + "k05x", b"new")
    await store.delete(prefix + "k20")
    keys = [kv.key for kv in first.items]
    token: str | None = first.continue_token
    while token is not None:
        page = await store.list(prefix, limit=10, continue_token=token)
        assert page.revision == first.revision
        keys += [kv.key for kv in page.items]
        token = page.continue_token
    assert keys == [f"{prefix}k{i:02d}" for i in range(25)]


@pytest.mark.parametrize("token", ["garbage", "", "eyJ2Ijo5OX0", "%%%%"])
async def test_malformed_continue_token(store: Store, prefix: str, token: str) -> None:
    with pytest.raises(InvalidArgument):
        await store.list(prefix, limit=1, continue_token=token)


async def test_reads_at_a_future_revision_are_invalid(store: Store, prefix: str) -> None:
    await store.create(prefix + "a", b"1")
    future = await store.current_revision() + 1000
    with pytest.raises(InvalidArgument):
        await store.get(prefix + "a", revision=future)
    with pytest.raises(InvalidArgument):
        await store.list(prefix, revision=future)


async def test_continue_token_of_another_prefix(store: Store, prefix: str) -> None:
    for i in range(3):
        await store.create(f"{prefix}a/{i}", b"v")
    page = await store.list(prefix + "a/", limit=1)
    assert page.continue_token is not None
    with pytest.raises(InvalidArgument):
        await store.list(prefix + "b/", limit=1, continue_token=page.continue_token)


# --- watch ------------------------------------------------------------------------------


async def test_watch_delivers_changes_in_order(store: Store, prefix: str) -> None:
    start = await store.current_revision()
    async with await store.watch(prefix + "w/", from_revision=start) as watch:
        a = await store.create(prefix + "w/a", b"1")
        await store.create(prefix + "other", b"not watched")
        b = await store.update(prefix + "w/a", b"2", expected_revision=a.mod_revision)
        c = await store.delete(prefix + "w/a")
        events = await take(watch, 3)
    assert [(e.type, e.kv.value, e.revision) for e in events] == [
        (EventType.CREATE, b"1", a.mod_revision),
        (EventType.UPDATE, b"2", b.mod_revision),
        (EventType.DELETE, b"2", c.mod_revision),
    ]
    assert all(e.kv.create_revision == a.create_revision for e in events)


async def test_watch_from_an_old_revision_replays_then_follows(store: Store, prefix: str) -> None:
    start = await store.current_revision()
    written = []
    kv = await store.create(prefix + "k", b"0")
    written.append(kv.mod_revision)
    for i in range(1, 30):
        kv = await store.update(prefix + "k", str(i).encode(), expected_revision=kv.mod_revision)
        written.append(kv.mod_revision)
    async with await store.watch(prefix, from_revision=written[9]) as watch:
        replayed = await take(watch, 20)
        live = await store.update(prefix + "k", b"live", expected_revision=kv.mod_revision)
        (followed,) = await take(watch, 1)
    assert [e.revision for e in replayed] == written[10:]
    assert [e.kv.value for e in replayed] == [str(i).encode() for i in range(10, 30)]
    assert followed.revision == live.mod_revision
    assert start < written[0]


async def test_ready_and_iteration_together_give_every_event_once(
    store: Store, prefix: str
) -> None:
    start = await store.current_revision()
    async with await store.watch(prefix, from_revision=start) as watch:
        written = [(await store.create(prefix + f"k{i}", b"v")).mod_revision for i in range(6)]
        seen = [e.revision for e in watch.ready()]  # whatever the stream already holds
        if len(seen) < len(written):
            seen += [e.revision for e in await take(watch, len(written) - len(seen))]
        assert watch.ready() == []  # nothing held back, nothing twice
    assert seen == written


async def test_watch_close_ends_iteration(store: Store, prefix: str) -> None:
    watch = await store.watch(prefix, from_revision=await store.current_revision())
    received: list[Event] = []

    async def consume() -> None:
        async for event in watch:
            received.append(event)

    task = asyncio.create_task(consume())
    await store.create(prefix + "a", b"1")
    async with asyncio.timeout(10):
        while not received:  # the event is committed; let the consumer take it
            await asyncio.sleep(0.001)
        await watch.close()
        await task
    assert [e.kv.key for e in received] == [prefix + "a"]


# --- compaction -----------------------------------------------------------------------


async def test_compaction_expires_old_reads_and_watches(store: Store, prefix: str) -> None:
    kv = await store.create(prefix + "a", b"0")
    old = kv.mod_revision
    for i in range(1, 5):
        kv = await store.update(prefix + "a", str(i).encode(), expected_revision=kv.mod_revision)
    await store.create(prefix + "b", b"x")
    gone = await store.delete(prefix + "b")
    floor = kv.mod_revision
    await store.compact(floor)

    with pytest.raises(Expired):
        await store.get(prefix + "a", revision=old)
    with pytest.raises(Expired):
        await store.list(prefix, revision=old)
    with pytest.raises(Expired):
        await store.watch(prefix, from_revision=old)
    # At and after the floor everything is intact.
    assert (await store.get(prefix + "a", revision=floor)).value == b"4"
    assert [i.key for i in (await store.list(prefix, revision=floor)).items] == [prefix + "a"]
    assert [i.key for i in (await store.list(prefix)).items] == [prefix + "a"]
    async with await store.watch(prefix, from_revision=floor) as watch:
        events = await take(watch, 2)
    assert [e.type for e in events] == [EventType.CREATE, EventType.DELETE]
    assert events[1].revision == gone.mod_revision
    # Compacting again, or lower, is harmless.
    await store.compact(floor)
    await store.compact(old)


async def test_a_continue_token_whose_revision_was_compacted_is_expired(
    store: Store, prefix: str
) -> None:
    for i in range(3):
        await store.create(f"{prefix}{i}", b"v")
    first = await store.list(prefix, limit=1)
    assert first.continue_token is not None
    later = await store.create(prefix + "later", b"v")  # so the compaction passes the page
    await store.compact(later.mod_revision)
    with pytest.raises(Expired):
        await store.list(prefix, limit=1, continue_token=first.continue_token)


async def test_a_watch_of_all_history_after_a_compaction_is_expired_at_once(
    store: Store, prefix: str
) -> None:
    await store.create(prefix + "a", b"1")
    kv = await store.create(prefix + "b", b"1")
    await store.compact(kv.mod_revision)
    # from_revision=0 asks for every change ever made: that history is gone, and the
    # caller must hear it from watch() itself, not from the first event.
    with pytest.raises(Expired):
        await store.watch(prefix, from_revision=0)
    with pytest.raises(Expired):
        await store.watch(prefix, from_revision=kv.mod_revision - 2)


async def test_an_open_watch_behind_a_compaction_skips_nothing(store: Store, prefix: str) -> None:
    # Nobody reads the watch while 10 MiB of changes go by (more than the SQLite store
    # keeps in memory), and then their history is compacted. The watch may still
    # deliver every change (etcd has already sent them down the stream) or raise
    # Expired, but it never skips one. (Each backend's own tests force the Expired.)
    start = await store.current_revision()
    value = b"v" * (256 << 10)
    seen: list[int] = []
    expired: Expired | None = None
    async with await store.watch(prefix, from_revision=start) as watch:
        written = [(await store.create(f"{prefix}{i:02d}", value)).mod_revision for i in range(40)]
        await store.compact(written[-1])
        try:
            async with asyncio.timeout(20):
                async for event in watch:
                    seen.append(event.revision)
                    if len(seen) == len(written):
                        break
        except Expired as e:
            expired = e
    assert seen == written[: len(seen)], "the watch skipped or repeated a change"
    if expired is None:
        assert seen == written
    # Whoever got Expired resumes from the compacted revision, and is served.
    async with await store.watch(prefix, from_revision=written[-1]) as again:
        kv = await store.create(prefix + "after", b"x")
        assert [e.kv for e in await take(again, 1)] == [kv]


async def test_compacting_to_the_future_is_invalid(store: Store) -> None:
    with pytest.raises(InvalidArgument):
        await store.compact(await store.current_revision() + 1000)


# --- concurrency ----------------------------------------------------------------------


async def test_concurrent_writers(store: Store, prefix: str) -> None:
    start = await store.current_revision()
    writers, per_writer = 32, 20

    async def writer(w: int) -> list[int]:
        revisions = []
        for i in range(per_writer):
            kv = await store.create(f"{prefix}w{w:02d}/{i:03d}", f"{w}:{i}".encode())
            revisions.append(kv.mod_revision)
        return revisions

    async with await store.watch(prefix, from_revision=start) as watch:
        results = await asyncio.gather(*(writer(w) for w in range(writers)))
        events = await take(watch, writers * per_writer, timeout=30)
    acknowledged = sorted(r for rs in results for r in rs)
    assert len(set(acknowledged)) == writers * per_writer  # one revision per write
    for revisions in results:  # each writer's own writes are ordered
        assert revisions == sorted(revisions)
    assert [e.revision for e in events] == acknowledged  # all seen, once, in order
    listed = await store.list(prefix)
    assert len(listed.items) == writers * per_writer


async def test_concurrent_compare_and_swap_loses_no_increment(store: Store, prefix: str) -> None:
    key = prefix + "counter"
    await store.create(key, b"0")
    conflicts = 0

    async def increment(times: int) -> None:
        nonlocal conflicts
        for _ in range(times):
            kv = await store.get(key)
            while True:
                try:
                    await store.update(
                        key, str(int(kv.value) + 1).encode(), expected_revision=kv.mod_revision
                    )
                    break
                except Conflict as e:
                    conflicts += 1
                    kv = e.current

    await asyncio.gather(*(increment(10) for _ in range(16)))
    assert (await store.get(key)).value == b"160"
    assert conflicts > 0  # the test did exercise contention


# --- size -----------------------------------------------------------------------------


async def test_large_values(store: Store, prefix: str) -> None:
    big = bytes(range(256)) * (1 << 12)  # 1 MiB, every byte value
    kv = await store.create(prefix + "big", big)
    assert (await store.get(prefix + "big")).value == big
    updated = await store.update(prefix + "big", big[::-1], expected_revision=kv.mod_revision)
    assert (await store.get(prefix + "big")).value == big[::-1]
    with pytest.raises(InvalidArgument):
        await store.create(prefix + "huge", b"x" * (MAX_VALUE_BYTES + 1))
    with pytest.raises(InvalidArgument):
        await store.update(
            prefix + "big", b"x" * (MAX_VALUE_BYTES + 1), expected_revision=updated.mod_revision
        )
    assert (await store.get(prefix + "big")).value == big[::-1]


async def test_watch_delivers_values_at_the_limit(store: Store, prefix: str) -> None:
    start = await store.current_revision()
    async with await store.watch(prefix, from_revision=start) as live:
        a = await store.create(prefix + "big", b"a" * MAX_VALUE_BYTES)
        b = await store.update(
            prefix + "big", b"b" * MAX_VALUE_BYTES, expected_revision=a.mod_revision
        )
        c = await store.delete(prefix + "big")
        events = await take(live, 3)
    assert [(e.type, e.kv) for e in events] == [
        (EventType.CREATE, a),
        (EventType.UPDATE, b),
        (EventType.DELETE, c),
    ]
    # From history all three come at once (etcd: in one answer, over its request limit).
    async with await store.watch(prefix, from_revision=start) as replay:
        assert await take(replay, 3) == events


async def test_value_at_the_limit(store: Store, prefix: str) -> None:
    value = b"v" * MAX_VALUE_BYTES
    await store.create(prefix + "limit", value)
    assert (await store.get(prefix + "limit")).value == value


async def test_many_keys(store: Store, prefix: str) -> None:
    n = 3000
    await asyncio.gather(*(store.create(f"{prefix}{i:05d}", b"x" * 100) for i in range(n)))
    listed = await store.list(prefix)
    assert [kv.key for kv in listed.items] == [f"{prefix}{i:05d}" for i in range(n)]
    pages, token = 0, None
    keys: list[str] = []
    while True:
        page = await store.list(prefix, limit=1000, continue_token=token)
        keys += [kv.key for kv in page.items]
        pages += 1
        token = page.continue_token
        if token is None:
            break
    assert keys == [kv.key for kv in listed.items]
    assert pages in (3, 4)  # 3 full pages; a backend may need an empty 4th to know it is done


async def test_closed_store_refuses_work(store_url: str, prefix: str) -> None:
    s = await open_store(store_url)
    await s.close()
    with pytest.raises(Unavailable):
        await s.create(prefix + "x", b"1")
    with pytest.raises(Unavailable):
        await s.list(prefix)
    await s.close()  # closing twice is harmless
