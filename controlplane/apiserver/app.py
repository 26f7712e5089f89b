"""The aiohttp application: one dispatcher over the Kubernetes URL space.

Non-resource paths (version, health, discovery, OpenAPI, metrics) are answered here;
resource paths go to handlers.py, watch.py and subresources by verb. Every error becomes
a Status object; an unexpected exception becomes a 500 Status and a log line with the
traceback, never a dropped connection.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

from api import errors
from controlplane.apiserver import bootstrap, discovery, handlers, openapi, respond, routes, watch
from controlplane.apiserver.audit import AuditLog
from controlplane.apiserver.auth.local import LocalUsers
from controlplane.apiserver.auth.pki import Pki
from controlplane.apiserver.metrics import CONTENT_TYPE as METRICS_TYPE
from controlplane.apiserver.metrics import Metrics
from controlplane.apiserver.metrics_api import MetricsApi
from controlplane.apiserver.nodeproxy import NodeProxy
from controlplane.apiserver.objects import Objects
from controlplane.apiserver.security import USER, Authenticator, Authorizer, verb_of

logger = logging.getLogger(__name__)

MAX_BODY = 3 * 1024 * 1024  # as the Kubernetes apiserver: 3 MiB

VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.4",
    "gitCommit": "bramble",
    "gitTreeState": "clean",
    "buildDate": "2026-11-24T00:00:00Z",
    "goVersion": "go1.23.6",
    "compiler": "gc",
    "platform": "linux/amd64",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


BODY_TIMEOUT = 30.0  # seconds a client may take to send its request body


@dataclass
class State:
    objects: Objects
    authenticator: Authenticator
    authorizer: Authorizer
    server_address: str = "127.0.0.1:6443"
    max_inflight: int = 400
    metrics: Metrics = field(default_factory=Metrics)
    audit: AuditLog | None = None
    inflight: int = 0
    heartbeats: int = 0  # node lease and status requests in flight (a pool of their own)
    proxy: NodeProxy | None = None
    metrics_api: MetricsApi | None = None
    pki: Pki | None = None


STATE = web.AppKey("state", State)
TARGET = web.RequestKey("target", object)
_MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


def _target(request: web.Request) -> routes.Target | None:
    value = request.get(TARGET)
    return value if isinstance(value, routes.Target) else None


_NODE_LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
_LEADER_LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"


def _is_heartbeat(request: web.Request) -> bool:
    """A node renewing its Lease or writing its status: what keeps it from being
    declared dead; and the scheduler or controller manager renewing its leader Lease:
    what keeps it from losing leadership (and the cluster its scheduler for a lease
    duration). Kubernetes' API priority and fairness gives these priority levels of
    their own (system-node-high, leader-election); here they have an in-flight pool of
    their own, so a burst of other requests (a 3000-replica rollout) cannot make healthy
    nodes miss their heartbeats and be evicted, or the leaders miss their renewals. Who
    may write them is still checked as usual."""
    path = request.path
    if path.startswith((_NODE_LEASES, _LEADER_LEASES)):
        return True
    return path.startswith("/api/v1/nodes/") and path.endswith("/status")


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Limits, metrics and the audit log, around everything else."""
    state = request.app[STATE]
    is_watch = request.query.get("watch") in ("true", "1")
    heartbeat = not is_watch and _is_heartbeat(request)
    if heartbeat:
        full = state.heartbeats >= max(50, state.max_inflight // 4)
    else:
        full = not is_watch and state.inflight >= state.max_inflight
    if full:
        state.metrics.rejected.inc()
        return respond.error(
            errors.TooManyRequests("Too many requests, please try again later.", retry_after=1)
        )
    started = time.perf_counter()
    if heartbeat:
        state.heartbeats += 1
    elif not is_watch:
        state.inflight += 1
        state.metrics.inflight.set(state.inflight)
    response: web.StreamResponse | None = None
    try:
        if request.method in _MUTATING and request.can_read_body:
            try:
                if request.content.is_eof():  # the body came with the head: nothing to wait for
                    await request.read()
                else:
                    async with asyncio.timeout(BODY_TIMEOUT):  # (wait_for may swallow a cancel)
                        await request.read()
            except TimeoutError:
                return respond.error(
                    errors.Timeout(f"the request body did not arrive within {BODY_TIMEOUT:g}s")
                )
            except web.HTTPRequestEntityTooLarge:
                # Read here, outside status_errors: answer with the Status ourselves.
                response = respond.error(_too_large())
                return response
        response = await handler(request)
        return response
    finally:
        if heartbeat:
            state.heartbeats -= 1
        elif not is_watch:
            state.inflight -= 1
            state.metrics.inflight.set(state.inflight)
        _account(request, state, response, started)


def _account(
    request: web.Request, state: State, response: web.StreamResponse | None, started: float
) -> None:
    target = _target(request)
    code = str(response.status) if response is not None else "0"
    if target is not None:
        resource, sub = target.resource.plural, target.subresource or ""
        verb = verb_of(request, target)
    else:
        resource, sub, verb = "", "", request.method.lower()
    elapsed = time.perf_counter() - started
    if verb != "watch":
        state.metrics.served(verb, resource, sub, code, elapsed)
    if state.audit is not None and request.method in _MUTATING and target is not None:
        user = request.get(USER)
        state.audit.record(
            {
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "user": user.name if user is not None else "",
                "groups": list(user.groups) if user is not None else [],
                "verb": verb,
                "group": target.resource.group,
                "resource": resource,
                "subresource": sub,
                "namespace": target.namespace or "",
                "name": target.name or "",
                "code": int(code),
                "latencyMs": round(elapsed * 1000, 2),
                "sourceIP": request.remote or "",
            }
        )


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    path = request.path
    target = routes.parse(path) if path.startswith(("/apis/", "/api/")) else None
    if target is not None:
        request[TARGET] = target
    user = state.authenticator.user(request)
    request[USER] = user
    if path.startswith(bootstrap.PREFIX):
        return await bootstrap.serve(request, state.pki, user)  # authorizes itself
    await state.authorizer.check(request, user, target)
    return await handler(request)


def _too_large() -> errors.RequestEntityTooLarge:
    return errors.RequestEntityTooLarge(
        f"the request body is larger than the limit of {MAX_BODY} bytes"
    )


@web.middleware
async def status_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.ApiError as e:
        return respond.error(e)
    except web.HTTPRequestEntityTooLarge:
        return respond.error(_too_large())
    except web.HTTPException as e:
        cls = errors.from_status({}, http_code=e.status)
        return respond.error(type(cls)(e.reason or f"HTTP {e.status}"))
    except (ConnectionResetError, ConnectionError):
        raise
    except Exception:
        logger.exception("request failed method=%s path=%s", request.method, request.path)
        return respond.error(
            errors.InternalError(
                "an error on the server prevented the request from succeeding; "
                "the server log has the details"
            )
        )


async def dispatch(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    path = request.path
    method = request.method
    target = _target(request)
    if target is not None:
        return await _resource(request, state.objects, target)
    if method not in ("GET", "HEAD"):
        raise errors.MethodNotAllowed(f"{method} is not supported on {path}")
    return await _non_resource(request, state, path)


async def _non_resource(request: web.Request, state: State, path: str) -> web.StreamResponse:
    accept = request.headers.get("Accept", "")
    if path in ("/version", "/version/"):
        return respond.json(VERSION)
    if path == "/metrics":
        return web.Response(body=state.metrics.render(), headers={"Content-Type": METRICS_TYPE})
    if path in ("/healthz", "/livez", "/readyz") or path.startswith(
        ("/healthz/", "/livez/", "/readyz/")
    ):
        ready = state.objects.cache.healthy
        if path.startswith("/readyz") and not ready:
            return web.Response(text="watch cache not ready", status=500)
        return web.Response(text="ok", content_type="text/plain")
    if path in ("/api", "/apis", "/api/", "/apis/"):  # the Python client adds the slash
        aggregated, version = discovery.wants_aggregated(accept)
        core = path.rstrip("/") == "/api"
        if aggregated:
            return respond.json(
                discovery.aggregated(core, version),
                content_type=discovery.AGGREGATED_CONTENT_TYPE.replace("v=v2", f"v={version}"),
            )
        if core:
            return respond.json(discovery.api_versions(state.server_address))
        return respond.json(discovery.api_group_list())
    parts = path.strip("/").split("/")
    if parts == ["api", "v1"]:
        body = discovery.resource_list("", "v1")
        assert body is not None
        return respond.json(body)
    if len(parts) == 2 and parts[0] == "apis":
        group = discovery.api_group(parts[1])
        if group is not None:
            return respond.json(group)
    if len(parts) == 3 and parts[0] == "apis":
        listing = discovery.resource_list(parts[1], parts[2])
        if listing is not None:
            return respond.json(listing)
    if path == "/openapi/v3":
        return respond.raw(openapi.root())
    if path.startswith("/openapi/v3/"):
        doc = openapi.lookup(path)
        if doc is not None:
            return respond.raw(doc)
    raise errors.NotFound("the server could not find the requested resource")


async def _resource(
    request: web.Request, objects: Objects, target: routes.Target
) -> web.StreamResponse:
    metrics = request.app[STATE].metrics
    method = request.method
    sub = target.subresource
    state = request.app[STATE]
    if target.resource.group == "metrics.k8s.io":
        assert state.metrics_api is not None
        return await state.metrics_api.serve(request, target)
    if target.name is None:
        if method == "GET":
            if request.query.get("watch") in ("true", "1"):
                return await watch.serve(request, objects, target, metrics)
            return await handlers.list_(request, objects, target)
        if method == "POST":
            return await handlers.create(request, objects, target)
        if method == "DELETE":
            return await handlers.delete_collection(request, objects, target)
        raise errors.MethodNotAllowed(f"{method} is not supported on a collection")
    if sub is None:
        if method == "GET":
            if request.query.get("watch") in ("true", "1"):
                return await watch.serve(request, objects, target, metrics)
            return await handlers.get(request, objects, target)
        if method == "PUT":
            return await handlers.update(request, objects, target)
        if method == "PATCH":
            return await handlers.patch(request, objects, target)
        if method == "DELETE":
            return await handlers.delete(request, objects, target)
    elif sub in ("status", "scale"):
        if method == "GET":
            if sub == "scale":
                return await handlers.get_scale(objects, target)
            return await handlers.get(request, objects, target)
        if method == "PUT":
            return await handlers.update(request, objects, target)
        if method == "PATCH":
            return await handlers.patch(request, objects, target)
    elif sub == "binding" and method == "POST":
        return await handlers.bind(request, objects, target)
    elif sub == "eviction" and method == "POST":
        return await handlers.evict(request, objects, target)
    elif sub == "finalize" and method == "PUT":
        return await handlers.finalize(request, objects, target)
    elif sub == "log" and method == "GET":
        assert state.proxy is not None
        assert target.name is not None
        return await state.proxy.logs(request, target.namespace or "", target.name, request.query)
    elif sub == "exec" and method in ("GET", "POST"):
        assert state.proxy is not None
        assert target.name is not None
        return await state.proxy.exec(request, target.namespace or "", target.name, request.query)
    elif sub == "proxy" and method == "GET":
        assert state.proxy is not None
        assert target.name is not None
        return await state.proxy.node_get(target.name, target.proxy_path, request.query_string)
    raise errors.MethodNotAllowed(f"{method} is not supported on {target.resource.plural}/{sub}")


def build(
    objects: Objects,
    *,
    server_address: str = "127.0.0.1:6443",
    max_inflight: int = 400,
    audit: AuditLog | None = None,
    agent_ssl: ssl.SSLContext | None = None,
    pki: Pki | None = None,
    local: LocalUsers | None = None,
) -> web.Application:
    app = web.Application(
        middlewares=[observe, status_errors, authenticate], client_max_size=MAX_BODY
    )
    app[STATE] = State(
        objects=objects,
        authenticator=Authenticator(objects.cache, clock=objects.clock, local=local),
        authorizer=Authorizer(objects.cache),
        server_address=server_address,
        max_inflight=max_inflight,
        audit=audit,
    )
    state = app[STATE]
    state.pki = pki
    state.proxy = NodeProxy(objects.cache, agent_ssl)
    state.metrics_api = MetricsApi(objects.cache, state.proxy)

    async def close_proxy(_: web.Application) -> None:
        assert state.proxy is not None
        await state.proxy.close()

    app.on_cleanup.append(close_proxy)
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app
