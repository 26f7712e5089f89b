"""What every Runtime must do, run against real Podman and the fake alike.

The fake stands in for Podman in agent and scale tests, so where the two differ the
agent tested on the fake is not the agent that runs on a Pi: every behaviour the agent
relies on is asserted here for both.
"""

from __future__ import annotations

import pytest

from agent.runtime.fake import FakeRuntime
from agent.runtime.interface import (
    LABEL_CONTAINER_ATTEMPT,
    LABEL_CONTAINER_HASH,
    LABEL_CONTAINER_NAME,
    LABEL_INIT,
    LABEL_MANAGED,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    LABEL_POD_UID,
    ContainerState,
    CreateContainerError,
    ImageNeverPullError,
    NotFoundError,
    PullPolicy,
    Runtime,
    StartContainerError,
)
from agent.runtime.podman import PodmanRuntime
from tests.agent.runtime.harness import EXEC_COMMAND, Harness
from tests.support.podman import PodmanService


def _restarted(harness: Harness, request: pytest.FixtureRequest) -> Runtime:
    """A second runtime on the same node: an agent that restarted."""
    if isinstance(harness.runtime, FakeRuntime):
        return FakeRuntime(harness.runtime.node)
    service: PodmanService = request.getfixturevalue("podman_service")
    return PodmanRuntime(service.url)


async def test_a_sandbox_is_created_listed_stopped_and_removed(harness: Harness) -> None:
    spec = harness.sandbox("lifecycle")
    sandbox_id = await harness.runtime.create_sandbox(spec)

    [found] = [s for s in await harness.runtime.list_sandboxes() if s.id == sandbox_id]
    assert (found.pod_uid, found.namespace, found.name) == (spec.pod_uid, "bramble-test", spec.name)
    assert found.ready
    assert found.ip
    assert found.created_at is not None
    assert found.labels[LABEL_MANAGED] == "true"
    assert found.labels[LABEL_POD_UID] == spec.pod_uid
    assert found.labels["io.bramble.test.case"] == harness.labels["io.bramble.test.case"]

    await harness.runtime.stop_sandbox(sandbox_id, grace_seconds=5)
    [stopped] = [s for s in await harness.runtime.list_sandboxes() if s.id == sandbox_id]
    assert not stopped.ready

    await harness.runtime.remove_sandbox(sandbox_id)
    assert sandbox_id not in {s.id for s in await harness.runtime.list_sandboxes()}
    await harness.runtime.remove_sandbox(sandbox_id)  # idempotent


async def test_a_container_goes_created_running_exited_and_carries_its_labels(
    harness: Harness,
) -> None:
    rt = harness.runtime
    sandbox = harness.sandbox("ctr")
    sandbox_id = await rt.create_sandbox(sandbox)
    spec = harness.running("app", attempt=2, spec_hash="abc123")
    container_id = await rt.create_container(sandbox_id, spec)

    created = await harness.container(container_id)
    assert created is not None
    assert created.state is ContainerState.CREATED
    assert (created.name, created.attempt, created.spec_hash, created.init) == (
        "app",
        2,
        "abc123",
        False,
    )
    assert created.pod_uid == sandbox.pod_uid
    assert created.image == harness.image
    assert created.image_id
    assert created.labels[LABEL_CONTAINER_NAME] == "app"
    assert created.labels[LABEL_CONTAINER_ATTEMPT] == "2"
    assert created.labels[LABEL_CONTAINER_HASH] == "abc123"
    assert created.labels[LABEL_INIT] == "false"
    assert created.labels[LABEL_POD_NAME] == sandbox.name
    assert created.labels[LABEL_POD_NAMESPACE] == sandbox.namespace

    await rt.start_container(container_id)
    running = await harness.eventually(
        lambda: harness.container(container_id),
        lambda c: c is not None and c.state is ContainerState.RUNNING,
        what="the container to run",
    )
    assert running is not None
    assert running.started_at is not None
    assert running.exit_code is None

    await rt.stop_container(container_id, grace_seconds=10)
    exited = await harness.container(container_id)
    assert exited is not None
    assert exited.state is ContainerState.EXITED
    assert (exited.exit_code, exited.reason) == (0, "Completed")
    assert exited.finished_at is not None
    assert exited.finished_at >= running.started_at.replace(microsecond=0)

    await rt.remove_container(container_id)
    assert await harness.container(container_id) is None
    await rt.remove_container(container_id)  # idempotent
    await rt.stop_container(container_id, grace_seconds=1)  # a gone container is stopped
    await rt.remove_sandbox(sandbox_id)


async def test_an_init_container_is_labelled_as_one(harness: Harness) -> None:
    sandbox_id = await harness.runtime.create_sandbox(harness.sandbox("init"))
    container_id = await harness.runtime.create_container(
        sandbox_id, harness.running("setup", init=True)
    )
    info = await harness.container(container_id)
    assert info is not None
    assert info.init
    assert info.labels[LABEL_INIT] == "true"


@pytest.mark.parametrize(("code", "reason"), [(0, "Completed"), (3, "Error")])
async def test_an_exit_code_and_finished_state_are_reported(
    harness: Harness, code: int, reason: str
) -> None:
    _, container_id = await harness.started(harness.sandbox("exit"), harness.exiting("job", code))
    info = await harness.eventually(
        lambda: harness.container(container_id),
        lambda c: c is not None and c.state is ContainerState.EXITED,
        what="the container to exit",
    )
    assert info is not None
    assert (info.exit_code, info.reason) == (code, reason)
    assert info.started_at is not None
    assert info.finished_at is not None


async def test_a_command_that_does_not_exist_fails_to_start(harness: Harness) -> None:
    rt = harness.runtime
    sandbox_id = await rt.create_sandbox(harness.sandbox("nocmd"))
    container_id = await rt.create_container(sandbox_id, harness.missing_command("broken"))

    with pytest.raises(StartContainerError, match="executable file not found in \\$PATH") as e:
        await rt.start_container(container_id)
    assert e.value.reason == "RunContainerError"

    info = await harness.container(container_id)
    assert info is not None
    assert (info.state, info.exit_code, info.reason) == (ContainerState.EXITED, 128, "StartError")
    assert "no-such-command" in info.message


async def test_creating_a_container_in_a_missing_sandbox_fails(harness: Harness) -> None:
    with pytest.raises(CreateContainerError, match="app"):
        await harness.runtime.create_container("0" * 64, harness.running("app"))


async def test_images_present_and_pull_policies_without_a_registry(harness: Harness) -> None:
    rt = harness.runtime
    present = await rt.ensure_image(harness.image, PullPolicy.IF_NOT_PRESENT)
    assert present.id
    assert await rt.image_present(harness.image) == present
    assert await rt.ensure_image(harness.image, PullPolicy.NEVER) == present
    assert harness.image in await rt.list_images()

    absent = "localhost/bramble-absent-image:1"
    assert await rt.image_present(absent) is None
    with pytest.raises(ImageNeverPullError, match=absent) as e:
        await rt.ensure_image(absent, PullPolicy.NEVER)
    assert e.value.reason == "ErrImageNeverPull"


async def test_logs_come_line_by_line_with_tail(harness: Harness) -> None:
    lines = ["one", "two", "three"]
    _, container_id = await harness.started(harness.sandbox("logs"), harness.logging("app", lines))

    async def read(**options: object) -> list[bytes]:
        return [line async for line in harness.runtime.container_logs(container_id, **options)]  # type: ignore[arg-type]

    got = await harness.eventually(read, lambda got: len(got) == 3, what="three log lines")
    assert got == [b"one\n", b"two\n", b"three\n"]
    assert await read(tail_lines=2) == [b"two\n", b"three\n"]
    assert await read(tail_lines=0) == []

    with pytest.raises(NotFoundError):
        await read_missing(harness)


async def read_missing(harness: Harness) -> None:
    async for _ in harness.runtime.container_logs("0" * 64):
        pass


async def test_exec_sync_returns_stdout_stderr_and_the_exit_code(harness: Harness) -> None:
    _, container_id = await harness.started(harness.sandbox("exec"), harness.running("app"))
    await harness.eventually(
        lambda: harness.container(container_id),
        lambda c: c is not None and c.state is ContainerState.RUNNING,
        what="the container to run",
    )
    result = await harness.runtime.exec_sync(container_id, EXEC_COMMAND, limit_seconds=10)
    assert (result.exit_code, result.stdout, result.stderr) == (3, b"out\n", b"err\n")


async def test_exec_interactive_echoes_stdin_through_cat(harness: Harness) -> None:
    _, container_id = await harness.started(harness.sandbox("cat"), harness.running("app"))
    session = await harness.runtime.exec_interactive(container_id, ["cat"], stdin=True, tty=False)
    try:
        await session.write_stdin(b"hello\n")
        await session.write_stdin(b"bramble\n")
        await session.close_stdin()
        output = b"".join([data async for stream, data in session.output() if stream == 1])
        assert output == b"hello\nbramble\n"
        assert await session.wait() == 0
    finally:
        await session.close()


async def test_a_restarted_agent_finds_its_sandboxes_and_containers_by_label(
    harness: Harness, request: pytest.FixtureRequest
) -> None:
    sandbox = harness.sandbox("adopt")
    sandbox_id, container_id = await harness.started(sandbox, harness.running("app", attempt=1))

    again = _restarted(harness, request)
    try:
        [found] = [s for s in await again.list_sandboxes() if s.id == sandbox_id]
        assert (found.pod_uid, found.name, found.ready) == (sandbox.pod_uid, sandbox.name, True)
        [info] = [c for c in await again.list_containers() if c.id == container_id]
        assert (info.name, info.attempt, info.pod_uid) == ("app", 1, sandbox.pod_uid)
        assert info.state is ContainerState.RUNNING
        # ...and can manage them.
        await again.stop_container(container_id, grace_seconds=10)
        [info] = [c for c in await again.list_containers() if c.id == container_id]
        assert info.state is ContainerState.EXITED
    finally:
        await again.close()


async def test_stats_cover_running_containers(harness: Harness) -> None:
    _, container_id = await harness.started(harness.sandbox("stats"), harness.running("app"))
    stats = await harness.eventually(
        harness.runtime.container_stats,
        lambda all_stats: any(s.id == container_id for s in all_stats),
        what="stats of the container",
    )
    [mine] = [s for s in stats if s.id == container_id]
    assert mine.cpu_usage_nano_cores >= 0
    assert mine.cpu_usage_core_nano_seconds >= 0
    assert mine.memory_working_set_bytes >= 0
    assert mine.timestamp.tzinfo is not None


async def test_version_names_the_runtime(harness: Harness) -> None:
    version = await harness.runtime.version()
    assert version.name == harness.kind
    assert str(version).startswith(f"{harness.kind}://")
