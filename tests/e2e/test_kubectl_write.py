"""kubectl's writes against a real server: apply (client- and server-side), create (files
and the protobuf-speaking generators), delete in its forms, scale, label, annotate,
patch in all three types, and namespace deletion."""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

import pytest

from tests.e2e import objects as o
from tests.support.cluster import HttpsClient, Kubectl, manifest

pytestmark = pytest.mark.real("kubectl")


def test_apply_created_unchanged_configured(kubectl: Kubectl, namespace: str) -> None:
    containers: list[dict[str, Any]] = [
        {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}],
         "env": [{"name": "MODE", "value": "prod"}]},
        {"name": "sidecar", "image": "busybox:1.36", "command": ["sleep", "infinity"]},
    ]  # fmt: skip
    dep = o.deployment("shop", replicas=2, containers=containers)
    apply = ("-n", namespace, "apply", "-f", "-")  # default (client-side) validation
    assert kubectl.ok(*apply, input=manifest(dep)) == "deployment.apps/shop created\n"
    assert kubectl.ok(*apply, input=manifest(dep)) == "deployment.apps/shop unchanged\n"

    dep["spec"]["replicas"] = 3
    assert kubectl.ok(*apply, input=manifest(dep)) == "deployment.apps/shop configured\n"
    live = kubectl.json("-n", namespace, "get", "deployment", "shop")
    assert live["spec"]["replicas"] == 3
    assert live["metadata"]["generation"] == 2

    # Removing a container from the template: apply's strategic merge patch deletes it
    # by name ($patch: delete / $setElementOrder), and the other keeps its ports and env.
    dep["spec"]["template"]["spec"]["containers"] = containers[:1]
    assert kubectl.ok(*apply, input=manifest(dep)) == "deployment.apps/shop configured\n"
    live = kubectl.json("-n", namespace, "get", "deployment", "shop")
    [web] = live["spec"]["template"]["spec"]["containers"]
    assert web["name"] == "web"
    assert web["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert web["env"] == [{"name": "MODE", "value": "prod"}]
    assert not any("$" in key for key in json.dumps(live).split('"'))
    assert kubectl.ok(*apply, input=manifest(dep)) == "deployment.apps/shop unchanged\n"


def test_apply_server_side_creates_and_updates(kubectl: Kubectl, namespace: str) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"},
          "data": {"a": "1", "b": "2"}}  # fmt: skip
    args = ("-n", namespace, "apply", "--server-side", "--field-manager=e2e", "-f", "-")
    assert kubectl.ok(*args, input=manifest(cm)) == "configmap/ssa serverside-applied\n"
    cm["data"] = {"a": "10", "c": "3"}
    assert kubectl.ok(*args, input=manifest(cm)) == "configmap/ssa serverside-applied\n"
    live = kubectl.json("-n", namespace, "get", "configmap", "ssa")
    assert live["data"]["a"] == "10"
    assert live["data"]["c"] == "3"

    dep = o.deployment("ssa-dep", replicas=1)
    plain = ("-n", namespace, "apply", "--server-side", "-f", "-")
    assert kubectl.ok(*plain, input=manifest(dep)) == "deployment.apps/ssa-dep serverside-applied\n"
    dep["spec"]["replicas"] = 4
    assert kubectl.ok(*plain, input=manifest(dep)) == "deployment.apps/ssa-dep serverside-applied\n"
    assert kubectl.json("-n", namespace, "get", "deploy", "ssa-dep")["spec"]["replicas"] == 4


def test_create_from_file_and_generators(kubectl: Kubectl, namespace: str) -> None:
    ns = ("-n", namespace)
    out = kubectl.ok(*ns, "create", "-f", "-", input=manifest(o.pod("from-file")))
    assert out == "pod/from-file created\n"

    # kubectl 1.32's generators send protobuf bodies (kubectl-surface.md section 10).
    out = kubectl.ok(*ns, "create", "deployment", "gen", "--image=nginx:1.27", "--replicas=3",
                     "--port=8080")  # fmt: skip
    assert out == "deployment.apps/gen created\n"
    dep = kubectl.json(*ns, "get", "deployment", "gen")
    assert dep["spec"]["replicas"] == 3
    assert dep["spec"]["selector"] == {"matchLabels": {"app": "gen"}}
    [container] = dep["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "nginx:1.27"
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]

    created = kubectl.ok("create", "namespace", f"{namespace}-gen")
    assert created == f"namespace/{namespace}-gen created\n"
    assert kubectl.json("get", "namespace", f"{namespace}-gen")["status"]["phase"] == "Active"
    kubectl.ok("delete", "namespace", f"{namespace}-gen", "--wait=false")

    out = kubectl.ok(*ns, "create", "configmap", "gen-cm", "--from-literal=a=1",
                     "--from-literal=b=two words")  # fmt: skip
    assert out == "configmap/gen-cm created\n"
    assert kubectl.json(*ns, "get", "cm", "gen-cm")["data"] == {"a": "1", "b": "two words"}

    out = kubectl.ok(*ns, "create", "secret", "generic", "gen-secret", "--from-literal=pw=s3cr3t")
    assert out == "secret/gen-secret created\n"
    secret = kubectl.json(*ns, "get", "secret", "gen-secret")
    assert secret["type"] == "Opaque"
    assert base64.b64decode(secret["data"]["pw"]) == b"s3cr3t"


def test_delete_forms(kubectl: Kubectl, admin: HttpsClient, namespace: str) -> None:
    ns = ("-n", namespace)
    pods = f"/api/v1/namespaces/{namespace}/pods"
    kubectl.ok(*ns, "create", "configmap", "gone")
    assert kubectl.ok(*ns, "delete", "configmap", "gone") == 'configmap "gone" deleted\n'
    assert "NotFound" in kubectl.fails(*ns, "get", "configmap", "gone")

    o.create(admin, pods, o.pod("unbound"))
    out = kubectl.ok(*ns, "delete", "pod", "unbound", "--wait=false")
    assert out == 'pod "unbound" deleted\n'
    assert "NotFound" in kubectl.fails(*ns, "get", "pod", "unbound")

    # A pod bound to a node waits for its node to confirm (there is none here).
    o.create(admin, pods, o.pod("bound"))
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "bound"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "e2e-delete-node"},
    }
    kubectl.ok("create", "--raw", f"{pods}/bound/binding", "-f", "-", input=json.dumps(binding))
    assert kubectl.json(*ns, "get", "pod", "bound")["spec"]["nodeName"] == "e2e-delete-node"
    assert kubectl.ok(*ns, "delete", "pod", "bound", "--wait=false") == 'pod "bound" deleted\n'
    live = kubectl.json(*ns, "get", "pod", "bound")
    assert live["metadata"]["deletionTimestamp"]
    assert live["metadata"]["deletionGracePeriodSeconds"] == 30
    assert re.search(r"^bound\s+0/1\s+Terminating\s", kubectl.ok(*ns, "get", "pods"), re.M)
    forced = kubectl(*ns, "delete", "pod", "bound", "--grace-period=0", "--force")
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout == 'pod "bound" force deleted\n'
    assert "Immediate deletion does not wait for confirmation" in forced.stderr
    assert "NotFound" in kubectl.fails(*ns, "get", "pod", "bound")


def test_scale_label_annotate(kubectl: Kubectl, admin: HttpsClient, namespace: str) -> None:
    ns = ("-n", namespace)
    o.create(admin, f"/apis/apps/v1/namespaces/{namespace}/deployments", o.deployment("sc"))
    assert kubectl.ok(*ns, "scale", "deployment", "sc", "--replicas=5") == (
        "deployment.apps/sc scaled\n"
    )
    assert kubectl.json(*ns, "get", "deploy", "sc")["spec"]["replicas"] == 5
    refused = kubectl(*ns, "scale", "deployment", "sc", "--current-replicas=2", "--replicas=1")
    assert refused.returncode == 1
    assert "Expected replicas to be 2, was 5" in refused.stderr

    assert kubectl.ok(*ns, "label", "deploy", "sc", "tier=web") == "deployment.apps/sc labeled\n"
    again = kubectl(*ns, "label", "deploy", "sc", "tier=db")
    assert again.returncode == 1
    assert "'tier' already has a value (web), and --overwrite is false" in again.stderr
    kubectl.ok(*ns, "label", "deploy", "sc", "tier=db", "--overwrite")
    assert kubectl.json(*ns, "get", "deploy", "sc")["metadata"]["labels"]["tier"] == "db"
    assert kubectl.ok(*ns, "label", "deploy", "sc", "tier-") == "deployment.apps/sc unlabeled\n"
    assert "tier" not in kubectl.json(*ns, "get", "deploy", "sc")["metadata"]["labels"]

    out = kubectl.ok(*ns, "annotate", "deploy", "sc", "owner=ops team")
    assert out == "deployment.apps/sc annotated\n"
    annotations = kubectl.json(*ns, "get", "deploy", "sc")["metadata"]["annotations"]
    assert annotations["owner"] == "ops team"
    assert kubectl.ok(*ns, "get", "deploy", "-l", "app=sc", "-o", "name") == (
        "deployment.apps/sc\n"
    )


def test_patch_types(kubectl: Kubectl, admin: HttpsClient, namespace: str) -> None:
    ns = ("-n", namespace)
    o.create(admin, f"/apis/apps/v1/namespaces/{namespace}/deployments", o.deployment("pt"))
    # Strategic (the default): the container is merged by name, its ports survive.
    strategic = {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "nginx:1.28"}]}}}}  # fmt: skip
    out = kubectl.ok(*ns, "patch", "deploy", "pt", "-p", json.dumps(strategic))
    assert out == "deployment.apps/pt patched\n"
    [web] = kubectl.json(*ns, "get", "deploy", "pt")["spec"]["template"]["spec"]["containers"]
    assert web["image"] == "nginx:1.28"
    assert web["ports"] == [{"containerPort": 80, "protocol": "TCP"}]

    # Merge: the list is replaced as a whole.
    merge = {"spec": {"paused": True, "template": {"spec": {"containers": [
        {"name": "other", "image": "busybox:1.36"}]}}}}  # fmt: skip
    kubectl.ok(*ns, "patch", "deploy", "pt", "--type=merge", "-p", json.dumps(merge))
    live = kubectl.json(*ns, "get", "deploy", "pt")
    assert live["spec"]["paused"] is True
    assert [c["name"] for c in live["spec"]["template"]["spec"]["containers"]] == ["other"]

    ops = [{"op": "replace", "path": "/spec/replicas", "value": 7},
           {"op": "add", "path": "/metadata/labels/patched", "value": "json"}]  # fmt: skip
    kubectl.ok(*ns, "patch", "deploy", "pt", "--type=json", "-p", json.dumps(ops))
    live = kubectl.json(*ns, "get", "deploy", "pt")
    assert live["spec"]["replicas"] == 7
    assert live["metadata"]["labels"]["patched"] == "json"

    failing = [{"op": "test", "path": "/spec/replicas", "value": 1}]
    result = kubectl(*ns, "patch", "deploy", "pt", "--type=json", "-p", json.dumps(failing))
    assert result.returncode == 1
    assert "The request is invalid" in result.stderr
    assert kubectl.json(*ns, "get", "deploy", "pt")["spec"]["replicas"] == 7


def test_namespace_deletion_removes_its_contents(kubectl: Kubectl, admin: HttpsClient) -> None:
    from tests.support.cluster import unique

    ns = unique("e2e-nsdel")
    kubectl.ok("create", "namespace", ns)
    kubectl.ok("-n", ns, "create", "configmap", "c")
    kubectl.ok("-n", ns, "create", "secret", "generic", "s", "--from-literal=k=v")
    kubectl.ok("-n", ns, "create", "deployment", "d", "--image=nginx")
    o.create(admin, f"/api/v1/namespaces/{ns}/pods", o.pod("p"))
    started = time.monotonic()
    result = kubectl("delete", "namespace", ns, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f'namespace "{ns}" deleted\n'
    # kubectl waited until the namespace was gone, so it is gone now, contents first.
    assert time.monotonic() - started < 30
    assert "NotFound" in kubectl.fails("get", "namespace", ns)
    for path in (f"/api/v1/namespaces/{ns}/configmaps", f"/api/v1/namespaces/{ns}/pods",
                 f"/apis/apps/v1/namespaces/{ns}/deployments"):  # fmt: skip
        assert admin.ok("GET", path)["items"] == [], path
    refused = kubectl("-n", ns, "create", "configmap", "late")
    assert refused.returncode == 1
    assert f'namespaces "{ns}" not found' in refused.stderr


def test_a_stuck_namespace_is_released_through_finalize(kubectl: Kubectl) -> None:
    """The runbook for a namespace held by a finalizer nobody removes: PUT its
    ``finalize`` subresource without it."""
    from tests.support.cluster import unique

    ns = unique("e2e-stuck")
    held = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns},
            "spec": {"finalizers": ["kubernetes", "example.com/hold"]}}  # fmt: skip
    kubectl.ok("create", "-f", "-", input=json.dumps(held))
    kubectl.ok("-n", ns, "create", "configmap", "inside")
    assert kubectl.ok("delete", "namespace", ns, "--wait=false") == f'namespace "{ns}" deleted\n'
    with kubectl.background(
        "get", "namespace", ns, "-w", "-o", "jsonpath={.spec.finalizers}\n"
    ) as bg:
        # The server empties it and drops its own finalizer; the other one holds it.
        bg.wait_for_line(r'^\["example.com/hold"\]$')
    live = kubectl.json("get", "namespace", ns)
    assert live["status"]["phase"] == "Terminating"
    assert "NotFound" in kubectl.fails("-n", ns, "get", "configmap", "inside")

    released = {**live, "spec": {"finalizers": []}}
    out = kubectl.ok("replace", "--raw", f"/api/v1/namespaces/{ns}/finalize", "-f", "-",
                     input=json.dumps(released))  # fmt: skip
    assert json.loads(out)["metadata"]["name"] == ns
    assert "NotFound" in kubectl.fails("get", "namespace", ns)


@pytest.mark.parametrize("cascade", ["orphan", "foreground"])
def test_delete_with_cascade(kubectl: Kubectl, namespace: str, cascade: str) -> None:
    ns = ("-n", namespace)
    kubectl.ok(*ns, "create", "deployment", "casc", "--image=nginx")
    result = kubectl(*ns, "delete", "deployment", "casc", f"--cascade={cascade}", "--timeout=2s")
    assert result.returncode == 0, result.stderr
    assert "NotFound" in kubectl.fails(*ns, "get", "deployment", "casc")


EVERY_KIND = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
data: {a: b}
---
apiVersion: v1
kind: Secret
metadata: {name: s}
data: {a: Yg==}
---
apiVersion: v1
kind: Service
metadata: {name: svc}
spec: {selector: {a: b}, ports: [{port: 80, targetPort: http}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: svc}
# protocol given: subsets is an atomic list, so a default the server adds would make
# kubectl's three-way diff send it again on every apply ("configured"), as on Kubernetes.
subsets: [{addresses: [{ip: 10.0.0.1}], ports: [{port: 80, protocol: TCP}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: p}
spec: {containers: [{name: c, image: nginx}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  selector: {matchLabels: {a: d}}
  template: {metadata: {labels: {a: d}}, spec: {containers: [{name: c, image: nginx}]}}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: rs}
spec:
  selector: {matchLabels: {a: b}}
  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: nginx}]}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: ds}
spec:
  selector: {matchLabels: {a: c}}
  template: {metadata: {labels: {a: c}}, spec: {containers: [{name: c, image: nginx}]}}
---
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}}}
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: l}
spec: {holderIdentity: x}
---
apiVersion: v1
kind: Event
metadata: {name: ev}
involvedObject: {kind: Pod, name: p, namespace: NAMESPACE}
reason: Created
message: made by the test
"""
EVERY_NAME = [
    "configmap/c", "secret/s", "service/svc", "endpoints/svc", "pod/p", "deployment.apps/d",
    "replicaset.apps/rs", "daemonset.apps/ds", "job.batch/j", "lease.coordination.k8s.io/l",
    "event/ev",
]  # fmt: skip


def test_every_kind_applies_with_default_validation(kubectl: Kubectl, namespace: str) -> None:
    """Default validation needs /openapi/v3 to describe every group-version; then a
    second apply changes nothing, server-side apply takes the same file, and delete -f
    removes it all."""
    ns = ("-n", namespace)
    manifests = EVERY_KIND.replace("NAMESPACE", namespace)
    out = kubectl.ok(*ns, "apply", "-f", "-", input=manifests)
    assert out.splitlines() == [f"{n} created" for n in EVERY_NAME]
    out = kubectl.ok(*ns, "apply", "-f", "-", input=manifests)
    assert out.splitlines() == [f"{n} unchanged" for n in EVERY_NAME]
    out = kubectl.ok(*ns, "apply", "--server-side", "-f", "-", input=manifests)
    assert out.splitlines() == [f"{n} serverside-applied" for n in EVERY_NAME]
    out = kubectl.ok(*ns, "delete", "-f", "-", input=manifests)
    assert len(out.splitlines()) == len(EVERY_NAME)
    left = kubectl.ok(*ns, "get", "all,cm,secret,ep,lease,events", "-o", "name")
    assert left == ""
