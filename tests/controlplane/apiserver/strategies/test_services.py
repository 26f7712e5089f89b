"""Services: v1 defaults, validation and cluster IP handling (bramble allocates none)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.controlplane.apiserver.strategies.helpers import (
    Mutation,
    create,
    create_causes,
    fields,
    service,
    update_causes,
)

REQ, INV, NSUP, FORB, DUP = (
    "FieldValueRequired",
    "FieldValueInvalid",
    "FieldValueNotSupported",
    "FieldValueForbidden",
    "FieldValueDuplicate",
)


def spec(obj: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = obj["spec"]
    return body


def test_service_defaults() -> None:
    stored = create(service())
    assert stored["spec"] == {
        "selector": {"app": "web"},
        "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
        "type": "ClusterIP",
        "sessionAffinity": "None",
        "internalTrafficPolicy": "Cluster",
    }
    assert stored["status"] == {"loadBalancer": {}}


@pytest.mark.parametrize(
    ("spec_", "expected"),
    [
        pytest.param({"type": "NodePort"}, {"externalTrafficPolicy": "Cluster"}, id="nodeport"),
        pytest.param(
            {"type": "LoadBalancer"},
            {"externalTrafficPolicy": "Cluster", "allocateLoadBalancerNodePorts": True},
            id="lb",
        ),
        pytest.param(
            {"sessionAffinity": "ClientIP"},
            {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}}},
            id="client-ip-timeout",
        ),
        pytest.param(
            {"clusterIP": "None"}, {"clusterIP": "None", "clusterIPs": ["None"]}, id="headless"
        ),
    ],
)
def test_more_defaults(spec_: dict[str, Any], expected: dict[str, Any]) -> None:
    stored = create(service(**spec_))["spec"]
    assert {k: stored[k] for k in expected} == expected


def test_no_cluster_ip_is_allocated() -> None:
    stored = create(service())["spec"]
    assert "clusterIP" not in stored
    assert "clusterIPs" not in stored


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda s: spec(s).update(ports=[]), [("spec.ports", REQ)], id="ports-required"
        ),
        pytest.param(
            lambda s: spec(s).update(ports=[], clusterIP="None"), [], id="headless-no-ports"
        ),
        pytest.param(
            lambda s: spec(s).update(type="ExternalName", ports=[], externalName="nas.lan"),
            [],
            id="external-name",
        ),
        pytest.param(
            lambda s: spec(s).update(type="ExternalName", externalName=""),
            [("spec.externalName", REQ)],
            id="external-name-required",
        ),
        pytest.param(
            lambda s: spec(s).update(ports=[{"port": 0}]),
            # targetPort defaulted to the port, so it is reported too (as in k8s)
            [("spec.ports[0].port", INV), ("spec.ports[0].targetPort", INV)],
            id="port-range",
        ),
        pytest.param(
            lambda s: spec(s).update(ports=[{"port": 80, "targetPort": "web_port"}]),
            [("spec.ports[0].targetPort", INV)],
            id="target-port-name",
        ),
        pytest.param(
            lambda s: spec(s).update(ports=[{"port": 80, "targetPort": 70000}]),
            [("spec.ports[0].targetPort", INV)],
            id="target-port-number",
        ),
        pytest.param(
            lambda s: spec(s).update(ports=[{"port": 80, "protocol": "ICMP"}]),
            [("spec.ports[0].protocol", NSUP)],
            id="protocol",
        ),
        pytest.param(
            lambda s: spec(s).update(ports=[{"port": 80, "name": "a"}, {"port": 81}]),
            [("spec.ports[1].name", REQ)],
            id="names-required-when-several",
        ),
        pytest.param(
            lambda s: spec(s).update(ports=[{"port": 80, "name": "a"}, {"port": 81, "name": "a"}]),
            [("spec.ports[1].name", DUP)],
            id="names-unique",
        ),
        pytest.param(
            lambda s: spec(s).update(ports=[{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]),
            [("spec.ports[1]", DUP)],
            id="port-protocol-unique",
        ),
        pytest.param(lambda s: spec(s).update(type="Cluster"), [("spec.type", NSUP)], id="type"),
        pytest.param(
            lambda s: spec(s).update(ports=[{"port": 80, "nodePort": 30080}]),
            [("spec.ports[0].nodePort", FORB)],
            id="node-port-on-cluster-ip",
        ),
        pytest.param(
            lambda s: spec(s).update(type="NodePort", clusterIP="None"),
            [("spec.clusterIPs[0]", INV)],
            id="headless-node-port",
        ),
        pytest.param(
            lambda s: spec(s).update(clusterIP="10.96.0.300"),
            [("spec.clusterIPs[0]", INV)],
            id="cluster-ip-invalid",
        ),
        pytest.param(
            lambda s: spec(s).update(clusterIP="10.96.0.10", clusterIPs=["10.96.0.11"]),
            [("spec.clusterIPs", INV)],
            id="cluster-ips-mismatch",
        ),
        pytest.param(
            lambda s: spec(s).update(externalIPs=["127.0.0.1"]),
            [("spec.externalIPs[0]", INV)],
            id="external-ip-loopback",
        ),
        pytest.param(
            lambda s: spec(s).update(sessionAffinity="Sticky"),
            [("spec.sessionAffinity", NSUP)],
            id="session-affinity",
        ),
        pytest.param(
            lambda s: spec(s).update(selector={"app": "bad value!"}),
            [("spec.selector", INV)],
            id="selector-labels",
        ),
    ],
)
def test_service_validation(mutate: Mutation, expected: list[Any]) -> None:
    assert fields(create_causes(service(), mutate)) == expected


def test_duplicate_port_message_is_go_s() -> None:
    found = create_causes(service(ports=[{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]))
    assert [c.message for c in found] == [
        'Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), '
        'Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}'
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("web", [], id="dns-1035"),
        pytest.param("1web", [("metadata.name", INV)], id="must-start-with-a-letter"),
        pytest.param("web.lan", [("metadata.name", INV)], id="no-dots"),
    ],
)
def test_service_names_are_dns_1035_labels(name: str, expected: list[Any]) -> None:
    assert fields(create_causes(service(name=name))) == expected


def test_a_cluster_ip_cannot_change_once_set() -> None:
    found = update_causes(
        service(clusterIP="10.96.0.10"),
        lambda s: spec(s).update(clusterIP="10.96.0.11", clusterIPs=["10.96.0.11"]),
    )
    assert [(c.field, c.message) for c in found] == [
        ("spec.clusterIPs[0]", 'Invalid value: ["10.96.0.11"]: may not change once set')
    ]


def test_an_update_without_the_cluster_ip_keeps_it() -> None:
    def drop(s: dict[str, Any]) -> None:
        spec(s).pop("clusterIP")
        spec(s).pop("clusterIPs")

    assert update_causes(service(clusterIP="10.96.0.10"), drop) == []


def test_load_balancer_status_only_for_load_balancers() -> None:
    from tests.controlplane.apiserver.strategies.helpers import causes, update

    stored = create(service())
    new = {**stored, "status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.50"}]}}}
    found = causes(lambda: update(new, stored, subresource="status"))
    assert fields(found) == [("status.loadBalancer.ingress", FORB)]
