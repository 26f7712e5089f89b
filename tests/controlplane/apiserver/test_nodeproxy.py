"""pods/log and metrics.k8s.io through the apiserver to a node's agent endpoint, for real:
HTTPS both ways with the cluster PKI (the agent accepts only the apiserver's client
certificate), the real kubectl for ``logs`` and ``top``. The agent here is a small stand-in
serving the kubelet paths the real agent serves; what is under test is the apiserver."""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from api.resources import resource
from controlplane.apiserver.auth import kubeconfig
from controlplane.apiserver.auth import pki as pkis
from controlplane.apiserver.server import ApiServer
from controlplane.store import open_store
from tests.support.net import free_port
from tests.support.real import require_binary

PODS, NODES = resource("", "Pod"), resource("", "Node")


@dataclass
class FakeAgent:
    """Serves /containerLogs and /stats/summary; records what it was asked."""

    requests: list[web.Request] = field(default_factory=list)
    peer_names: list[str] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def logs(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        cert = request.transport.get_extra_info("peercert") if request.transport else None
        self.peer_names.append(dict(x[0] for x in cert["subject"])["commonName"] if cert else "")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(b"line one\n")
        if request.query.get("follow") == "true":
            await self.release.wait()  # the second line only once the first was received
            await response.write(b"line two\n")
        await response.write_eof()
        return response

    async def summary(self, request: web.Request) -> web.Response:
        t = "2026-11-24T00:00:00Z"
        return web.json_response(
            {
                "node": {
                    "nodeName": "pi-1",
                    "cpu": {"time": t, "usageNanoCores": 250_000_000},
                    "memory": {"time": t, "workingSetBytes": 512 * 1024 * 1024},
                },
                "pods": [
                    {
                        "podRef": {"name": "web", "namespace": "default", "uid": "u"},
                        "cpu": {"time": t, "usageNanoCores": 5_000_000},
                        "memory": {"time": t, "workingSetBytes": 20 * 1024 * 1024},
                        "containers": [
                            {
                                "name": "main",
                                "cpu": {"time": t, "usageNanoCores": 5_000_000},
                                "memory": {"time": t, "workingSetBytes": 20 * 1024 * 1024},
                            }
                        ],
                    }
                ],
            }
        )


@dataclass
class Cluster:
    url: str
    kubeconfig: Path
    session: aiohttp.ClientSession
    agent: FakeAgent
    agent_port: int
    server: ApiServer


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    pki = await asyncio.to_thread(
        pkis.ensure_cluster_pki, tmp_path, hostnames=["localhost"], ips=["127.0.0.1"]
    )
    # The agent: TLS with a serving certificate from the cluster CA, client certs required.
    cert, key = pkis.issue_serving_certificate(
        pki, common_name="pi-1", hostnames=[], ips=["127.0.0.1"], days=1
    )
    agent_dir = Path(tempfile.mkdtemp(dir=tmp_path))
    (agent_dir / "agent.pem").write_bytes(cert + key)
    agent_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=pki.ca_pem.decode())
    agent_ssl.load_cert_chain(str(agent_dir / "agent.pem"))
    agent_ssl.verify_mode = ssl.CERT_REQUIRED
    agent = FakeAgent()
    agent_app = web.Application()
    agent_app.router.add_get("/containerLogs/{ns}/{pod}/{container}", agent.logs)
    agent_app.router.add_get("/stats/summary", agent.summary)
    runner = web.AppRunner(agent_app)
    await runner.setup()
    agent_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", agent_port, ssl_context=agent_ssl).start()

    store = await open_store(f"sqlite://{tmp_path / 'state.db'}")
    server = ApiServer(
        store,
        host="127.0.0.1",
        port=0,
        ssl_context=pkis.server_ssl_context(pki),
        agent_ssl=pkis.client_ssl_context(pki),
    )
    await server.start()
    url = f"https://127.0.0.1:{server.port}"
    admin_cert, admin_key = pkis.issue_client_certificate(
        pki, common_name="admin", organizations=["system:masters"], days=1
    )
    config = tmp_path / "admin.kubeconfig"
    await asyncio.to_thread(
        kubeconfig.write_kubeconfig,
        config,
        kubeconfig.admin_kubeconfig(
            url, pki.ca_pem, user="admin", client_cert_pem=admin_cert, client_key_pem=admin_key
        ),
    )
    (agent_dir / "admin.pem").write_bytes(admin_cert + admin_key)
    client_ssl = ssl.create_default_context(cadata=pki.ca_pem.decode())
    client_ssl.load_cert_chain(str(agent_dir / "admin.pem"))
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl))
    node = {
        "metadata": {"name": "pi-1"},
        "status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": agent_port}},
        },
    }
    await server.objects.create(NODES, None, node)
    for name, containers, node_name in (
        ("web", ["main"], "pi-1"),
        ("two", ["a", "b"], "pi-1"),
        ("pending", ["main"], None),
    ):
        spec: dict[str, object] = {
            "containers": [{"name": c, "image": "busybox"} for c in containers]
        }
        if node_name:
            spec["nodeName"] = node_name
        await server.objects.create(PODS, "default", {"metadata": {"name": name}, "spec": spec})
    try:
        yield Cluster(url, config, session, agent, agent_port, server)
    finally:
        agent.release.set()
        await session.close()
        await server.stop()
        await store.close()
        await runner.cleanup()


async def get(c: Cluster, path: str) -> tuple[int, bytes]:
    async with c.session.get(c.url + path) as resp:
        return resp.status, await resp.read()


async def test_logs_pass_through_with_the_apiservers_identity(cluster: Cluster) -> None:
    status, body = await get(cluster, "/api/v1/namespaces/default/pods/web/log?tailLines=5")
    assert (status, body) == (200, b"line one\n")
    asked = cluster.agent.requests[-1]
    assert asked.path == "/containerLogs/default/web/main"
    assert asked.query["tailLines"] == "5"
    assert cluster.agent.peer_names[-1] == "bramble:apiserver"


async def test_followed_logs_stream_line_by_line(cluster: Cluster) -> None:
    path = "/api/v1/namespaces/default/pods/web/log?follow=true"
    async with cluster.session.get(cluster.url + path) as resp:
        assert resp.status == 200
        assert await resp.content.readline() == b"line one\n"  # before the agent ends
        cluster.agent.release.set()
        assert await resp.content.readline() == b"line two\n"


@pytest.mark.parametrize(
    ("path", "code", "says"),
    [
        pytest.param("pods/pending/log", 400, b"does not have a host assigned", id="unbound"),
        pytest.param("pods/two/log", 400, b"choose one of: [a b]", id="which-container"),
        pytest.param(
            "pods/web/log?container=nope", 400, b"is not valid for pod web", id="bad-container"
        ),
        pytest.param("pods/web/log?tailLines=-1", 400, b"tailLines", id="bad-tail"),
        pytest.param("pods/ghost/log", 404, b'pods \\"ghost\\" not found', id="no-pod"),
    ],
)
async def test_log_requests_that_cannot_be_served(
    cluster: Cluster, path: str, code: int, says: bytes
) -> None:
    status, body = await get(cluster, f"/api/v1/namespaces/default/{path}")
    assert status == code
    assert says in body
    assert b'"kind":"Status"' in body


async def test_an_unreachable_node_is_a_prompt_503(cluster: Cluster) -> None:
    dead = free_port()  # nothing listens there

    def point_at_nothing(node: dict[str, Any]) -> dict[str, Any]:
        node["status"]["daemonEndpoints"] = {"kubeletEndpoint": {"Port": dead}}
        return node

    await cluster.server.objects.guaranteed_update(
        NODES, None, "pi-1", point_at_nothing, admit=False
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    status, body = await get(cluster, "/api/v1/namespaces/default/pods/web/log")
    assert status == 503
    assert b"cannot be reached" in body
    assert loop.time() - started < 5


async def test_metrics_api_from_agent_summaries(cluster: Cluster) -> None:
    status, body = await get(cluster, "/apis/metrics.k8s.io/v1beta1/nodes")
    assert status == 200
    assert b'"cpu":"250000000n"' in body
    assert b'"memory":"524288Ki"' in body
    status, body = await get(cluster, "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web")
    assert status == 200
    assert b'"name":"main"' in body


def kubectl(c: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KUBECONFIG": str(c.kubeconfig),
        "KUBECACHEDIR": str(c.kubeconfig.parent / "cache"),
    }
    return subprocess.run(
        ["kubectl", *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


async def test_kubectl_logs_and_top(cluster: Cluster) -> None:
    require_binary("kubectl", package="kubectl")
    logs = await asyncio.to_thread(kubectl, cluster, "logs", "web")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout == "line one\n"
    top = await asyncio.to_thread(kubectl, cluster, "top", "nodes")
    assert top.returncode == 0, top.stderr
    assert "pi-1" in top.stdout
    assert "250m" in top.stdout
    pods = await asyncio.to_thread(kubectl, cluster, "top", "pods")
    assert pods.returncode == 0, pods.stderr
    assert "web" in pods.stdout
    assert "20Mi" in pods.stdout
