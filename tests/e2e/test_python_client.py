"""The official Python client (kubernetes 37.0.2) against a real ``bramble server``.

The client validates every response with pydantic models, so each call below also
checks the shape of what the server sent: a missing required field or a value of the
wrong type fails the test as it would fail a user's program."""

from __future__ import annotations

import base64
import http.client
import json
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from tests.e2e import objects as o
from tests.support.cluster import BrambleServer, HttpsClient, running_server, unique
from tests.support.processes import wait_until

pytestmark = pytest.mark.real("kubernetes-client")

Obj = dict[str, Any]

# The client's models make every field Optional and its watch module is untyped; these
# tests check the shapes at run time (pydantic does, on every response), not statically.
k8s: Any = kubernetes
client, config, watch = k8s.client, k8s.config, k8s.watch


def status_of(e: pytest.ExceptionInfo[ApiException]) -> Obj:
    """The Status object an ApiException carries."""
    assert e.value.body is not None
    status: Obj = json.loads(e.value.body)
    return status


def api_client(server: BrambleServer, tmp: Path) -> ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(
        config_file=str(server.kubeconfig),
        client_configuration=configuration,
        temp_file_path=str(tmp),
    )
    return ApiClient(configuration)


@pytest.fixture
def api(server_log_clean: BrambleServer, tmp_path: Path) -> Iterator[ApiClient]:
    with api_client(server_log_clean, tmp_path) as a:
        yield a


# --- CRUD on every kind ---------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    api: type[Any]
    method: str  # "namespaced_pod", "node", ...
    body: Callable[[str, str], Obj]  # (name, namespace) -> object
    namespaced: bool = True


def _lease(name: str, namespace: str) -> Obj:
    return {
        "metadata": {"name": name},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                 "renewTime": "2026-01-01T00:00:00.000000Z"},
    }  # fmt: skip


def _workload(name: str, namespace: str) -> Obj:
    spec = o.deployment(name)["spec"]
    del spec["replicas"]
    return {"metadata": {"name": name}, "spec": spec}


def _job(name: str, namespace: str) -> Obj:
    template = {"spec": {"restartPolicy": "Never",
                         "containers": [{"name": "run", "image": "busybox:1.36",
                                         "command": ["true"]}]}}  # fmt: skip
    return {"metadata": {"name": name}, "spec": {"template": template, "backoffLimit": 1}}


def _event(name: str, namespace: str) -> Obj:
    involved = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "uid": "u-1", "namespace": namespace}}  # fmt: skip
    return o.event(name, namespace=namespace, involved=involved, reason="Tested", message="hi")


KINDS: dict[str, Kind] = {
    "Namespace": Kind(client.CoreV1Api, "namespace", lambda n, _: {"metadata": {"name": n}},
                      namespaced=False),
    "Node": Kind(client.CoreV1Api, "node", lambda n, _: o.node(n), namespaced=False),
    "Pod": Kind(client.CoreV1Api, "namespaced_pod", lambda n, _: o.pod(n)),
    "Event": Kind(client.CoreV1Api, "namespaced_event", _event),
    "ConfigMap": Kind(client.CoreV1Api, "namespaced_config_map",
                      lambda n, _: {"metadata": {"name": n}, "data": {"k": "v"}}),
    "Secret": Kind(client.CoreV1Api, "namespaced_secret",
                   lambda n, _: {"metadata": {"name": n}, "data": {"k": "dg=="}}),
    "Service": Kind(client.CoreV1Api, "namespaced_service",
                    lambda n, _: {"metadata": {"name": n}, "spec": {"selector": {"app": n},
                               "ports": [{"port": 80, "targetPort": 8080}]}}),
    "Endpoints": Kind(client.CoreV1Api, "namespaced_endpoints",
                      lambda n, _: {"metadata": {"name": n}, "subsets": [
                          {"addresses": [{"ip": "10.0.0.7"}], "ports": [{"port": 8080}]}]}),
    "Deployment": Kind(client.AppsV1Api, "namespaced_deployment", lambda n, _: o.deployment(n)),
    "ReplicaSet": Kind(client.AppsV1Api, "namespaced_replica_set", _workload),
    "DaemonSet": Kind(client.AppsV1Api, "namespaced_daemon_set", _workload),
    "Job": Kind(client.BatchV1Api, "namespaced_job", _job),
    "Lease": Kind(client.CoordinationV1Api, "namespaced_lease", _lease),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(KINDS))
def test_crud(api: ApiClient, namespace: str, kind: str) -> None:
    spec = KINDS[kind]
    handle = spec.api(api)

    def call(verb: str, *args: Any, **kwargs: Any) -> Any:
        ns = (namespace,) if spec.namespaced else ()
        return getattr(handle, f"{verb}_{spec.method}")(*args[:1], *ns, *args[1:], **kwargs)

    def create(body: Obj) -> Any:
        ns = (namespace,) if spec.namespaced else ()
        return getattr(handle, f"create_{spec.method}")(*ns, body)

    name = unique(kind.lower())
    body = spec.body(name, namespace)
    body["metadata"].setdefault("labels", {})["e2e"] = name
    body["metadata"].pop("namespace", None)
    created = create(body)
    assert created.kind == kind
    assert created.metadata.name == name
    assert created.metadata.uid
    assert int(created.metadata.resource_version) > 0
    assert created.metadata.creation_timestamp is not None

    read = call("read", name)
    assert read.metadata.uid == created.metadata.uid
    assert read.metadata.resource_version == created.metadata.resource_version

    if spec.namespaced:
        listed = getattr(handle, f"list_{spec.method}")(namespace, label_selector=f"e2e={name}")
    else:
        listed = getattr(handle, f"list_{spec.method}")(label_selector=f"e2e={name}")
    assert [i.metadata.name for i in listed.items] == [name]
    assert int(listed.metadata.resource_version) >= int(created.metadata.resource_version)

    patched = call("patch", name, {"metadata": {"labels": {"patched": "strategic"}}})
    assert patched.metadata.labels == {
        **created.metadata.labels,  # the server may add some (namespaces' own name)
        **body["metadata"]["labels"],
        "patched": "strategic",
    }
    ops = [{"op": "add", "path": "/metadata/annotations", "value": {"json": "patch"}}]
    patched = call("patch", name, ops)
    assert patched.metadata.annotations == {"json": "patch"}

    current = call("read", name)
    current.metadata.labels["replaced"] = "yes"
    replaced = call("replace", name, current)
    assert replaced.metadata.labels["replaced"] == "yes"
    assert int(replaced.metadata.resource_version) > int(current.metadata.resource_version)
    with pytest.raises(ApiException) as stale:
        call("replace", name, current)  # still carries the old resourceVersion
    assert stale.value.status == 409
    status = status_of(stale)
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "Conflict", 409)

    deleted = call("delete", name)
    if kind == "Job":
        # batch/v1 keeps a Job's pods unless told otherwise (as Kubernetes does): the Job
        # waits for the garbage collector to orphan them, then goes
        meta = deleted["metadata"] if isinstance(deleted, dict) else deleted.metadata
        finalizers = meta["finalizers"] if isinstance(meta, dict) else meta.finalizers
        assert finalizers == ["orphan"], deleted

        def gone_yet() -> bool:
            try:
                call("read", name)
            except ApiException as e:
                return bool(e.status == 404)
            return False

        wait_until(gone_yet, timeout=30, what=f"Job {name} gone", every=0.2)
    if kind != "Namespace":  # a namespace first terminates (test_namespace_lifecycle)
        with pytest.raises(ApiException) as gone:
            call("read", name)
        assert gone.value.status == 404
        assert status_of(gone)["reason"] == "NotFound"


def test_namespace_lifecycle(api: ApiClient) -> None:
    core = client.CoreV1Api(api)
    name = unique("e2e-pyns")
    core.create_namespace({"metadata": {"name": name}})
    core.create_namespaced_config_map(name, {"metadata": {"name": "inside"}})
    deleted = core.delete_namespace(name)
    assert deleted["status"]["phase"] == "Terminating"
    assert deleted["metadata"]["deletionTimestamp"]
    events = []
    for event in watch.Watch().stream(
        core.list_namespace, field_selector=f"metadata.name={name}", timeout_seconds=20,
        resource_version=deleted["metadata"]["resourceVersion"],
    ):  # fmt: skip
        events.append(event["type"])
        if event["type"] == "DELETED":
            break
    assert events[-1] == "DELETED", events
    assert core.list_namespaced_config_map(name).items == []


def test_everything_in_all_namespaces_lists(api: ApiClient, namespace: str) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespaced_pod(namespace, o.pod("everywhere"))
    for lister in (
        core.list_pod_for_all_namespaces, core.list_config_map_for_all_namespaces,
        core.list_secret_for_all_namespaces, core.list_service_for_all_namespaces,
        core.list_event_for_all_namespaces, core.list_endpoints_for_all_namespaces,
        apps.list_deployment_for_all_namespaces, apps.list_replica_set_for_all_namespaces,
        apps.list_daemon_set_for_all_namespaces,
        client.BatchV1Api(api).list_job_for_all_namespaces,
        client.CoordinationV1Api(api).list_lease_for_all_namespaces,
        core.list_node, core.list_namespace,
    ):  # fmt: skip
        listing = lister()
        assert listing.metadata.resource_version
    pods = core.list_pod_for_all_namespaces(field_selector=f"metadata.namespace={namespace}")
    assert [p.metadata.name for p in pods.items] == ["everywhere"]


def test_discovery_and_version(api: ApiClient) -> None:
    assert client.VersionApi(api).get_code().minor == "32"
    # These paths end in a slash (/api/, /apis/): the server must answer them too.
    assert client.CoreApi(api).get_api_versions().versions == ["v1"]
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert {"apps", "batch", "coordination.k8s.io"} <= groups
    assert client.AppsApi(api).get_api_group().preferred_version.group_version == "apps/v1"
    pods = next(r for r in client.CoreV1Api(api).get_api_resources().resources if r.name == "pods")
    assert (pods.kind, pods.namespaced, "po" in pods.short_names) == ("Pod", True, True)
    leases = client.CoordinationV1Api(api).get_api_resources().resources
    assert [r.kind for r in leases if r.name == "leases"] == ["Lease"]


# --- selectors, pagination, subresources ------------------------------------------------


def test_list_with_selectors_and_pages(api: ApiClient, admin: HttpsClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    for i in range(5):
        core.create_namespaced_pod(namespace, o.pod(f"p{i}", labels={"app": "a" if i % 2 else "b"}))
    # Not create_namespaced_pod_binding: the client reads its answer as a Binding, but
    # the Kubernetes apiserver (and bramble) answer with a Status (kubernetes-client/
    # python#825), which fails the client's validation.
    o.bind(admin, namespace, "p3", "e2e-py-node")

    def names(**selectors: Any) -> list[str]:
        return [p.metadata.name for p in core.list_namespaced_pod(namespace, **selectors).items]

    assert names(label_selector="app=a") == ["p1", "p3"]
    assert names(label_selector="app!=a") == ["p0", "p2", "p4"]
    assert names(label_selector="app in (a),app notin (b)") == ["p1", "p3"]
    assert names(field_selector="spec.nodeName=e2e-py-node") == ["p3"]
    assert names(field_selector="metadata.name!=p0,metadata.name!=p4") == ["p1", "p2", "p3"]
    assert names(field_selector="status.phase=Pending", label_selector="app=b") == [
        "p0", "p2", "p4",
    ]  # fmt: skip
    with pytest.raises(ApiException) as bad:
        core.list_namespaced_pod(namespace, label_selector="app in (a")
    assert bad.value.status == 400

    seen, token, pages = [], None, 0
    while True:
        page = core.list_namespaced_pod(namespace, limit=2, _continue=token)
        pages += 1
        seen += [p.metadata.name for p in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert (seen, pages) == (["p0", "p1", "p2", "p3", "p4"], 3)


def test_scale_and_status_subresources(api: ApiClient, namespace: str) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_deployment(namespace, o.deployment("scaled", replicas=2))
    scale = apps.read_namespaced_deployment_scale("scaled", namespace)
    assert (scale.kind, scale.spec.replicas, scale.status.selector) == ("Scale", 2, "app=scaled")
    # The client patches /scale with a strategic merge patch, as it does any dict.
    scale = apps.patch_namespaced_deployment_scale("scaled", namespace, {"spec": {"replicas": 4}})
    assert scale.spec.replicas == 4
    assert apps.read_namespaced_deployment("scaled", namespace).spec.replicas == 4
    scale.spec.replicas = 1
    assert apps.replace_namespaced_deployment_scale("scaled", namespace, scale).spec.replicas == 1
    scale.spec.replicas = 6  # the resourceVersion is stale now
    with pytest.raises(ApiException) as stale:
        apps.replace_namespaced_deployment_scale("scaled", namespace, scale)
    assert stale.value.status == 409

    status = {"status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1,
                         "conditions": [{"type": "Available", "status": "True",
                                         "reason": "MinimumReplicasAvailable"}]}}  # fmt: skip
    dep = apps.patch_namespaced_deployment_status("scaled", namespace, status)
    assert dep.status.ready_replicas == 1
    assert dep.status.conditions[0].type == "Available"
    # The main resource cannot change the status, nor the status subresource the spec.
    dep = apps.patch_namespaced_deployment("scaled", namespace, {"status": {"replicas": 9}})
    assert dep.status.replicas == 1
    dep = apps.patch_namespaced_deployment_status("scaled", namespace, {"spec": {"replicas": 9}})
    assert dep.spec.replicas == 1

    core.create_namespaced_pod(namespace, o.pod("runner"))
    pod = core.patch_namespaced_pod_status(
        "runner", namespace, {"status": {"phase": "Running", "podIP": "10.1.0.5"}}
    )
    assert (pod.status.phase, pod.status.pod_ip) == ("Running", "10.1.0.5")
    pods = core.list_namespaced_pod(namespace, field_selector="status.phase=Running")
    assert [p.metadata.name for p in pods.items] == ["runner"]


def test_concurrent_writers(api: ApiClient, namespace: str) -> None:
    """Patches race on one object: the server re-reads and retries each, none is lost.
    Creates race on one name: exactly one wins."""
    from concurrent.futures import ThreadPoolExecutor

    core = client.CoreV1Api(api)
    first = core.create_namespaced_config_map(namespace, {"metadata": {"name": "raced"}})

    def label(i: int) -> str:
        patch = {"metadata": {"labels": {f"writer-{i}": "yes"}}}
        return str(core.patch_namespaced_config_map("raced", namespace, patch).metadata.name)

    def create(i: int) -> int:
        try:
            core.create_namespaced_config_map(namespace, {"metadata": {"name": "once"}})
        except ApiException as e:
            return int(e.status)
        return 201

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(label, range(16))) == ["raced"] * 16
        codes = sorted(pool.map(create, range(8)))
    final = core.read_namespaced_config_map("raced", namespace)
    assert final.metadata.labels == {f"writer-{i}": "yes" for i in range(16)}
    revisions = int(final.metadata.resource_version) - int(first.metadata.resource_version)
    assert revisions >= 16
    assert codes == [201] + [409] * 7


def test_dry_run_changes_nothing(api: ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    dry = core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "dry"}, "data": {"a": "1"}}, dry_run="All"
    )
    assert (dry.metadata.name, dry.data) == ("dry", {"a": "1"})
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("dry", namespace)
    assert missing.value.status == 404

    real = core.create_namespaced_config_map(namespace, {"metadata": {"name": "wet"}})
    patched = core.patch_namespaced_config_map(
        "wet", namespace, {"data": {"b": "2"}}, dry_run="All"
    )
    assert patched.data == {"b": "2"}
    core.delete_namespaced_config_map("wet", namespace, dry_run="All")
    live = core.read_namespaced_config_map("wet", namespace)
    assert live.data is None
    assert live.metadata.resource_version == real.metadata.resource_version


def test_secret_data_round_trips(api: ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    raw = bytes(range(256))
    data = {"bin": base64.b64encode(raw).decode()}
    core.create_namespaced_secret(namespace, {"metadata": {"name": "bin"}, "data": data})
    secret = core.read_namespaced_secret("bin", namespace)
    assert base64.b64decode(secret.data["bin"]) == raw
    assert secret.type == "Opaque"


# --- watch ------------------------------------------------------------------------------


def test_watch_without_resource_version_starts_with_the_current_objects(
    api: ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "b"}})
    seen: list[tuple[str, str]] = []
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_config_map, namespace, timeout_seconds=10):
        seen.append((event["type"], event["object"].metadata.name))
        if seen == [("ADDED", "a"), ("ADDED", "b")]:
            core.patch_namespaced_config_map("a", namespace, {"data": {"x": "1"}})
            core.delete_namespaced_config_map("b", namespace)
        if len(seen) == 4:
            w.stop()
    assert seen == [("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]


def test_watch_from_a_resource_version_replays_what_came_after(
    api: ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "before"}})
    listed = core.list_namespaced_config_map(namespace)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "after"}})
    core.delete_namespaced_config_map("before", namespace)
    seen = []
    w = watch.Watch()
    for event in w.stream(
        core.list_namespaced_config_map, namespace,
        resource_version=listed.metadata.resource_version, timeout_seconds=10,
    ):  # fmt: skip
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 2:
            w.stop()
    assert seen == [("ADDED", "after"), ("DELETED", "before")]


def test_watch_timeout_seconds_ends_the_stream(api: ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    started = time.monotonic()
    events = list(watch.Watch().stream(core.list_namespaced_pod, namespace, timeout_seconds=1))
    elapsed = time.monotonic() - started
    assert events == []
    assert 0.9 <= elapsed < 5, elapsed


# --- 410 Gone -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrambleServer]:
    """A server whose watch cache keeps only 8 changes per resource."""
    with running_server(
        "--watch-cache-size", "8", data_dir=tmp_path_factory.mktemp("small-history")
    ) as server:
        yield server


def test_watch_from_a_forgotten_resource_version_is_410(
    small_history: BrambleServer, tmp_path: Path
) -> None:
    with api_client(small_history, tmp_path) as api:
        core = client.CoreV1Api(api)
        first = core.create_namespaced_config_map("default", {"metadata": {"name": "c0"}})
        old = first.metadata.resource_version
        for i in range(1, 20):
            core.create_namespaced_config_map("default", {"metadata": {"name": f"c{i}"}})
        for kwargs in ({"timeout_seconds": 5}, {}):  # without a timeout it retries once
            stream = watch.Watch().stream(
                core.list_namespaced_config_map, "default", resource_version=old, **kwargs
            )
            with pytest.raises(ApiException) as gone:
                next(stream)  # the first event would be ADDED c1: it must be a 410 instead
            assert gone.value.status == 410
        status = status_of(gone)
        assert (status["reason"], status["code"]) == ("Expired", 410)
        assert f"too old resource version: {old}" in status["message"]
        # A recent revision still works, and so does relisting.
        latest = core.list_namespaced_config_map("default")
        assert len(latest.items) == 20
        core.create_namespaced_config_map("default", {"metadata": {"name": "new"}})
        for event in watch.Watch().stream(
            core.list_namespaced_config_map, "default",
            resource_version=latest.metadata.resource_version, timeout_seconds=5,
        ):  # fmt: skip
            assert (event["type"], event["object"].metadata.name) == ("ADDED", "new")
            break
    assert small_history.running()


def test_a_watch_that_stops_reading_ends_with_410_instead_of_piling_up(
    small_history: BrambleServer,
) -> None:
    # A watch of one object (indexed by metadata.name) whose client reads nothing while
    # far more than the cache's history (8 changes) of large updates go by: once the
    # socket is full the server keeps at most that history for it, then ends the stream
    # with 410 (Kubernetes closes such a watch too); the client lists again.
    admin = HttpsClient.from_kubeconfig(small_history.kubeconfig)
    path = "/api/v1/namespaces/default/configmaps"
    created = admin.ok("POST", path, {"metadata": {"name": "big"}, "data": {"v": ""}})
    parsed = urllib.parse.urlsplit(admin.url)
    conn = http.client.HTTPSConnection(
        parsed.hostname or "", parsed.port, context=admin.context, timeout=60
    )
    try:
        query = urllib.parse.urlencode(
            {
                "watch": "true",
                "fieldSelector": "metadata.name=big",
                "resourceVersion": created["metadata"]["resourceVersion"],
            }
        )
        conn.request("GET", f"{path}?{query}", headers={"Accept": "application/json"})
        response = conn.getresponse()
        assert response.status == 200
        for i in range(40):  # 40 x 900 KB: far more than the socket buffers hold
            admin.ok(
                "PUT",
                f"{path}/big",
                {"metadata": {"name": "big"}, "data": {"v": str(i % 10) * 900_000}},
            )
        events = [json.loads(line) for line in response.read().splitlines()]
    finally:
        conn.close()
    *updates, last = events
    assert {e["type"] for e in updates} == {"MODIFIED"}
    assert 0 < len(updates) < 40
    assert (last["type"], last["object"]["code"], last["object"]["reason"]) == (
        "ERROR",
        410,
        "Expired",
    )
    assert admin.ok("GET", f"{path}/big")["data"]["v"][:1] == "9"  # every update was kept
    assert small_history.running()
