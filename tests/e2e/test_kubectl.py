"""The real kubectl against a real ``bramble server``: version, discovery, get in every
output format, selectors, the error messages, /metrics. Writes are in
test_kubectl_write.py, watches in test_kubectl_watch.py, nodes in test_kubectl_nodes.py."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.e2e import objects as o
from tests.support.cluster import HttpsClient, Kubectl

pytestmark = pytest.mark.real("kubectl")


def rows(output: str) -> list[list[str]]:
    """A kubectl table as cells (columns are separated by two or more spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in output.splitlines() if line.strip()]


def test_version_reports_a_1_32_server(kubectl: Kubectl) -> None:
    out = kubectl.ok("version")
    assert re.search(r"^Server Version: v1\.32\.\d+$", out, re.M), out
    info = json.loads(kubectl.ok("version", "-o", "json"))
    assert info["serverVersion"]["major"] == "1"
    assert info["serverVersion"]["minor"] == "32"
    # The dispatcher picked the kubectl matching the server (no skew warning).
    assert "WARNING" not in kubectl("version").stderr


def test_api_resources_lists_every_kind(kubectl: Kubectl) -> None:
    table = rows(kubectl.ok("api-resources"))
    assert table[0] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    listed = {(r[0], r[-3], r[-2], r[-1]) for r in table[1:]}
    for expected in [
        ("pods", "v1", "true", "Pod"),
        ("nodes", "v1", "false", "Node"),
        ("namespaces", "v1", "false", "Namespace"),
        ("events", "v1", "true", "Event"),
        ("configmaps", "v1", "true", "ConfigMap"),
        ("secrets", "v1", "true", "Secret"),
        ("services", "v1", "true", "Service"),
        ("endpoints", "v1", "true", "Endpoints"),
        ("deployments", "apps/v1", "true", "Deployment"),
        ("replicasets", "apps/v1", "true", "ReplicaSet"),
        ("daemonsets", "apps/v1", "true", "DaemonSet"),
        ("controllerrevisions", "apps/v1", "true", "ControllerRevision"),
        ("jobs", "batch/v1", "true", "Job"),
        ("leases", "coordination.k8s.io/v1", "true", "Lease"),
    ]:
        assert expected in listed, f"{expected} not in:\n{listed}"
    short = {r[0]: r[1] for r in table[1:] if len(r) == 5}
    assert short["pods"] == "po"
    assert short["deployments"] == "deploy"
    names = kubectl.ok("api-resources", "--api-group=apps", "-o", "name").split()
    assert sorted(names) == [
        "controllerrevisions.apps", "daemonsets.apps", "deployments.apps", "replicasets.apps",
    ]  # fmt: skip


@pytest.fixture
def populated(admin: HttpsClient, namespace: str) -> str:
    """Pods web-1 (app=web, tier=fe, bound to a node), web-2 (app=web) and db-1 (app=db);
    deployment front."""
    base = f"/api/v1/namespaces/{namespace}/pods"
    o.create(admin, base, o.pod("web-1", labels={"app": "web", "tier": "fe"}))
    o.create(admin, base, o.pod("web-2", labels={"app": "web"}))
    o.create(admin, base, o.pod("db-1", labels={"app": "db"}))
    o.bind(admin, namespace, "web-1", "e2e-node-x")
    o.create(admin, f"/apis/apps/v1/namespaces/{namespace}/deployments", o.deployment("front"))
    return namespace


def test_get_prints_server_side_tables(kubectl: Kubectl, populated: str) -> None:
    ns = populated
    table = rows(kubectl.ok("-n", ns, "get", "pods"))
    assert table[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [r[:4] for r in table[1:]] == [
        ["db-1", "0/1", "Pending", "0"],
        ["web-1", "0/1", "Pending", "0"],
        ["web-2", "0/1", "Pending", "0"],
    ]
    assert all(re.fullmatch(r"\d+s", r[4]) for r in table[1:]), table

    wide = rows(kubectl.ok("-n", ns, "get", "pods", "-o", "wide"))
    assert wide[0] == [
        "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE",
        "READINESS GATES",
    ]  # fmt: skip
    nodes = {r[0]: r[6] for r in wide[1:]}
    assert nodes == {"db-1": "<none>", "web-1": "e2e-node-x", "web-2": "<none>"}

    everywhere = rows(kubectl.ok("get", "pods", "-A"))
    assert everywhere[0][:2] == ["NAMESPACE", "NAME"]
    mine = sorted(r[1] for r in everywhere[1:] if r[0] == ns)
    assert mine == ["db-1", "web-1", "web-2"]

    deploy = rows(kubectl.ok("-n", ns, "get", "deployments", "-o", "wide"))
    assert deploy[0] == [
        "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR",
    ]  # fmt: skip
    assert deploy[1][:4] == ["front", "0/2", "0", "0"]
    assert deploy[1][5:] == ["web", "nginx:1.27", "app=front"]

    labelled = kubectl.ok("-n", ns, "get", "pods", "-L", "tier", "--no-headers").splitlines()
    assert len(labelled) == 3
    assert re.fullmatch(r"web-1\s+0/1\s+Pending\s+0\s+\d+s\s+fe", labelled[1]), labelled
    assert re.fullmatch(r"db-1\s+0/1\s+Pending\s+0\s+\d+s\s*", labelled[0]), labelled
    # Pages of one: kubectl follows the continue tokens (served from the store).
    paged = kubectl("-n", ns, "get", "pods", "--chunk-size=1", "-o", "name", "-v=6")
    assert paged.stdout.split() == ["pod/db-1", "pod/web-1", "pod/web-2"]
    assert len(re.findall(r"GET https://\S+/pods\?\S*limit=1\S* 200 OK", paged.stderr)) == 3

    mixed = kubectl.ok("-n", ns, "get", "pods,deploy", "--show-labels")
    assert re.search(r"^pod/web-1\s.*app=web,tier=fe$", mixed, re.M), mixed
    assert re.search(r"^deployment\.apps/front\s", mixed, re.M), mixed


def test_get_output_formats(kubectl: Kubectl, populated: str) -> None:
    ns = populated
    as_yaml = yaml.safe_load(kubectl.ok("-n", ns, "get", "pod", "web-1", "-o", "yaml"))
    assert as_yaml["kind"] == "Pod"
    assert as_yaml["apiVersion"] == "v1"
    assert as_yaml["metadata"]["name"] == "web-1"
    assert as_yaml["metadata"]["namespace"] == ns
    assert as_yaml["spec"]["nodeName"] == "e2e-node-x"
    assert int(as_yaml["metadata"]["resourceVersion"]) > 0

    as_json = json.loads(kubectl.ok("-n", ns, "get", "pods", "-o", "json"))
    assert as_json["kind"] == "List"
    assert [p["metadata"]["name"] for p in as_json["items"]] == ["db-1", "web-1", "web-2"]
    assert {p["kind"] for p in as_json["items"]} == {"Pod"}

    names = kubectl.ok("-n", ns, "get", "pods,deployments", "-o", "name").split()
    assert names == ["pod/db-1", "pod/web-1", "pod/web-2", "deployment.apps/front"]

    jsonpath = kubectl.ok(
        "-n", ns, "get", "pods", "-o",
        r'jsonpath={range .items[*]}{.metadata.name}={.metadata.labels.app}{"\n"}{end}',
    )  # fmt: skip
    assert jsonpath.splitlines() == ["db-1=db", "web-1=web", "web-2=web"]

    custom = rows(
        kubectl.ok(
            "-n", ns, "get", "pods", "-o", "custom-columns=NAME:.metadata.name,NODE:.spec.nodeName"
        )
    )
    assert custom == [["NAME", "NODE"], ["db-1", "<none>"], ["web-1", "e2e-node-x"],
                      ["web-2", "<none>"]]  # fmt: skip


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        pytest.param(["-l", "app=web"], ["web-1", "web-2"], id="label-equals"),
        pytest.param(["-l", "app in (web,db),tier!=fe"], ["db-1", "web-2"], id="label-set"),
        pytest.param(["-l", "!tier"], ["db-1", "web-2"], id="label-absent"),
        pytest.param(["--field-selector", "metadata.name=web-2"], ["web-2"], id="field-eq"),
        pytest.param(["--field-selector", "metadata.name!=web-2"], ["db-1", "web-1"], id="ne"),
        pytest.param(
            ["--field-selector", "metadata.name!=web-2,metadata.name!=db-1"],
            ["web-1"],
            id="comma",
        ),
        pytest.param(["--field-selector", "spec.nodeName=e2e-node-x"], ["web-1"], id="node"),
        pytest.param(
            ["--field-selector", "status.phase=Pending,spec.nodeName!=e2e-node-x", "-l", "app"],
            ["db-1", "web-2"],
            id="both",
        ),
    ],
)
def test_selectors(kubectl: Kubectl, populated: str, flags: list[str], expected: list[str]) -> None:
    out = kubectl.ok("-n", populated, "get", "pods", *flags, "-o", "name")
    assert out.split() == [f"pod/{n}" for n in expected]


def test_selectors_across_namespaces_and_no_match(kubectl: Kubectl, populated: str) -> None:
    out = kubectl.ok("get", "pods", "-A", "--field-selector", f"metadata.namespace={populated}")
    assert sorted(r[1] for r in rows(out)[1:]) == ["db-1", "web-1", "web-2"]
    empty = kubectl("-n", populated, "get", "pods", "-l", "app=nothing")
    assert empty.returncode == 0
    assert empty.stdout == ""
    assert empty.stderr.strip() == f"No resources found in {populated} namespace."


def test_error_messages(kubectl: Kubectl, namespace: str) -> None:
    missing = kubectl("-n", namespace, "get", "pod", "nope")
    assert missing.returncode == 1
    assert missing.stderr.strip() == 'Error from server (NotFound): pods "nope" not found'

    kubectl.ok("-n", namespace, "create", "configmap", "twice")
    again = kubectl("-n", namespace, "create", "configmap", "twice")
    assert again.returncode == 1
    assert again.stderr.strip() == (
        'error: failed to create configmap: configmaps "twice" already exists'
    )
    dup = kubectl("-n", namespace, "create", "-f", "-", input=json.dumps(o.pod("p")))
    assert dup.returncode == 0, dup.stderr
    dup = kubectl("-n", namespace, "create", "-f", "-", input=json.dumps(o.pod("p")))
    assert dup.returncode == 1
    assert (
        'Error from server (AlreadyExists): error when creating "STDIN": pods "p" already exists'
        in (dup.stderr)
    )

    bad_label = o.pod("bad")
    bad_label["metadata"]["labels"] = {"app": "-nope-"}
    invalid = kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(bad_label))
    assert invalid.returncode == 1
    assert 'The Pod "bad" is invalid: metadata.labels: Invalid value: "-nope-"' in invalid.stderr


def test_invalid_spec_names_the_field(kubectl: Kubectl, namespace: str) -> None:
    no_image = o.pod("noimage")
    del no_image["spec"]["containers"][0]["image"]
    result = kubectl("-n", namespace, "create", "-f", "-", input=json.dumps(no_image))
    assert result.returncode == 1
    assert 'The Pod "noimage" is invalid: spec.containers[0].image: Required value' in (
        result.stderr
    )


def test_bad_selectors_are_400_from_the_server(kubectl: Kubectl, namespace: str) -> None:
    for flags in (["-l", "app in (web"], ["--field-selector", "spec.nosuchfield=x"]):
        result = kubectl("-n", namespace, "get", "pods", *flags, "-v=6")
        assert result.returncode == 1
        assert re.search(r"GET https://\S+/pods\?\S+ 400 Bad Request", result.stderr), result.stderr
        assert "Error from server (BadRequest)" in result.stderr
    result = kubectl("-n", namespace, "get", "pods", "--field-selector", "spec.nosuchfield=x")
    assert "field label not supported: spec.nosuchfield" in result.stderr


def test_get_raw_metrics(kubectl: Kubectl, namespace: str) -> None:
    kubectl.ok("-n", namespace, "get", "pods")
    metrics = kubectl.ok("get", "--raw", "/metrics")
    assert "# TYPE apiserver_request_total counter" in metrics
    lists = [
        line for line in metrics.splitlines()
        if line.startswith("apiserver_request_total{") and 'resource="pods"' in line
        and 'verb="list"' in line and 'code="200"' in line
    ]  # fmt: skip
    assert lists, metrics
    assert float(lists[0].rsplit(" ", 1)[1]) >= 1


def test_get_unknown_resource_type(kubectl: Kubectl) -> None:
    result = kubectl("get", "widgets")
    assert result.returncode == 1
    assert 'the server doesn\'t have a resource type "widgets"' in result.stderr
