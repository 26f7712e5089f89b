"""Who may do what, over real HTTPS against a real ``bramble server``.

Identities: anonymous (no credentials), tokens (bad, expired, viewer, admin) stored as
Secrets in kube-system the way auth/tokens.py describes, the admin client certificate,
and two nodes A and B with client certificates from the cluster CA (CN
``system:node:<name>``, O ``system:nodes``). Every denial must be a Status with the
right code; every node rule is checked from both sides (A's own object, B's)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from tests.e2e import objects as o
from tests.support.cluster import BrambleServer, HttpsClient, Kubectl, Reply, unique

MERGE = {"Content-Type": "application/merge-patch+json"}


def expect(reply: Reply, code: int, what: str) -> Reply:
    assert reply.status == code, f"{what}: {reply.status} {reply.body[:300]!r}"
    if code >= 400:
        status = json.loads(reply.body)
        assert (status["kind"], status["code"]) == ("Status", code), (what, status)
    return reply


# --- anonymous and tokens ---------------------------------------------------------------


PUBLIC = ["/healthz", "/livez", "/readyz", "/version"]
PRIVATE = [
    ("GET", "/api"), ("GET", "/apis"), ("GET", "/api/v1"), ("GET", "/openapi/v3"),
    ("GET", "/metrics"), ("GET", "/api/v1/namespaces/default/pods"), ("GET", "/api/v1/nodes"),
    ("GET", "/api/v1/namespaces/kube-system/secrets"), ("GET", "/healthz/ping"),
    ("POST", "/api/v1/namespaces/default/configmaps"), ("DELETE", "/api/v1/namespaces/default"),
]  # fmt: skip


def test_anonymous_reads_only_health_and_version(server_log_clean: BrambleServer) -> None:
    anonymous = server_log_clean.client()
    for path in PUBLIC:
        expect(anonymous.request("GET", path), 200, path)
    assert json.loads(anonymous.request("GET", "/version").body)["minor"] == "32"
    for method, path in PRIVATE:
        body = {"metadata": {"name": "x"}} if method == "POST" else None
        reply = expect(anonymous.request(method, path, body), 403, f"{method} {path}")
        assert 'User "system:anonymous"' in json.loads(reply.body)["message"]


def test_bad_tokens_are_401_everywhere(server_log_clean: BrambleServer) -> None:
    server = server_log_clean
    good = server.create_token(user="e2e-someone", role="viewer")
    token_id = good.split(".")[0]
    expired = server.create_token(user="e2e-late", role="admin", ttl=timedelta(seconds=-1))
    for token in (
        f"{token_id}.{'x' * 16}",  # a real id with the wrong secret
        "zzzzzz.0123456789abcdef",  # an unknown id
        "not a token",  # malformed
        expired,
    ):
        client = server.client(token=token)
        for path in ("/healthz", "/api/v1/namespaces/default/pods"):
            reply = expect(client.request("GET", path), 401, f"{token} {path}")
            assert json.loads(reply.body)["reason"] == "Unauthorized"
    assert server.client(token=good).request("GET", "/api").status == 200


def test_viewer_reads_everything_but_secrets_and_writes_nothing(
    server_log_clean: BrambleServer, admin: HttpsClient, namespace: str
) -> None:
    viewer = server_log_clean.client(
        token=server_log_clean.create_token(user="e2e-viewer", role="viewer")
    )
    ns = f"/api/v1/namespaces/{namespace}"
    o.create(admin, f"{ns}/pods", o.pod("seen"))
    o.create(admin, f"{ns}/secrets", {"metadata": {"name": "hidden"}, "data": {"k": "dg=="}})
    o.create(admin, f"/apis/apps/v1/namespaces/{namespace}/deployments", o.deployment("dep"))
    for path in (
        f"{ns}/pods", f"{ns}/pods/seen", f"{ns}/pods/seen/status", "/api/v1/pods",
        "/api/v1/nodes", "/api/v1/namespaces", f"/apis/apps/v1/namespaces/{namespace}/deployments",
        f"/apis/apps/v1/namespaces/{namespace}/deployments/dep/scale", f"{ns}/configmaps",
        f"{ns}/pods?watch=true&timeoutSeconds=1", "/api", "/apis", "/openapi/v3", "/metrics",
        "/healthz/ping",
    ):  # fmt: skip
        expect(viewer.request("GET", path), 200, f"viewer GET {path}")
    names = [
        p["metadata"]["name"] for p in json.loads(viewer.request("GET", f"{ns}/pods").body)["items"]
    ]
    assert names == ["seen"]
    for method, path, body in [
        ("GET", f"{ns}/secrets", None),
        ("GET", f"{ns}/secrets/hidden", None),
        ("GET", f"{ns}/secrets?watch=true&timeoutSeconds=1", None),
        ("GET", "/api/v1/secrets", None),
        ("POST", f"{ns}/configmaps", {"metadata": {"name": "nope"}}),
        ("PUT", f"{ns}/pods/seen", o.pod("seen")),
        ("DELETE", f"{ns}/pods/seen", None),
        ("DELETE", f"{ns}/pods", None),
        ("POST", f"{ns}/pods/seen/eviction", {"metadata": {"name": "seen"}}),
        ("POST", f"{ns}/pods/seen/exec?command=sh", None),
    ]:
        reply = expect(viewer.request(method, path, body), 403, f"viewer {method} {path}")
        assert 'User "e2e-viewer"' in json.loads(reply.body)["message"]
    reply = viewer.request("PATCH", f"{ns}/pods/seen", {"metadata": {"labels": {"a": "b"}}},
                           headers=MERGE)  # fmt: skip
    expect(reply, 403, "viewer PATCH")
    assert admin.ok("GET", f"{ns}/pods/seen")["metadata"]["labels"] == {"app": "seen"}


@pytest.mark.real("kubectl")
def test_kubectl_with_tokens(
    kubectl: Kubectl, server_log_clean: BrambleServer, admin: HttpsClient, namespace: str
) -> None:
    o.create(admin, f"/api/v1/namespaces/{namespace}/pods", o.pod("looked-at"))
    viewer = kubectl.as_token(server_log_clean.create_token(user="e2e-kubectl", role="viewer"))
    ns = ("-n", namespace)
    assert viewer.ok(*ns, "get", "pods", "-o", "name") == "pod/looked-at\n"
    assert "Name:         looked-at" in viewer.ok(*ns, "describe", "pod", "looked-at")
    denied = viewer(*ns, "delete", "pod", "looked-at")
    assert denied.returncode == 1
    assert denied.stderr.strip() == (
        'Error from server (Forbidden): pods "looked-at" is forbidden: User "e2e-kubectl" '
        f'cannot delete resource "pods" in API group "" in the namespace "{namespace}": '
        "viewers may only get, list and watch"
    )
    secrets = viewer(*ns, "get", "secrets")
    assert secrets.returncode == 1
    assert 'cannot list resource "secrets"' in secrets.stderr
    assert "viewers cannot read secrets" in secrets.stderr

    stranger = kubectl.as_token("abcdef.0123456789abcdef")
    refused = stranger(*ns, "get", "pods")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: You must be logged in to the server (Unauthorized")


def test_admin_token_and_certificate(server_log_clean: BrambleServer, namespace: str) -> None:
    ns = f"/api/v1/namespaces/{namespace}"
    by_token = server_log_clean.client(
        token=server_log_clean.create_token(user="e2e-admin", role="admin")
    )
    expect(by_token.request("POST", f"{ns}/secrets", {"metadata": {"name": "t"}}), 201, "token")
    expect(by_token.request("GET", "/api/v1/namespaces/kube-system/secrets"), 200, "list secrets")
    by_cert = server_log_clean.client(
        cert=server_log_clean.issue_certificate("e2e-ops", ["system:masters"])
    )
    expect(by_cert.request("DELETE", f"{ns}/secrets/t"), 200, "cert")
    expect(by_cert.request("GET", "/metrics"), 200, "metrics")
    # A certificate names a user, not a node or admin, unless its groups say so.
    plain = server_log_clean.client(cert=server_log_clean.issue_certificate("e2e-nobody"))
    expect(plain.request("GET", f"{ns}/pods"), 403, "no role")
    expect(plain.request("GET", "/api"), 200, "discovery for any authenticated user")


# --- nodes ------------------------------------------------------------------------------


@dataclass
class Nodes:
    a: str
    b: str
    node_a: HttpsClient
    node_b: HttpsClient
    namespace: str


@pytest.fixture
def nodes(server_log_clean: BrambleServer, admin: HttpsClient, namespace: str) -> Nodes:
    """Nodes A and B, each with its certificate; in ``namespace``: pod pa bound to A
    (mounting secret sa and configmap ca), pb bound to B (secret sb), pu unbound; and
    secret s-free that no pod uses."""
    a, b = unique("e2e-node-a"), unique("e2e-node-b")

    def node_client(name: str) -> HttpsClient:
        cert = server_log_clean.issue_certificate(f"system:node:{name}", ["system:nodes"])
        return server_log_clean.client(cert=cert)

    ns = f"/api/v1/namespaces/{namespace}"
    for secret in ("sa", "sb", "s-free"):
        o.create(admin, f"{ns}/secrets", {"metadata": {"name": secret}, "data": {"k": "dg=="}})
    o.create(admin, f"{ns}/configmaps", {"metadata": {"name": "ca"}, "data": {"k": "v"}})
    pa = o.pod("pa", secret="sa")
    pa["spec"]["containers"][0]["envFrom"] = [{"configMapRef": {"name": "ca"}}]
    o.create(admin, f"{ns}/pods", pa)
    o.create(admin, f"{ns}/pods", o.pod("pb", secret="sb"))
    o.create(admin, f"{ns}/pods", o.pod("pu", secret="s-free"))
    o.bind(admin, namespace, "pa", a)
    o.bind(admin, namespace, "pb", b)
    return Nodes(a, b, node_client(a), node_client(b), namespace)


def test_node_registers_only_itself(nodes: Nodes) -> None:
    a, b, node_a, node_b = nodes.a, nodes.b, nodes.node_a, nodes.node_b
    expect(node_a.request("POST", "/api/v1/nodes", o.node(a)), 201, "A creates A")
    expect(node_a.request("POST", "/api/v1/nodes", o.node(b)), 403, "A creates B")
    expect(node_b.request("POST", "/api/v1/nodes", o.node(b)), 201, "B creates B")

    expect(node_a.request("GET", f"/api/v1/nodes/{a}"), 200, "A reads A")
    expect(node_a.request("GET", f"/api/v1/nodes/{b}"), 403, "A reads B")
    expect(node_a.request("GET", "/api/v1/nodes"), 403, "A lists all nodes")
    own = expect(node_a.request("GET", f"/api/v1/nodes?fieldSelector=metadata.name%3D{a}"), 200,
                 "A lists itself").json()  # fmt: skip
    assert [n["metadata"]["name"] for n in own["items"]] == [a]

    label = {"metadata": {"labels": {"e2e": "yes"}}}
    expect(node_a.request("PATCH", f"/api/v1/nodes/{a}", label, headers=MERGE), 200, "A patches A")
    expect(node_a.request("PATCH", f"/api/v1/nodes/{b}", label, headers=MERGE), 403, "A -> B")
    current = node_a.ok("GET", f"/api/v1/nodes/{a}")
    current["spec"]["unschedulable"] = True
    expect(node_a.request("PUT", f"/api/v1/nodes/{a}", current), 200, "A updates A")
    status = {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    for target, code in ((a, 200), (b, 403)):
        reply = node_a.request("PATCH", f"/api/v1/nodes/{target}/status", status, headers=MERGE)
        expect(reply, code, f"A patches status of {target}")
    expect(node_a.request("DELETE", f"/api/v1/nodes/{b}"), 403, "A deletes B")


def test_node_lease(nodes: Nodes) -> None:
    a, b, node_a = nodes.a, nodes.b, nodes.node_a
    leases = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"

    def lease(name: str) -> dict[str, Any]:
        return {"metadata": {"name": name}, "spec": {"holderIdentity": name,
                "leaseDurationSeconds": 40}}  # fmt: skip

    expect(node_a.request("POST", leases, lease(a)), 201, "A creates its lease")
    expect(node_a.request("POST", leases, lease(b)), 403, "A creates B's lease")
    renewed = node_a.ok("GET", f"{leases}/{a}")
    renewed["spec"]["renewTime"] = "2026-01-01T00:00:00.000000Z"
    expect(node_a.request("PUT", f"{leases}/{a}", renewed), 200, "A renews")
    nodes.node_b.ok("POST", leases, lease(b))
    expect(node_a.request("GET", f"{leases}/{b}"), 403, "A reads B's lease")
    expect(node_a.request("PUT", f"{leases}/{b}", lease(b)), 403, "A renews B's lease")
    elsewhere = f"/apis/coordination.k8s.io/v1/namespaces/{nodes.namespace}/leases"
    expect(node_a.request("POST", elsewhere, lease(a)), 403, "A's lease outside kube-node-lease")
    expect(node_a.request("GET", leases), 403, "A lists leases")


def test_node_sees_and_updates_only_its_pods(nodes: Nodes) -> None:
    a, b, node_a, ns = nodes.a, nodes.b, nodes.node_a, nodes.namespace
    pods = f"/api/v1/namespaces/{ns}/pods"
    expect(node_a.request("GET", "/api/v1/pods"), 403, "A lists all pods")
    expect(node_a.request("GET", pods), 403, "A lists a namespace's pods")
    expect(node_a.request("GET", f"/api/v1/pods?fieldSelector=spec.nodeName%3D{b}"), 403, "as B")
    mine = node_a.ok("GET", f"/api/v1/pods?fieldSelector=spec.nodeName%3D{a}")
    assert [p["metadata"]["name"] for p in mine["items"]] == ["pa"]
    both = node_a.ok("GET", f"/api/v1/pods?fieldSelector=spec.nodeName%3D{a},spec.nodeName%3D{b}")
    assert both["items"] == []
    watched = node_a.request("GET", f"/api/v1/pods?watch=true&timeoutSeconds=1&fieldSelector="
                             f"spec.nodeName%3D{a}")  # fmt: skip
    events = [json.loads(line) for line in expect(watched, 200, "watch").body.splitlines()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "pa")]
    expect(node_a.request("GET", f"{pods}?watch=true&timeoutSeconds=1&fieldSelector="
                          "metadata.name%3Dpb"), 403, "A watches pb")  # fmt: skip

    expect(node_a.request("GET", f"{pods}/pa"), 200, "A reads pa")
    expect(node_a.request("GET", f"{pods}/pb"), 403, "A reads pb")
    expect(node_a.request("GET", f"{pods}/pu"), 403, "A reads the unbound pu")
    status = {"status": {"phase": "Running", "podIP": "10.42.0.9"}}
    reply = node_a.request("PATCH", f"{pods}/pa/status", status, headers=MERGE)
    assert expect(reply, 200, "A updates pa's status").json()["status"]["phase"] == "Running"
    for pod in ("pb", "pu"):
        reply = node_a.request("PATCH", f"{pods}/{pod}/status", status, headers=MERGE)
        expect(reply, 403, f"A updates {pod}'s status")
    reply = node_a.request("PATCH", f"{pods}/pa", {"metadata": {"labels": {"x": "y"}}},
                           headers=MERGE)  # fmt: skip
    expect(reply, 403, "A changes pa's spec side")
    created = o.pod("sneaky")
    created["spec"]["nodeName"] = a
    expect(node_a.request("POST", pods, created), 403, "A creates a pod")
    expect(node_a.request("DELETE", f"{pods}/pb"), 403, "A deletes pb")
    expect(node_a.request("DELETE", f"{pods}/pa?gracePeriodSeconds=0"), 200, "A deletes pa")


def test_node_reads_only_the_secrets_its_pods_use(nodes: Nodes, admin: HttpsClient) -> None:
    node_a, ns = nodes.node_a, nodes.namespace
    base = f"/api/v1/namespaces/{ns}"
    assert node_a.ok("GET", f"{base}/secrets/sa")["data"] == {"k": "dg=="}
    expect(node_a.request("GET", f"{base}/configmaps/ca"), 200, "A reads its pod's configmap")
    for secret in ("sb", "s-free", "missing"):
        expect(node_a.request("GET", f"{base}/secrets/{secret}"), 403, f"A reads {secret}")
    expect(node_a.request("GET", f"{base}/secrets"), 403, "A lists secrets")
    expect(node_a.request("GET", "/api/v1/namespaces/kube-system/secrets"), 403, "tokens")
    expect(node_a.request("PUT", f"{base}/secrets/sa", {"metadata": {"name": "sa"}}), 403, "write")
    # The relationship ends with the pod.
    admin.ok("DELETE", f"{base}/pods/pa?gracePeriodSeconds=0")
    expect(node_a.request("GET", f"{base}/secrets/sa"), 403, "A reads sa after pa is gone")


def test_node_may_report_events_and_read_services(nodes: Nodes, admin: HttpsClient) -> None:
    node_a, ns = nodes.node_a, nodes.namespace
    pod = admin.ok("GET", f"/api/v1/namespaces/{ns}/pods/pa")
    event = o.event("pa.started", namespace=ns, involved=pod, reason="Started", message="up")
    expect(node_a.request("POST", f"/api/v1/namespaces/{ns}/events", event), 201, "event")
    expect(node_a.request("GET", f"/api/v1/namespaces/{ns}/events"), 403, "read events")
    expect(node_a.request("GET", "/api/v1/services"), 200, "services")
    expect(node_a.request("GET", f"/api/v1/namespaces/{ns}/configmaps"), 403, "list configmaps")
    expect(node_a.request("GET", "/apis/apps/v1/deployments"), 403, "deployments")
