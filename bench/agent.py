"""Node agent benchmark on real Podman.

    .venv/bin/python -m bench.agent [--quick]

A real ``bramble server`` (no embedded agent), a private Podman service, and a real
``bramble agent`` process joined as a node. Measures:

* pod startup latency: from the create request being sent to the pod's Running (all
  containers ready) status arriving on a watch, image present, one pod at a time;
* the agent's RSS and CPU share while idle, with 0 and with 20 running pods (measured
  over ``--idle`` seconds from /proc, the agent process only; Podman and conmon apart);
* the cost of one hardware report (MachineProbe().report(), mean of 50).

Prints a Markdown table; docs/benchmarks.md keeps the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.support import procfs
from bench.support.stats import machine, pct
from tests.e2e.node.support import make_agent
from tests.support.cluster import BrambleServer
from tests.support.podman import PodmanService, remove_labelled

POLITE = "trap 'exit 0' TERM; while true; do sleep 1 & wait; done"


def rss_mib(pid: int) -> float:
    return procfs.rss_bytes(pid) / 2**20


def idle_share(pid: int, seconds: float) -> float:
    """The agent's CPU use over ``seconds`` of wall time, as a share of one core."""
    start_cpu, start = procfs.cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)  # measuring an idle period: the wait is the measurement
    return (procfs.cpu_seconds(pid) - start_cpu) / (time.monotonic() - start)


def pod(namespace: str, name: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 2,
            "containers": [
                {"name": "c", "image": "localhost/busybox:latest",
                 "imagePullPolicy": "IfNotPresent", "command": ["sh", "-c", POLITE]}
            ],
        },
    }  # fmt: skip


def start_pod(server: BrambleServer, namespace: str, name: str, node: str) -> float:
    """Create a pod and wait (on a watch) until it is Running and ready; seconds taken."""
    import http.client
    import ssl

    admin = server.admin()
    t0 = time.monotonic()  # the pod's start includes its create request
    created = admin.ok("POST", f"/api/v1/namespaces/{namespace}/pods", pod(namespace, name, node))
    rv = created["metadata"]["resourceVersion"]
    host, port = server.url.removeprefix("https://").rsplit(":", 1)
    ctx = ssl.create_default_context(cadata=admin.ca_pem.decode())
    cert_file = server.data_dir / "bench-admin.pem"
    if not cert_file.exists():
        assert admin.cert is not None
        cert_file.write_bytes(admin.cert[0] + admin.cert[1])
    ctx.load_cert_chain(str(cert_file))
    conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=60)
    conn.request(
        "GET",
        f"/api/v1/namespaces/{namespace}/pods?watch=true&resourceVersion={rv}"
        f"&fieldSelector=metadata.name%3D{name}",
    )
    resp = conn.getresponse()
    try:
        while True:
            line = resp.readline()
            if not line:
                raise RuntimeError(f"the watch ended before {name} ran")
            event = json.loads(line)
            status = event["object"].get("status") or {}
            statuses = status.get("containerStatuses") or []
            if (
                status.get("phase") == "Running"
                and statuses
                and all(c.get("ready") for c in statuses)
            ):
                return time.monotonic() - t0
    finally:
        conn.close()


def settled(server: BrambleServer, namespace: str, pods: int, timeout: float = 300) -> None:
    """Until only ``pods`` pods are left, in the API and in Podman (their containers
    removed): an idle measurement must not count the deletions' work."""
    deadline = time.monotonic() + timeout
    label = f"label=io.bramble.pod.namespace={namespace}"
    while time.monotonic() < deadline:
        listed = server.admin().ok("GET", f"/api/v1/namespaces/{namespace}/pods")["items"]
        out = subprocess.run(
            ["podman", "ps", "-a", "--format", "{{.Labels}}", "--filter", label],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        containers = sum(1 for line in out.splitlines() if "io.bramble.container.name" in line)
        if len(listed) == pods and containers == pods:
            return
        time.sleep(1)  # polling the API and Podman, with a deadline
    raise RuntimeError(f"the deleted pods were not gone within {timeout:.0f} s")


def hardware_cost(calls: int = 50) -> float:
    from agent.hardware import MachineProbe

    probe = MachineProbe()
    probe.report()
    start = time.perf_counter()
    for _ in range(calls):
        probe.report()
    return (time.perf_counter() - start) / calls


def main(pods: int, idle: float) -> None:
    with tempfile.TemporaryDirectory(prefix="bramble-bench-agent-") as tmp:
        work = Path(tmp)
        podman = PodmanService(work / "podman")
        podman.start()
        server = BrambleServer.start(work / "server")
        agent = make_agent(server, work, name="bench-node", podman_socket=podman.socket,
                           extra=["--lease-interval", "10", "--status-interval", "10",
                                  "--housekeeping-interval", "30"])  # fmt: skip
        namespace = "bench"
        results: dict[str, str] = {}
        try:
            agent.start()
            assert agent.proc is not None
            pid = agent.proc.pid
            server.admin().ok("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
            time.sleep(2)  # let start-up settle before measuring idle
            results["agent RSS, 0 pods"] = f"{rss_mib(pid):.1f} MiB"
            results["agent CPU idle, 0 pods"] = f"{idle_share(pid, idle) * 100:.2f} % of a core"
            latencies = [
                start_pod(server, namespace, f"p{i:03d}", "bench-node") for i in range(pods)
            ]
            results["pods started (one at a time)"] = str(len(latencies))
            p50, p99 = statistics.median(latencies) * 1000, pct(latencies, 0.99) * 1000
            results["startup p50 / p99"] = f"{p50:.0f} ms / {p99:.0f} ms"
            running = 20
            for name in [f"p{i:03d}" for i in range(running, pods)]:
                server.admin().request("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}")
            settled(server, namespace, running)
            time.sleep(5)  # the agent's own follow-up (status, relist) after the last one
            results[f"agent RSS, {running} pods"] = f"{rss_mib(pid):.1f} MiB"
            results[f"agent CPU idle, {running} pods"] = (
                f"{idle_share(pid, idle) * 100:.2f} % of a core"
            )
        finally:
            agent.stop()
            server.stop()
            podman.stop()
            remove_labelled(f"io.bramble.pod.namespace={namespace}")
    results["one hardware report"] = f"{hardware_cost() * 1000:.2f} ms"
    podman_version = subprocess.run(
        ["podman", "--version"], capture_output=True, text=True
    ).stdout.strip()
    print(f"machine: {machine()}, {podman_version}")
    print()
    print("| metric | value |")
    print("|---|---|")
    for k, v in results.items():
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="30 pods (the issue's least), 5 s idle windows"
    )
    args = parser.parse_args()
    if args.quick:
        main(pods=30, idle=5.0)
    else:
        main(pods=60, idle=30.0)
