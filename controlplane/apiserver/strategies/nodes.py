"""Nodes: defaults and validation, as Kubernetes' ``ValidateNode``/``ValidateNodeUpdate``.

A node registers itself with its status, so unlike other kinds it keeps the status it is
created with. Taints need a valid key, value and effect and are unique by key and effect
(reported at ``metadata.taints``, a Kubernetes quirk); pod CIDRs are CIDRs, one per IP
family, set once; capacity and allocatable are quantities. ``spec.podCIDR`` and
``spec.podCIDRs`` are kept in step, as Kubernetes' conversion does.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime

from api import validation as v
from api.errors import Cause
from controlplane.apiserver import kinds
from controlplane.apiserver.strategies import formats
from controlplane.apiserver.strategies.common import (
    Obj,
    expect_bool,
    expect_list,
    get_list,
    get_map,
    get_str,
    items,
    mapping,
)
from controlplane.apiserver.strategies.pods.resources import quantity_value
from controlplane.apiserver.strategies.pods.scheduling import TAINT_EFFECTS


def default_node(node: Obj) -> None:
    spec = mapping(node, "spec")
    cidrs, cidr = spec.get("podCIDRs"), spec.get("podCIDR")
    if not cidrs and isinstance(cidr, str) and cidr:
        spec["podCIDRs"] = [cidr]
    elif isinstance(cidrs, list) and cidrs:
        spec["podCIDR"] = cidrs[0]
    _default_status(node)


def _default_status(node: Obj) -> None:
    status = node.get("status")
    capacity = status.get("capacity") if isinstance(status, dict) else None
    if (
        isinstance(status, dict)
        and status.get("allocatable") is None
        and isinstance(capacity, dict)
    ):
        status["allocatable"] = dict(capacity)


def prepare_create(node: Obj, now: datetime) -> None:
    if not isinstance(node.get("status"), dict):
        node["status"] = {}  # a node registers with its status: keep what it sent
    default_node(node)


def prepare_update(node: Obj, old: Obj, now: datetime) -> None:
    default_node(node)


def prepare_status(node: Obj, old: Obj, now: datetime) -> None:
    _default_status(node)


def _go_taint(taint: Obj) -> str:
    if taint.get("timeAdded") is not None:
        return v.format_value(taint)
    fields = ", ".join(
        f"{name}:{v.quote(get_str(taint, key))}"
        for name, key in (("Key", "key"), ("Value", "value"), ("Effect", "effect"))
    )
    return f"core.Taint{{{fields}, TimeAdded:(*v1.Time)(nil)}}"


def _taints(spec: Obj) -> list[Cause]:
    path = "metadata.taints"  # sic: Kubernetes validates spec.taints under this path
    causes = expect_list(spec, "taints", path)
    seen: set[tuple[str, str]] = set()
    for taint_path, taint in items(spec, "taints", path):
        key, effect = get_str(taint, "key"), get_str(taint, "effect")
        causes += v.label_key(taint.get("key", ""), f"{taint_path}.key")
        value = taint.get("value", "")
        problems = v.is_valid_label_value(value) if isinstance(value, str) else ["must be a string"]
        if problems:
            causes.append(v.invalid_value(f"{taint_path}.value", value, detail=";".join(problems)))
        if not effect:
            causes.append(v.required(f"{taint_path}.effect"))
        elif effect not in TAINT_EFFECTS:
            causes.append(v.not_supported(f"{taint_path}.effect", effect, supported=TAINT_EFFECTS))
        if (key, effect) in seen:
            message = (
                f"Duplicate value: {_go_taint(taint)}: taints must be unique by key and effect pair"
            )
            causes.append(Cause(taint_path, v.DUPLICATE, message))
            continue
        seen.add((key, effect))
    return causes


def _pod_cidrs(spec: Obj) -> list[Cause]:
    path = "spec.podCIDRs"
    cidrs = get_list(spec, "podCIDRs")
    causes: list[Cause] = []
    for i, cidr in enumerate(cidrs):
        causes += formats.cidr(cidr, f"{path}[{i}]")
    if len(cidrs) > 1 and not causes:
        families = [ipaddress.ip_network(str(c), strict=False).version for c in cidrs]
        if len(cidrs) > 2 or families[0] == families[1]:
            detail = "may specify no more than one CIDR for each IP family"
            causes.append(v.invalid_value(path, cidrs, detail=detail))
        for i, cidr in enumerate(cidrs):
            if cidr in cidrs[:i]:
                causes.append(v.duplicate(f"{path}[{i}]", cidr))
    return causes


def _resources(node: Obj) -> list[Cause]:
    """k8s ``ValidateNodeResources`` (paths ``status.capacity.<name>``)."""
    status = get_map(node, "status")
    causes: list[Cause] = []
    for kind in ("capacity", "allocatable"):
        for name, value in get_map(status, kind).items():
            causes += quantity_value(name, value, f"status.{kind}.{name}")[1]
    return causes


def _go_address(address: object) -> str:
    if not isinstance(address, dict):
        return v.format_value(address)
    return (
        f"core.NodeAddress{{Type:{v.quote(get_str(address, 'type'))}, "
        f"Address:{v.quote(get_str(address, 'address'))}}}"
    )


def _update(node: Obj, old: Obj) -> list[Cause]:
    causes: list[Cause] = []
    seen: list[object] = []
    for i, address in enumerate(get_list(get_map(node, "status"), "addresses")):
        if address in seen:
            message = f"Duplicate value: {_go_address(address)}"
            causes.append(Cause(f"status.addresses[{i}]", v.DUPLICATE, message))
        seen.append(address)
    spec, old_spec = get_map(node, "spec"), get_map(old, "spec")
    old_cidrs = get_list(old_spec, "podCIDRs")
    if old_cidrs and get_list(spec, "podCIDRs") != old_cidrs:
        detail = 'node updates may not change podCIDR except from "" to valid'
        causes.append(v.forbidden("spec.podCIDRs", detail))
    old_provider = get_str(old_spec, "providerID")
    if old_provider and spec.get("providerID") != old_provider:
        detail = 'node updates may not change providerID except from "" to valid'
        causes.append(v.forbidden("spec.providerID", detail))
    return causes


def validate(node: Obj, old: Obj | None) -> list[Cause]:
    spec = get_map(node, "spec")
    causes = _taints(spec) + _resources(node) + _pod_cidrs(spec)
    causes += expect_bool(spec, "unschedulable", "spec.unschedulable")
    return causes if old is None else causes + _update(node, old)


def validate_status(node: Obj, old: Obj) -> list[Cause]:
    return _resources(node) + _update(node, old)


def register() -> None:
    strategy = kinds.Strategy(
        prepare_create,
        prepare_update,
        validate,
        prepare_status=prepare_status,
        validate_status=validate_status,
    )
    kinds.register("", "Node", strategy)
