"""The Podman runtime's pure parts: names, request bodies, reading Podman's answers,
image references and registries.conf, the frame format. No Podman needed."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.runtime.interface import (
    LABEL_CONTAINER_NAME,
    LABEL_MANAGED,
    LABEL_POD_UID,
    ContainerSpec,
    ContainerState,
    Mount,
    PortMapping,
    SandboxSpec,
)
from agent.runtime.podman_api import is_gone, iter_frames, socket_path
from agent.runtime.podman_images import (
    InsecureRegistries,
    is_insecure,
    parse_pull_stream,
    parse_registries_conf,
    read_insecure_registries,
    registry_of,
    repository_of,
)
from agent.runtime.podman_specs import (
    container_create_kwargs,
    container_info_from_inspect,
    container_info_from_list,
    container_name,
    container_state,
    infra_ip,
    is_bramble_container,
    parse_time,
    pod_create_body,
    sandbox_info,
    sandbox_labels,
    signal_number,
    start_failed,
)

UID = "0f3c2a1b-aaaa-bbbb-cccc-123456789abc"
SANDBOX = SandboxSpec(pod_uid=UID, namespace="shop", name="web-1", hostname="web-1")


def test_names_are_deterministic() -> None:
    body = pod_create_body(SANDBOX, 2)
    assert body["name"] == "k8s_POD_web-1_shop_0f3c2a1b_2"
    labels = sandbox_labels(SANDBOX)
    spec = ContainerSpec(name="nginx", image="nginx", attempt=3)
    assert container_name(labels, spec) == "k8s_nginx_web-1_shop_0f3c2a1b_3"


def test_pod_body_publishes_only_host_ports_and_keeps_extra_labels() -> None:
    spec = SandboxSpec(
        pod_uid=UID,
        namespace="shop",
        name="web-1",
        hostname="web-1",
        ports=[
            PortMapping(container_port=80, host_port=8080, host_ip="127.0.0.1"),
            PortMapping(container_port=53, protocol="UDP", host_port=5353),
            PortMapping(container_port=9090),  # not published
        ],
        dns_servers=["10.0.0.1"],
        labels={"team": "blue", LABEL_MANAGED: "no"},
    )
    body = pod_create_body(spec, 0)
    assert body["hostname"] == "web-1"
    assert body["portmappings"] == [
        {"container_port": 80, "host_port": 8080, "host_ip": "127.0.0.1", "protocol": "tcp"},
        {"container_port": 53, "host_port": 5353, "host_ip": "", "protocol": "udp"},
    ]
    assert body["dns_server"] == ["10.0.0.1"]
    assert body["labels"]["team"] == "blue"
    assert body["labels"][LABEL_MANAGED] == "true"  # bramble's labels win
    assert body["labels"][LABEL_POD_UID] == UID


def test_host_network_pods_share_the_nodes_network_and_hostname() -> None:
    spec = SandboxSpec(pod_uid=UID, namespace="n", name="p", hostname="p", host_network=True)
    body = pod_create_body(spec, 0)
    assert body["netns"] == {"nsmode": "host"}
    assert body["utsns"] == {"nsmode": "host"}
    assert "hostname" not in body
    assert "portmappings" not in body


@pytest.mark.parametrize(
    ("command", "args", "expected"),
    [
        (None, None, {}),  # the image's ENTRYPOINT and CMD
        (["sh", "-c"], None, {"entrypoint": ["sh", "-c"]}),  # the image's CMD is dropped
        (None, ["echo", "hi"], {"command": ["echo", "hi"]}),  # the image's ENTRYPOINT stays
        (["sh", "-c"], ["exit 3"], {"entrypoint": ["sh", "-c"], "command": ["exit 3"]}),
    ],
)
def test_kubernetes_command_and_args_become_entrypoint_and_command(
    command: list[str] | None, args: list[str] | None, expected: dict[str, list[str]]
) -> None:
    spec = ContainerSpec(name="c", image="img", command=command, args=args)
    kwargs = container_create_kwargs("pod-id", sandbox_labels(SANDBOX), spec)
    assert {k: kwargs[k] for k in ("entrypoint", "command") if k in kwargs} == expected


def test_container_kwargs_carry_resources_mounts_labels_and_the_stop_signal() -> None:
    spec = ContainerSpec(
        name="app",
        image="registry.local/app:1",
        env={"A": "1"},
        working_dir="/srv",
        mounts=[Mount("/var/lib/bramble/x", "/data", read_only=True)],
        cpu_limit_millis=1500,
        cpu_shares=102,
        memory_limit_bytes=256 * 1024 * 1024,
        stop_signal="SIGQUIT",
        attempt=1,
        spec_hash="h",
        init=True,
    )
    kwargs = container_create_kwargs("pod-id", sandbox_labels(SANDBOX), spec)
    assert kwargs["pod"] == "pod-id"
    assert kwargs["name"] == "k8s_app_web-1_shop_0f3c2a1b_1"
    assert kwargs["environment"] == {"A": "1"}
    assert kwargs["working_dir"] == "/srv"
    assert kwargs["mounts"] == [
        {"type": "bind", "source": "/var/lib/bramble/x", "target": "/data", "read_only": True}
    ]
    assert (kwargs["cpu_period"], kwargs["cpu_quota"], kwargs["cpu_shares"]) == (
        100_000,
        150_000,
        102,
    )
    assert kwargs["mem_limit"] == kwargs["memswap_limit"] == 256 * 1024 * 1024
    assert kwargs["stop_signal"] == 3
    assert kwargs["log_config"] == {"Type": "k8s-file"}
    labels = kwargs["labels"]
    assert labels[LABEL_CONTAINER_NAME] == "app"
    assert labels["io.bramble.container.init"] == "true"
    assert labels["io.bramble.container.image"] == "registry.local/app:1"


def test_a_tiny_cpu_limit_gets_the_smallest_quota() -> None:
    spec = ContainerSpec(name="c", image="i", cpu_limit_millis=1)
    assert container_create_kwargs("p", {}, spec)["cpu_quota"] == 1_000


@pytest.mark.parametrize(("name", "number"), [("SIGTERM", 15), ("usr1", 10), ("9", 9)])
def test_signal_numbers(name: str, number: int) -> None:
    assert signal_number(name) == number


def test_an_unknown_signal_is_refused() -> None:
    with pytest.raises(ValueError, match="SIGNOPE"):
        signal_number("SIGNOPE")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-24T01:35:35.682207878Z", datetime(2026, 11, 24, 1, 35, 35, 682207, UTC)),
        ("0001-01-01T00:00:00Z", None),
        (1795484135, datetime.fromtimestamp(1795484135, UTC)),
        (-62135596800, None),
        ("", None),
        (None, None),
        ("garbage", None),
    ],
)
def test_parse_time(value: object, expected: datetime | None) -> None:
    assert parse_time(value) == expected


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("running", ContainerState.RUNNING),
        ("created", ContainerState.CREATED),
        ("initialized", ContainerState.CREATED),
        ("exited", ContainerState.EXITED),
        ("stopped", ContainerState.EXITED),
        ("removing", ContainerState.UNKNOWN),
    ],
)
def test_container_states(status: str, state: ContainerState) -> None:
    assert container_state(status) is state


LABELS = {
    LABEL_MANAGED: "true",
    LABEL_POD_UID: UID,
    LABEL_CONTAINER_NAME: "app",
    "io.bramble.container.attempt": "2",
    "io.bramble.container.hash": "h1",
    "io.bramble.container.init": "false",
    "io.bramble.container.image": "busybox",
}


def test_a_running_container_from_the_sparse_list() -> None:
    info = container_info_from_list(
        {
            "Id": "c1",
            "State": "running",
            "Labels": LABELS,
            "Image": "docker.io/library/busybox:latest",
            "ImageID": "img1",
            "Created": "2026-11-24T01:00:00.5Z",
            "StartedAt": 1795484135,
            "ExitedAt": -62135596800,
            "ExitCode": 0,
        }
    )
    assert (info.id, info.name, info.attempt, info.state) == (
        "c1",
        "app",
        2,
        ContainerState.RUNNING,
    )
    assert info.image == "busybox"  # as the spec named it
    assert info.started_at == datetime.fromtimestamp(1795484135, UTC)
    assert (info.finished_at, info.exit_code, info.reason) == (None, None, "")


def test_an_exited_container_from_inspect() -> None:
    info = container_info_from_inspect(
        {
            "Id": "c1",
            "Created": "2026-11-24T01:00:00Z",
            "Image": "img1",
            "ImageName": "docker.io/library/busybox:latest",
            "Config": {"Labels": LABELS},
            "State": {
                "Status": "exited",
                "ExitCode": 137,
                "OOMKilled": True,
                "Error": "",
                "StartedAt": "2026-11-24T01:00:01Z",
                "FinishedAt": "2026-11-24T01:00:02Z",
            },
        }
    )
    assert (info.state, info.exit_code, info.reason) == (ContainerState.EXITED, 137, "OOMKilled")
    assert info.finished_at == datetime(2026, 11, 24, 1, 0, 2, tzinfo=UTC)


def test_a_failed_start_shows_as_start_error() -> None:
    created = container_info_from_list({"Id": "c1", "State": "created", "Labels": LABELS})
    at = datetime(2026, 1, 1, tzinfo=UTC)
    info = start_failed(created, "exec: nope: not found", at)
    assert (info.state, info.exit_code, info.reason) == (ContainerState.EXITED, 128, "StartError")
    assert (info.message, info.finished_at) == ("exec: nope: not found", at)


def test_infra_containers_are_not_bramble_containers() -> None:
    assert is_bramble_container({"Labels": LABELS})
    assert not is_bramble_container({"Labels": LABELS, "IsInfra": True})
    assert not is_bramble_container({"Labels": {LABEL_MANAGED: "true"}})  # a pod's infra


def test_sandbox_info_and_ip() -> None:
    entry = {
        "Id": "p1",
        "InfraId": "i1",
        "Created": "2026-11-24T01:00:00Z",
        "Labels": sandbox_labels(SANDBOX),
        "Containers": [{"Id": "i1", "Status": "running"}, {"Id": "c1", "Status": "exited"}],
    }
    info = sandbox_info(entry, "10.88.0.7")
    assert (info.id, info.pod_uid, info.namespace, info.name) == ("p1", UID, "shop", "web-1")
    assert (info.ready, info.ip) == (True, "10.88.0.7")
    stopped = {**entry, "Containers": [{"Id": "i1", "Status": "exited"}]}
    assert not sandbox_info(stopped, None).ready
    assert infra_ip({"NetworkSettings": {"Networks": {"podman": {"IPAddress": "10.88.0.9"}}}}) == (
        "10.88.0.9"
    )
    assert infra_ip({"NetworkSettings": {}}) is None


# --- images ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "registry", "repository"),
    [
        ("busybox", "", "busybox"),
        ("library/busybox:1", "", "library/busybox"),
        ("localhost/busybox:latest", "localhost", "localhost/busybox"),
        ("127.0.0.1:5000/bramble/app:1", "127.0.0.1:5000", "127.0.0.1:5000/bramble/app"),
        ("ghcr.io/x/y@sha256:abcd", "ghcr.io", "ghcr.io/x/y"),
        ("registry:5000/app", "registry:5000", "registry:5000/app"),
    ],
)
def test_references(image: str, registry: str, repository: str) -> None:
    assert registry_of(image) == registry
    assert repository_of(image) == repository


@pytest.mark.parametrize(
    ("image", "insecure"),
    [
        ("127.0.0.1:5000/bramble/app:1", True),
        ("127.0.0.1:5001/bramble/app:1", False),
        ("lab.home/team/app:1", True),
        ("lab.home/other/app:1", False),
        ("pi.local/app", True),
        ("docker.io/library/busybox", False),
        ("busybox", False),
    ],
)
def test_insecure_registry_matching(image: str, insecure: bool) -> None:
    locations = ["127.0.0.1:5000", "lab.home/team", "*.local"]
    assert is_insecure(image, locations) is insecure


def test_registries_conf_v2_and_v1_and_drop_ins(tmp_path: Path) -> None:
    conf = tmp_path / "registries.conf"
    conf.write_text(
        'unqualified-search-registries = ["docker.io"]\n'
        "[[registry]]\n"
        'location = "lab.home:5000"\n'
        "insecure = true\n"
        "[[registry]]\n"
        'location = "quay.io"\n'
        "[registries.insecure]\n"
        'registries = ["old.style:5000"]\n'
    )
    drop_ins = tmp_path / "registries.conf.d"
    drop_ins.mkdir()
    (drop_ins / "50-bramble.conf").write_text(
        '[[registry]]\nlocation = "127.0.0.1:5000"\ninsecure = true\n'
    )
    (drop_ins / "60-override.conf").write_text(
        '[[registry]]\nlocation = "lab.home:5000"\ninsecure = false\n'
    )
    (drop_ins / "70-broken.conf").write_text("[[registry\n")  # skipped, with a warning
    assert parse_registries_conf(conf.read_text()) == {
        "lab.home:5000": True,
        "quay.io": False,
        "old.style:5000": True,
    }
    assert read_insecure_registries(conf, drop_ins) == ["127.0.0.1:5000", "old.style:5000"]
    assert read_insecure_registries(tmp_path / "absent", tmp_path / "absent.d") == []


def test_pull_answers() -> None:
    ok = parse_pull_stream(
        [b'{"stream":"Trying to pull x...\\n"}', b"", b'{"images":["abc"],"id":"abc"}']
    )
    assert (ok.image_id, ok.error) == ("abc", None)
    failed = parse_pull_stream([b'{"stream":"Trying..."}', b'{"error":"manifest unknown"}'])
    assert (failed.image_id, failed.error) == (None, "manifest unknown")
    assert parse_pull_stream([]).image_id is None


# --- the API bridge -----------------------------------------------------------------------------


def test_socket_paths() -> None:
    assert socket_path("unix:///run/podman/podman.sock") == "/run/podman/podman.sock"
    assert socket_path("http+unix://%2Frun%2Fpodman.sock") == "/run/podman.sock"
    with pytest.raises(ValueError, match="unix:///"):
        socket_path("tcp://127.0.0.1:8080")


def test_frames_are_demultiplexed() -> None:
    def frame(stream: int, data: bytes) -> bytes:
        return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data

    raw = io.BytesIO(frame(1, b"out\n") + frame(2, b"err\n") + frame(1, b"") + frame(1, b"x"))
    assert list(iter_frames(raw)) == [(1, b"out\n"), (2, b"err\n"), (1, b"x")]
    truncated = io.BytesIO(frame(1, b"whole\n") + frame(1, b"cut short")[:-3])
    assert list(iter_frames(truncated)) == [(1, b"whole\n")]


class _Answer:
    def __init__(self, status_code: int, text: str = "") -> None:
        self.status_code = status_code
        self.text = text


@pytest.mark.parametrize(
    ("status", "text", "gone"),
    [
        (404, "", True),
        (500, "container abc does not exist in database: no such container", True),
        (500, "no pod with name or ID x found: no such pod", True),
        (500, "runc: exec failed", False),
        (200, "", False),
    ],
)
def test_gone_answers(status: int, text: str, gone: bool) -> None:
    assert is_gone(_Answer(status, text)) is gone


def test_insecure_registries_follow_the_files_as_they_change(tmp_path: Path) -> None:
    conf, drop_ins = tmp_path / "registries.conf", tmp_path / "registries.conf.d"
    registries = InsecureRegistries(conf, drop_ins)
    assert registries.current() == []  # no files at all
    conf.write_text('[[registry]]\nlocation = "lab.home:5000"\ninsecure = true\n')
    assert registries.current() == ["lab.home:5000"]
    drop_ins.mkdir()
    lab = drop_ins / "50-lab.conf"
    lab.write_text('[[registry]]\nlocation = "pi4.local:5000"\ninsecure = true\n')
    assert registries.current() == ["lab.home:5000", "pi4.local:5000"]
    # edited in place within the same second and to the same size: the mtime tells
    lab.write_text('[[registry]]\nlocation = "pi4.local:5000"\ninsecure = fals\n')
    os.utime(lab, ns=(1_000_000_000, 1_000_000_000))
    assert registries.current() == ["lab.home:5000"]  # unreadable now: skipped, warned
    lab.unlink()
    conf.write_text('[[registry]]\nlocation = "lab.home:5000"\ninsecure = false\n')
    assert registries.current() == []
