"""An agent restarted on a node that was away: the pods of its checkpoint (pods.json);
and a checkpoint that cannot be written (a full or read-only disk).

The control plane answers: a pod it no longer has (evicted and force-deleted while the
node was dead) is cleaned up, never started again. The control plane does not answer:
the checkpoint's pods are kept as they were, their restart policies applied.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest

from agent.runtime.fake import FakeNode, FakeRuntime
from agent.runtime.interface import LABEL_POD_UID, SandboxSpec
from api import errors
from api.resources import Resource
from tests.agent.fake_api import Clock, FakeApi
from tests.agent.harness import NS, Agent, app_status, eventually, make_agent, phase, pod

Obj = dict[str, Any]


class RecordingRuntime(FakeRuntime):
    """The fake runtime on an existing node, keeping the pod uid of every sandbox it
    creates and every container it starts."""

    def __init__(self, node: FakeNode) -> None:
        super().__init__(node)
        self.started: list[str] = []

    async def create_sandbox(self, spec: SandboxSpec) -> str:
        self.started.append(spec.pod_uid)
        return await super().create_sandbox(spec)

    async def start_container(self, container_id: str) -> None:
        self.started.append(self.node.containers[container_id].labels[LABEL_POD_UID])
        await super().start_container(container_id)


class AwayApi(FakeApi):
    """The control plane is unreachable: lists fail (so the informer never syncs)."""

    async def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        params: Mapping[str, str] | None = None,
    ) -> Obj:
        raise errors.ServiceUnavailable("the control plane is away")


async def previous_life(tmp_path: Path, api: FakeApi) -> tuple[FakeNode, dict[str, str]]:
    """The agent before the restart: pods "kept" and "evicted" ran on the node and are in
    its checkpoint; then the node died (its containers exited, the agent with it). The
    pods' uids by name."""
    first = make_agent(tmp_path, api.clock, api=api)
    for name in ("kept", "evicted"):
        api.put(pod(name))
        await first.sync(first.worker(name))
    pods = [api.get_pod(NS, name) for name in ("kept", "evicted")]
    (tmp_path / "pods.json").write_bytes(orjson.dumps(pods))
    for container in list(first.runtime.node.containers.values()):
        await first.runtime.stop_container(container.id, grace_seconds=0)
    return first.runtime.node, {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods if p}


@contextlib.asynccontextmanager
async def restarted(agent: Agent) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(agent.manager.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await agent.manager.stop()


def remnants(node: FakeNode, uid: str) -> list[str]:
    """The ids of the sandboxes and containers of pod ``uid`` on the node."""
    sandboxes = [s.id for s in node.sandboxes.values() if s.labels.get(LABEL_POD_UID) == uid]
    containers = [c.id for c in node.containers.values() if c.labels.get(LABEL_POD_UID) == uid]
    return sandboxes + containers


async def test_a_pod_the_api_no_longer_has_is_cleaned_up_not_started(tmp_path: Path) -> None:
    api = FakeApi(clock=Clock())
    node, uids = await previous_life(tmp_path, api)
    assert remnants(node, uids["evicted"])
    del api.objects[("pods", NS, "evicted")]  # evicted and force-deleted meanwhile
    api.calls.clear()

    runtime = RecordingRuntime(node)
    agent = make_agent(tmp_path, api.clock, api=api, runtime=runtime)
    async with restarted(agent):
        await eventually(
            lambda: app_status(api.get_pod(NS, "kept")).get("restartCount") == 1,
            what="the pod the API has to be restarted",
        )
        await eventually(
            lambda: not remnants(node, uids["evicted"]), what="the evicted pod to be removed"
        )
    # The kept pod's container restarted in its sandbox (no new sandbox); nothing else.
    assert runtime.started == [uids["kept"]]
    assert not [c for c in api.calls if c.plural == "pods" and c.name == "evicted"]


async def test_without_the_control_plane_the_checkpoints_pods_are_kept(tmp_path: Path) -> None:
    clock = Clock()
    node, uids = await previous_life(tmp_path, FakeApi(clock=clock))

    runtime = RecordingRuntime(node)
    agent = make_agent(
        tmp_path, clock, api=AwayApi(clock=clock), runtime=runtime, checkpoint_grace=0.1
    )
    async with restarted(agent):
        await eventually(
            lambda: set(runtime.started) == set(uids.values()),
            what="both pods' containers to be restarted from the checkpoint",
        )
        assert all(remnants(node, uid) for uid in uids.values())


async def test_a_checkpoint_that_cannot_be_written_stops_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A full or read-only SD card: the agent logs it, runs on and writes it later."""
    unwritable = tmp_path / "data"
    unwritable.write_text("a file where the data directory should be")  # even root fails
    checkpoint = unwritable / "pods.json"
    agent = make_agent(tmp_path, Clock(), checkpoint=checkpoint, checkpoint_retry=0.01)
    agent.api.put(pod("first"))
    async with restarted(agent) as manager:
        await eventually(
            lambda: "checkpoint not written" in caplog.text, what="the failed write's warning"
        )
        agent.api.put(pod("second"))
        await eventually(lambda: phase(agent, "second") == "Running", what="a new pod to run")
        assert not manager.done()

        unwritable.unlink()
        unwritable.mkdir()  # the disk has room again: the next retry writes it
        await eventually(checkpoint.exists, what="the checkpoint")
        assert not manager.done()
    written = orjson.loads(checkpoint.read_bytes())
    assert sorted(p["metadata"]["name"] for p in written) == ["first", "second"]
