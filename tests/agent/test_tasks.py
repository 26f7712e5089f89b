"""The guard every long-lived agent task starts through: a task that fails or ends is
logged and started again; a one-shot task is logged and left ended; cancellation (the
agent stopping) passes through."""

from __future__ import annotations

import asyncio

import pytest

from agent.tasks import guard


async def test_a_failing_loop_is_logged_and_started_again(caplog: pytest.LogCaptureFixture) -> None:
    runs: list[int] = []
    running_again = asyncio.Event()

    async def loop() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise OSError(28, "No space left on device")
        if len(runs) == 2:
            return  # a long-lived loop must never end: started again too
        running_again.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(guard(loop, name="writer", restart_after=0))
    async with asyncio.timeout(5):
        await running_again.wait()
    assert runs == [0, 1, 2]
    assert "agent task failed task=writer" in caplog.text
    assert "No space left on device" in caplog.text  # the traceback
    assert "agent task ended unexpectedly task=writer" in caplog.text

    task.cancel()  # the agent stops: the guard ends with the task
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_one_shot_task_is_logged_not_repeated(caplog: pytest.LogCaptureFixture) -> None:
    runs: list[str] = []

    async def once() -> None:
        runs.append("ran")
        raise RuntimeError("a bug")

    await guard(once, name="checkpoint", restart_after=None)
    assert runs == ["ran"]
    assert "agent task failed task=checkpoint" in caplog.text
