"""The apiserver's request pipeline: one dispatcher over the Kubernetes URL space.

Non-resource paths (version, health, discovery, OpenAPI, metrics) are answered here;
resource paths go to handlers.py, watch.py and subresources by verb. Every error becomes
a Status object; an unexpected exception becomes a 500 Status and a log line with the
traceback, never a dropped connection.
"""

from __future__ import annotations

import logging
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web
from multidict import CIMultiDictProxy

from api import errors
from controlplane.apiserver import bootstrap, discovery, handlers, openapi, respond, routes, watch
from controlplane.apiserver.audit import AuditLog
from controlplane.apiserver.auth.local import LocalUsers
from controlplane.apiserver.auth.pki import Pki
from controlplane.apiserver.httpd import Answer, Request, Response
from controlplane.apiserver.metrics import CONTENT_TYPE as METRICS_TYPE
from controlplane.apiserver.metrics import Metrics
from controlplane.apiserver.metrics_api import MetricsApi
from controlplane.apiserver.nodeproxy import NodeProxy
from controlplane.apiserver.objects import Objects
from controlplane.apiserver.security import Authenticator, Authorizer, verb_of

logger = logging.getLogger(__name__)

TEXT_TYPE = "text/plain; charset=utf-8"
MAX_BODY = 3 * 1024 * 1024  # as the Kubernetes apiserver: 3 MiB (httpd.py enforces it)

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


_MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
_NODE_LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
_LEADER_LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"


def _is_heartbeat(request: Request) -> bool:
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


class App:
    """Every request, in order: the in-flight limits; authentication, authorization and
    dispatch, with every error answered as a Status; then metrics and the audit log."""

    def __init__(self, state: State) -> None:
        self.state = state
        state.metrics.inflight.set_function(lambda: state.inflight)

    async def handle(self, request: Request) -> Answer:
        state = self.state
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
        answer: Answer | None = None
        try:
            answer = await self._serve(request)
            return answer
        finally:
            if heartbeat:
                state.heartbeats -= 1
            elif not is_watch:
                state.inflight -= 1
            _account(request, state, answer, started)

    async def _serve(self, request: Request) -> Answer:
        state = self.state
        try:
            path = request.path
            target = routes.parse(path) if path.startswith(("/apis/", "/api/")) else None
            request.target = target
            user = state.authenticator.user(request)
            request.user = user
            if path.startswith(bootstrap.PREFIX):
                return await bootstrap.serve(request, state.pki, user)  # authorizes itself
            await state.authorizer.check(request, user, target)
            if target is not None:
                return await _resource(request, state, target)
            if request.method not in ("GET", "HEAD"):
                raise errors.MethodNotAllowed(f"{request.method} is not supported on {path}")
            return await _non_resource(request, state, path)
        except errors.ApiError as e:
            return respond.error(e)
        except web.HTTPException as e:  # aiohttp's, from a WebSocket upgrade
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

    @staticmethod
    def claims_upgrade(method: str, path: str, headers: CIMultiDictProxy[str]) -> bool:
        """``kubectl exec``'s WebSocket: served by aiohttp's server (httpd.py)."""
        if headers.get("Upgrade", "").lower() != "websocket":
            return False
        target = routes.parse(path) if path.startswith("/api/") else None
        return target is not None and target.subresource == "exec"

    async def close(self) -> None:
        if self.state.proxy is not None:
            await self.state.proxy.close()


def _account(request: Request, state: State, answer: Answer | None, started: float) -> None:
    target = request.target
    code = str(answer.status) if answer is not None else "0"
    if target is not None:
        resource, sub = target.resource.plural, target.subresource or ""
        verb = verb_of(request, target)
    else:
        resource, sub, verb = "", "", request.method.lower()
    elapsed = time.perf_counter() - started
    if verb != "watch":
        state.metrics.served(verb, resource, sub, code, elapsed)
    if state.audit is not None and request.method in _MUTATING and target is not None:
        user = request.user
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
                "sourceIP": request.peer.remote,
            }
        )


async def _non_resource(request: Request, state: State, path: str) -> Answer:
    accept = request.headers.get("Accept", "")
    if path in ("/version", "/version/"):
        return respond.json(VERSION)
    if path == "/metrics":
        return Response(state.metrics.render(), content_type=METRICS_TYPE)
    if path in ("/healthz", "/livez", "/readyz") or path.startswith(
        ("/healthz/", "/livez/", "/readyz/")
    ):
        ready = state.objects.cache.healthy
        if path.startswith("/readyz") and not ready:
            return Response(b"watch cache not ready", status=500, content_type=TEXT_TYPE)
        return Response(b"ok", content_type=TEXT_TYPE)
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


async def _resource(request: Request, state: State, target: routes.Target) -> Answer:
    objects = state.objects
    metrics = state.metrics
    method = request.method
    sub = target.subresource
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
) -> App:
    state = State(
        objects=objects,
        authenticator=Authenticator(objects.cache, clock=objects.clock, local=local),
        authorizer=Authorizer(objects.cache),
        server_address=server_address,
        max_inflight=max_inflight,
        audit=audit,
        pki=pki,
    )
    state.proxy = NodeProxy(objects.cache, agent_ssl)
    state.metrics_api = MetricsApi(objects.cache, state.proxy)
    return App(state)
