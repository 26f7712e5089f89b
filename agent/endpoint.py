"""The agent's HTTPS endpoint (the kubelet's :10250), for the apiserver only.

Only a client certificate signed by the cluster CA with the apiserver's identity
(CN ``bramble:apiserver``) is accepted. Paths are the kubelet's:

    GET /healthz
    GET /containerLogs/<namespace>/<pod>/<container>?follow=&tailLines=&sinceSeconds=
        &sinceTime=&timestamps=&previous=&limitBytes=
    GET /exec/<namespace>/<pod>/<container>?command=..&stdin=&stdout=&stderr=&tty=
        a WebSocket in Kubernetes' channel protocol (v5.channel.k8s.io, v4.channel.k8s.io):
        each binary frame starts with its channel, 0 stdin, 1 stdout, 2 stderr, 3 the final
        Status, 4 terminal resize ({"Width", "Height"}), 255 (v5) "close this channel"
    GET /stats/summary          node and per-container usage (metrics.k8s.io, kubectl top)
    GET /metrics                Prometheus text
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from agent.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from agent.pods import PodManager
from agent.runtime import interface as rt

logger = logging.getLogger(__name__)

APISERVER_IDENTITY = "bramble:apiserver"
NodeUsage = Callable[[], Awaitable[dict[str, Any]]]

_MANAGER = web.AppKey("manager", PodManager)
_USAGE = web.AppKey("usage", object)
_METRICS = web.AppKey("metrics", object)
_HISTORY = web.AppKey("history", object)
# The handlers of endless streams (log follows, exec sessions): they would hold the
# agent's shutdown for the runner's whole shutdown timeout, so shutdown cancels them.
_STREAMS = web.AppKey("streams", set[asyncio.Task[Any]])


@contextlib.contextmanager
def _endless(request: web.Request) -> Iterator[None]:
    """Mark the current handler as one that only ends when its client (or the agent)
    goes away."""
    task = asyncio.current_task()
    streams = request.app[_STREAMS]
    if task is not None:
        streams.add(task)
    try:
        yield
    finally:
        streams.discard(task)


async def _end_streams(app: web.Application) -> None:
    streams = app[_STREAMS]
    for task in list(streams):
        task.cancel()


def _time(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@web.middleware
async def only_the_apiserver(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    transport = request.transport
    cert = transport.get_extra_info("peercert") if transport is not None else None
    subject = dict(item[0] for item in cert.get("subject", ())) if cert else {}
    if subject.get("commonName") != APISERVER_IDENTITY:
        return web.Response(status=403, text="only the apiserver may use this endpoint\n")
    return await handler(request)


def _find(manager: PodManager, namespace: str, pod: str, container: str, previous: bool) -> str:
    obj = manager.informer.get(f"{namespace}/{pod}")
    if obj is None:
        raise web.HTTPNotFound(text=f'pod "{namespace}/{pod}" is not on this node\n')
    uid = str(obj["metadata"].get("uid"))
    _, containers = manager.view(uid)
    attempts = sorted((c for c in containers if c.name == container), key=lambda c: -c.attempt)
    index = 1 if previous else 0
    if len(attempts) <= index:
        what = "a previous terminated container" if previous else "container"
        raise web.HTTPBadRequest(
            text=f'{what} "{container}" in pod "{pod}" not found\n'
            if previous
            else f'container "{container}" in pod "{pod}" is waiting to start\n'
        )
    return attempts[index].id


async def container_logs(request: web.Request) -> web.StreamResponse:
    manager = request.app[_MANAGER]
    q = request.query
    cid = _find(
        manager, request.match_info["ns"], request.match_info["pod"],
        request.match_info["container"], q.get("previous") == "true",
    )  # fmt: skip
    since = None
    if q.get("sinceSeconds", "").isdigit():
        since = datetime.now(UTC) - timedelta(seconds=int(q["sinceSeconds"]))
    elif "sinceTime" in q:  # RFC 3339, checked by the apiserver
        try:
            since = datetime.fromisoformat(q["sinceTime"])
        except ValueError:
            raise web.HTTPBadRequest(text=f"sinceTime {q['sinceTime']!r} is not a time\n") from None
    tail = int(q["tailLines"]) if q.get("tailLines", "").isdigit() else None
    limit = int(q["limitBytes"]) if q.get("limitBytes", "").isdigit() else None
    runtime: rt.Runtime = manager.ctx.runtime
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    sent = 0
    follow = q.get("follow") == "true"
    lines = runtime.container_logs(
        cid, follow=follow, tail_lines=tail, since=since, timestamps=q.get("timestamps") == "true"
    )
    try:
        with _endless(request) if follow else contextlib.nullcontext():
            async for line in lines:
                chunk = line[: max(0, limit - sent)] if limit is not None else line
                await response.write(chunk)
                sent += len(chunk)
                if limit is not None and sent >= limit:
                    break
    finally:
        close = getattr(lines, "aclose", None)
        if close is not None:
            await close()  # stop the runtime's log reader now (the client may have left)
    await response.write_eof()
    return response


EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def exec_status(exit_code: int) -> bytes:
    """The Status the channel protocol ends with (channel 3)."""
    if exit_code == 0:
        return orjson.dumps({"metadata": {}, "status": "Success"})
    return orjson.dumps(
        {
            "metadata": {},
            "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command "
            f"[...], exit code {exit_code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]},
        }
    )


async def exec_(request: web.Request) -> web.StreamResponse:
    manager = request.app[_MANAGER]
    q = request.query
    command = q.getall("command", [])
    if not command:
        raise web.HTTPBadRequest(text="exec needs at least one command= parameter\n")
    cid = _find(manager, request.match_info["ns"], request.match_info["pod"],
                request.match_info["container"], False)  # fmt: skip
    ws = web.WebSocketResponse(protocols=EXEC_PROTOCOLS)
    await ws.prepare(request)
    try:
        session = await manager.ctx.runtime.exec_interactive(
            cid, command, stdin=q.get("stdin") in ("true", "1"), tty=q.get("tty") in ("true", "1")
        )
    except rt.ContainerRuntimeError as e:
        failure = {
            "metadata": {},
            "status": "Failure",
            "message": e.message,
            "reason": "InternalError",
        }
        await ws.send_bytes(bytes([ERROR]) + orjson.dumps(failure))
        await ws.close()
        return ws

    async def to_process() -> None:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.BINARY or not message.data:
                continue
            channel, data = message.data[0], message.data[1:]
            if channel == STDIN:
                await session.write_stdin(data)
            elif channel == RESIZE:
                with contextlib.suppress(orjson.JSONDecodeError, TypeError, ValueError):
                    size = orjson.loads(data)
                    await session.resize(int(size["Width"]), int(size["Height"]))
            elif channel == CLOSE and data[:1] == bytes([STDIN]):
                await session.close_stdin()
        await session.close_stdin()

    async def to_client() -> None:
        async for stream, data in session.output():
            await ws.send_bytes(bytes([stream]) + data)

    feeder = asyncio.create_task(to_process())
    try:
        with _endless(request):
            await to_client()
            code = await session.wait()
        await ws.send_bytes(bytes([ERROR]) + exec_status(code))
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
        await session.close()
        await ws.close()
    return ws


async def summary(request: web.Request) -> web.Response:
    manager = request.app[_MANAGER]
    usage = request.app[_USAGE]
    assert callable(usage)
    node = await usage()
    stats = {s.id: s for s in await manager.ctx.runtime.container_stats()}
    pods = []
    for obj in manager.informer.list():
        meta = obj.get("metadata") or {}
        uid = str(meta.get("uid"))
        _, containers = manager.view(uid)
        usage = [
            (c, stats[c.id])
            for c in containers
            if c.state is rt.ContainerState.RUNNING and c.id in stats
        ]
        if not usage:
            continue
        stamp = _time(max(s.timestamp for _, s in usage))
        pods.append(
            {
                "podRef": {
                    "name": meta.get("name"),
                    "namespace": meta.get("namespace"),
                    "uid": uid,
                },
                "containers": [_container_usage(c, s) for c, s in usage],
                "cpu": {
                    "time": stamp,
                    "usageNanoCores": sum(s.cpu_usage_nano_cores for _, s in usage),
                },
                "memory": {
                    "time": stamp,
                    "workingSetBytes": sum(s.memory_working_set_bytes for _, s in usage),
                },
            }
        )
    return web.json_response({"node": node, "pods": pods})


def _container_usage(c: rt.ContainerInfo, s: rt.ContainerStats) -> dict[str, Any]:
    stamp = _time(s.timestamp)
    return {
        "name": c.name,
        "startTime": _time(c.started_at) if c.started_at else stamp,
        "cpu": {
            "time": stamp,
            "usageNanoCores": s.cpu_usage_nano_cores,
            "usageCoreNanoSeconds": s.cpu_usage_core_nano_seconds,
        },
        "memory": {"time": stamp, "workingSetBytes": s.memory_working_set_bytes},
    }


async def history(request: web.Request) -> web.Response:
    """The bounded usage history (CPU, memory, temperature, disk and network rates), for
    sparklines: ``{"points": [{"at": <unix seconds>, "cpuPercent": ...}, ...]}``, oldest
    first; a value the machine does not report is null."""
    render = request.app[_HISTORY]
    assert callable(render)
    points: list[dict[str, Any]] = render()
    return web.json_response({"kind": "UsageHistory", "points": points})


async def healthz(request: web.Request) -> web.Response:
    manager = request.app[_MANAGER]
    if not manager.runtime_healthy:
        return web.Response(status=500, text=f"container runtime: {manager.runtime_error}\n")
    return web.Response(text="ok")


async def metrics(request: web.Request) -> web.Response:
    render = request.app[_METRICS]
    assert callable(render)
    body: bytes = render()
    return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})


def build(
    manager: PodManager,
    usage: NodeUsage,
    render_metrics: Callable[[], bytes],
    usage_history: Callable[[], list[dict[str, Any]]],
) -> web.Application:
    app = web.Application(middlewares=[only_the_apiserver])
    app[_MANAGER] = manager
    app[_USAGE] = usage
    app[_METRICS] = render_metrics
    app[_HISTORY] = usage_history
    app[_STREAMS] = set()
    app.on_shutdown.append(_end_streams)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/containerLogs/{ns}/{pod}/{container}", container_logs)
    app.router.add_get("/stats/summary", summary)
    app.router.add_get("/stats/history", history)
    app.router.add_get("/exec/{ns}/{pod}/{container}", exec_)
    app.router.add_get("/metrics", metrics)
    return app


def server_context(cert_chain: str, ca_pem: bytes) -> ssl.SSLContext:
    """TLS that requires a client certificate from the cluster CA (file path of our
    certificate + key, PEM of the CA)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=ca_pem.decode())
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_chain)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
