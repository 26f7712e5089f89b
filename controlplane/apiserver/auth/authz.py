"""Authorization: may this user do this? Pure functions of who asks and what for.

``authorize(user, attrs)`` decides resource requests, ``authorize_path(user, path,
verb)`` the other paths (/healthz, /version, discovery, /metrics). The rules, in the
order they are tried (the first that allows wins; a denial carries the most specific
reason)::

    who                                    may
    admin: group system:masters, or        everything, including every path
      user bramble:apiserver
    viewer: group bramble:viewers          get/list/watch every resource except secrets
                                           (as Kubernetes' "view" role); subresources
                                           status, scale, log only (never exec/attach/
                                           proxy/portforward); also /metrics and the
                                           individual health checks
    node: user system:node:<n> in          Kubernetes' Node authorizer + NodeRestriction,
      group system:nodes                   see below
    any authenticated user                 discovery: get /api*, /apis*, /openapi*
    everyone, anonymous too                get /healthz /livez /readyz /version

Node rules, for node <n> (with AuthorizeNodeWithSelectors, stable in Kubernetes 1.34):
nodes: get/list/watch only its own Node (list/watch with fieldSelector
``metadata.name=<n>``): bramble's agent needs no other Node, and a compromised node
should not map the cluster; create/update/patch only its own Node and nodes/status.
leases (coordination.k8s.io): get/create/update/patch ``kube-node-lease/<n>``.
pods: get, delete, and update/patch pods/status of pods bound to it; list/watch only
with fieldSelector ``spec.nodeName=<n>`` (or one named pod bound to it); never create.
configmaps, secrets: get (or list/watch of one, by ``metadata.name``) only when a pod
bound to it references the object. events (core and events.k8s.io): create/patch in
any namespace. services: get/list/watch (service environment variables).
metrics.k8s.io: create/update/patch its own NodeMetrics ("nodes"/<n>) and the
PodMetrics of pods bound to it, the hook for agents that push usage.

The facts only the server knows (a pod's ``spec.nodeName``; whether a pod bound to the
node references a ConfigMap or Secret) are fields of ``RequestAttributes`` that the
apiserver fills in when ``facts_needed`` names them; a fact left None denies.

Creates: the apiserver sets ``name`` to the new object's ``metadata.name`` (this module
is Node authorizer and NodeRestriction admission in one). List/watch: ``field_selector``
is the raw ``?fieldSelector=``, which the apiserver must then apply to the results.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from api.errors import Forbidden
from controlplane.apiserver.auth.identity import GROUP_MASTERS, GROUP_VIEWERS, UserInfo

VERBS: Final = frozenset(
    {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
)
READ_VERBS: Final = frozenset({"get", "list", "watch"})
NODE_LEASE_NAMESPACE: Final = "kube-node-lease"
METRICS_GROUP: Final = "metrics.k8s.io"
PUBLIC_PATHS: Final = frozenset({"/healthz", "/livez", "/readyz", "/version", "/version/"})
DISCOVERY_PATHS: Final = ("/api", "/apis", "/openapi")
VIEWER_SUBRESOURCES: Final = frozenset({"", "status", "scale", "log"})


class Fact(StrEnum):
    """A fact the apiserver looks up for a node's request; the value is the name of the
    ``RequestAttributes`` field to fill (``dataclasses.replace(attrs, **{fact.value: v})``)."""

    POD_NODE_NAME = "pod_node_name"
    REFERENCED_BY_NODE = "referenced_by_node"


@dataclass(frozen=True, slots=True)
class RequestAttributes:
    """What a resource request asks for, plus the facts a node rule may need.

    ``pod_node_name``: for pods (and metrics.k8s.io pods), the stored pod's
    ``spec.nodeName`` ("" if unbound, None if unknown or no such pod).
    ``referenced_by_node``: for configmaps and secrets, whether a pod bound to the
    requesting node references this object (``podrefs.pod_references``), None if unknown.
    """

    verb: str
    resource: str
    api_group: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    field_selector: str = ""
    pod_node_name: str | None = None
    referenced_by_node: bool | None = None

    @property
    def object_name(self) -> str:
        """The one object the request is about: its name, or for list/watch the
        ``metadata.name=`` of the field selector (as Kubernetes' RequestInfo does)."""
        if self.name or self.verb not in ("list", "watch"):
            return self.name
        return selector_value(self.field_selector, "metadata.name") or ""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str = ""


_ALLOW: Final = Decision(True)


def facts_needed(user: UserInfo, attrs: RequestAttributes) -> frozenset[Fact]:
    """The facts ``authorize`` will consult for this request (empty for most)."""
    node = user.node_name
    if node is None or user.is_admin or not attrs.object_name:
        return frozenset()
    group, resource, verb, sub = attrs.api_group, attrs.resource, attrs.verb, attrs.subresource
    if group == "" and resource == "pods":
        reads_one = sub == "" and (
            verb in ("get", "delete") or (verb in ("list", "watch") and bool(attrs.namespace))
        )
        writes_status = sub == "status" and verb in ("update", "patch")
        if (reads_one or writes_status) and not _selects_node(attrs, node):
            return frozenset({Fact.POD_NODE_NAME})
    elif group == METRICS_GROUP and resource == "pods" and verb in ("create", "update", "patch"):
        return frozenset({Fact.POD_NODE_NAME})
    elif group == "" and resource in ("configmaps", "secrets") and verb in READ_VERBS:
        return frozenset({Fact.REFERENCED_BY_NODE})
    return frozenset()


def authorize(user: UserInfo, attrs: RequestAttributes) -> Decision:
    """Whether ``user`` may make the resource request ``attrs``, and why not."""
    if user.is_admin:
        return _ALLOW
    if user.is_anonymous:
        return Decision(
            False,
            "anonymous requests may only read /healthz, /livez, /readyz and /version; "
            "authenticate with a client certificate or a bearer token",
        )
    if attrs.verb not in VERBS:
        return Decision(False, f"unknown verb {attrs.verb!r}")
    denials: list[Decision] = []
    node = user.node_name
    if node is not None:
        decision = _node(node, attrs)
        if decision.allowed:
            return decision
        denials.append(decision)
    if GROUP_VIEWERS in user.groups:
        decision = _viewer(attrs)
        if decision.allowed:
            return decision
        denials.append(decision)
    if denials:
        return denials[0]
    return Decision(
        False,
        f'no role grants it (admins are in group "{GROUP_MASTERS}", viewers in "{GROUP_VIEWERS}")',
    )


def authorize_path(user: UserInfo, path: str, verb: str) -> Decision:
    """Whether ``user`` may send HTTP ``verb`` (any case; HEAD counts as GET) to the
    non-resource ``path`` (no query string)."""
    verb = "get" if verb.lower() in ("get", "head") else verb.lower()
    if user.is_admin:
        return _ALLOW
    if any(part in (".", "..") for part in path.split("/")) or "//" in path:
        return Decision(False, "the path is not in normal form")
    if verb == "get" and path in PUBLIC_PATHS:
        return _ALLOW
    if user.is_anonymous:
        return Decision(
            False,
            "anonymous requests may only read /healthz, /livez, /readyz "
            "and /version; authenticate with a client certificate or a bearer token",
        )
    if verb == "get" and any(path == p or path.startswith(p + "/") for p in DISCOVERY_PATHS):
        return _ALLOW
    monitoring = path == "/metrics" or path.startswith(("/healthz/", "/livez/", "/readyz/"))
    if verb == "get" and monitoring and GROUP_VIEWERS in user.groups:
        return _ALLOW
    return Decision(False, "")


def forbidden(user: UserInfo, attrs: RequestAttributes, decision: Decision) -> Forbidden:
    """The 403 for a denied resource request, worded as Kubernetes words it::

    pods "x" is forbidden: User "system:node:pi-2" cannot get resource "pods" in API
    group "" in the namespace "default": <reason>
    """
    resource = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
    scope = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    message = (
        f'User "{user.name}" cannot {attrs.verb} resource "{resource}" '
        f'in API group "{attrs.api_group}" {scope}'
    )
    if decision.reason:
        message += f": {decision.reason}"
    qualified = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    prefix = f'{qualified} "{attrs.name}"' if attrs.name else qualified
    return Forbidden(
        f"{prefix} is forbidden: {message}",
        name=attrs.name or None,
        group=attrs.api_group,
        kind=attrs.resource,
    )


def forbidden_path(user: UserInfo, path: str, verb: str, decision: Decision) -> Forbidden:
    """The 403 for a denied path: ``forbidden: User "x" cannot get path "/metrics"``."""
    verb = "get" if verb.lower() == "head" else verb.lower()
    message = f'forbidden: User "{user.name}" cannot {verb} path "{path}"'
    return Forbidden(message + (f": {decision.reason}" if decision.reason else ""))


def selector_value(selector: str, field: str) -> str | None:
    """The value an equality requirement (``f=v`` or ``f==v``) of a field selector
    demands of ``field``, or None. Nothing is trimmed or unescaped: a selector this
    reading does not understand exactly can only deny, never allow."""
    for term in selector.split(","):
        if "!=" in term:
            continue
        key, sep, value = term.partition("==") if "==" in term else term.partition("=")
        if sep and key == field:
            return value
    return None


# --- viewer ---------------------------------------------------------------------------


def _viewer(attrs: RequestAttributes) -> Decision:
    if attrs.verb not in READ_VERBS:
        return Decision(False, "viewers may only get, list and watch")
    if attrs.api_group == "" and attrs.resource == "secrets":
        return Decision(False, "viewers cannot read secrets")
    if attrs.subresource not in VIEWER_SUBRESOURCES:
        return Decision(False, f'viewers cannot read the "{attrs.subresource}" subresource')
    return _ALLOW


# --- node -----------------------------------------------------------------------------


def _node(node: str, attrs: RequestAttributes) -> Decision:
    group, resource, verb = attrs.api_group, attrs.resource, attrs.verb
    if group == "" and resource == "nodes":
        return _node_nodes(node, attrs)
    if group == "" and resource == "pods":
        return _node_pods(node, attrs)
    if group == "coordination.k8s.io" and resource == "leases":
        return _node_lease(node, attrs)
    if group == "" and resource in ("configmaps", "secrets"):
        return _node_referenced(node, attrs)
    if resource == "events" and group in ("", "events.k8s.io"):
        if verb in ("create", "patch") and not attrs.subresource:
            return _ALLOW
        return Decision(False, "nodes may only create and patch events")
    if group == "" and resource == "services" and verb in READ_VERBS:
        return _ALLOW
    if group == METRICS_GROUP and resource in ("nodes", "pods"):
        return _node_metrics(node, attrs)
    return Decision(False, f"node '{node}' has no access to this resource")


def _node_nodes(node: str, attrs: RequestAttributes) -> Decision:
    verb, name = attrs.verb, attrs.object_name
    if attrs.subresource == "" and verb in READ_VERBS:
        if name == node:
            return _ALLOW
        if not name:
            return Decision(False, f"node '{node}' cannot read all nodes, only its own Node object")
        return Decision(False, f"node '{node}' cannot read '{name}', only its own Node object")
    writes = ("create", "update", "patch") if attrs.subresource == "" else ("update", "patch")
    if attrs.subresource in ("", "status") and verb in writes:
        if name == node:
            return _ALLOW
        return Decision(False, f'node "{node}" is not allowed to modify node "{name}"')
    return Decision(False, f"node '{node}' may not {verb} this Node resource")


def _node_pods(node: str, attrs: RequestAttributes) -> Decision:
    verb, sub = attrs.verb, attrs.subresource
    if sub == "" and verb in ("list", "watch"):
        if _selects_node(attrs, node):
            return _ALLOW
        if attrs.object_name and attrs.namespace:  # one named pod
            return _bound(node, attrs)
        return Decision(False, "can only list/watch pods with spec.nodeName field selector")
    if (sub == "" and verb in ("get", "delete")) or (
        sub == "status" and verb in ("update", "patch")
    ):
        return _bound(node, attrs)
    if sub == "" and verb in ("update", "patch"):
        return Decision(False, f'node "{node}" may only update the status of pods, not the pod')
    return Decision(False, f'node "{node}" may not {verb} pods{"/" + sub if sub else ""}')


def _node_lease(node: str, attrs: RequestAttributes) -> Decision:
    if attrs.verb not in ("get", "create", "update", "patch") or attrs.subresource:
        return Decision(False, "can only get, create, update or patch a node lease")
    if attrs.namespace != NODE_LEASE_NAMESPACE:
        return Decision(False, f'can only access leases in the "{NODE_LEASE_NAMESPACE}" namespace')
    if attrs.name != node:
        return Decision(False, "can only access node lease with the same name as the node")
    return _ALLOW


def _node_referenced(node: str, attrs: RequestAttributes) -> Decision:
    if attrs.verb not in READ_VERBS:
        return Decision(False, "can only read resources of this type")
    if attrs.subresource:
        return Decision(False, "cannot read subresource")
    if not attrs.namespace:
        return Decision(False, "can only read namespaced object of this type")
    if not attrs.object_name:
        return Decision(False, "No Object name found")
    if attrs.referenced_by_node is True:
        return _ALLOW
    return Decision(False, f"no relationship found between node '{node}' and this object")


def _node_metrics(node: str, attrs: RequestAttributes) -> Decision:
    if attrs.verb not in ("create", "update", "patch") or attrs.subresource:
        return Decision(False, "nodes may only create, update or patch their metrics")
    if attrs.resource == "nodes":
        if attrs.name == node:
            return _ALLOW
        return Decision(False, f'node "{node}" may only report its own metrics')
    return _bound(node, attrs)


def _bound(node: str, attrs: RequestAttributes) -> Decision:
    if not attrs.object_name:
        return Decision(False, "No Object name found")
    if attrs.pod_node_name != node:  # None (unknown) and "" (unbound) deny too
        return Decision(False, f"no relationship found between node '{node}' and this object")
    return _ALLOW


def _selects_node(attrs: RequestAttributes, node: str) -> bool:
    return (
        attrs.verb in ("list", "watch")
        and selector_value(attrs.field_selector, "spec.nodeName") == node
    )
