"""Service rows (TYPE, CLUSTER-IP, EXTERNAL-IP, PORT(S), SELECTOR) and Endpoints rows."""

from __future__ import annotations

import pytest

from controlplane.apiserver import tables
from tests.controlplane.apiserver.builders import NOW, Obj, meta

DNS_PORTS = [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
INGRESS = [{"ip": "192.168.1.241"}, {"hostname": "lb.home"}, {"ip": "192.168.1.240"}]


@pytest.mark.parametrize(
    ("spec", "status", "cells"),
    [
        pytest.param(
            {
                "type": "ClusterIP",
                "clusterIP": "10.43.0.10",
                "clusterIPs": ["10.43.0.10"],
                "ports": DNS_PORTS,
                "selector": {"k8s-app": "kube-dns"},
            },
            {},
            ["ClusterIP", "10.43.0.10", "<none>", "53/UDP,53/TCP", "k8s-app=kube-dns"],
            id="cluster-ip",
        ),
        pytest.param(
            {
                "type": "NodePort",
                "clusterIP": "10.43.1.1",
                "externalIPs": ["192.168.1.9"],
                "ports": [{"port": 80}, {"port": 443, "nodePort": 30443}],
            },
            {},
            ["NodePort", "10.43.1.1", "192.168.1.9", "80/TCP,443:30443/TCP", "<none>"],
            id="node-port-default-protocol",
        ),
        pytest.param(
            {"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"], "ports": []},
            {},
            ["ClusterIP", "None", "<none>", "<none>", "<none>"],
            id="headless-no-ports",
        ),
        pytest.param(
            {
                "type": "LoadBalancer",
                "clusterIP": "10.43.2.2",
                "ports": [{"port": 80, "nodePort": 1}],
            },
            {},
            ["LoadBalancer", "10.43.2.2", "<pending>", "80:1/TCP", "<none>"],
            id="load-balancer-pending",
        ),
        pytest.param(
            {"type": "LoadBalancer", "clusterIP": "10.43.2.2", "externalIPs": ["10.0.0.9"]},
            {"loadBalancer": {"ingress": INGRESS}},
            [
                *("LoadBalancer", "10.43.2.2"),
                "192.168.1.240,192.168.1.241,lb.home,10.0.0.9",
                *("<none>", "<none>"),
            ],
            id="load-balancer-ingress-sorted-then-external-ips",
        ),
        pytest.param(
            {"type": "ExternalName", "externalName": "example.com"},
            {},
            ["ExternalName", "<none>", "example.com", "<none>", "<none>"],
            id="external-name",
        ),
        pytest.param(
            {"clusterIP": "10.43.3.3"},
            {},
            ["ClusterIP", "10.43.3.3", "<none>", "<none>", "<none>"],
            id="type-defaults-to-cluster-ip",
        ),
    ],
)
def test_service_cells(spec: Obj, status: Obj, cells: list[tables.Cell]) -> None:
    obj = {"metadata": meta("web"), "spec": spec, "status": status}
    name, type_, cluster_ip, external_ip, ports, age, selector = tables.row(
        "", "Service", obj, now=NOW
    )
    assert (name, age) == ("web", "5m")
    assert [type_, cluster_ip, external_ip, ports, selector] == cells


def subset(ips: list[str], ports: list[int]) -> Obj:
    return {"addresses": [{"ip": ip} for ip in ips], "ports": [{"port": p} for p in ports]}


@pytest.mark.parametrize(
    ("subsets", "cell"),
    [
        pytest.param([], "<none>", id="none"),
        pytest.param([subset(["10.0.0.1", "10.0.0.2"], [80])], "10.0.0.1:80,10.0.0.2:80", id="two"),
        pytest.param(
            [subset(["10.0.0.1", "10.0.0.2", "10.0.0.3"], [80])],
            "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80",
            id="three-no-more",
        ),
        pytest.param(
            [subset([f"10.0.0.{i}" for i in range(1, 6)], [80])],
            "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more...",
            id="five",
        ),
        pytest.param(
            [subset(["10.0.0.1", "10.0.0.2"], [80, 443])],
            "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...",
            id="each-address-per-port",
        ),
        pytest.param(
            [subset(["10.0.0.1"], []), subset(["10.0.0.2"], [8080])],
            "10.0.0.1,10.0.0.2:8080",
            id="subset-without-ports",
        ),
        pytest.param([subset(["fd00::1"], [80])], "[fd00::1]:80", id="ipv6"),
        pytest.param(
            [{"notReadyAddresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}],
            "",
            id="only-not-ready",
        ),
    ],
)
def test_endpoints_cell(subsets: list[Obj], cell: str) -> None:
    obj = {"metadata": meta("web"), "subsets": subsets}
    assert tables.row("", "Endpoints", obj, now=NOW) == ["web", cell, "5m"]
