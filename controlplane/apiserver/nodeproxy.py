"""Talking to node agents: pods/log (streamed through), pods/exec (relayed), usage
summaries (for metrics.k8s.io) and ``nodes/<name>/proxy/<path>`` for the agent's read-only
paths (healthz, metrics, stats/summary, stats/history: what ``kubectl get --raw`` and
the TUI's sparklines read; the authorizer lets only admins through, as Kubernetes'
nodes/proxy is reserved to cluster admins).

The agent on every node serves the kubelet's API on its endpoint (port from the Node's
``status.daemonEndpoints.kubeletEndpoint.Port``, 10250 by default) over TLS: the
apiserver presents its client certificate (CN ``bramble:apiserver``) and checks the
agent's serving certificate against the cluster CA. Paths are the kubelet's:

    GET /containerLogs/<namespace>/<pod>/<container>?follow=&tailLines=&sinceSeconds=
        &sinceTime=&timestamps=&previous=&limitBytes=
    GET /stats/summary
    GET /stats/history    the agent's bounded usage history
    GET /metrics, /healthz

A node that cannot be reached gives 503 within a few seconds, never a hang.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from api import errors
from api.resources import resource
from controlplane.apiserver import storage
from controlplane.apiserver.cache import WatchCache
from controlplane.apiserver.httpd import Answer, Request, Response, Stream, Upgraded

NODES = resource("", "Node")
PODS = resource("", "Pod")
DEFAULT_PORT = 10250
CONNECT_TIMEOUT = 3.0
_ADDRESS_ORDER = ("InternalIP", "Hostname", "ExternalIP", "InternalDNS", "ExternalDNS")
_LOG_FLAGS = ("follow", "timestamps", "previous")
EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
_EXEC_PARAMS = {"command", "stdin", "stdout", "stderr", "tty"}
_LOG_NUMBERS = {"tailLines": 0, "sinceSeconds": 1, "limitBytes": 1}
PROXY_PATHS = frozenset({"healthz", "metrics", "stats/summary", "stats/history"})


class NodeProxy:
    def __init__(self, cache: WatchCache, context: ssl.SSLContext | None) -> None:
        self._cache = cache
        self._context = context
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._context if self._context else False)
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def endpoint(self, node_name: str) -> str:
        """``https://<address>:<port>`` of a node's agent, or 503 saying why there is none."""
        entry = self._cache.resource(NODES).objects.get(storage.key(NODES, None, node_name))
        if entry is None:
            raise errors.ServiceUnavailable(
                f'node "{node_name}" is not registered; its agent cannot be reached', retry_after=5
            )
        status = entry.obj().get("status") or {}
        addresses = {
            a.get("type"): a.get("address")
            for a in status.get("addresses") or []
            if isinstance(a, dict) and a.get("address")
        }
        address = next((addresses[t] for t in _ADDRESS_ORDER if t in addresses), None)
        if address is None:
            raise errors.ServiceUnavailable(
                f'node "{node_name}" reports no address for its agent', retry_after=5
            )
        port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
        port = port if isinstance(port, int) and 0 < port < 65536 else DEFAULT_PORT
        host = f"[{address}]" if ":" in str(address) else address
        return f"https://{host}:{port}"

    async def logs(
        self, request: Request, namespace: str, name: str, query: Mapping[str, str]
    ) -> Answer:
        pod = self._cache.resource(PODS).objects.get(storage.key(PODS, namespace, name))
        if pod is None:
            raise errors.NotFound(f'pods "{name}" not found', name=name, kind="pods")
        obj = pod.obj()
        container = _container(obj, name, query.get("container"))
        node = (obj.get("spec") or {}).get("nodeName")
        if not node:
            raise errors.BadRequest(f"pod {name} does not have a host assigned")
        params = _log_params(query)
        url = f"{self.endpoint(node)}/containerLogs/{namespace}/{name}/{container}"
        try:
            upstream = await self._client().get(
                url,
                params=params,
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=CONNECT_TIMEOUT, sock_read=None
                ),
            )
        except (aiohttp.ClientError, TimeoutError) as e:
            raise errors.ServiceUnavailable(
                f'the agent of node "{node}" cannot be reached ({e or type(e).__name__})',
                retry_after=5,
            ) from e
        async with upstream:
            if upstream.status >= 400:
                raise _relay_error(await upstream.read(), upstream.status, node)
            response = Stream(request, content_type="text/plain")
            await response.prepare()
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def exec(
        self, request: Request, namespace: str, name: str, query: Mapping[str, str]
    ) -> Answer:
        """``kubectl exec``: a WebSocket (channel protocol) relayed to the node's agent."""
        pod = self._cache.resource(PODS).objects.get(storage.key(PODS, namespace, name))
        if pod is None:
            raise errors.NotFound(f'pods "{name}" not found', name=name, kind="pods")
        obj = pod.obj()
        container = _container(obj, name, query.get("container"))
        node = (obj.get("spec") or {}).get("nodeName")
        if not node:
            raise errors.BadRequest(f"pod {name} does not have a host assigned")
        if request.upgrade is None or request.headers.get("Upgrade", "").lower() != "websocket":
            raise errors.BadRequest(
                "exec needs a WebSocket upgrade (v5.channel.k8s.io); this server does not speak "
                "SPDY: use kubectl 1.30 or newer"
            )
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        protocols = [p for p in offered if p in EXEC_PROTOCOLS]
        if not protocols:
            raise errors.BadRequest(
                f"no supported exec protocol offered (want {', '.join(EXEC_PROTOCOLS)})"
            )
        params = [(k, v) for k, v in request.query.items() if k in _EXEC_PARAMS]
        url = f"{self.endpoint(node)}/exec/{namespace}/{name}/{container}"
        try:
            upstream = await self._client().ws_connect(
                url,
                params=params,
                protocols=protocols,
                timeout=aiohttp.ClientWSTimeout(ws_close=5),
            )
        except (aiohttp.ClientError, TimeoutError) as e:
            raise errors.ServiceUnavailable(
                f'the agent of node "{node}" cannot be reached ({e or type(e).__name__})',
                retry_after=5,
            ) from e
        downstream = web.WebSocketResponse(protocols=(upstream.protocol or protocols[0],))
        await downstream.prepare(request.upgrade)

        async def relay(source: Any, sink: Any) -> None:
            async for message in source:
                if message.type == aiohttp.WSMsgType.BINARY:
                    await sink.send_bytes(message.data)
                elif message.type == aiohttp.WSMsgType.TEXT:
                    await sink.send_str(message.data)
                else:
                    break

        try:
            tasks = [
                asyncio.create_task(relay(upstream, downstream)),
                asyncio.create_task(relay(downstream, upstream)),
            ]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await upstream.close()
            await downstream.close()
        return Upgraded(downstream)

    async def node_get(self, node: str, path: str, query: str) -> Response:
        """GET one of the agent's read-only paths, relayed as it answered."""
        if path not in PROXY_PATHS:
            raise errors.NotFound(
                f'nodes/proxy serves {", ".join(sorted(PROXY_PATHS))}, not "{path}"'
            )
        url = f"{self.endpoint(node)}/{path}" + (f"?{query}" if query else "")
        try:
            async with self._client().get(
                url, timeout=aiohttp.ClientTimeout(total=10, sock_connect=CONNECT_TIMEOUT)
            ) as upstream:
                raw = await upstream.read()
                if upstream.status >= 400:
                    raise _relay_error(raw, upstream.status, node)
                content_type = upstream.headers.get("Content-Type", "text/plain")
        except (aiohttp.ClientError, TimeoutError) as e:
            raise errors.ServiceUnavailable(
                f'the agent of node "{node}" cannot be reached ({e or type(e).__name__})',
                retry_after=5,
            ) from e
        return Response(raw, content_type=content_type)

    async def summary(self, node: str) -> dict[str, Any]:
        """The agent's usage summary (the kubelet's /stats/summary shape)."""
        try:
            async with self._client().get(
                f"{self.endpoint(node)}/stats/summary",
                timeout=aiohttp.ClientTimeout(total=10, sock_connect=CONNECT_TIMEOUT),
            ) as upstream:
                raw = await upstream.read()
                if upstream.status >= 400:
                    raise _relay_error(raw, upstream.status, node)
        except (aiohttp.ClientError, TimeoutError) as e:
            raise errors.ServiceUnavailable(
                f'the agent of node "{node}" cannot be reached ({e or type(e).__name__})',
                retry_after=5,
            ) from e
        try:
            body: dict[str, Any] = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise errors.ServiceUnavailable(f'node "{node}" sent an unreadable summary') from e
        return body


def _container(pod: dict[str, Any], name: str, wanted: str | None) -> str:
    spec = pod.get("spec") or {}
    names = [c.get("name") for c in spec.get("containers") or [] if isinstance(c, dict)]
    init = [c.get("name") for c in spec.get("initContainers") or [] if isinstance(c, dict)]
    if wanted:
        if wanted not in names and wanted not in init:
            raise errors.BadRequest(f"container {wanted} is not valid for pod {name}")
        return wanted
    default = ((pod.get("metadata") or {}).get("annotations") or {}).get(
        "kubectl.kubernetes.io/default-container"
    )
    if default in names:
        return str(default)
    if len(names) == 1:
        return str(names[0])
    raise errors.BadRequest(
        f"a container name must be specified for pod {name}, choose one of: "
        f"[{' '.join(str(n) for n in names)}]"
    )


def _log_params(query: Mapping[str, str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for flag in _LOG_FLAGS:
        value = query.get(flag)
        if value is None:
            continue
        if value not in ("true", "false", "1", "0", ""):
            raise errors.BadRequest(f'{flag} must be true or false (got "{value}")')
        params[flag] = "true" if value in ("true", "1", "") else "false"
    for number, minimum in _LOG_NUMBERS.items():
        value = query.get(number)
        if value is None:
            continue
        if not value.isdigit() or int(value) < minimum:
            raise errors.BadRequest(f"{number} must be an integer of at least {minimum}")
        params[number] = value
    since_time = query.get("sinceTime")
    if since_time is not None:
        if "sinceSeconds" in params:
            raise errors.BadRequest("at most one of sinceTime or sinceSeconds may be specified")
        try:
            moment = datetime.fromisoformat(since_time)
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise errors.BadRequest(
                "sinceTime must be an RFC 3339 time, e.g. 2026-11-24T10:00:00Z "
                f'(got "{since_time}")'
            )
        # absolute: the node compares it with its own log timestamps
        params["sinceTime"] = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return params


def _relay_error(raw: bytes, status: int, node: str) -> errors.ApiError:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and body.get("kind") == "Status":
        return errors.from_status(body, http_code=status)
    text = raw.decode(errors="replace").strip()[:300]
    if status == 404:
        return errors.NotFound(text or f'node "{node}" does not know that container')
    if status < 500:
        return errors.BadRequest(text or f'node "{node}" refused the request')
    return errors.ServiceUnavailable(f'the agent of node "{node}" failed: {text}', retry_after=5)
