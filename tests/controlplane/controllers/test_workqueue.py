"""The work queue's invariants (controlplane/controllers/workqueue.py)."""

from __future__ import annotations

import asyncio

import pytest

from controlplane.controllers.workqueue import ShutDown, WorkQueue


async def test_a_key_is_queued_once_however_many_adds() -> None:
    queue = WorkQueue("t")
    for key in ("a", "b", "a", "a", "b"):
        queue.add(key)
    assert len(queue) == 2
    assert [await queue.get(), await queue.get()] == ["a", "b"]


async def test_an_add_while_processing_requeues_after_done_not_before() -> None:
    queue = WorkQueue("t")
    queue.add("a")
    key = await queue.get()
    queue.add("a")  # an event arrives while a worker reconciles "a"
    assert len(queue) == 0  # not handed to a second worker concurrently
    queue.done(key)
    assert len(queue) == 1
    assert await queue.get() == "a"


async def test_done_without_new_add_does_not_requeue() -> None:
    queue = WorkQueue("t")
    queue.add("a")
    queue.done(await queue.get())
    assert len(queue) == 0


async def test_get_waits_for_an_add() -> None:
    queue = WorkQueue("t")
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()
    queue.add("x")
    assert await asyncio.wait_for(getter, 1) == "x"


async def test_rate_limited_back_off_doubles_and_forget_resets() -> None:
    queue = WorkQueue("t", max_delay=0.02)
    loop = asyncio.get_running_loop()
    delays = []
    for _ in range(4):
        start = loop.time()
        queue.add_rate_limited("k")
        queue.done(await asyncio.wait_for(queue.get(), 1))
        delays.append(loop.time() - start)
    assert queue.requeues("k") == 4
    # 5 ms, 10 ms, then capped at 20 ms: each at least its delay.
    assert delays[0] >= 0.005
    assert delays[2] >= 0.02
    queue.forget("k")
    assert queue.requeues("k") == 0


async def test_add_after_keeps_the_earliest_time() -> None:
    queue = WorkQueue("t")
    queue.add_after("k", 30)
    queue.add_after("k", 0.01)  # sooner wins
    queue.add_after("k", 60)  # later loses
    assert await asyncio.wait_for(queue.get(), 1) == "k"


async def test_shut_down_wakes_waiting_workers() -> None:
    queue = WorkQueue("t")
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.shut_down()
    with pytest.raises(ShutDown):
        await asyncio.wait_for(getter, 1)
    queue.add("ignored")
    assert len(queue) == 0
