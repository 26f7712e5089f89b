"""The Podman runtime against a real Podman service (and a real registry for pulls).

What the contract tests (test_contract.py) cannot ask of the fake: networking between
containers and from the host, mounts, resource limits, signals and grace periods, real
pulls, the log stream's thread, a tty, and Podman going away and coming back.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import threading
import time
import urllib.request
from collections.abc import AsyncGenerator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from podman import PodmanClient

from agent.runtime.interface import (
    ContainerInfo,
    ContainerSpec,
    ContainerState,
    EventStream,
    ImageNeverPullError,
    ImagePullError,
    Mount,
    NotFoundError,
    PortMapping,
    PullPolicy,
    RuntimeEvent,
    RuntimeUnavailable,
    SandboxError,
)
from agent.runtime.podman import PodmanRuntime
from tests.agent.runtime.harness import FOREVER, PodmanHarness
from tests.support.net import free_port
from tests.support.podman import PodmanService, podman
from tests.support.registry import Registry

# Serves /www on port 8080 until SIGTERM.
HTTPD = "mkdir -p /www && echo bramble-ok > /www/index.html && exec httpd -f -p {port} -h /www"
# Ignores SIGTERM (busybox sh as PID 1 without a trap).
STUBBORN = "while true; do sleep 1; done"


async def inspect(object_id: str) -> dict[str, Any]:
    out = await asyncio.to_thread(podman, "inspect", object_id)
    [data] = json.loads(out)
    return dict(data)


async def fetch(url: str) -> str:
    def get() -> str:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return str(resp.read().decode())

    return await asyncio.to_thread(get)


async def fetch_eventually(h: PodmanHarness, url: str) -> str:
    async def attempt() -> str:
        try:
            return await fetch(url)
        except OSError as e:
            return f"error: {e}"

    return await h.eventually(attempt, lambda body: body == "bramble-ok\n", what=f"GET {url}")


async def running(h: PodmanHarness, container_id: str) -> ContainerInfo:
    info = await h.eventually(
        lambda: h.container(container_id),
        lambda c: c is not None and c.state is ContainerState.RUNNING,
        what=f"container {container_id[:12]} running",
    )
    assert info is not None
    return info


async def exited(h: PodmanHarness, container_id: str) -> ContainerInfo:
    info = await h.eventually(
        lambda: h.container(container_id),
        lambda c: c is not None and c.state is ContainerState.EXITED,
        what=f"container {container_id[:12]} exited",
    )
    assert info is not None
    return info


async def logs(h: PodmanHarness, container_id: str, **options: Any) -> list[bytes]:
    return [line async for line in h.runtime.container_logs(container_id, **options)]


def sh(name: str, script: str, **fields: Any) -> ContainerSpec:
    return ContainerSpec(
        name=name, image="localhost/busybox:latest", command=["sh", "-c", script], **fields
    )


# --- pods: network, names, ports --------------------------------------------------------------


async def test_containers_of_a_pod_share_localhost(podman: PodmanHarness) -> None:
    rt = podman.runtime
    sandbox_id = await rt.create_sandbox(podman.sandbox("net"))
    web = await rt.create_container(sandbox_id, sh("web", HTTPD.format(port=8080)))
    client = await rt.create_container(sandbox_id, sh("client", FOREVER))
    await rt.start_container(web)
    await rt.start_container(client)
    await running(podman, client)

    async def wget() -> bytes:
        result = await rt.exec_sync(
            client, ["wget", "-q", "-O", "-", "http://localhost:8080/"], limit_seconds=5
        )
        return result.stdout

    assert await podman.eventually(wget, lambda out: out == b"bramble-ok\n", what="wget")


async def test_names_are_deterministic_and_a_second_sandbox_of_a_pod_gets_its_own(
    podman: PodmanHarness,
) -> None:
    spec = podman.sandbox("names")
    first = await podman.runtime.create_sandbox(spec)
    second = await podman.runtime.create_sandbox(spec)  # the first still exists
    uid8 = spec.pod_uid.replace("-", "")[:8]
    assert (await inspect(first))["Name"] == f"k8s_POD_{spec.name}_bramble-test_{uid8}_0"
    assert (await inspect(second))["Name"] == f"k8s_POD_{spec.name}_bramble-test_{uid8}_1"
    container_id = await podman.runtime.create_container(first, sh("app", FOREVER, attempt=4))
    assert (await inspect(container_id))["Name"] == f"k8s_app_{spec.name}_bramble-test_{uid8}_4"
    assert (await inspect(first))["Hostname"] == spec.hostname


async def test_a_host_port_is_reachable_from_the_host(podman: PodmanHarness) -> None:
    port = free_port()
    ports = [PortMapping(container_port=8080, host_port=port, host_ip="127.0.0.1")]
    await podman.started(podman.sandbox("port", ports=ports), sh("web", HTTPD.format(port=8080)))
    await fetch_eventually(podman, f"http://127.0.0.1:{port}/")


async def test_a_taken_host_port_fails_the_sandbox_and_leaves_nothing_behind(
    podman: PodmanHarness,
) -> None:
    port = free_port()
    ports = [PortMapping(container_port=8080, host_port=port, host_ip="127.0.0.1")]
    await podman.runtime.create_sandbox(podman.sandbox("first", ports=ports))
    spec = podman.sandbox("second", ports=ports)
    with pytest.raises(SandboxError, match="address already in use") as e:
        await podman.runtime.create_sandbox(spec)
    assert e.value.reason == "CreatePodSandboxError"
    assert spec.name not in {s.name for s in await podman.runtime.list_sandboxes()}


async def test_a_host_network_pod_listens_on_the_node(podman: PodmanHarness) -> None:
    port = free_port()
    await podman.started(
        podman.sandbox("hostnet", host_network=True), sh("web", HTTPD.format(port=port))
    )
    await fetch_eventually(podman, f"http://127.0.0.1:{port}/")


# --- what runs: command, args, env, working dir, mounts ---------------------------------------


async def test_command_args_env_and_working_dir(podman: PodmanHarness) -> None:
    spec = ContainerSpec(
        name="app",
        image="localhost/busybox:latest",
        command=["sh", "-c"],
        args=['echo "$GREETING from $(pwd)"; echo "$0 $1"', "zero", "one"],
        env={"GREETING": "hello"},
        working_dir="/tmp",
    )
    _, container_id = await podman.started(podman.sandbox("cmd"), spec)
    assert (await exited(podman, container_id)).exit_code == 0
    assert await logs(podman, container_id) == [b"hello from /tmp\n", b"zero one\n"]


async def test_args_alone_replace_the_images_cmd(podman: PodmanHarness) -> None:
    spec = ContainerSpec(name="app", image="localhost/busybox:latest", args=["echo", "args only"])
    _, container_id = await podman.started(podman.sandbox("args"), spec)
    await exited(podman, container_id)
    assert await logs(podman, container_id) == [b"args only\n"]


async def test_host_directories_mount_read_only_and_read_write(
    podman: PodmanHarness, host_dir: Path, tmp_path: Path
) -> None:
    (host_dir / "hello.txt").write_text("from the host\n")
    writable = tmp_path / "rw"
    writable.mkdir()
    spec = sh(
        "app",
        "cat /ro/hello.txt; (touch /ro/new 2>/dev/null && echo ro-writable) || echo ro-refused;"
        " echo written > /rw/out.txt",
        mounts=[Mount(str(host_dir), "/ro", read_only=True), Mount(str(writable), "/rw")],
    )
    _, container_id = await podman.started(podman.sandbox("mounts"), spec)
    assert (await exited(podman, container_id)).exit_code == 0
    assert await logs(podman, container_id) == [b"from the host\n", b"ro-refused\n"]
    assert not (host_dir / "new").exists()
    assert (writable / "out.txt").read_text() == "written\n"


# --- resources ------------------------------------------------------------------------------


async def test_cpu_and_memory_limits_are_applied(podman: PodmanHarness) -> None:
    spec = sh(
        "app", FOREVER, cpu_limit_millis=250, cpu_shares=256, memory_limit_bytes=48 * 1024 * 1024
    )
    _, container_id = await podman.started(podman.sandbox("limits"), spec)
    host = (await inspect(container_id))["HostConfig"]
    assert (host["CpuQuota"], host["CpuPeriod"], host["CpuShares"]) == (25_000, 100_000, 256)
    assert host["Memory"] == 48 * 1024 * 1024
    assert host["MemorySwap"] == 48 * 1024 * 1024  # no swap beyond the limit


async def test_a_container_over_its_memory_limit_is_killed(podman: PodmanHarness) -> None:
    # The string doubles until the kernel's OOM killer ends it (SIGKILL: 137).
    grow = "x=0123456789abcdef; while true; do x=$x$x; done"
    spec = sh("hog", grow, memory_limit_bytes=16 * 1024 * 1024)
    _, container_id = await podman.started(podman.sandbox("oom"), spec)
    info = await exited(podman, container_id)
    assert info.exit_code == 137
    # Podman 4.3 on these hosts does not notice the OOM kill (see podman.py); when a
    # Podman does, the reason must say so.
    oom_killed = (await inspect(container_id))["State"]["OOMKilled"]
    assert info.reason == ("OOMKilled" if oom_killed else "Error")


async def test_stats_measure_cpu_and_memory(podman: PodmanHarness) -> None:
    spec = sh("busy", "while true; do :; done", cpu_limit_millis=500)
    _, container_id = await podman.started(podman.sandbox("stats"), spec)
    await running(podman, container_id)

    async def sample() -> Any:
        return next(
            (s for s in await podman.runtime.container_stats() if s.id == container_id), None
        )

    first = await podman.eventually(sample, lambda s: s is not None, what="a first sample")
    # Not a wait for something to happen: the interval the CPU rate is measured over
    # (shorter ones see whole CFS periods of 0 or 1 cores).
    await asyncio.sleep(1.0)
    second = await sample()
    assert second is not None
    assert second.cpu_usage_core_nano_seconds > first.cpu_usage_core_nano_seconds
    # Busy, capped at half a core.
    assert 200_000_000 < second.cpu_usage_nano_cores < 750_000_000
    assert second.memory_working_set_bytes > 0
    assert second.timestamp > first.timestamp


def break_behind_podmans_back(info: dict[str, Any]) -> None:
    """SIGKILL a container's process and its conmon and drop its cgroups, as a kill of a
    whole session or a cgroup sweep leaves it: Podman still calls the container running,
    and asking for its stats fails."""
    state = info["State"]
    pid, conmon = int(state["Pid"]), int(state["ConmonPid"])
    # "hierarchy:controllers:path" lines; the same path under every mounted hierarchy.
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    paths = {line.split(":", 2)[2].lstrip("/") for line in lines}
    os.kill(conmon, signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)
    root = Path("/sys/fs/cgroup")
    groups = [d / p for p in paths if p for d in (root, *root.iterdir()) if (d / p).is_dir()]
    deadline = time.monotonic() + 10
    while groups:
        try:
            groups[-1].rmdir()
            groups.pop()
        except OSError:  # EBUSY until the kernel has taken the killed process out of it
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def podman_can_sample(service: PodmanService, container_id: str) -> bool:
    with PodmanClient(base_url=service.url) as client:
        params = {"stream": False, "containers": [container_id]}
        return client.api.get("/containers/stats", params=params).json().get("Error") is None


async def test_one_container_podman_cannot_sample_does_not_hide_the_others(
    podman: PodmanHarness, podman_service: PodmanService
) -> None:
    _, healthy = await podman.started(podman.sandbox("healthy"), sh("app", FOREVER))
    _, broken = await podman.started(podman.sandbox("broken"), sh("app", FOREVER))
    await running(podman, healthy)
    await running(podman, broken)
    break_behind_podmans_back(await inspect(broken))
    # Podman takes a moment to notice; from then on it refuses any request for stats
    # that names the broken container (which left the agent with no usage for any pod).
    await podman.eventually(
        lambda: asyncio.to_thread(podman_can_sample, podman_service, broken),
        lambda can: not can,
        what="Podman to refuse the broken container's stats",
    )
    assert (await inspect(broken))["State"]["Running"]  # so it is still listed as running

    stats = await podman.runtime.container_stats()
    assert healthy in {s.id for s in stats}
    assert broken not in {s.id for s in stats}


# --- stopping -------------------------------------------------------------------------------


async def test_stop_sends_sigterm_and_a_trapping_container_exits_at_once(
    podman: PodmanHarness,
) -> None:
    _, container_id = await podman.started(podman.sandbox("term"), sh("app", FOREVER))
    await running(podman, container_id)
    started = time.monotonic()
    await podman.runtime.stop_container(container_id, grace_seconds=10)
    assert time.monotonic() - started < 3
    info = await podman.container(container_id)
    assert info is not None
    assert (info.exit_code, info.reason) == (0, "Completed")


async def test_stop_kills_a_container_ignoring_sigterm_after_the_grace_period(
    podman: PodmanHarness,
) -> None:
    _, container_id = await podman.started(podman.sandbox("kill"), sh("app", STUBBORN))
    await running(podman, container_id)
    started = time.monotonic()
    await podman.runtime.stop_container(container_id, grace_seconds=1)
    elapsed = time.monotonic() - started
    assert 1 <= elapsed < 5
    info = await podman.container(container_id)
    assert info is not None
    assert (info.exit_code, info.reason) == (137, "Error")


async def test_stop_uses_the_containers_stop_signal(podman: PodmanHarness) -> None:
    script = "trap 'exit 7' USR1; while true; do sleep 1 & wait; done"
    _, container_id = await podman.started(
        podman.sandbox("signal"), sh("app", script, stop_signal="SIGUSR1")
    )
    await running(podman, container_id)
    await podman.runtime.stop_container(container_id, grace_seconds=10)
    info = await podman.container(container_id)
    assert info is not None
    assert info.exit_code == 7


async def test_stopping_and_removing_a_sandbox_stops_its_containers(
    podman: PodmanHarness,
) -> None:
    sandbox_id, stubborn = await podman.started(podman.sandbox("pod"), sh("stubborn", STUBBORN))
    polite = await podman.runtime.create_container(sandbox_id, sh("polite", FOREVER))
    await podman.runtime.start_container(polite)
    await running(podman, polite)
    await running(podman, stubborn)

    started = time.monotonic()
    await podman.runtime.stop_sandbox(sandbox_id, grace_seconds=1)
    assert time.monotonic() - started < 5
    codes = {
        c.name: c.exit_code
        for c in await podman.runtime.list_containers()
        if c.id in (stubborn, polite)
    }
    assert codes == {"stubborn": 137, "polite": 0}

    # Removal kills first: a running stubborn container does not cost its stop timeout.
    await podman.runtime.start_container(stubborn)
    await running(podman, stubborn)
    started = time.monotonic()
    await podman.runtime.remove_sandbox(sandbox_id)
    assert time.monotonic() - started < 5
    assert {stubborn, polite}.isdisjoint(c.id for c in await podman.runtime.list_containers())


# --- images ---------------------------------------------------------------------------------


@pytest.fixture
def pushed(registry: Registry) -> str:
    """An image in the registry that no test has pulled yet."""
    return registry.push_busybox()


@pytest.fixture(scope="session")
def never_pulled(registry: Registry) -> str:
    """An image in the registry that no test pulls (successfully)."""
    return registry.push_busybox()


async def test_always_pulls_from_the_registry_and_the_image_runs(
    podman: PodmanHarness, registry: Registry, pushed: str
) -> None:
    assert await podman.runtime.image_present(pushed) is None
    before = registry.blob_fetches(pushed)
    info = await podman.runtime.ensure_image(pushed, PullPolicy.ALWAYS)
    assert registry.blob_fetches(pushed) > before  # really fetched, not found locally
    assert info == await podman.runtime.image_present(pushed)
    assert info.digest.startswith(pushed.rsplit(":", 1)[0] + "@sha256:")
    assert pushed in await podman.runtime.list_images()

    spec = ContainerSpec(name="app", image=pushed, command=["cat", "/unique"])
    _, container_id = await podman.started(podman.sandbox("pulled"), spec)
    assert (await exited(podman, container_id)).exit_code == 0
    [line] = await logs(podman, container_id)
    assert len(line.strip()) == 8  # the token the push wrote


async def test_if_not_present_pulls_only_once(
    podman: PodmanHarness, registry: Registry, pushed: str
) -> None:
    await podman.runtime.ensure_image(pushed, PullPolicy.IF_NOT_PRESENT)
    requests = len(registry.requests())
    await podman.runtime.ensure_image(pushed, PullPolicy.IF_NOT_PRESENT)
    assert len(registry.requests()) == requests


async def test_never_fails_clearly_when_the_image_is_absent(
    podman: PodmanHarness, registry: Registry, never_pulled: str
) -> None:
    with pytest.raises(ImageNeverPullError, match=re.escape(f"{never_pulled} is not present")):
        await podman.runtime.ensure_image(never_pulled, PullPolicy.NEVER)


async def test_a_missing_image_names_the_image_and_the_registry(
    podman: PodmanHarness, registry: Registry
) -> None:
    missing = f"{registry.location}/bramble/absent-{secrets.token_hex(4)}:1"
    with pytest.raises(ImagePullError) as e:
        await podman.runtime.ensure_image(missing, PullPolicy.IF_NOT_PRESENT)
    assert e.value.reason == "ErrImagePull"
    assert missing in e.value.message
    assert f"from {registry.location}" in e.value.message
    assert "manifest unknown" in e.value.message


async def test_a_registry_not_marked_insecure_is_refused_over_http(
    podman_service: PodmanService, registry: Registry, never_pulled: str
) -> None:
    strict = PodmanRuntime(podman_service.url, insecure_registries=[])
    try:
        with pytest.raises(ImagePullError, match="server gave HTTP response to HTTPS client"):
            await strict.ensure_image(never_pulled, PullPolicy.ALWAYS)
    finally:
        await strict.close()


# --- logs -----------------------------------------------------------------------------------

# Prints "before", then "after" each time /tmp/go appears.
ON_GO = (
    "echo before; while true; do if [ -e /tmp/go ]; then rm /tmp/go; echo after; fi;"
    " sleep 0.1; done"
)


def pump_threads(container_id: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"podman-logs-{container_id[:12]}"]


async def test_follow_delivers_a_line_written_after_it_started_and_stops_its_thread(
    podman: PodmanHarness,
) -> None:
    _, container_id = await podman.started(podman.sandbox("follow"), sh("app", ON_GO))
    stream = cast(
        AsyncGenerator[bytes, None], podman.runtime.container_logs(container_id, follow=True)
    )
    assert await anext(stream) == b"before\n"
    await podman.runtime.exec_sync(container_id, ["touch", "/tmp/go"], limit_seconds=5)
    async with asyncio.timeout(10):
        assert await anext(stream) == b"after\n"
    assert pump_threads(container_id)

    await stream.aclose()  # the consumer goes away: the thread's read is woken and ends
    await podman.eventually(
        lambda: asyncio.sleep(0, pump_threads(container_id)),
        lambda threads: not threads,
        what="the log thread to end",
        timeout=3,
    )


async def test_follow_ends_when_the_container_exits(podman: PodmanHarness) -> None:
    script = "echo one; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo two"
    _, container_id = await podman.started(podman.sandbox("ends"), sh("app", script))
    got: list[bytes] = []

    async def follow() -> None:
        async for line in podman.runtime.container_logs(container_id, follow=True):
            got.append(line)

    task = asyncio.create_task(follow())
    await podman.eventually(lambda: asyncio.sleep(0, list(got)), bool, what="the first line")
    await podman.runtime.exec_sync(container_id, ["touch", "/tmp/go"], limit_seconds=5)
    async with asyncio.timeout(10):
        await task
    assert got == [b"one\n", b"two\n"]


async def test_since_and_timestamps(podman: PodmanHarness) -> None:
    _, container_id = await podman.started(podman.sandbox("since"), sh("app", ON_GO))
    await podman.eventually(
        lambda: logs(podman, container_id), lambda got: got == [b"before\n"], what="before"
    )
    between = datetime.now(UTC)
    await podman.runtime.exec_sync(container_id, ["touch", "/tmp/go"], limit_seconds=5)
    await podman.eventually(
        lambda: logs(podman, container_id), lambda got: len(got) == 2, what="after"
    )

    assert await logs(podman, container_id, since=between) == [b"after\n"]
    stamped = await logs(podman, container_id, timestamps=True)
    for line, text in zip(stamped, ("before", "after"), strict=True):
        stamp, _, rest = line.partition(b" ")
        assert rest == f"{text}\n".encode()
        at = datetime.fromisoformat(stamp.decode())
        assert abs((at - between).total_seconds()) < 60


# --- exec -----------------------------------------------------------------------------------


async def test_exec_sync_times_out(podman: PodmanHarness) -> None:
    _, container_id = await podman.started(podman.sandbox("slow"), sh("app", FOREVER))
    await running(podman, container_id)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"within 0\.5s"):
        await podman.runtime.exec_sync(container_id, ["sleep", "5"], limit_seconds=0.5)
    assert time.monotonic() - started < 3

    with pytest.raises(NotFoundError):
        await podman.runtime.exec_sync("0" * 64, ["true"], limit_seconds=1)


async def interact(
    podman: PodmanHarness, command: Sequence[str], data: bytes, *, tty: bool, resize: bool = False
) -> tuple[bytes, int]:
    _, container_id = await podman.started(podman.sandbox("exec"), sh("app", FOREVER))
    await running(podman, container_id)
    session = await podman.runtime.exec_interactive(container_id, command, stdin=True, tty=tty)
    try:
        if resize:
            await session.resize(100, 40)
        await session.write_stdin(data)
        await session.close_stdin()
        output = b"".join([chunk async for _, chunk in session.output()])
        return output, await session.wait()
    finally:
        await session.close()


async def test_exec_interactive_passes_stdin_and_the_exit_code(podman: PodmanHarness) -> None:
    output, code = await interact(
        podman, ["sh", "-c", "cat; echo done >&2; exit 5"], b"ping\n", tty=False
    )
    assert (output, code) == (b"ping\ndone\n", 5)


async def test_exec_interactive_with_a_tty_that_is_resized(podman: PodmanHarness) -> None:
    output, code = await interact(
        podman, ["sh", "-c", "read line; tty; stty size; exit 3"], b"go\n", tty=True, resize=True
    )
    assert code == 3
    assert b"/dev/pts/" in output
    assert b"40 100" in output  # rows, columns


# --- Podman going away --------------------------------------------------------------------------


# --- events -------------------------------------------------------------------------------


async def test_events_tell_of_bramble_containers_starting_and_dying_not_of_execs(
    podman: PodmanHarness, podman_runtime: PodmanRuntime
) -> None:
    stream = await podman_runtime.events()
    seen: list[RuntimeEvent] = []
    try:
        sandbox = podman.sandbox("events")
        _, container_id = await podman.started(sandbox, sh("app", "sleep 1; exit 3"))
        await podman.runtime.exec_sync(container_id, ["true"], limit_seconds=5)
        async with asyncio.timeout(15):
            async for event in stream:
                seen.append(event)
                if (event.container_id, event.action) == (container_id, "died"):
                    break
    finally:
        await stream.close()
    ours = [e.action for e in seen if e.container_id == container_id]
    assert ours[:3] == ["create", "init", "start"], seen
    # The service is shared: other tests' containers may show up (Podman 4.3's file backend
    # even replays its log when it rotates it), so this pod's events are picked by its uid.
    pods = {e.container_id: e.pod_uid for e in seen if e.pod_uid == sandbox.pod_uid}
    assert container_id in pods
    assert len(pods) == 2, seen  # the infra container's are told too
    assert not [e for e in seen if e.action.startswith("exec")]


async def test_the_event_stream_breaks_when_podman_goes_away(
    tmp_path: Path, test_labels: dict[str, str]
) -> None:
    service = PodmanService(tmp_path / "events")
    await asyncio.to_thread(service.start)
    runtime = PodmanRuntime(service.url, timeout=5)
    try:
        stream = await runtime.events()
        try:
            await asyncio.to_thread(service.kill)
            async with asyncio.timeout(5):  # at once, not when some timeout expires
                how = await _until_it_stops(stream)
            assert how == "broke"  # a killed service cuts the chunked body short
        finally:
            await stream.close()
        with pytest.raises(RuntimeUnavailable):
            await runtime.events()
    finally:
        await runtime.close()
        await asyncio.to_thread(service.stop)


async def _until_it_stops(stream: EventStream) -> str:
    try:
        async for _ in stream:
            pass
    except RuntimeUnavailable:
        return "broke"
    return "ended"


async def test_a_missing_socket_is_unavailable_at_once(tmp_path: Path) -> None:
    runtime = PodmanRuntime(f"unix://{tmp_path}/absent.sock", timeout=5)
    started = time.monotonic()
    with pytest.raises(RuntimeUnavailable, match=r"absent\.sock") as e:
        await runtime.version()
    assert e.value.reason == "RuntimeUnavailable"
    assert time.monotonic() - started < 2
    await runtime.close()


async def test_a_restarting_podman_is_unavailable_then_works_again(
    tmp_path: Path, test_labels: dict[str, str]
) -> None:
    service = PodmanService(tmp_path / "own")
    await asyncio.to_thread(service.start)
    runtime = PodmanRuntime(service.url, timeout=5)
    h = PodmanHarness(runtime, test_labels)
    try:
        _, container_id = await h.started(h.sandbox("restart"), sh("app", FOREVER))
        await running(h, container_id)

        await asyncio.to_thread(service.kill)
        for call in (runtime.version, runtime.list_containers, runtime.list_sandboxes):
            started = time.monotonic()
            with pytest.raises(RuntimeUnavailable):
                await call()
            assert time.monotonic() - started < 2

        await asyncio.to_thread(service.start)
        info = await running(h, container_id)  # the container lived on under conmon
        assert info.name == "app"
        assert (await runtime.version()).name == "podman"
    finally:
        await runtime.close()
        await asyncio.to_thread(service.stop)


async def test_a_hung_podman_is_unavailable_after_the_timeout_not_forever(
    tmp_path: Path, test_labels: dict[str, str]
) -> None:
    service = PodmanService(tmp_path / "hung")
    await asyncio.to_thread(service.start)
    runtime = PodmanRuntime(service.url, timeout=1)
    h = PodmanHarness(runtime, test_labels)
    try:
        _, container_id = await h.started(h.sandbox("hung"), sh("app", FOREVER))
        await running(h, container_id)
        await asyncio.to_thread(service.pause)
        for call in (
            runtime.list_containers,
            lambda: runtime.exec_interactive(container_id, ["cat"], stdin=True, tty=False),
        ):
            started = time.monotonic()
            with pytest.raises(RuntimeUnavailable):
                await call()
            assert time.monotonic() - started < 3
        await asyncio.to_thread(service.resume)
        await running(h, container_id)
    finally:
        await runtime.close()
        await asyncio.to_thread(service.stop)
