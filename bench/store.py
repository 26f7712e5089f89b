"""Store benchmark: the SQLite backend against a real single-member etcd, in one run.

    .venv/bin/python -m bench.store [--quick]

Both stores live on the same disk (the system temporary directory); etcd is started by
the benchmark on free loopback ports and stopped at the end. Every write is durable
(SQLite: synchronous=FULL, WAL fsync per commit; etcd: its WAL fsync per proposal).
Prints a Markdown table (docs/benchmarks.md keeps the figures).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from api.runner import run
from bench.support.stats import machine, ms, pct
from controlplane.store import Store, open_store
from tests.support.etcd import EtcdCluster


@dataclass(frozen=True)
class Sizes:
    writes_single: int  # writes by one writer
    writes_each: int  # writes by each of 32 writers
    reads: int
    lists: int
    watched_writes: int


FULL = Sizes(writes_single=1000, writes_each=200, reads=3000, lists=300, watched_writes=1000)
QUICK = Sizes(writes_single=200, writes_each=40, reads=500, lists=50, watched_writes=200)


async def rate(writers: int, each: int, op: Callable[[int, int], Awaitable[object]]) -> float:
    """Acknowledged operations per second with ``writers`` concurrent writers."""

    async def writer(w: int) -> None:
        for i in range(each):
            await op(w, i)

    start = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    return writers * each / (time.perf_counter() - start)


async def bench(store: Store, sizes: Sizes) -> dict[str, str]:
    out: dict[str, str] = {}
    p = f"/bench/{os.getpid()}-{time.monotonic_ns()}"

    # Durable creates.
    r1 = await rate(
        1, sizes.writes_single, lambda w, i: store.create(f"{p}/c1/{i:06d}", b"x" * 512)
    )
    r32 = await rate(
        32, sizes.writes_each, lambda w, i: store.create(f"{p}/c32/{w:02d}/{i:06d}", b"x" * 512)
    )
    out["creates/s, 1 writer"] = f"{r1:,.0f}"
    out["creates/s, 32 writers"] = f"{r32:,.0f}"

    # Compare-and-swap updates, each writer on its own key.
    revisions: dict[int, int] = {}
    for w in range(32):
        revisions[w] = (await store.create(f"{p}/u/{w:02d}", b"0")).mod_revision

    async def cas(w: int, i: int) -> None:
        kv = await store.update(f"{p}/u/{w:02d}", b"y" * 512, expected_revision=revisions[w])
        revisions[w] = kv.mod_revision

    u1 = await rate(1, sizes.writes_single, cas)
    u32 = await rate(32, sizes.writes_each, cas)
    out["CAS updates/s, 1 writer"] = f"{u1:,.0f}"
    out["CAS updates/s, 32 writers"] = f"{u32:,.0f}"

    # Point reads of existing keys.
    samples = []
    for i in range(sizes.reads):
        key = f"{p}/c1/{i % sizes.writes_single:06d}"
        t = time.perf_counter()
        await store.get(key)
        samples.append(time.perf_counter() - t)
    out["get p50 / p99"] = f"{ms(pct(samples, 0.5))} / {ms(pct(samples, 0.99))}"

    # Prefix lists of 100 keys (one writer's keys) among everything written above.
    samples = []
    for i in range(sizes.lists):
        t = time.perf_counter()
        listed = await store.list(f"{p}/c32/{i % 32:02d}/", limit=100)
        samples.append(time.perf_counter() - t)
        assert len(listed.items) == min(100, sizes.writes_each)
    out["list 100 keys p50 / p99"] = f"{ms(pct(samples, 0.5))} / {ms(pct(samples, 0.99))}"

    # Watch delivery: from the moment a write is issued to its event reaching a watcher,
    # with one writer (the delivery itself) and under the 32-writer load (group commits
    # and a busy loop: what a watcher of a busy apiserver sees).
    one = await delivery(store, f"{p}/w1/", writers=1, each=sizes.watched_writes)
    out["write → watch event p50 / p99, 1 writer"] = f"{ms(pct(one, 0.5))} / {ms(pct(one, 0.99))}"
    busy = await delivery(store, f"{p}/w32/", writers=32, each=sizes.writes_each)
    out["write → watch event p50 / p99, 32 writers"] = (
        f"{ms(pct(busy, 0.5))} / {ms(pct(busy, 0.99))}"
    )
    return out


async def delivery(store: Store, prefix: str, *, writers: int, each: int) -> list[float]:
    """Seconds from each create being issued to its event reaching one watcher of
    ``prefix``, with ``writers`` concurrent writers of ``each`` creates."""
    issued: dict[bytes, float] = {}
    delays: list[float] = []
    watch = await store.watch(prefix, from_revision=await store.current_revision())
    done = asyncio.Event()

    async def watcher() -> None:
        async for event in watch:
            delays.append(time.perf_counter() - issued[event.kv.value])
            if len(delays) == writers * each:
                done.set()
                return

    async def write(w: int, i: int) -> None:
        value = f"{w:02d}/{i:06d}".encode()
        issued[value] = time.perf_counter()
        await store.create(prefix + value.decode(), value)

    task = asyncio.create_task(watcher())
    await rate(writers, each, write)
    await asyncio.wait_for(done.wait(), 30)
    await task
    await watch.close()
    return delays


def fsync_latency(directory: Path) -> str:
    path = directory / "fsync.probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    samples = []
    try:
        for _ in range(200):
            os.write(fd, b"x" * 512)
            t = time.perf_counter()
            os.fsync(fd)
            samples.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        path.unlink()
    return f"{ms(statistics.median(samples))} median, {ms(pct(samples, 0.99))} p99"


async def main(sizes: Sizes) -> None:
    with tempfile.TemporaryDirectory(prefix="bramble-bench-") as tmp:
        work = Path(tmp)
        results: dict[str, dict[str, str]] = {}
        sqlite = await open_store(f"sqlite://{work / 'state.db'}")
        try:
            results["sqlite"] = await bench(sqlite, sizes)
        finally:
            await sqlite.close()
        cluster = EtcdCluster(work / "etcd", size=1)
        (work / "etcd").mkdir()
        cluster.start()
        try:
            etcd = await open_store(cluster.url())
            try:
                results["etcd 3.4 (1 member)"] = await bench(etcd, sizes)
            finally:
                await etcd.close()
        finally:
            cluster.stop()
        disk = fsync_latency(work)

    print(f"machine: {machine()}, fsync of the temp disk: {disk}")
    print()
    names = list(results)
    print("| metric | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for metric in results[names[0]]:
        print(f"| {metric} | " + " | ".join(results[n][metric] for n in names) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke test)")
    args = parser.parse_args()
    run(main(QUICK if args.quick else FULL))  # the loop bramble server runs on
