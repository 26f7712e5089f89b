"""Endpoints: defaults and validation, as Kubernetes' ``ValidateEndpoints``.

Each subset lists addresses (IPs that are not loopback, link-local or unspecified) or
not-ready addresses, and ports that are valid numbers with a protocol (TCP by default)
and, when there are several, DNS-label names.
"""

from __future__ import annotations

from datetime import datetime

from api import validation as v
from api.errors import Cause
from controlplane.apiserver import kinds
from controlplane.apiserver.strategies import formats
from controlplane.apiserver.strategies.common import (
    Obj,
    expect_list,
    get_list,
    items,
    one_of,
)
from controlplane.apiserver.strategies.pods.containers import PROTOCOLS


def default_endpoints(endpoints: Obj, now: datetime) -> None:
    for subset in get_list(endpoints, "subsets"):
        for port in get_list(subset, "ports"):
            if isinstance(port, dict) and not port.get("protocol"):
                port["protocol"] = "TCP"


def _address(address: Obj, path: str) -> list[Cause]:
    causes = formats.ip(address.get("ip", ""), f"{path}.ip")
    if address.get("hostname"):
        causes += v.dns1123_label(address["hostname"], f"{path}.hostname")
    if address.get("nodeName") is not None:
        causes += v.dns1123_subdomain(address["nodeName"], f"{path}.nodeName")
    return causes + formats.non_special_ip(address.get("ip", ""), f"{path}.ip")


def validate(endpoints: Obj, old: Obj | None) -> list[Cause]:
    causes = expect_list(endpoints, "subsets", "subsets")
    for path, subset in items(endpoints, "subsets", "subsets"):
        if not get_list(subset, "addresses") and not get_list(subset, "notReadyAddresses"):
            causes.append(v.required(path, "must specify `addresses` or `notReadyAddresses`"))
        for kind in ("addresses", "notReadyAddresses"):
            for address_path, address in items(subset, kind, f"{path}.{kind}"):
                causes += _address(address, address_path)
        ports = get_list(subset, "ports")
        for port_path, port in items(subset, "ports", f"{path}.ports"):
            name = port.get("name")
            if len(ports) > 1 and not name:
                causes.append(v.required(f"{port_path}.name"))
            elif name:
                causes += v.dns1123_label(name, f"{port_path}.name")
            causes += v.port_number(port.get("port", 0), f"{port_path}.port")
            causes += one_of(port, "protocol", f"{port_path}.protocol", PROTOCOLS)
            if port.get("appProtocol") is not None:
                causes += v.qualified_name(port["appProtocol"], f"{port_path}.appProtocol")
    return causes


def update_endpoints(endpoints: Obj, old: Obj, now: datetime) -> None:
    default_endpoints(endpoints, now)


def register() -> None:
    strategy = kinds.Strategy(default_endpoints, update_endpoints, validate)
    kinds.register("", "Endpoints", strategy)
