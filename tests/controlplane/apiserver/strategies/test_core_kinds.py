"""Namespaces, Nodes, Secrets, ConfigMaps, Endpoints, Events and Leases: defaults and
validation as Kubernetes applies them."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.controlplane.apiserver.strategies.helpers import (
    causes,
    create,
    create_causes,
    fields,
    update,
    update_causes,
)

REQ, INV, NSUP, FORB, DUP, LONG = (
    "FieldValueRequired",
    "FieldValueInvalid",
    "FieldValueNotSupported",
    "FieldValueForbidden",
    "FieldValueDuplicate",
    "FieldValueTooLong",
)


def obj(kind: str, name: str = "x", api_version: str = "v1", **body: Any) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, **body}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --- Namespace -------------------------------------------------------------------------


def test_namespace_defaults() -> None:
    stored = create(obj("Namespace", "team-a"))
    assert stored["spec"] == {"finalizers": ["kubernetes"]}
    assert stored["status"] == {"phase": "Active"}
    assert stored["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}


@pytest.mark.parametrize(
    ("name", "finalizers", "expected"),
    [
        pytest.param("team-a", ["example.com/cleanup"], [], id="qualified-finalizer"),
        pytest.param("team.a", [], [("metadata.name", INV)], id="name-is-a-dns-label"),
        pytest.param("team-a", ["cleanup"], [("spec.finalizers", INV)], id="unqualified-finalizer"),
    ],
)
def test_namespace_validation(name: str, finalizers: list[str], expected: list[Any]) -> None:
    assert (
        fields(create_causes(obj("Namespace", name, spec={"finalizers": finalizers}))) == expected
    )


def test_an_update_cannot_drop_the_namespace_finalizer() -> None:
    stored = create(obj("Namespace", "team-a"))
    result = update({**stored, "spec": {}}, stored)
    assert result["spec"] == {"finalizers": ["kubernetes"]}


# --- Node ------------------------------------------------------------------------------


def node(**spec: Any) -> dict[str, Any]:
    status = {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}}
    return obj("Node", "pi-1", spec=spec, status=status)


def test_a_node_keeps_the_status_it_registers_with() -> None:
    stored = create(node(podCIDR="10.244.1.0/24"))
    assert stored["status"]["capacity"] == {"cpu": "4", "memory": "8Gi", "pods": "110"}
    assert stored["status"]["allocatable"] == stored["status"]["capacity"]
    assert stored["spec"]["podCIDRs"] == ["10.244.1.0/24"]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({"taints": [{"key": "gpu", "effect": "NoSchedule"}]}, [], id="taint"),
        pytest.param(
            {"taints": [{"key": "gpu", "effect": "NoRun"}]},
            [("metadata.taints[0].effect", NSUP)],
            id="taint-effect",
        ),
        pytest.param(
            {"taints": [{"key": "gpu"}]},
            [("metadata.taints[0].effect", REQ)],
            id="taint-effect-required",
        ),
        pytest.param(
            {"taints": [{"key": "bad key", "effect": "NoSchedule"}]},
            [("metadata.taints[0].key", INV)],
            id="taint-key",
        ),
        pytest.param(
            {
                "taints": [
                    {"key": "a", "effect": "NoSchedule"},
                    {"key": "a", "effect": "NoSchedule", "value": "b"},
                ]
            },
            [("metadata.taints[1]", DUP)],
            id="taint-unique-by-key-and-effect",
        ),
        pytest.param({"podCIDR": "10.244.1.0/33"}, [("spec.podCIDRs[0]", INV)], id="pod-cidr"),
        pytest.param(
            {"unschedulable": "yes"},
            [("spec.unschedulable", "FieldValueTypeInvalid")],
            id="unschedulable-type",
        ),
    ],
)
def test_node_validation(spec: dict[str, Any], expected: list[Any]) -> None:
    assert fields(create_causes(node(**spec))) == expected


def test_a_node_pod_cidr_is_set_once() -> None:
    found = update_causes(
        node(podCIDR="10.244.1.0/24"),
        lambda n: n["spec"].update(podCIDR="10.244.2.0/24", podCIDRs=["10.244.2.0/24"]),
    )
    assert fields(found) == [("spec.podCIDRs", FORB)]
    assert update_causes(node(), lambda n: n["spec"].update(podCIDR="10.244.2.0/24")) == []


def test_node_capacity_must_be_quantities() -> None:
    bad = node()
    bad["status"]["capacity"]["pods"] = "1.5"
    assert fields(create_causes(bad)) == [
        ("status.capacity.pods", INV),
        ("status.allocatable.pods", INV),
    ]


# --- Secret ----------------------------------------------------------------------------


def test_secret_defaults_fold_string_data() -> None:
    stored = create(obj("Secret", data={"a": b64("1")}, stringData={"a": "2", "b": "3"}))
    assert stored["type"] == "Opaque"
    assert stored["data"] == {"a": b64("2"), "b": b64("3")}
    assert "stringData" not in stored


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({"data": {"bad/key": b64("x")}}, [("data[bad/key]", INV)], id="key"),
        pytest.param({"data": {"k": "not base64!"}}, [("data[k]", INV)], id="base64"),
        pytest.param({"data": {"k": b64("x" * (1024 * 1024 + 1))}}, [("data", LONG)], id="size"),
        pytest.param(
            {"type": "kubernetes.io/tls", "data": {"tls.crt": b64("c")}},
            [("data[tls.key]", REQ)],
            id="tls-needs-key",
        ),
        pytest.param(
            {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": b64("[")}},
            [("data[.dockerconfigjson]", INV)],
            id="docker-config-json",
        ),
        pytest.param(
            {"type": "kubernetes.io/basic-auth", "data": {}},
            [("data[username]", REQ), ("data[password]", REQ)],
            id="basic-auth",
        ),
    ],
)
def test_secret_validation(body: dict[str, Any], expected: list[Any]) -> None:
    assert fields(create_causes(obj("Secret", **body))) == expected


def test_secret_type_is_immutable() -> None:
    tls = obj("Secret", type="kubernetes.io/tls", data={"tls.crt": b64("c"), "tls.key": b64("k")})
    found = update_causes(tls, lambda s: s.pop("type"))  # defaults to Opaque: a change
    assert [(c.field, c.message) for c in found] == [
        ("type", 'Invalid value: "Opaque": field is immutable')
    ]


@pytest.mark.parametrize("kind", ["Secret", "ConfigMap"])
def test_immutable_data(kind: str) -> None:
    data = {"k": b64("v")} if kind == "Secret" else {"k": "v"}
    found = update_causes(
        obj(kind, data=data, immutable=True), lambda o: o.update(data={"k": data["k"] + "x"})
    )
    assert fields(found)[-1] == ("data", FORB)
    assert fields(
        update_causes(obj(kind, data=data, immutable=True), lambda o: o.pop("immutable"))
    ) == [("immutable", FORB)]


# --- ConfigMap -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({"data": {"a.conf": "x"}, "binaryData": {"b.bin": b64("y")}}, [], id="valid"),
        pytest.param({"data": {"..": "x"}}, [("data[..]", INV)], id="key-dots"),
        pytest.param(
            {"data": {"a": "x"}, "binaryData": {"a": b64("y")}},
            [("data[a]", INV)],
            id="key-in-both",
        ),
        pytest.param({"binaryData": {"b": "%%%"}}, [("binaryData[b]", INV)], id="binary-base64"),
        pytest.param({"data": {"big": "x" * (1024 * 1024 + 1)}}, [("", LONG)], id="size"),
    ],
)
def test_config_map_validation(body: dict[str, Any], expected: list[Any]) -> None:
    assert fields(create_causes(obj("ConfigMap", **body))) == expected


def test_config_map_too_long_message() -> None:
    found = create_causes(obj("ConfigMap", data={"big": "x" * (1024 * 1024 + 1)}))
    assert found[0].message == "Too long: may not be more than 1048576 bytes"


# --- Endpoints, Event, Lease -------------------------------------------------------------


@pytest.mark.parametrize(
    ("subsets", "expected"),
    [
        pytest.param(
            [{"addresses": [{"ip": "10.0.0.7"}], "ports": [{"port": 8080}]}], [], id="valid"
        ),
        pytest.param([{"ports": [{"port": 8080}]}], [("subsets[0]", REQ)], id="addresses-required"),
        pytest.param(
            [{"addresses": [{"ip": "127.0.0.1"}]}],
            [("subsets[0].addresses[0].ip", INV)],
            id="loopback",
        ),
        pytest.param(
            [{"addresses": [{"ip": "10.0.0.7"}], "ports": [{"port": 80}, {"port": 81}]}],
            [("subsets[0].ports[0].name", REQ), ("subsets[0].ports[1].name", REQ)],
            id="names-when-several",
        ),
    ],
)
def test_endpoints_validation(subsets: list[Any], expected: list[Any]) -> None:
    assert fields(create_causes(obj("Endpoints", subsets=subsets))) == expected


def event(**body: Any) -> dict[str, Any]:
    involved = {"kind": "Pod", "name": "web", "namespace": "default"}
    return obj("Event", "web.1", involvedObject=involved, reason="Pulled", type="Normal", **body)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(lambda e: None, [], id="valid"),
        pytest.param(
            lambda e: e.pop("involvedObject"), [("involvedObject", REQ)], id="involved-object"
        ),
        pytest.param(
            lambda e: e["involvedObject"].update(namespace="other"),
            [("involvedObject.namespace", INV)],
            id="namespace-mismatch",
        ),
        pytest.param(lambda e: e.update(type="Info"), [("type", INV)], id="type"),
        pytest.param(lambda e: e.update(count=-1), [("count", INV)], id="count"),
        pytest.param(
            lambda e: e.update(eventTime="2025-06-01T12:00:00.000000Z"),
            # "" is not a qualified name twice over: empty, and not matching
            [
                ("reportingController", REQ),
                ("reportingController", INV),
                ("reportingController", INV),
                ("reportingInstance", REQ),
                ("action", REQ),
            ],
            id="new-style-needs-reporter",
        ),
    ],
)
def test_event_validation(mutate: Any, expected: list[Any]) -> None:
    assert fields(create_causes(event(), mutate)) == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({"holderIdentity": "pi-1", "leaseDurationSeconds": 15}, [], id="valid"),
        pytest.param(
            {"leaseDurationSeconds": 0}, [("spec.leaseDurationSeconds", INV)], id="duration"
        ),
        pytest.param({"leaseTransitions": -1}, [("spec.leaseTransitions", INV)], id="transitions"),
        pytest.param({"preferredHolder": "pi-2"}, [("spec.preferredHolder", FORB)], id="preferred"),
    ],
)
def test_lease_validation(spec: dict[str, Any], expected: list[Any]) -> None:
    lease = obj("Lease", "pi-1", "coordination.k8s.io/v1", spec=spec)
    assert fields(create_causes(lease)) == expected


def test_every_kind_checks_metadata() -> None:
    bad = obj("ConfigMap", "Bad_Name", data={})
    found = causes(lambda: create(bad))
    assert fields(found) == [("metadata.name", INV)]
