"""Crash safety of the SQLite store, for real: a writer process is SIGKILLed in the
middle of a stream of writes; every write it acknowledged must be there on reopen, and
a watcher must resume from the last revision it saw with no gap."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from controlplane.store.sqlite.store import SqliteStore

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Round:
    acked: list[tuple[str, int, bytes]] = field(default_factory=list)
    seen: list[int] = field(default_factory=list)


async def run_and_kill(db: Path, tag: str, *, after_acks: int) -> Round:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.controlplane.store.crash_writer",
        str(db),
        tag,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    result = Round()
    try:
        async with asyncio.timeout(60):
            assert await proc.stdout.readline() == b"READY\n"
            while len(result.acked) < after_acks:
                line = (await proc.stdout.readline()).decode()
                assert line, "the writer exited early"
                kind, *rest = line.split()
                if kind == "ACK":
                    result.acked.append((rest[0], int(rest[1]), rest[2].encode()))
                elif kind == "SAW":
                    result.seen.append(int(rest[0]))
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream, no chance to close anything
        # What it printed before dying was acknowledged before dying: count it too.
        tail = await proc.stdout.read()
        await proc.wait()
    for line in tail.decode().splitlines():
        kind, *fields = line.split()
        if kind == "ACK" and len(fields) == 3:
            result.acked.append((fields[0], int(fields[1]), fields[2].encode()))
        elif kind == "SAW" and len(fields) == 1:
            result.seen.append(int(fields[0]))
    assert proc.returncode == -signal.SIGKILL
    return result


async def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    for n in range(3):  # each round reopens what the previous one left after its kill
        got = await run_and_kill(db, f"r{n}", after_acks=2000 + 700 * n)
        assert got.acked
        assert got.seen
        assert got.seen == list(range(got.seen[0], got.seen[-1] + 1)), "the watcher saw a gap"

        store = await SqliteStore.open(db)
        try:
            current = await store.current_revision()
            assert current >= max(rev for _, rev, _ in got.acked)
            for key, rev, value in got.acked:
                assert (await store.get(key, revision=rev)).value == value
                assert (await store.get(key)).mod_revision >= rev
            # The watcher resumes after the last event it saw: no gap, no duplicate.
            last_seen = got.seen[-1]
            resumed = []
            if current > last_seen:
                async with await store.watch("/crash/", from_revision=last_seen) as watch:
                    async with asyncio.timeout(20):
                        async for event in watch:
                            resumed.append(event.revision)
                            if event.revision == current:
                                break
            assert resumed == list(range(last_seen + 1, current + 1))
            assert {rev for _, rev, _ in got.acked if rev > last_seen} <= set(resumed)
        finally:
            await store.close()
