"""Authentication and authorization of every request (the middleware).

Who: a client certificate signed by the cluster CA (CN = user, O = groups) wins; else a
bearer token, looked up in the watch cache as Secret ``kube-system/bramble-token-<id>``
(only its salted hash is stored); no credentials at all is ``system:anonymous``. A
token that is malformed, unknown, expired or wrong is 401, never a fallback to anonymous.

What: auth/authz.py decides from the user and the request's attributes; the facts a
node's rules need (which node a pod is bound to, whether a node's pods reference a
secret) come from the watch cache here. A denial is a Kubernetes-worded 403.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any

from api import errors
from api.resources import Resource, by_kind
from controlplane.apiserver import routes, storage
from controlplane.apiserver.auth import authz, identity, podrefs, tokens
from controlplane.apiserver.auth.local import LocalUsers
from controlplane.apiserver.cache import WatchCache
from controlplane.apiserver.httpd import Request

SECRETS = by_kind("", "Secret")
PODS = by_kind("", "Pod")
assert SECRETS is not None
assert PODS is not None


class Authenticator:
    def __init__(
        self,
        cache: WatchCache,
        *,
        clock: Callable[[], datetime],
        local: LocalUsers | None = None,
    ) -> None:
        self._cache = cache
        self._clock = clock
        self._local = local

    def user(self, request: Request) -> identity.UserInfo:
        peer = request.peer
        if peer.local:
            return self._local_user(request)  # a Unix socket: the server's local one
        peercert = peer.peercert
        if peercert:
            user = identity.user_from_peercert(peercert)
            if user is not None:
                return user
        header = request.headers.get("Authorization")
        if header is None:
            return identity.ANONYMOUS
        presented = tokens.parse_authorization(header)
        if presented is None:
            raise errors.Unauthorized("Unauthorized: the bearer token is malformed")
        assert SECRETS is not None
        entry = self._cache.resource(SECRETS).objects.get(
            storage.key(SECRETS, "kube-system", tokens.secret_name(presented.id))
        )
        record = tokens.secret_to_record(entry.obj()) if entry is not None else None
        user = tokens.authenticate(presented, record, now=self._clock())
        if user is None:
            raise errors.Unauthorized("Unauthorized: the token is unknown, expired or revoked")
        return user

    def _local_user(self, request: Request) -> identity.UserInfo:
        """The local socket admits the server's own components, each by its token."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        user = None
        if self._local is not None and scheme.lower() == "bearer" and token:
            user = self._local.user(token.strip())
        if user is None:
            raise errors.Unauthorized(
                "Unauthorized: the local socket admits only the server's own components"
            )
        return user


def verb_of(request: Request, target: routes.Target) -> str:
    method = request.method
    if method in ("GET", "HEAD"):
        if request.query.get("watch") in ("true", "1"):
            return "watch"
        return "get" if target.name is not None else "list"
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "patch"
    if method == "DELETE":
        return "delete" if target.name is not None else "deletecollection"
    return method.lower()


class Authorizer:
    def __init__(self, cache: WatchCache) -> None:
        self._cache = cache

    async def check(
        self, request: Request, user: identity.UserInfo, target: routes.Target | None
    ) -> None:
        if user.is_admin:
            return
        if target is None:
            decision = authz.authorize_path(user, request.path, request.method)
            if not decision.allowed:
                raise authz.forbidden_path(user, request.path, request.method, decision)
            return
        attrs = authz.RequestAttributes(
            verb=verb_of(request, target),
            resource=target.resource.plural,
            api_group=target.resource.group,
            subresource=target.subresource or "",
            namespace=target.namespace or "",
            name=target.name or "",
            field_selector=request.query.get("fieldSelector", ""),
        )
        if attrs.verb == "create" and not attrs.name and user.is_node:
            attrs = dataclasses.replace(attrs, name=await _body_name(request))
        for fact in authz.facts_needed(user, attrs):
            attrs = dataclasses.replace(attrs, **{fact.value: self._fact(fact, user, attrs)})
        decision = authz.authorize(user, attrs)
        if not decision.allowed:
            raise authz.forbidden(user, attrs, decision)

    def _fact(
        self, fact: authz.Fact, user: identity.UserInfo, attrs: authz.RequestAttributes
    ) -> Any:
        assert PODS is not None
        pods = self._cache.resource(PODS)
        if fact is authz.Fact.POD_NODE_NAME:
            entry = pods.objects.get(storage.key(PODS, attrs.namespace, attrs.name))
            if entry is None:
                return None
            return entry.fields.get("spec.nodeName", "")
        # Fact.REFERENCED_BY_NODE: does a pod bound to this node use the object?
        node = user.node_name
        wanted = (attrs.resource, attrs.name)
        return any(
            wanted in podrefs.pod_references(e.obj())
            for e in pods.snapshot(attrs.namespace)
            if e.fields.get("spec.nodeName") == node
        )


async def _body_name(request: Request) -> str:
    from controlplane.apiserver import bodies

    try:
        obj = bodies.parse_object(request.body, request.headers.get("Content-Type"))
    except errors.ApiError:
        return ""  # the handler will answer the malformed body itself
    meta = obj.get("metadata")
    return str(meta.get("name") or "") if isinstance(meta, dict) else ""


def resource_of(target: routes.Target | None) -> Resource | None:
    return target.resource if target is not None else None
