"""Services (NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE | SELECTOR) and Endpoints
(NAME ENDPOINTS AGE), as ``printService`` and ``printEndpoints`` print them.

PORT(S) is ``port/protocol``, or ``port:nodePort/protocol`` when a node port is set,
comma-joined (``80/TCP,443:30443/TCP``). EXTERNAL-IP depends on the type: ``<none>`` or
the external IPs for ClusterIP and NodePort, the load balancer's ingress (``<pending>``
until it has one) for LoadBalancer, the DNS name for ExternalName. ENDPOINTS shows the
first three ``ip:port`` pairs and ``+ N more...``.
"""

from __future__ import annotations

from datetime import datetime

from controlplane.apiserver.printers.base import AGE, NAME, Cell, Column, Obj, Printer
from controlplane.apiserver.printers.format import (
    age,
    field_int,
    field_list,
    field_map,
    field_str,
    format_labels,
    name,
)

SERVICE_COLUMNS = (
    NAME,
    Column(
        "Type",
        "string",
        "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are "
        "ExternalName, ClusterIP, NodePort, and LoadBalancer.",
    ),
    Column(
        "Cluster-IP",
        "string",
        "clusterIP is the IP address of the service and is usually assigned randomly.",
    ),
    Column(
        "External-IP",
        "string",
        "externalIPs is a list of IP addresses for which nodes in the cluster will also "
        "accept traffic for this service.",
    ),
    Column("Port(s)", "string", "The list of ports that are exposed by this service."),
    AGE,
    Column(
        "Selector",
        "string",
        "Route service traffic to pods with label keys and values matching this selector.",
        priority=1,
    ),
)


def _strings(obj: Obj, key: str) -> list[str]:
    value = obj.get(key)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def ports(spec: Obj) -> str:
    pieces = []
    for port in field_list(spec, "ports"):
        number, protocol = field_int(port, "port"), field_str(port, "protocol") or "TCP"
        node_port = field_int(port, "nodePort")
        if node_port > 0:
            pieces.append(f"{number}:{node_port}/{protocol}")
        else:
            pieces.append(f"{number}/{protocol}")
    return ",".join(pieces) or "<none>"


def external_ip(service: Obj) -> str:
    spec = field_map(service, "spec")
    external = _strings(spec, "externalIPs")
    match field_str(spec, "type") or "ClusterIP":
        case "ClusterIP" | "NodePort":
            return ",".join(external) or "<none>"
        case "LoadBalancer":
            ingress = field_list(field_map(field_map(service, "status"), "loadBalancer"), "ingress")
            # A sorted set, as loadBalancerStatusStringer builds it. The apiserver prints
            # wide, so the 16-character clipping of the client-side printer never applies.
            balancers = sorted(
                {field_str(i, "ip") or field_str(i, "hostname") for i in ingress} - {""}
            )
            return ",".join(balancers + external) or "<pending>"
        case "ExternalName":
            return field_str(spec, "externalName")
        case _:
            return "<unknown>"


def _service(service: Obj, now: datetime) -> list[Cell]:
    spec = field_map(service, "spec")
    # The real printer reads clusterIPs[0]; Kubernetes keeps it equal to clusterIP.
    cluster_ips = _strings(spec, "clusterIPs")
    cluster_ip = cluster_ips[0] if cluster_ips else field_str(spec, "clusterIP")
    return [
        name(service),
        field_str(spec, "type") or "ClusterIP",
        cluster_ip or "<none>",
        external_ip(service),
        ports(spec),
        age(service, now),
        format_labels(field_map(spec, "selector")),
    ]


ENDPOINTS_COLUMNS = (
    NAME,
    Column("Endpoints", "string", "The set of all endpoints is the union of all subsets."),
    AGE,
)

_SHOWN = 3


def endpoints(obj: Obj) -> str:
    """``formatEndpoints(endpoints, nil)``: ready addresses only, each with every port."""
    subsets = field_list(obj, "subsets")
    if not subsets:
        return "<none>"
    shown: list[str] = []
    count = 0
    for subset in subsets:
        ips = [field_str(a, "ip") for a in field_list(subset, "addresses")]
        # A headless service's subsets may have no ports: then the bare IPs are listed.
        subset_ports: list[Obj | None] = [*field_list(subset, "ports")] or [None]
        for port in subset_ports:
            count += len(ips)
            for ip in ips:
                if len(shown) == _SHOWN:
                    break
                shown.append(ip if port is None else _host_port(ip, field_int(port, "port")))
    text = ",".join(shown)
    return f"{text} + {count - _SHOWN} more..." if count > _SHOWN else text


def _host_port(ip: str, port: int) -> str:
    """``net.JoinHostPort``: IPv6 addresses are bracketed."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _endpoints(obj: Obj, now: datetime) -> list[Cell]:
    return [name(obj), endpoints(obj), age(obj, now)]


SERVICE = Printer(SERVICE_COLUMNS, _service)
ENDPOINTS = Printer(ENDPOINTS_COLUMNS, _endpoints)
