"""The relister: when it lists the runtime. With the runtime's events, when one of this
node's containers changed (and on a slow safety-net timer); without them, on the fast
timer; and on the fast timer again while the event stream is down.

The runtime is the fake one, with an event stream the test feeds where a test needs one
(Podman's own stream is tested against Podman in runtime/test_podman.py). The intervals
that must not fire during a test are an hour long.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from agent.runtime.fake import FakeRuntime
from agent.runtime.interface import (
    ContainerInfo,
    ContainerRuntimeError,
    RuntimeEvent,
    RuntimeUnavailable,
)
from tests.agent.fake_api import Clock
from tests.agent.harness import IMAGE, NS, Agent, app_status, eventually, make_agent, pod

HOUR = 3600.0


class CountingRuntime(FakeRuntime):
    """The fake runtime, counting its listings (one per relist)."""

    lists = 0

    async def list_containers(self) -> list[ContainerInfo]:
        self.lists += 1
        return await super().list_containers()


class FakeStream:
    """An event stream the test feeds: an event, an error to raise, or None (the end)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[RuntimeEvent | ContainerRuntimeError | None] = asyncio.Queue()
        self.closed = False

    async def _events(self) -> AsyncIterator[RuntimeEvent]:
        while (item := await self.queue.get()) is not None:
            if isinstance(item, ContainerRuntimeError):
                raise item
            yield item

    def __aiter__(self) -> AsyncIterator[RuntimeEvent]:
        return self._events()

    async def close(self) -> None:
        self.closed = True


class EventedRuntime(CountingRuntime):
    """... that is also an EventSource, as Podman is."""

    def __init__(self) -> None:
        super().__init__(images=[IMAGE])
        self.streams: list[FakeStream] = []
        self.refuse = False  # opening a stream fails (the runtime is away)

    async def events(self) -> FakeStream:
        if self.refuse:
            raise RuntimeUnavailable("the fake's event stream is away")
        stream = FakeStream()
        self.streams.append(stream)
        return stream


async def quiesce() -> None:
    """Let every task run until it waits: the fakes never wait, so whatever an event
    causes has happened after a few turns of the loop."""
    for _ in range(20):
        await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path, runtime: CountingRuntime, *, relist: float, evented: float = HOUR
) -> AsyncIterator[Agent]:
    agent = make_agent(
        tmp_path, Clock(), runtime=runtime, relist_interval=relist, evented_relist_interval=evented
    )
    task = asyncio.create_task(agent.manager.run())
    try:
        yield agent
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await agent.manager.stop()


async def test_without_events_it_lists_on_the_timer(tmp_path: Path) -> None:
    runtime = CountingRuntime(images=[IMAGE])
    async with running(tmp_path, runtime, relist=0.01):
        await eventually(lambda: runtime.lists >= 5, what="five timed relists")


async def test_an_event_of_its_pod_relists_at_once_and_the_worker_reacts(tmp_path: Path) -> None:
    runtime = EventedRuntime()
    async with running(tmp_path, runtime, relist=HOUR) as agent:
        agent.api.put(pod("steady"))
        await eventually(lambda: runtime.streams and agent.manager.events_live, what="events")
        await eventually(
            lambda: app_status(agent.api.get_pod(NS, "steady")).get("started"), what="running"
        )
        [container] = runtime.node.containers.values()
        await runtime.stop_container(container.id, grace_seconds=0)  # it dies
        await quiesce()
        assert app_status(agent.api.get_pod(NS, "steady"))["restartCount"] == 0  # not seen

        uid = container.labels["io.bramble.pod.uid"]
        runtime.streams[-1].queue.put_nowait(RuntimeEvent("died", container.id, uid))
        await eventually(
            lambda: app_status(agent.api.get_pod(NS, "steady")).get("restartCount") == 1,
            what="the restart an event prompted",
        )


async def test_events_of_other_nodes_pods_are_ignored(tmp_path: Path) -> None:
    runtime = EventedRuntime()
    async with running(tmp_path, runtime, relist=HOUR) as agent:
        agent.api.put(pod("mine"))
        await eventually(lambda: runtime.streams and agent.manager.events_live, what="events")
        await eventually(lambda: runtime.node.containers, what="its container")
        await quiesce()
        [container] = runtime.node.containers.values()
        uid = container.labels["io.bramble.pod.uid"]
        stream = runtime.streams[-1]

        before = runtime.lists
        stream.queue.put_nowait(RuntimeEvent("start", "c-other", "another-nodes-pod"))
        await quiesce()
        assert runtime.lists == before
        stream.queue.put_nowait(RuntimeEvent("start", container.id, uid))
        await quiesce()
        assert runtime.lists == before + 1


async def test_while_the_stream_is_down_it_lists_on_the_timer(tmp_path: Path) -> None:
    runtime = EventedRuntime()
    async with running(tmp_path, runtime, relist=0.01) as agent:
        await eventually(lambda: agent.manager.events_live, what="the stream")
        await quiesce()
        quiet = runtime.lists
        # Absence takes time to show: twenty of the 10 ms timer's periods pass unused.
        await asyncio.sleep(0.2)
        assert runtime.lists == quiet  # events (and the hour-long safety net), not the timer

        runtime.refuse = True
        runtime.streams[-1].queue.put_nowait(RuntimeUnavailable("the runtime went away"))
        await eventually(lambda: runtime.lists >= quiet + 5, what="timed relists meanwhile")
        assert not agent.manager.events_live
        assert runtime.streams[-1].closed

        runtime.refuse = False
        await eventually(lambda: len(runtime.streams) == 2, what="the stream reopened")
        await eventually(lambda: agent.manager.events_live, what="events again")
