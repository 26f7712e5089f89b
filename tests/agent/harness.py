"""The sync loop's parts (PodManager, its workers, the event recorder) assembled on the fake
runtime and the in-memory API (fake_api.py), for test_worker.py and test_pods.py; and the
helpers those tests share: pod manifests, a status reader, polling with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from agent.config import Volumes
from agent.events import EventRecorder
from agent.pods import PodManager
from agent.runtime.fake import FakeRuntime
from agent.worker import PODS, PodWorker, WorkerContext
from api.client import ApiClient
from api.informer import Informer
from tests.agent.fake_api import Clock, FakeApi

NODE = "node-1"
NS = "default"
IMAGE = "localhost/app:1"

Obj = dict[str, Any]


def pod(name: str, *containers: Obj, **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "nodeName": NODE,
            "containers": list(containers) or [{"name": "app", "image": IMAGE}],
            **spec,
        },
    }


def config_map(name: str, data: dict[str, str]) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS},
            "data": data}  # fmt: skip


class WallClock(Clock):
    """The real time, for tests that run the workers as tasks: their back-off timers are
    the event loop's, so the back-offs they wait out must be real (and short)."""

    def __call__(self) -> datetime:
        return datetime.now(UTC)

    def advance(self, seconds: float) -> None:
        raise TypeError("the wall clock moves by itself")


async def settle() -> None:
    """Let the event recorder's task send what the sync recorded. The fakes never wait, so
    one turn of the loop drains its whole queue."""
    for _ in range(3):
        await asyncio.sleep(0)


@dataclass
class Agent:
    clock: Clock
    api: FakeApi
    runtime: FakeRuntime
    ctx: WorkerContext
    manager: PodManager
    volumes: Path

    def worker(self, name: str) -> PodWorker:
        obj = self.api.get_pod(NS, name)
        assert obj is not None
        worker = PodWorker(str(obj["metadata"]["uid"]), self.ctx)
        worker.update(obj)
        return worker

    async def sync(self, worker: PodWorker) -> Obj:
        """One sync, with what the informer and the relister would have seen by now; the
        app container's status afterwards."""
        assert worker.pod is not None
        name = str(worker.pod["metadata"]["name"])
        worker.update(self.api.get_pod(NS, name))  # None: gone from the API
        await self.manager.relist()
        await worker.sync()
        await settle()
        return app_status(self.api.get_pod(NS, name))


@contextlib.asynccontextmanager
async def recording(agent: Agent) -> AsyncIterator[None]:
    """The event recorder's sender as a task, so that what a sync records reaches the API."""
    sender = asyncio.create_task(agent.ctx.recorder.run())
    try:
        yield
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender


@contextlib.asynccontextmanager
async def running(agent: Agent) -> AsyncIterator[asyncio.Task[None]]:
    """The whole sync loop (informer, workers, relister) and the event recorder as
    tasks, as the agent runs them; the manager's task is yielded."""
    manager = asyncio.create_task(agent.manager.run())
    recorder = asyncio.create_task(agent.ctx.recorder.run())
    try:
        yield manager
    finally:
        for task in (manager, recorder):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await agent.manager.stop()


def app_status(obj: Obj | None) -> Obj:
    statuses = ((obj or {}).get("status") or {}).get("containerStatuses") or [{}]
    return dict(statuses[0])


def state(status: Obj) -> str:
    """``running``, the waiting reason, or ``terminated``."""
    current = status.get("state") or {}
    if "waiting" in current:
        return str(current["waiting"].get("reason"))
    return next(iter(current), "none")


def make_agent(
    tmp_path: Path,
    clock: Clock,
    *,
    runtime: FakeRuntime | None = None,
    api: FakeApi | None = None,
    relist_interval: float = 3600,
    evented_relist_interval: float = 3600,
    checkpoint_grace: float = 10.0,
    checkpoint_retry: float = 10.0,
    checkpoint: Path | None = None,
) -> Agent:
    """The sync loop's parts on the fakes; nothing runs until the test says so."""
    api = api if api is not None else FakeApi(clock=clock)
    runtime = runtime if runtime is not None else FakeRuntime(clock=clock, images=[IMAGE])
    client = cast(ApiClient, api)
    ctx = WorkerContext(
        node_name=NODE, runtime=runtime, client=client, volumes=Volumes(tmp_path / "pods"),
        recorder=EventRecorder(client, NODE, clock=clock), view=lambda uid: (None, []),
        relist=_nothing, host_ip=lambda: "192.0.2.10", clock=clock,
    )  # fmt: skip
    informer = Informer(client, PODS, field_selector=f"spec.nodeName={NODE}")
    manager = PodManager(
        ctx, informer, checkpoint=checkpoint or tmp_path / "pods.json",
        relist_interval=relist_interval, evented_relist_interval=evented_relist_interval,
        housekeeping_interval=3600, checkpoint_grace=checkpoint_grace,
        checkpoint_retry=checkpoint_retry, resync_interval=3600,
    )  # fmt: skip
    return Agent(clock, api, runtime, ctx, manager, tmp_path / "pods")


async def _nothing() -> None:
    return None


async def eventually(condition: Callable[[], object], *, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)  # polling a condition with a deadline


def phase(agent: Agent, name: str) -> str | None:
    obj = agent.api.get_pod(NS, name) or {}
    return (obj.get("status") or {}).get("phase")
