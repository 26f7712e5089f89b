"""A container's ``resources``, as k8s ``ValidateContainerResourceRequirements``.

Names must be standard container resources (cpu, memory, ephemeral-storage,
hugepages-*) or fully qualified extended resources; quantities must parse and not be
negative, and extended resources must be whole numbers. A request may not exceed its
limit, and resources that cannot be overcommitted (hugepages, extended resources) need a
limit equal to the request. As in Kubernetes, request errors name the ``requests`` map.
"""

from __future__ import annotations

from typing import Final

from api import validation as v
from api.errors import Cause
from api.quantity import Quantity, QuantityError, parse_quantity
from controlplane.apiserver.strategies.common import Obj, expect_map, get_map

_CONTAINER_RESOURCES: Final = frozenset({"cpu", "memory", "ephemeral-storage"})
# k8s helper.standardResources: names that need no domain (quota names included).
_STANDARD: Final = _CONTAINER_RESOURCES | {
    "requests.cpu", "requests.memory", "requests.ephemeral-storage", "limits.cpu",
    "limits.memory", "limits.ephemeral-storage", "pods", "services", "replicationcontrollers",
    "resourcequotas", "secrets", "persistentvolumeclaims", "storage", "requests.storage",
    "services.nodeports", "services.loadbalancers",
}  # fmt: skip
_INTEGER: Final = frozenset({
    "pods", "services", "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
    "persistentvolumeclaims", "services.nodeports", "services.loadbalancers",
})  # fmt: skip


def is_hugepages(name: str) -> bool:
    return name.startswith("hugepages-")


def is_native(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def is_extended(name: str) -> bool:
    """k8s ``IsExtendedResourceName``: a domain-qualified, non-kubernetes.io name."""
    if is_native(name) or name.startswith("requests."):
        return False
    return not v.is_qualified_name("requests." + name)


def overcommit_allowed(name: str) -> bool:
    return is_native(name) and not is_hugepages(name)


def resource_name(name: str, path: str) -> list[Cause]:
    """k8s ``validateContainerResourceName``."""
    causes = [v.invalid_value(path, name, detail=m) for m in v.is_qualified_name(name)]
    if causes:
        return causes
    if "/" not in name:
        if name not in _STANDARD and not is_hugepages(name):
            detail = "must be a standard resource type or fully qualified"
            causes.append(v.invalid_value(path, name, detail=detail))
        if name not in _CONTAINER_RESOURCES and not is_hugepages(name):
            detail = "must be a standard resource for containers"
            causes.append(v.invalid_value(path, name, detail=detail))
    elif not is_native(name) and not is_extended(name):
        detail = "doesn't follow extended resource name standard"
        causes.append(v.invalid_value(path, name, detail=detail))
    return causes


def quantity_value(name: str, value: object, path: str) -> tuple[Quantity | None, list[Cause]]:
    """k8s ``ValidateResourceQuantityValue``: the parsed quantity and its problems."""
    causes = v.quantity(value, path)
    if causes:
        return None, causes
    assert isinstance(value, str | int | float)
    q = parse_quantity(value.strip() if isinstance(value, str) else repr(value))
    if (name in _INTEGER or is_extended(name)) and q.nanos % 10**9:
        causes.append(v.invalid_value(path, str(q), detail="must be an integer"))
    return q, causes


def validate_resources(container: Obj, path: str) -> list[Cause]:
    causes = expect_map(container, "resources", path)
    resources = get_map(container, "resources")
    causes += expect_map(resources, "limits", f"{path}.limits")
    causes += expect_map(resources, "requests", f"{path}.requests")
    limits: dict[str, Quantity] = {}
    for name, value in get_map(resources, "limits").items():
        field = f"{path}.limits[{name}]"
        q, errs = quantity_value(name, value, field)
        causes += resource_name(name, field) + errs
        if q is not None:
            limits[name] = q
    compute = any(n in ("cpu", "memory") for n in limits)
    hugepages = any(is_hugepages(n) for n in limits)
    for name, value in get_map(resources, "requests").items():
        field = f"{path}.requests[{name}]"
        q, errs = quantity_value(name, value, field)
        causes += resource_name(name, field) + errs
        compute = compute or name in ("cpu", "memory")
        hugepages = hugepages or is_hugepages(name)
        if q is None:
            continue
        limit = limits.get(name)
        if limit is not None:
            if q != limit and not overcommit_allowed(name):
                detail = f"must be equal to {name} limit of {limit}"
                causes.append(v.invalid_value(f"{path}.requests", str(q), detail=detail))
            elif q > limit:
                detail = f"must be less than or equal to {name} limit of {limit}"
                causes.append(v.invalid_value(f"{path}.requests", str(q), detail=detail))
        elif not overcommit_allowed(name) and name not in get_map(resources, "limits"):
            detail = "Limit must be set for non overcommitable resources"
            causes.append(v.required(f"{path}.limits", detail))
    if hugepages and not compute:
        causes.append(v.forbidden(path, "HugePages require cpu or memory"))
    return causes


def parsed(value: object) -> Quantity | None:
    """A quantity, or None for anything that is not one."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        return parse_quantity(value.strip() if isinstance(value, str) else repr(value))
    except QuantityError:
        return None
