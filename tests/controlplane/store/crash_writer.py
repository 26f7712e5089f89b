"""Run by test_sqlite_crash.py: write through the SQLite store as fast as possible until
killed, printing every acknowledged write ("ACK key revision value") and every event a
watcher receives ("SAW revision") the moment it happens."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from controlplane.store import AlreadyExists, KeyValue
from controlplane.store.sqlite.store import SqliteStore


def say(line: str) -> None:
    """One line to the parent, at once: the parent kills this process at any moment."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(path: Path, tag: str) -> None:
    store = await SqliteStore.open(path)
    watch = await store.watch("/crash/", from_revision=await store.current_revision())
    say("READY")

    async def watcher() -> None:
        async for event in watch:
            say(f"SAW {event.revision}")

    async def writer(w: int) -> None:
        known: dict[str, KeyValue] = {}
        i = 0
        while True:
            key = f"/crash/w{w}/{i % 40}"
            value = f"{tag}-w{w}-{i}".encode()
            if key in known:
                kv = await store.update(key, value, expected_revision=known[key].mod_revision)
            else:
                try:
                    kv = await store.create(key, value)
                except AlreadyExists:  # written by an earlier round
                    current = await store.get(key)
                    kv = await store.update(key, value, expected_revision=current.mod_revision)
            known[key] = kv
            say(f"ACK {key} {kv.mod_revision} {value.decode()}")
            i += 1

    await asyncio.gather(watcher(), *(writer(w) for w in range(8)))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
