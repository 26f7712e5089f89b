"""Authorization as a table: (user, request, node facts) -> allowed or denied."""

from __future__ import annotations

from dataclasses import replace

import pytest

from controlplane.apiserver.auth.authz import (
    Fact,
    RequestAttributes,
    authorize,
    facts_needed,
    forbidden,
)
from controlplane.apiserver.auth.identity import ANONYMOUS, UserInfo, authenticated, node_user

ADMIN = authenticated("admin", ["system:masters"])
APISERVER = authenticated("bramble:apiserver")
VIEWER = authenticated("vera", ["bramble:viewers"])
NOBODY = authenticated("nobody")
JOINER = authenticated("system:bootstrap:abc123", ["system:bootstrappers"])
A = node_user("pi-1")
B = node_user("pi-2")
NOT_A_NODE = authenticated("system:node:pi-1")  # the name without the group
NAMELESS_NODE = authenticated("system:node:", ["system:nodes"])
NODE_AND_VIEWER = authenticated("system:node:pi-1", ["system:nodes", "bramble:viewers"])


def R(
    verb: str,
    resource: str,
    ns: str = "",
    name: str = "",
    *,
    group: str = "",
    sub: str = "",
    sel: str = "",
    pod_node: str | None = None,
    ref: bool | None = None,
) -> RequestAttributes:
    return RequestAttributes(
        verb=verb,
        resource=resource,
        api_group=group,
        subresource=sub,
        namespace=ns,
        name=name,
        field_selector=sel,
        pod_node_name=pod_node,
        referenced_by_node=ref,
    )


LG = "coordination.k8s.io"
LNS = "kube-node-lease"
MG = "metrics.k8s.io"

MATRIX: list[tuple[str, UserInfo, RequestAttributes, bool]] = [
    # --- admin and the apiserver's own identity: everything -----------------------------
    ("admin reads secrets", ADMIN, R("get", "secrets", "kube-system", "x"), True),
    ("admin deletes nodes", ADMIN, R("delete", "nodes", name="pi-1"), True),
    ("admin execs", ADMIN, R("create", "pods", "default", "web", sub="exec"), True),
    ("admin any verb", ADMIN, R("impersonate", "users", name="bob"), True),
    ("apiserver deletes", APISERVER, R("deletecollection", "pods", "default"), True),
    # --- anonymous, and authenticated users with no role ---------------------------------
    ("anonymous get pods", ANONYMOUS, R("get", "pods", "default", "web"), False),
    ("anonymous list namespaces", ANONYMOUS, R("list", "namespaces"), False),
    ("no role get pods", NOBODY, R("get", "pods", "default", "web"), False),
    ("bootstrapper get nodes", JOINER, R("get", "nodes", name="pi-1"), False),
    ("node name without group", NOT_A_NODE, R("get", "nodes", name="pi-1"), False),
    ("node group without name", NAMELESS_NODE, R("get", "nodes", name=""), False),
    # --- viewer ---------------------------------------------------------------------------
    ("viewer get pod", VIEWER, R("get", "pods", "default", "web"), True),
    ("viewer list pods all ns", VIEWER, R("list", "pods"), True),
    ("viewer watch nodes", VIEWER, R("watch", "nodes"), True),
    ("viewer list deployments", VIEWER, R("list", "deployments", "default", group="apps"), True),
    ("viewer get configmap", VIEWER, R("get", "configmaps", "default", "cfg"), True),
    ("viewer pod log", VIEWER, R("get", "pods", "default", "web", sub="log"), True),
    ("viewer pod status", VIEWER, R("get", "pods", "default", "web", sub="status"), True),
    ("viewer scale", VIEWER, R("get", "deployments", "d", "w", group="apps", sub="scale"), True),
    ("viewer metrics", VIEWER, R("list", "nodes", group=MG), True),
    ("viewer get secret", VIEWER, R("get", "secrets", "default", "db"), False),
    ("viewer list secrets", VIEWER, R("list", "secrets"), False),
    ("viewer watch secrets", VIEWER, R("watch", "secrets", "default"), False),
    ("viewer create pod", VIEWER, R("create", "pods", "default", "web"), False),
    ("viewer delete pod", VIEWER, R("delete", "pods", "default", "web"), False),
    ("viewer patch node", VIEWER, R("patch", "nodes", name="pi-1"), False),
    ("viewer exec via get", VIEWER, R("get", "pods", "default", "web", sub="exec"), False),
    ("viewer exec", VIEWER, R("create", "pods", "default", "web", sub="exec"), False),
    ("viewer attach", VIEWER, R("get", "pods", "default", "web", sub="attach"), False),
    ("viewer portforward", VIEWER, R("get", "pods", "default", "w", sub="portforward"), False),
    ("viewer node proxy", VIEWER, R("get", "nodes", name="pi-1", sub="proxy"), False),
    ("admin node proxy", ADMIN, R("get", "nodes", name="pi-1", sub="proxy"), True),
    ("viewer proxy", VIEWER, R("get", "services", "default", "s", sub="proxy"), False),
    ("viewer unknown verb", VIEWER, R("escalate", "roles", "default"), False),
    # --- node: its Node -----------------------------------------------------------------
    ("A get own node", A, R("get", "nodes", name="pi-1"), True),
    ("A get B's node", A, R("get", "nodes", name="pi-2"), False),
    ("A list all nodes", A, R("list", "nodes"), False),
    ("A list own node", A, R("list", "nodes", sel="metadata.name=pi-1"), True),
    ("A watch own node", A, R("watch", "nodes", sel="metadata.name=pi-1"), True),
    ("A watch B's node", A, R("watch", "nodes", sel="metadata.name=pi-2"), False),
    ("A create own node", A, R("create", "nodes", name="pi-1"), True),
    ("A create B's node", A, R("create", "nodes", name="pi-2"), False),
    ("A update own node", A, R("update", "nodes", name="pi-1"), True),
    ("A patch own node", A, R("patch", "nodes", name="pi-1"), True),
    ("A patch B's node", A, R("patch", "nodes", name="pi-2"), False),
    ("A patch own status", A, R("patch", "nodes", name="pi-1", sub="status"), True),
    ("A update own status", A, R("update", "nodes", name="pi-1", sub="status"), True),
    ("A update B's status", A, R("update", "nodes", name="pi-2", sub="status"), False),
    ("A create node status", A, R("create", "nodes", name="pi-1", sub="status"), False),
    ("A delete own node", A, R("delete", "nodes", name="pi-1"), False),
    ("A deletecollection nodes", A, R("deletecollection", "nodes"), False),
    ("B get A's node", B, R("get", "nodes", name="pi-1"), False),
    ("B patch A's node", B, R("patch", "nodes", name="pi-1"), False),
    # --- node: its Lease ------------------------------------------------------------------
    ("A get own lease", A, R("get", "leases", LNS, "pi-1", group=LG), True),
    ("A create own lease", A, R("create", "leases", LNS, "pi-1", group=LG), True),
    ("A update own lease", A, R("update", "leases", LNS, "pi-1", group=LG), True),
    ("A patch own lease", A, R("patch", "leases", LNS, "pi-1", group=LG), True),
    ("A update B's lease", A, R("update", "leases", LNS, "pi-2", group=LG), False),
    ("A create B's lease", A, R("create", "leases", LNS, "pi-2", group=LG), False),
    ("B update A's lease", B, R("update", "leases", LNS, "pi-1", group=LG), False),
    ("A lease elsewhere", A, R("get", "leases", "default", "pi-1", group=LG), False),
    ("A list leases", A, R("list", "leases", LNS, group=LG), False),
    ("A delete own lease", A, R("delete", "leases", LNS, "pi-1", group=LG), False),
    # --- node: pods -----------------------------------------------------------------------
    ("A list own pods", A, R("list", "pods", sel="spec.nodeName=pi-1"), True),
    ("A watch own pods", A, R("watch", "pods", sel="spec.nodeName=pi-1"), True),
    ("A list own pods in ns", A, R("list", "pods", "default", sel="spec.nodeName=pi-1"), True),
    ("A list == selector", A, R("list", "pods", sel="spec.nodeName==pi-1"), True),
    ("A list and phase", A, R("list", "pods", sel="status.phase!=Failed,spec.nodeName=pi-1"), True),
    ("A list B's pods", A, R("list", "pods", sel="spec.nodeName=pi-2"), False),
    ("A list all pods", A, R("list", "pods"), False),
    ("A watch all pods", A, R("watch", "pods", "default"), False),
    ("A list not own", A, R("list", "pods", sel="spec.nodeName!=pi-1"), False),
    ("A list prefix name", A, R("list", "pods", sel="spec.nodeName=pi-10"), False),
    ("A list spaced", A, R("list", "pods", sel="spec.nodeName= pi-1"), False),
    ("A list other field", A, R("list", "pods", sel="spec.nodeNameX=pi-1"), False),
    ("A list unbound pods", A, R("list", "pods", sel="spec.nodeName="), False),
    (
        "A list one bound pod",
        A,
        R("list", "pods", "d", sel="metadata.name=web", pod_node="pi-1"),
        True,
    ),
    (
        "A list one other pod",
        A,
        R("list", "pods", "d", sel="metadata.name=web", pod_node="pi-2"),
        False,
    ),
    (
        "A list named pod, all ns",
        A,
        R("list", "pods", sel="metadata.name=web", pod_node="pi-1"),
        False,
    ),
    ("A get bound pod", A, R("get", "pods", "default", "web", pod_node="pi-1"), True),
    ("A get B's pod", A, R("get", "pods", "default", "web", pod_node="pi-2"), False),
    ("A get unbound pod", A, R("get", "pods", "default", "web", pod_node=""), False),
    ("A get unknown pod", A, R("get", "pods", "default", "web", pod_node=None), False),
    ("B get A's pod", B, R("get", "pods", "default", "web", pod_node="pi-1"), False),
    ("A update own status", A, R("update", "pods", "d", "w", sub="status", pod_node="pi-1"), True),
    ("A patch own status", A, R("patch", "pods", "d", "w", sub="status", pod_node="pi-1"), True),
    ("A patch B's status", A, R("patch", "pods", "d", "w", sub="status", pod_node="pi-2"), False),
    ("A status unknown", A, R("patch", "pods", "d", "w", sub="status"), False),
    ("A delete bound pod", A, R("delete", "pods", "default", "web", pod_node="pi-1"), True),
    ("A delete B's pod", A, R("delete", "pods", "default", "web", pod_node="pi-2"), False),
    ("A update pod spec", A, R("update", "pods", "default", "web", pod_node="pi-1"), False),
    ("A patch pod spec", A, R("patch", "pods", "default", "web", pod_node="pi-1"), False),
    ("A create pod", A, R("create", "pods", "default", "web"), False),
    ("A exec", A, R("create", "pods", "default", "web", sub="exec", pod_node="pi-1"), False),
    ("A read log", A, R("get", "pods", "default", "web", sub="log", pod_node="pi-1"), False),
    ("A proxy to itself", A, R("get", "nodes", name="pi-1", sub="proxy"), False),
    ("A evict", A, R("create", "pods", "default", "web", sub="eviction", pod_node="pi-1"), False),
    ("A deletecollection pods", A, R("deletecollection", "pods", "default"), False),
    # --- node: configmaps and secrets referenced by its pods -------------------------------
    ("A get referenced secret", A, R("get", "secrets", "default", "db", ref=True), True),
    ("A get unreferenced secret", A, R("get", "secrets", "default", "db", ref=False), False),
    ("A get secret, unknown", A, R("get", "secrets", "default", "db"), False),
    ("A get referenced cm", A, R("get", "configmaps", "default", "cfg", ref=True), True),
    ("A get unreferenced cm", A, R("get", "configmaps", "default", "cfg", ref=False), False),
    ("A watch one secret", A, R("watch", "secrets", "d", sel="metadata.name=db", ref=True), True),
    ("A list all secrets", A, R("list", "secrets", "default", ref=True), False),
    ("A list all cms", A, R("list", "configmaps"), False),
    ("A secret at cluster scope", A, R("get", "secrets", name="db", ref=True), False),
    ("A create secret", A, R("create", "secrets", "default", "db", ref=True), False),
    ("A update configmap", A, R("update", "configmaps", "default", "c", ref=True), False),
    # --- node: events, services, metrics, the rest ----------------------------------------
    ("A create event", A, R("create", "events", "default"), True),
    ("A patch event", A, R("patch", "events", "kube-system", "e1"), True),
    ("A create new event", A, R("create", "events", "default", group="events.k8s.io"), True),
    ("A delete event", A, R("delete", "events", "default", "e1"), False),
    ("A list events", A, R("list", "events", "default"), False),
    ("A list services", A, R("list", "services"), True),
    ("A create service", A, R("create", "services", "default", "s"), False),
    ("A report own metrics", A, R("create", "nodes", name="pi-1", group=MG), True),
    ("A report B's metrics", A, R("update", "nodes", name="pi-2", group=MG), False),
    ("A report pod metrics", A, R("patch", "pods", "d", "w", pod_node="pi-1", group=MG), True),
    ("A report B's pod", A, R("patch", "pods", "d", "w", pod_node="pi-2", group=MG), False),
    ("A read metrics", A, R("list", "nodes", group=MG), False),
    ("A list deployments", A, R("list", "deployments", group="apps"), False),
    ("A get namespace", A, R("get", "namespaces", name="default"), False),
    ("A unknown verb", A, R("escalate", "nodes", name="pi-1"), False),
    # --- roles add up ---------------------------------------------------------------------
    ("node+viewer lists all pods", NODE_AND_VIEWER, R("list", "pods"), True),
    ("node+viewer patches own node", NODE_AND_VIEWER, R("patch", "nodes", name="pi-1"), True),
    ("node+viewer no secrets", NODE_AND_VIEWER, R("get", "secrets", "d", "db", ref=False), False),
]


@pytest.mark.parametrize(
    ("user", "attrs", "allowed"), [row[1:] for row in MATRIX], ids=[row[0] for row in MATRIX]
)
def test_matrix(user: UserInfo, attrs: RequestAttributes, allowed: bool) -> None:
    decision = authorize(user, attrs)
    assert decision.allowed is allowed, decision.reason
    if not allowed:
        assert decision.reason  # every denial says why


def _without_facts(attrs: RequestAttributes) -> RequestAttributes:
    return replace(attrs, pod_node_name=None, referenced_by_node=None)


@pytest.mark.parametrize(
    ("user", "attrs", "allowed"), [row[1:] for row in MATRIX], ids=[row[0] for row in MATRIX]
)
def test_facts_needed_names_every_fact_the_decision_uses(
    user: UserInfo, attrs: RequestAttributes, allowed: bool
) -> None:
    # The apiserver fills in only the facts facts_needed names; the decision must be the
    # same as with every fact known.
    needed = facts_needed(user, _without_facts(attrs))
    supplied = replace(
        _without_facts(attrs),
        **{fact.value: getattr(attrs, fact.value) for fact in needed},
    )
    assert authorize(user, supplied).allowed is allowed


@pytest.mark.parametrize(
    ("user", "attrs", "needed"),
    [
        (A, R("get", "pods", "default", "web"), {Fact.POD_NODE_NAME}),
        (A, R("patch", "pods", "default", "web", sub="status"), {Fact.POD_NODE_NAME}),
        (A, R("delete", "pods", "default", "web"), {Fact.POD_NODE_NAME}),
        (A, R("list", "pods", sel="spec.nodeName=pi-1"), set()),
        (A, R("list", "pods"), set()),
        (A, R("create", "pods", "default", "web"), set()),
        (A, R("get", "secrets", "default", "db"), {Fact.REFERENCED_BY_NODE}),
        (A, R("watch", "configmaps", "d", sel="metadata.name=c"), {Fact.REFERENCED_BY_NODE}),
        (A, R("list", "secrets", "default"), set()),
        (A, R("create", "pods", "d", "w", group="metrics.k8s.io"), {Fact.POD_NODE_NAME}),
        (A, R("update", "leases", LNS, "pi-1", group=LG), set()),
        (ADMIN, R("get", "pods", "default", "web"), set()),
        (VIEWER, R("get", "pods", "default", "web"), set()),
        (ANONYMOUS, R("get", "secrets", "default", "db"), set()),
    ],
)
def test_facts_needed(user: UserInfo, attrs: RequestAttributes, needed: set[Fact]) -> None:
    assert facts_needed(user, attrs) == needed


def test_fact_names_are_request_attribute_fields() -> None:
    fields = RequestAttributes.__dataclass_fields__
    assert {fact.value for fact in Fact} <= fields.keys()


@pytest.mark.parametrize(
    ("user", "attrs", "message"),
    [
        (
            B,
            R("get", "pods", "default", "x", pod_node="pi-1"),
            'pods "x" is forbidden: User "system:node:pi-2" cannot get resource "pods" in API '
            'group "" in the namespace "default": no relationship found between node \'pi-2\' '
            "and this object",
        ),
        (
            node_user("node01"),
            R("list", "pods", "default"),
            'pods is forbidden: User "system:node:node01" cannot list resource "pods" in API '
            'group "" in the namespace "default": can only list/watch pods with spec.nodeName '
            "field selector",
        ),
        (
            node_user("node01"),
            R("list", "nodes"),
            'nodes is forbidden: User "system:node:node01" cannot list resource "nodes" in API '
            "group \"\" at the cluster scope: node 'node01' cannot read all nodes, only its "
            "own Node object",
        ),
        (
            VIEWER,
            R("delete", "deployments", "default", "web", group="apps"),
            'deployments.apps "web" is forbidden: User "vera" cannot delete resource '
            '"deployments" in API group "apps" in the namespace "default": viewers may only '
            "get, list and watch",
        ),
        (
            VIEWER,
            R("create", "pods", "default", "web", sub="exec"),
            'pods "web" is forbidden: User "vera" cannot create resource "pods/exec" in API '
            'group "" in the namespace "default": viewers may only get, list and watch',
        ),
    ],
)
def test_forbidden_reads_like_kubernetes(
    user: UserInfo, attrs: RequestAttributes, message: str
) -> None:
    decision = authorize(user, attrs)
    assert not decision.allowed

    error = forbidden(user, attrs, decision)

    assert error.message == message
    status = error.status()
    assert status["code"] == 403
    assert status["reason"] == "Forbidden"
    assert status["message"] == message
    assert status["details"]["kind"] == attrs.resource
    assert status["details"].get("name") == (attrs.name or None)
    assert status["details"]["group"] == attrs.api_group
