"""Malformed requests against a real ``bramble server`` over HTTPS, as admin.

Hypothesis throws bodies, Content-Types, paths and query strings at the server. Whatever
it sends, the server must answer (no dropped connection), never with a 5xx, and every
error must be a ``Status`` whose ``code`` is the HTTP status; afterwards it is still
ready. Then the limits one by one: 413, 400 for deep nesting, bad UTF-8 and garbage
protobuf, 415 for an unknown media type.

The server is this module's own: the fuzzer deletes and replaces whatever it finds."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.cluster import BrambleServer, HttpsClient, Reply, running_server

NS = "fuzz"


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrambleServer]:
    with running_server(data_dir=tmp_path_factory.mktemp("fuzz")) as server:
        admin = server.admin()
        admin.ok("POST", "/api/v1/namespaces", {"metadata": {"name": NS}})
        admin.ok(
            "POST",
            f"/api/v1/namespaces/{NS}/pods",
            {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
        )
        admin.ok("POST", f"/apis/apps/v1/namespaces/{NS}/deployments", {
            "metadata": {"name": "d"}, "spec": {
                "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}},
                             "spec": {"containers": [{"name": "c", "image": "i"}]}}}})  # fmt: skip
        yield server
        assert server.running(), "the server died under the fuzzer"
        errors = [line for line in server.log.lines if " ERROR " in line or "Traceback" in line]
        assert not errors, "the server logged errors:\n" + server.log.text()


@pytest.fixture(scope="module")
def admin(fuzz_server: BrambleServer) -> HttpsClient:
    return fuzz_server.admin()


def assert_well_formed(reply: Reply, what: str) -> None:
    assert reply.status < 500, f"{what} -> {reply.status} {reply.body[:500]!r}"
    if reply.status >= 400:
        assert reply.headers.get("Content-Type", "").startswith("application/json"), what
        status = json.loads(reply.body)
        assert status["kind"] == "Status", (what, status)
        assert status["apiVersion"] == "v1", (what, status)
        assert status["status"] == "Failure", (what, status)
        assert type(status["code"]) is int, (what, status)
        assert status["code"] == reply.status, (what, status)
        assert isinstance(status.get("message", ""), str), (what, status)


# --- strategies -------------------------------------------------------------------------

PATHS = [
    f"/api/v1/namespaces/{NS}/pods", f"/api/v1/namespaces/{NS}/pods/p",
    f"/api/v1/namespaces/{NS}/pods/p/status", f"/api/v1/namespaces/{NS}/pods/p/binding",
    f"/api/v1/namespaces/{NS}/pods/p/eviction", f"/api/v1/namespaces/{NS}/pods/p/log",
    f"/api/v1/namespaces/{NS}/configmaps", f"/api/v1/namespaces/{NS}/configmaps/c",
    f"/api/v1/namespaces/{NS}/secrets/s", f"/api/v1/namespaces/{NS}/events",
    f"/api/v1/namespaces/{NS}/services/s", f"/api/v1/namespaces/{NS}/endpoints",
    f"/apis/apps/v1/namespaces/{NS}/deployments", f"/apis/apps/v1/namespaces/{NS}/deployments/d",
    f"/apis/apps/v1/namespaces/{NS}/deployments/d/scale",
    f"/apis/apps/v1/namespaces/{NS}/deployments/d/status",
    f"/apis/batch/v1/namespaces/{NS}/jobs", f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases",
    f"/api/v1/namespaces/{NS}", f"/api/v1/namespaces/{NS}/status",
    "/api/v1/nodes", "/api/v1/nodes/n", "/api/v1/pods", "/apis/apps/v1/deployments",
    "/apis/metrics.k8s.io/v1beta1/nodes", "/api", "/apis", "/api/v1", "/apis/apps/v1",
    "/openapi/v3", "/openapi/v3/apis/apps/v1", "/version", "/metrics", "/healthz", "/",
    "/apis/nope/v1/things", "/api/v2/pods", "/api/v1/namespaces//pods",
]  # fmt: skip
MEDIA_TYPES = [
    None, "application/json", "application/yaml", "application/vnd.kubernetes.protobuf",
    "application/strategic-merge-patch+json", "application/merge-patch+json",
    "application/json-patch+json", "application/apply-patch+yaml", "text/plain", "*/*",
    "application/json; charset=utf-8", "application/json;;;", "multipart/form-data; boundary=x",
    "", "application/x-www-form-urlencoded",
]  # fmt: skip
ACCEPTS = [
    None, "application/json", "*/*", "application/vnd.kubernetes.protobuf", "text/html",
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    "application/json;as=Table;v=v1;g=meta.k8s.io", "application/json;as=PartialObjectMetadataList",
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", ";;;,,,", "",
]  # fmt: skip
PARAMS = [
    "labelSelector", "fieldSelector", "resourceVersion", "resourceVersionMatch", "limit",
    "continue", "dryRun", "fieldManager", "fieldValidation", "force", "gracePeriodSeconds",
    "propagationPolicy", "orphanDependents", "includeObject", "allowWatchBookmarks",
    "sendInitialEvents", "pretty", "timeout",
]  # fmt: skip

text = st.text(max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)
k8s_ish = st.fixed_dictionaries(
    {},
    optional={
        "apiVersion": st.sampled_from(["v1", "apps/v1", "policy/v1", "", "x/y"]) | text,
        "kind": st.sampled_from(["Pod", "ConfigMap", "Deployment", "Scale", "Eviction",
                                 "Binding", "DeleteOptions", "Status"]) | text,
        "metadata": st.fixed_dictionaries({}, optional={
            "name": st.sampled_from(["p", "c", "d", "s", ""]) | text,
            "namespace": st.sampled_from([NS, "default", ""]) | text,
            "labels": json_values, "resourceVersion": json_values,
            "finalizers": json_values, "generateName": text,
        }) | json_values,
        "spec": json_values, "status": json_values, "data": json_values,
        "target": json_values, "deleteOptions": json_values, "gracePeriodSeconds": json_values,
    },
)  # fmt: skip
json_patch = st.lists(
    st.fixed_dictionaries(
        {"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test"]) | text},
        optional={"path": st.sampled_from(["/metadata/labels", "/spec", "", "/"]) | text,
                  "from": text, "value": json_values},
    ),
    max_size=4,
)  # fmt: skip
bodies = st.one_of(
    st.none(),
    st.binary(max_size=200),
    k8s_ish.map(lambda v: json.dumps(v).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    json_patch.map(lambda v: json.dumps(v).encode()),
    text.map(str.encode),
    st.binary(max_size=100).map(lambda b: b"k8s\x00" + b),
)
continue_tokens = st.builds(
    lambda rv, start: (
        base64.urlsafe_b64encode(json.dumps({"rv": rv, "start": start}).encode())
        .decode()
        .rstrip("=")
    ),
    json_values | st.integers(),
    json_values | st.just(f"/registry/core/pods/{NS}/"),
)
queries = st.dictionaries(
    st.sampled_from(PARAMS) | text,
    text
    | st.sampled_from(["0", "1", "-1", "true", "All", "Exact", "NotOlderThan"])
    # Numbers, but no resourceVersion from the near future: a list waits 3 s for one
    # and then answers 504 (test_a_resource_version_from_the_future_is_504).
    | st.one_of(st.integers(max_value=3), st.integers(min_value=2**63)).map(str)
    | continue_tokens,
    max_size=3,
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes | None, dict[str, str]]:
    method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]))
    path = draw(st.sampled_from(PATHS))
    if draw(st.booleans()):
        path += "/" + quote(draw(text), safe="")
    # A watch without timeoutSeconds streams until the client leaves: only bounded ones.
    query = {k: v for k, v in draw(queries).items() if k not in ("watch", "timeoutSeconds")}
    if method == "GET" and draw(st.integers(0, 19)) == 0:
        query |= {"watch": "true", "timeoutSeconds": "1"}
    headers = {}
    media_type = draw(st.sampled_from(MEDIA_TYPES))
    if media_type is not None:
        headers["Content-Type"] = media_type
    accept = draw(st.sampled_from(ACCEPTS))
    if accept is not None:
        headers["Accept"] = accept
    return method, path, query, draw(bodies), headers


@settings(
    max_examples=250,
    deadline=10_000,  # milliseconds for one request (a bounded watch takes ~1 s)
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(request=requests())
def test_malformed_requests_get_well_formed_errors(
    admin: HttpsClient,
    request: tuple[str, str, dict[str, str], bytes | None, dict[str, str]],
) -> None:
    method, path, query, body, headers = request
    url = path + ("?" + urlencode(query) if query else "")
    reply = admin.request(method, url, body, headers=headers, timeout=10)
    assert_well_formed(reply, f"{method} {url} headers={headers} body={body!r:.200}")


def test_server_is_still_ready(admin: HttpsClient) -> None:
    """After the fuzzer (this runs after it, in file order)."""
    reply = admin.request("GET", "/readyz")
    assert (reply.status, reply.body) == (200, b"ok")
    assert admin.ok("GET", f"/api/v1/namespaces/{NS}")["metadata"]["name"] == NS


# --- wrong types ------------------------------------------------------------------------

_TEMPLATE = {"metadata": {"labels": {"a": "b"}},
             "spec": {"containers": [{"name": "c", "image": "i"}]}}  # fmt: skip
WRONG_TYPES = [
    ("/api/v1/namespaces/fuzz/pods", {"spec": {"containers": "x"}}),
    ("/api/v1/namespaces/fuzz/pods", {"spec": "x"}),
    ("/api/v1/namespaces/fuzz/services", {"spec": {"ports": 5}}),
    ("/api/v1/namespaces/fuzz/configmaps", {"data": [1]}),
    ("/api/v1/namespaces/fuzz/configmaps", {"data": {"a": 5}}),
    ("/api/v1/namespaces/fuzz/secrets", {"data": {"a": 5}}),
    ("/api/v1/namespaces/fuzz/secrets", {"data": {"a": "not base64!"}}),
    ("/api/v1/namespaces/fuzz/events", {"involvedObject": 5}),
    ("/api/v1/namespaces/fuzz/endpoints", {"subsets": 5}),
    ("/apis/coordination.k8s.io/v1/namespaces/fuzz/leases",
     {"spec": {"leaseDurationSeconds": "x"}}),
    ("/apis/batch/v1/namespaces/fuzz/jobs", {"spec": {"template": 5}}),
    ("/apis/apps/v1/namespaces/fuzz/deployments",
     {"spec": {"replicas": "x", "selector": {"matchLabels": {"a": "b"}}, "template": _TEMPLATE}}),
    ("/apis/apps/v1/namespaces/fuzz/daemonsets", {"spec": {"selector": 5, "template": _TEMPLATE}}),
    ("/apis/apps/v1/namespaces/fuzz/replicasets", {"spec": {"selector": 5, "template": _TEMPLATE}}),
    ("/api/v1/nodes", {"spec": {"taints": 5}}),
    ("/api/v1/nodes", {"spec": "x"}),
    ("/api/v1/nodes", {"status": 5}),
    ("/api/v1/namespaces", {"spec": {"finalizers": 5}}),
    ("/api/v1/namespaces", {"spec": "x"}),
    ("/api/v1/namespaces/fuzz/configmaps", {"metadata": {"labels": {"a": 5}}}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param(
            path, body, id=f"{i}-{path.rsplit('/', 1)[1]}",

        )
        for i, (path, body) in enumerate(WRONG_TYPES)
    ],
)  # fmt: skip
def test_wrong_types_are_refused(
    admin: HttpsClient, path: str, body: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    """An object a typed client could not read back must never be stored: 400 or 422."""
    name = f"wrong-{request.node.callspec.id.split('-')[0]}"
    obj = {**body, "metadata": {"name": name, **body.get("metadata", {})}}
    reply = admin.request("POST", path, obj)
    assert reply.status in (400, 422), reply.body
    assert_well_formed(reply, f"{path} {body}")
    assert admin.request("GET", f"{path}/{name}").status == 404


# --- specific limits --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("DELETE", "/pods/bound?gracePeriodSeconds=99999999999999999999", None,
                     id="grace-query-over-int64"),
        pytest.param("DELETE", "/pods/bound", {"gracePeriodSeconds": 18446744073709551615},
                     id="grace-body-uint64"),
        pytest.param("DELETE", "/pods/bound", {"gracePeriodSeconds": True}, id="grace-bool"),
        pytest.param("GET", "/pods?resourceVersion=99999999999999999999999", None, id="list-rv"),
        pytest.param("GET", "/pods?resourceVersion=99999999999999999999999"
                     "&resourceVersionMatch=Exact", None, id="exact-rv"),
        pytest.param("GET", "/pods?watch=true&resourceVersion=99999999999999999999999", None,
                     id="watch-rv"),
        pytest.param("GET", "/pods?limit=99999999999999999999999", None, id="limit"),
        pytest.param("GET", "/pods?limit=1&continue=" + base64.urlsafe_b64encode(
            b'{"rv": 100000000000000000000000, "start": "/registry/core/pods/fuzz/"}').decode(),
            None, id="continue-rv"),
    ],
)  # fmt: skip
def test_integers_beyond_64_bits_are_400(
    admin: HttpsClient, method: str, path: str, body: dict[str, object] | None
) -> None:
    """They would reach the store or a datetime; Kubernetes' fields are 64-bit too."""
    pods = f"/api/v1/namespaces/{NS}/pods"
    if admin.request("GET", f"{pods}/bound").status == 404:
        admin.ok(
            "POST",
            pods,
            {"metadata": {"name": "bound"}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
        )
        admin.ok("POST", f"{pods}/bound/binding", {"target": {"name": "somewhere"}})
    reply = admin.request(method, f"/api/v1/namespaces/{NS}{path}", body)  # fmt: skip
    assert reply.status == 400, reply.body
    assert_well_formed(reply, path)


def test_a_resource_version_from_the_future_is_504(admin: HttpsClient) -> None:
    """As Kubernetes: the list waits a few seconds for the cache to catch up, then says
    "Too large resource version" with 504 Timeout and Retry-After, which client-go
    retries. The one 5xx a correct server gives to a correct request."""
    current = int(admin.ok("GET", f"/api/v1/namespaces/{NS}/pods")["metadata"]["resourceVersion"])
    reply = admin.request("GET", f"/api/v1/namespaces/{NS}/pods?resourceVersion={current + 1000}")
    assert reply.status == 504
    status = json.loads(reply.body)
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "Timeout", 504)
    assert status["message"].startswith(f"Too large resource version: {current + 1000}")
    assert reply.headers["Retry-After"] == "1"


def test_a_grace_period_beyond_datetime_still_deletes(admin: HttpsClient) -> None:
    pods = f"/api/v1/namespaces/{NS}/pods"
    admin.ok(
        "POST",
        pods,
        {"metadata": {"name": "long-grace"}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
    )
    admin.ok("POST", f"{pods}/long-grace/binding", {"target": {"name": "somewhere"}})
    deleting = admin.ok("DELETE", f"{pods}/long-grace?gracePeriodSeconds={2**63 - 1}")
    assert deleting["metadata"]["deletionGracePeriodSeconds"] == 2**63 - 1
    assert deleting["metadata"]["deletionTimestamp"] > "2100"
    admin.ok("DELETE", f"{pods}/long-grace?gracePeriodSeconds=0")
    assert admin.request("GET", f"{pods}/long-grace").status == 404


CM = f"/api/v1/namespaces/{NS}/configmaps"


def test_a_body_over_the_limit_is_413(admin: HttpsClient) -> None:
    big = json.dumps({"metadata": {"name": "big"}, "data": {"k": "x" * (4 << 20)}})
    reply = admin.request("POST", CM, big, headers={"Content-Type": "application/json"})
    assert reply.status == 413
    assert_well_formed(reply, "4 MiB body")
    assert json.loads(reply.body)["reason"] == "RequestEntityTooLarge"


@pytest.mark.parametrize(
    ("media_type", "body"),
    [
        pytest.param("application/json", "[" * 5000 + "]" * 5000, id="json-list"),
        pytest.param("application/json", '{"a":' * 5000 + "1" + "}" * 5000, id="json-map"),
        pytest.param("application/yaml", "[" * 5000 + "]" * 5000, id="yaml-flow"),
        pytest.param(
            "application/yaml",
            "".join(f"{'  ' * i}k{i}:\n" for i in range(300)) + "  " * 300 + "v",
            id="yaml-block",
        ),
        pytest.param("application/merge-patch+json", "[" * 5000 + "]" * 5000, id="patch"),
    ],
)
def test_deep_nesting_is_400(admin: HttpsClient, media_type: str, body: str) -> None:
    method, path = ("PATCH", f"{CM}/c") if "patch" in media_type else ("POST", CM)
    if method == "PATCH":
        admin.request("POST", CM, {"metadata": {"name": "c"}})
    reply = admin.request(method, path, body, headers={"Content-Type": media_type})
    assert reply.status == 400, reply.body
    assert_well_formed(reply, f"nested {media_type}")


@pytest.mark.parametrize("media_type", ["application/json", "application/yaml", None])
def test_invalid_utf8_is_400(admin: HttpsClient, media_type: str | None) -> None:
    body = b'{"metadata": {"name": "bad\xff\xfe"}, "data": {"k": "\xc3\x28"}}'
    headers = {"Content-Type": media_type} if media_type else {}
    reply = admin.request("POST", CM, body, headers=headers)
    assert reply.status == 400, reply.body
    assert_well_formed(reply, "invalid UTF-8")


@pytest.mark.parametrize("media_type", ["text/csv", "application/xml", "image/png"])
def test_unknown_content_type_is_415(admin: HttpsClient, media_type: str) -> None:
    reply = admin.request("POST", CM, b"a,b\n1,2\n", headers={"Content-Type": media_type})
    assert reply.status == 415
    assert_well_formed(reply, media_type)
    assert json.loads(reply.body)["reason"] == "UnsupportedMediaType"
    patch = admin.request("PATCH", f"{CM}/c", b"{}", headers={"Content-Type": media_type})
    assert patch.status == 415
    assert_well_formed(patch, f"PATCH {media_type}")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"garbage", id="no-magic"),
        pytest.param(b"k8s\x00" + bytes(range(256)), id="garbage-after-magic"),
        pytest.param(b"k8s\x00\x0a\xff\xff\xff\xff\x0f", id="huge-length"),
        pytest.param(
            b"k8s\x00\x0a\x0c\x0a\x02v1\x12\x06Secret\x12\x03\xff\xff\xff", id="truncated"
        ),
        pytest.param(b"k8s\x00", id="magic-only"),
    ],
)
def test_garbage_protobuf_is_400(admin: HttpsClient, body: bytes) -> None:
    headers = {"Content-Type": "application/vnd.kubernetes.protobuf"}
    reply = admin.request("POST", CM, body, headers=headers)
    assert reply.status == 400, reply.body
    assert_well_formed(reply, f"protobuf {body!r}")
