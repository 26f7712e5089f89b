"""``bramble agent``: wire the node agent together and run it.

Start-up never waits for the control plane: the pods of the last checkpoint are synced
at once, and registration, the lease and the status writer retry in the background, so a
node that boots while the control plane is away keeps (and restarts) its workloads.
Stopping the agent stops the agent only; containers keep running and are adopted by the
next agent (nothing is restarted).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from agent import endpoint, hardware, metrics
from agent.config import Volumes
from agent.errors import AgentError as AgentError  # re-exported: the CLI catches it
from agent.events import EventRecorder
from agent.node import NodeAgent, NodeSettings, primary_address
from agent.podman_service import DEFAULT_PODMAN_URL, PodmanService
from agent.pods import PodManager
from agent.runtime import interface as rt
from agent.tasks import guard
from agent.worker import WorkerContext
from api import errors, jointoken
from api.client import ApiClient, Credentials, load_kubeconfig, ssl_context
from api.informer import Informer
from api.jointoken import ca_hash
from api.resources import resource

logger = logging.getLogger(__name__)

PODS = resource("", "Pod")


@dataclass
class AgentOptions:
    data_dir: Path
    name: str = field(default_factory=lambda: socket.gethostname().split(".")[0].lower())
    kubeconfig: Path | None = None
    server: str | None = None
    token: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    ca_cert_hash: str | None = None
    runtime: str = "podman"  # or "fake"
    podman_url: str = DEFAULT_PODMAN_URL
    address: str | None = None
    endpoint_host: str = "0.0.0.0"
    endpoint_port: int = 10250
    lease_interval: float = 10.0
    status_interval: float = 10.0
    relist_interval: float = 2.0  # without runtime events (fake runtime, stream down)
    evented_relist_interval: float = 30.0  # with them: a safety net
    housekeeping_interval: float = 30.0
    extra_labels: dict[str, str] = field(default_factory=dict)


# --- credentials ------------------------------------------------------------------------------


async def credentials(options: AgentOptions) -> Credentials:
    if options.kubeconfig is not None:
        try:
            return await asyncio.to_thread(load_kubeconfig, options.kubeconfig)
        except Exception as e:
            raise AgentError(str(e)) from e
    if not options.server or not options.token:
        raise AgentError("give --server URL and --token TOKEN (or --kubeconfig)")
    try:
        embedded, bearer = jointoken.split(options.token)
    except jointoken.JoinTokenError as e:
        raise AgentError(str(e)) from e
    expected = options.ca_cert_hash or embedded
    if options.ca_cert_hash and embedded and options.ca_cert_hash.strip().lower() != embedded:
        raise AgentError(
            f"--ca-cert-hash {options.ca_cert_hash} and the join token's CA hash {embedded} "
            "differ: one of them is for another cluster; drop --ca-cert-hash"
        )
    if options.ca_file is not None:
        try:
            ca = await asyncio.to_thread(options.ca_file.read_bytes)
        except OSError as e:
            raise AgentError(f"cannot read --ca-file {options.ca_file}: {e.strerror}") from e
    elif expected:
        # Verified once, kept: an agent restarting while the control plane is away must
        # still start (and keep its pods) without fetching anything.
        cached = options.data_dir / "ca.pem"
        known = await asyncio.to_thread(_read_if_exists, cached)
        if known is not None and ca_hash(known) == expected.strip().lower():
            ca = known
        else:
            ca = await fetch_ca(options.server, expected)
            await asyncio.to_thread(_write_private, cached, ca)
    else:
        raise AgentError(
            "give a join token (`bramble token create --role node` prints one), or "
            "--ca-cert-hash sha256:... (printed by the server) or --ca-file, so the agent "
            "can tell the real control plane from an impostor"
        )
    return Credentials(server=options.server.rstrip("/"), ca_pem=ca, token=bearer)


async def fetch_ca(server: str, expected: str) -> bytes:
    """The cluster CA from the server's cluster-info, trusted only if its hash matches."""
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    url = f"{server.rstrip('/')}/bramble/v1/cluster-info"
    try:
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=insecure)) as s,
            s.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp,
        ):
            body = orjson.loads(await resp.read())
    except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as e:
        raise AgentError(
            f"cannot fetch the cluster CA from {server}: {e or type(e).__name__}; check "
            "--server and that bramble server runs there"
        ) from e
    ca = str(body.get("ca", "")).encode()
    actual = ca_hash(ca)
    if actual != expected.strip().lower():
        raise AgentError(
            f"the server at {server} presented a cluster CA with hash {actual}, not the "
            f"expected {expected}: refusing to join (is this the right server?)"
        )
    return ca


def _read_if_exists(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def make_runtime(options: AgentOptions, url: str) -> rt.Runtime:
    if options.runtime == "fake":
        from agent.runtime.fake import FakeRuntime

        return FakeRuntime()
    from agent.runtime.podman import PodmanRuntime

    return PodmanRuntime(url)


# --- the agent ----------------------------------------------------------------------------------


class Agent:
    def __init__(self, options: AgentOptions) -> None:
        self.options = options
        self.client: ApiClient | None = None
        self.runtime: rt.Runtime | None = None
        self.manager: PodManager | None = None
        self.node: NodeAgent | None = None
        self.endpoint_port = options.endpoint_port
        self._runner: web.AppRunner | None = None
        self._podman = PodmanService(options.data_dir)

    async def run(self, *, ready: asyncio.Event | None = None) -> None:
        options = self.options
        await asyncio.to_thread(options.data_dir.mkdir, parents=True, exist_ok=True, mode=0o700)
        creds = await credentials(options)
        self.client = ApiClient(creds, context=await asyncio.to_thread(ssl_context, creds))
        url = (
            options.podman_url
            if options.runtime != "podman"
            else await self._podman.url_for(options.podman_url)
        )
        # In a thread: the Podman runtime's first import (podman-py, requests) takes a
        # fifth of a second.
        self.runtime = await asyncio.to_thread(make_runtime, options, url)
        address = options.address if options.address else await asyncio.to_thread(primary_address)
        recorder = EventRecorder(self.client, options.name)
        ctx = WorkerContext(
            node_name=options.name, runtime=self.runtime, client=self.client,
            volumes=Volumes(options.data_dir / "pods"), recorder=recorder,
            view=lambda uid: (None, []), relist=_nothing, host_ip=lambda: address,
        )  # fmt: skip
        informer = Informer(self.client, PODS, field_selector=f"spec.nodeName={options.name}")
        self.manager = PodManager(
            ctx, informer, checkpoint=options.data_dir / "pods.json",
            relist_interval=options.relist_interval,
            evented_relist_interval=options.evented_relist_interval,
            housekeeping_interval=options.housekeeping_interval,
        )  # fmt: skip
        probe = hardware.MachineProbe(data_dir=options.data_dir)
        settings = NodeSettings(
            name=options.name, endpoint_port=0, address=address,
            lease_interval=options.lease_interval, status_interval=options.status_interval,
            extra_labels=options.extra_labels,
        )  # fmt: skip
        self.node = NodeAgent(self.client, settings, probe, self.runtime, self.manager)
        try:
            await self._start_endpoint(address)
            settings.endpoint_port = self.endpoint_port
            async with asyncio.TaskGroup() as group:
                for name, run in (
                    ("pod-manager", self.manager.run),
                    ("events", recorder.run),
                    ("node", lambda: self._register_then_report(ready)),
                ):
                    group.create_task(guard(run, name=name), name=name)
                if self._podman.process is not None:  # the agent's own: keep it up
                    group.create_task(
                        guard(self._podman.supervise, name="podman-service"), name="podman-service"
                    )
        finally:
            await self.close()

    async def _register_then_report(self, ready: asyncio.Event | None) -> None:
        assert self.node is not None
        delay = 1.0
        while True:
            try:
                await self.node.register()
                break
            except errors.ApiError as e:
                logger.warning(
                    "node registration failed error=%s; retrying in %.0fs", e.message, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        if ready is not None:
            ready.set()
        async with asyncio.TaskGroup() as group:
            group.create_task(guard(self.node.run_lease, name="lease"), name="lease")
            group.create_task(guard(self.node.run_status, name="node-status"), name="node-status")

    async def _start_endpoint(self, address: str) -> None:
        assert self.manager is not None
        options = self.options
        pem = options.data_dir / "serving.pem"
        ca = await self._serving_certificate(address, pem)
        context = await asyncio.to_thread(endpoint.server_context, str(pem), ca)
        app = endpoint.build(self.manager, self._usage, self._metrics, self._history)
        # Stopping waits this long for requests in flight (endless streams are ended at
        # once: endpoint.py), not aiohttp's default minute.
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=5.0
        )
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, options.endpoint_host, options.endpoint_port, ssl_context=context
        )
        try:
            await site.start()
        except OSError as e:
            raise AgentError(
                f"cannot listen on {options.endpoint_host}:{options.endpoint_port}: {e.strerror}; "
                "is another agent running? choose another --endpoint-port"
            ) from e
        if self._runner.addresses:
            self.endpoint_port = int(self._runner.addresses[0][1])
        logger.info("agent endpoint listening port=%d", self.endpoint_port)

    async def _serving_certificate(self, address: str, pem: Path) -> bytes:
        """Ask the apiserver for a serving certificate (kept from last time if it is down)."""
        assert self.client is not None
        hostnames = sorted({socket.gethostname(), self.options.name})
        body = {"hostnames": hostnames, "ips": sorted({address, "127.0.0.1"})}
        try:
            answer = await self.client.request(
                "POST", f"/bramble/v1/nodes/{self.options.name}/serving-certificate", body=body
            )
        except errors.ApiError as e:
            if await asyncio.to_thread(pem.exists):
                logger.warning(
                    "serving certificate not renewed error=%s; using the last one", e.message
                )
                return await asyncio.to_thread(
                    lambda: (self.options.data_dir / "ca.pem").read_bytes()
                )
            raise AgentError(
                f"cannot get a serving certificate from the apiserver: {e.message}"
            ) from e
        await asyncio.to_thread(
            _write_private, pem, (answer["certificate"] + answer["key"]).encode()
        )
        await asyncio.to_thread(
            _write_private, self.options.data_dir / "ca.pem", answer["ca"].encode()
        )
        return str(answer["ca"]).encode()

    async def _usage(self) -> dict[str, Any]:
        assert self.node is not None
        return await self.node.usage()

    def _history(self) -> list[dict[str, Any]]:
        if self.node is None:
            return []
        return [
            {
                "at": p.at,
                "cpuPercent": p.cpu_percent,
                "memoryPercent": p.memory_percent,
                "temperatureCelsius": p.temperature_celsius,
                "diskReadBytesPerSecond": p.disk_read_rate,
                "diskWriteBytesPerSecond": p.disk_write_rate,
                "networkReceiveBytesPerSecond": p.net_recv_rate,
                "networkTransmitBytesPerSecond": p.net_sent_rate,
            }
            for p in self.node.history.points()
        ]

    def _metrics(self) -> bytes:
        manager = self.manager
        return metrics.render(
            self.node.report if self.node is not None else None,
            pods=len(manager.workers) if manager is not None else 0,
            runtime_up=manager is not None and manager.runtime_healthy,
        )

    async def close(self) -> None:
        """Release what the agent holds, each step whatever became of the others; the
        containers keep running."""
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        if self.manager is not None:
            steps.append(("the pod workers", self.manager.stop))
        if self._runner is not None:
            steps.append(("the endpoint", self._runner.cleanup))
        if self.runtime is not None:
            steps.append(("the runtime client", self.runtime.close))
        if self.client is not None:
            steps.append(("the API client", self.client.close))
        steps.append(("the Podman service", self._podman.stop))
        for what, step in steps:
            try:
                await step()
            except Exception:
                logger.exception("stopping %s failed", what)


async def _nothing() -> None:
    return None


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
