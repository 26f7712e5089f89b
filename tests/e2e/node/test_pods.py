"""The node agent running real pods on real Podman, driven through the real apiserver and
the real kubectl: what a home-lab user does, and what they would see."""

from __future__ import annotations

import base64
import json
import os
import pty
import select
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from functools import partial
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.node.conftest import Node
from tests.e2e.node.support import (
    apply,
    containers_of,
    get_json,
    kubectl,
    kubectl_background,
    wait_until,
)
from tests.support.net import free_port

BUSYBOX = "localhost/busybox:latest"
# busybox sh ignores SIGTERM as PID 1; this one stops at once when asked.
POLITE = "trap 'exit 0' TERM; while true; do sleep 1 & wait; done"


def pod(
    namespace: str, name: str, node: Node, containers: list[dict[str, Any]], **spec: Any
) -> dict[str, Any]:
    for c in containers:
        c.setdefault("image", BUSYBOX)
        c.setdefault("imagePullPolicy", "IfNotPresent")
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"nodeName": node.name, "containers": containers, **spec},
    }


def status(node: Node, namespace: str, name: str) -> dict[str, Any]:
    obj = get_json(node.server, "pod", name, "-n", namespace)
    return (obj or {}).get("status") or {}


def container(node: Node, namespace: str, name: str, which: str) -> dict[str, Any]:
    for c in status(node, namespace, name).get("containerStatuses") or []:
        if c["name"] == which:
            return dict(c)
    return {}


def running(node: Node, namespace: str, name: str) -> bool:
    s = status(node, namespace, name)
    return s.get("phase") == "Running" and all(
        "running" in c["state"] for c in s.get("containerStatuses") or [{"state": {}}]
    )


def test_node_registers_with_its_hardware_and_renews_its_lease(node: Node) -> None:
    obj = get_json(node.server, "node", node.name)
    labels = obj["metadata"]["labels"]
    assert labels["kubernetes.io/arch"] == "amd64"
    assert labels["kubernetes.io/os"] == "linux"
    assert labels["kubernetes.io/hostname"] == node.name
    st = obj["status"]
    assert int(st["capacity"]["cpu"]) >= 1
    assert st["capacity"]["pods"] == "110"
    assert st["nodeInfo"]["containerRuntimeVersion"].startswith("podman://")
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    types = {c["type"] for c in st["conditions"]}
    assert {
        "MemoryPressure",
        "DiskPressure",
        "PIDPressure",
        "ThermalThrottling",
        "UnderVoltage",
    } <= types
    first = get_json(node.server, "lease", node.name, "-n", "kube-node-lease")["spec"]["renewTime"]
    wait_until(
        lambda: (
            get_json(node.server, "lease", node.name, "-n", "kube-node-lease")["spec"]["renewTime"]
            != first
        ),
        timeout=10,
        what="the lease to be renewed",
    )


def test_a_pod_with_config_volumes_shared_storage_and_a_host_port(
    node: Node, namespace: str
) -> None:
    server = node.server
    port = free_port()
    apply(
        server,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": namespace},
            "data": {"greeting": "hello", "index.html": "served by bramble\n"},
        },
    )
    apply(
        server,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "pw", "namespace": namespace},
            "data": {"password": base64.b64encode(b"s3cret").decode()},
        },
    )
    manifest = pod(
        namespace,
        "web",
        node,
        [
            {
                "name": "httpd",
                "command": ["httpd", "-f", "-p", "8080", "-h", "/www"],
                "ports": [{"containerPort": 8080, "hostPort": port}],
                "volumeMounts": [
                    {"name": "site", "mountPath": "/www", "readOnly": True},
                    {"name": "shared", "mountPath": "/shared"},
                ],
            },
            {
                "name": "side",
                "command": ["sh", "-c", f"echo from-side > /shared/note; {POLITE}"],
                "env": [
                    {
                        "name": "GREETING",
                        "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}},
                    },
                    {
                        "name": "PASSWORD",
                        "valueFrom": {"secretKeyRef": {"name": "pw", "key": "password"}},
                    },
                    {"name": "MY_POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "COMBINED", "value": "$(GREETING)-world"},
                ],
                "volumeMounts": [
                    {"name": "shared", "mountPath": "/shared"},
                    {"name": "secret", "mountPath": "/etc/pw", "readOnly": True},
                ],
            },
        ],
        volumes=[
            {
                "name": "site",
                "configMap": {
                    "name": "cfg",
                    "items": [{"key": "index.html", "path": "index.html"}],
                },
            },
            {"name": "shared", "emptyDir": {}},
            {"name": "secret", "secret": {"secretName": "pw"}},
        ],
    )
    apply(server, manifest)
    wait_until(lambda: running(node, namespace, "web"), timeout=60, what="the pod to run")

    st = status(node, namespace, "web")
    assert st["podIP"]
    assert st["hostIP"] == "127.0.0.1"
    assert all(c["ready"] and c["restartCount"] == 0 for c in st["containerStatuses"])
    assert {c["type"]: c["status"] for c in st["conditions"]}["Ready"] == "True"

    env = kubectl(server, "exec", "-n", namespace, "web", "-c", "side", "--", "env").stdout
    assert "GREETING=hello" in env
    assert "PASSWORD=s3cret" in env
    assert "MY_POD=web" in env
    assert f"MY_IP={st['podIP']}\n" in env  # known at the first start: no restart needed
    assert "COMBINED=hello-world" in env
    secret = kubectl(
        server, "exec", "-n", namespace, "web", "-c", "side", "--", "cat", "/etc/pw/password"
    )
    assert secret.stdout == "s3cret"
    note = wait_until(
        lambda: (
            kubectl(
                server,
                "exec",
                "-n",
                namespace,
                "web",
                "-c",
                "httpd",
                "--",
                "cat",
                "/shared/note",
                check=False,
            ).stdout
        ),
        timeout=20,
        what="the emptyDir to be shared",
    )
    assert note == "from-side\n"
    body = wait_until(
        lambda: _fetch(f"http://127.0.0.1:{port}/index.html"), timeout=20, what="the host port"
    )
    assert body == b"served by bramble\n"


def _fetch(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bytes(resp.read())
    except OSError:
        return None


def test_restart_policies(node: Node, namespace: str) -> None:
    server = node.server
    apply(
        server,
        pod(
            namespace,
            "crashy",
            node,
            [{"name": "c", "command": ["sh", "-c", "echo dying; exit 3"]}],
        ),
    )
    apply(
        server,
        pod(
            namespace, "done", node, [{"name": "c", "command": ["true"]}], restartPolicy="OnFailure"
        ),
    )
    apply(
        server,
        pod(
            namespace,
            "failed",
            node,
            [{"name": "c", "command": ["sh", "-c", "exit 2"]}],
            restartPolicy="Never",
        ),
    )
    wait_until(
        lambda: status(node, namespace, "done").get("phase") == "Succeeded",
        timeout=60,
        what="Succeeded",
    )
    wait_until(
        lambda: status(node, namespace, "failed").get("phase") == "Failed",
        timeout=60,
        what="Failed",
    )
    terminated = container(node, namespace, "failed", "c")["state"]["terminated"]
    assert terminated["exitCode"] == 2
    assert terminated["reason"] == "Error"
    assert container(node, namespace, "failed", "c")["restartCount"] == 0
    crashy = wait_until(
        lambda: (
            (c := container(node, namespace, "crashy", "c")).get("restartCount", 0) >= 2
            and c["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff"
            and c
        ),
        timeout=60,
        what="CrashLoopBackOff",
    )
    assert crashy["lastState"]["terminated"]["exitCode"] == 3
    previous = kubectl(server, "logs", "-n", namespace, "crashy", "--previous")
    assert previous.stdout == "dying\n"
    events = wait_until(
        lambda: (
            (out := kubectl(server, "get", "events", "-n", namespace,
                            "--field-selector", "involvedObject.name=crashy").stdout)
            and "BackOff" in out
            and out
        ),
        timeout=30,
        what="a BackOff event",
    )  # fmt: skip
    assert "Started" in events
    assert "Back-off restarting failed container c in pod crashy_" in events


def test_a_missing_image_and_a_bad_command_do_not_stop_other_pods(
    node: Node, namespace: str
) -> None:
    server = node.server
    apply(
        server,
        pod(namespace, "noimage", node, [{"name": "c", "image": "127.0.0.1:1/nothing/here:1"}]),
    )
    apply(
        server, pod(namespace, "nocommand", node, [{"name": "c", "command": ["/no/such/binary"]}])
    )
    apply(server, pod(namespace, "fine", node, [{"name": "c", "command": ["sh", "-c", POLITE]}]))
    wait_until(lambda: running(node, namespace, "fine"), timeout=60, what="the good pod to run")
    image = wait_until(
        lambda: container(node, namespace, "noimage", "c").get("state", {}).get("waiting", {}),
        timeout=60,
        what="an image pull error",
    )
    assert image["reason"] in ("ErrImagePull", "ImagePullBackOff")
    assert "127.0.0.1:1/nothing/here" in image["message"]
    command = wait_until(
        lambda: (
            (w := container(node, namespace, "nocommand", "c").get("state", {}).get("waiting", {}))
            and w.get("reason") in ("RunContainerError", "CrashLoopBackOff", "StartError")
            and w
        ),
        timeout=60,
        what="a start error",
    )
    assert command["reason"]
    described = kubectl(server, "describe", "pod", "-n", namespace, "nocommand").stdout
    assert "/no/such/binary" in described


def test_graceful_deletion(node: Node, namespace: str) -> None:
    server = node.server
    apply(server, pod(namespace, "polite", node, [{"name": "c", "command": ["sh", "-c", POLITE]}]))
    grace = 4
    apply(
        server,
        pod(
            namespace,
            "stubborn",
            node,
            # Three containers that ignore SIGTERM: stopped together, one grace period.
            [{"name": n, "command": ["sleep", "3600"]} for n in ("a", "b", "c")],
            terminationGracePeriodSeconds=grace,
        ),
    )
    for name in ("polite", "stubborn"):
        wait_until(partial(running, node, namespace, name), timeout=60, what=f"{name} to run")
    started = time.monotonic()
    kubectl(server, "delete", "pod", "-n", namespace, "polite", "--timeout=30s")
    polite = time.monotonic() - started
    started = time.monotonic()
    kubectl(server, "delete", "pod", "-n", namespace, "stubborn", "--timeout=30s")
    stubborn = time.monotonic() - started
    assert polite < 5, polite
    # SIGTERM ignored: killed after the grace period, once for all three (in turn, it
    # would take three).
    assert grace <= stubborn < 2 * grace, stubborn
    wait_until(
        lambda: not containers_of(namespace), timeout=30, what="the containers to be removed"
    )


def test_logs_follow_and_exec(node: Node, namespace: str) -> None:
    server = node.server
    apply(
        server,
        pod(
            namespace,
            "talker",
            node,
            [
                {
                    "name": "c",
                    "command": [
                        "sh",
                        "-c",
                        "trap 'exit 0' TERM; i=0; "
                        "while true; do echo line $i; i=$((i+1)); sleep 0.2 & wait; done",
                    ],
                }
            ],
        ),
    )
    wait_until(lambda: running(node, namespace, "talker"), timeout=60, what="the pod to run")
    # Once it has written three lines, --tail=2 gives the newest two. (Asked as soon as the
    # pod runs, it may have written one line only.)
    wait_until(
        lambda: len(kubectl(server, "logs", "-n", namespace, "talker").stdout.splitlines()) >= 3,
        timeout=20,
        what="three lines of output",
    )
    tail = kubectl(server, "logs", "-n", namespace, "talker", "--tail=2").stdout.splitlines()
    assert len(tail) == 2, tail
    first, second = (_line_number(line) for line in tail)
    assert first >= 1, tail  # not the oldest lines
    assert second == first + 1, tail
    with kubectl_background(server, "logs", "-n", namespace, "talker", "-f", "--tail=1") as follow:
        # The first line is the tail, the newest line when the follow began; a second one was
        # written after that, so it can only have come through the follow (apiserver -> agent
        # -> Podman). Read until it arrives, with a deadline, however slow the chain is.
        seen = follow.wait_for_line(r"^line \d+$", count=2, timeout=30)
    numbers = [_line_number(line) for line in seen]
    assert numbers == sorted(set(numbers)), seen  # newer lines, in order, none twice
    echoed = kubectl(
        server, "exec", "-i", "-n", namespace, "talker", "--", "cat", stdin="through stdin\n"
    )
    assert echoed.stdout == "through stdin\n"
    failed = kubectl(
        server, "exec", "-n", namespace, "talker", "--", "sh", "-c", "exit 7", check=False
    )
    assert failed.returncode == 7
    # kubectl exec -it: a terminal on our side (a pty), so kubectl asks for one in the
    # container too; the shell's prompt, its echo and its exit code come back.
    session = _interactive(server, ["exec", "-it", "-n", namespace, "talker", "--", "sh"],
                           "tty; echo hi-$((1+2))\nexit 3\n")  # fmt: skip
    assert session.returncode == 3, session.output
    assert "hi-3" in session.output
    assert "/dev/pts/" in session.output  # the container's shell got a terminal too


@dataclass(frozen=True)
class _Session:
    returncode: int
    output: str


def _interactive(server: Any, args: list[str], typed: str, timeout: float = 30) -> _Session:
    """Run kubectl on a pseudo-terminal, type ``typed``, read until it exits."""
    controller, terminal = pty.openpty()
    env = {**os.environ, "KUBECONFIG": str(server.kubeconfig), "TERM": "xterm"}
    proc = subprocess.Popen(
        ["kubectl", *args], stdin=terminal, stdout=terminal, stderr=terminal, env=env,
        start_new_session=True,
    )  # fmt: skip
    os.close(terminal)
    os.write(controller, typed.encode())
    output = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], deadline - time.monotonic())
            if not ready:
                break
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: kubectl exited and closed the terminal
                break
            if not chunk:
                break
            output += chunk
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(controller)
    return _Session(code, output.decode(errors="replace"))


def _line_number(line: str) -> int:
    """``line 12`` -> 12 (the talker's output)."""
    word, _, number = line.strip().partition(" ")
    assert word == "line", line
    return int(number)


def test_probes(node: Node, namespace: str) -> None:
    server = node.server
    apply(
        server,
        pod(
            namespace,
            "probed",
            node,
            [
                {
                    "name": "web",
                    "command": ["sh", "-c", "mkdir -p /www && exec httpd -f -p 8080 -h /www"],
                    "ports": [{"containerPort": 8080, "name": "http"}],
                    "readinessProbe": {
                        "httpGet": {"path": "/ready", "port": "http"},
                        "periodSeconds": 1,
                        "failureThreshold": 1,
                    },
                },
                {
                    "name": "sick",
                    "command": ["sh", "-c", POLITE],
                    "livenessProbe": {
                        "exec": {"command": ["false"]},
                        "periodSeconds": 1,
                        "failureThreshold": 2,
                    },
                },
                {
                    "name": "hung",  # its probe never answers in time
                    "command": ["sh", "-c", POLITE],
                    "livenessProbe": {
                        "exec": {"command": ["sleep", "30"]},
                        "timeoutSeconds": 1,
                        "periodSeconds": 1,
                        "failureThreshold": 2,
                    },
                },
            ],
        ),
    )

    def restarted(name: str) -> bool:
        return bool(container(node, namespace, "probed", name).get("restartCount", 0) >= 1)

    for name in ("sick", "hung"):
        wait_until(
            partial(restarted, name), timeout=60, what=f"the liveness probe to restart {name}"
        )
    assert container(node, namespace, "probed", "web")["ready"] is False  # /ready is missing
    kubectl(
        server,
        "exec",
        "-n",
        namespace,
        "probed",
        "-c",
        "web",
        "--",
        "sh",
        "-c",
        "echo ok > /www/ready",
    )
    wait_until(
        lambda: container(node, namespace, "probed", "web").get("ready") is True,
        timeout=30,
        what="the readiness probe to pass",
    )
    events = kubectl(server, "describe", "pod", "-n", namespace, "probed").stdout
    assert "Liveness probe failed" in events
    assert "timed out after 1s" in events


def test_init_containers_run_first(node: Node, namespace: str) -> None:
    server = node.server
    apply(
        server,
        pod(
            namespace,
            "inits",
            node,
            [
                {
                    "name": "app",
                    "command": ["sh", "-c", f"cat /prepared/ready; {POLITE}"],
                    "volumeMounts": [{"name": "work", "mountPath": "/prepared"}],
                }
            ],
            initContainers=[
                {
                    "name": "prepare",
                    "image": BUSYBOX,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", "echo prepared > /prepared/ready"],
                    "volumeMounts": [{"name": "work", "mountPath": "/prepared"}],
                }
            ],
            volumes=[{"name": "work", "emptyDir": {}}],
        ),
    )
    wait_until(lambda: running(node, namespace, "inits"), timeout=60, what="the app container")
    st = status(node, namespace, "inits")
    assert st["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    logs = wait_until(
        lambda: kubectl(server, "logs", "-n", namespace, "inits", "-c", "app").stdout,
        timeout=20,
        what="the app's output",
    )
    assert logs == "prepared\n"


def test_top(node: Node, namespace: str) -> None:
    server = node.server
    apply(server, pod(namespace, "busy", node, [{"name": "c", "command": ["sh", "-c", POLITE]}]))
    wait_until(lambda: running(node, namespace, "busy"), timeout=60, what="the pod to run")
    nodes = wait_until(
        lambda: kubectl(server, "top", "nodes", check=False).stdout, timeout=30, what="top"
    )
    assert node.name in nodes
    pods = wait_until(
        lambda: kubectl(server, "top", "pods", "-n", namespace, check=False).stdout,
        timeout=30,
        what="top pods",
    )
    assert "busy" in pods


def test_images_are_listed_in_the_node_status(node: Node) -> None:
    images = get_json(node.server, "node", node.name)["status"].get("images") or []
    assert any(BUSYBOX in json.dumps(i) for i in images)


def test_usage_history_and_agent_paths_through_nodes_proxy(node: Node) -> None:
    """The agent's bounded usage history (the TUI's sparklines) and its metrics, read
    through the apiserver as ``kubectl get --raw`` does; only the agent's read-only
    paths are served."""
    server = node.server
    base = f"/api/v1/nodes/{node.name}/proxy"
    history = json.loads(kubectl(server, "get", "--raw", f"{base}/stats/history").stdout)
    assert history["kind"] == "UsageHistory"
    assert history["points"], "the agent samples the machine at start"

    def with_cpu() -> Any:
        """The latest point, once it has a CPU share: the first sample has no interval
        to measure over; the next comes a status interval (10 s) later."""
        raw = kubectl(server, "get", "--raw", f"{base}/stats/history").stdout
        point = json.loads(raw)["points"][-1]
        return point if point["cpuPercent"] is not None else None

    point = wait_until(with_cpu, timeout=30, what="a second hardware sample", every=1)
    assert point["at"] > 0
    assert 0 <= point["cpuPercent"] <= 100
    assert 0 < point["memoryPercent"] < 100
    text = kubectl(server, "get", "--raw", f"{base}/metrics").stdout
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert "# TYPE bramble_node_load1 gauge" in text
    assert "# HELP bramble_node_boot_time_seconds" in text
    assert families["bramble_agent_runtime_up"].samples[0].value == 1
    # This machine's hardware facts, read by psutil and served as the agent reads them.
    boot = families["bramble_node_boot_time_seconds"].samples[0].value
    assert 0 < boot < time.time()
    assert families["bramble_node_memory_total_bytes"].samples[0].value > 0
    assert "bramble_node_swap_total_bytes" in families
    assert {s.labels["device"] for s in families["bramble_node_disk_written_bytes"].samples}
    refused = kubectl(server, "get", "--raw", f"{base}/containerLogs/x/y/z", check=False)
    assert refused.returncode != 0
    assert "nodes/proxy serves" in refused.stderr
