"""Downward API references (``fieldRef``, ``resourceFieldRef``) in env vars and volumes,
as k8s ``validateObjectFieldSelector`` and ``validateContainerResourceFieldSelector``."""

from __future__ import annotations

import re
from typing import Final

from api import validation as v
from api.errors import Cause
from api.quantity import QuantityError, parse_quantity
from controlplane.apiserver.strategies.common import Obj

# What k8s' ConvertDownwardAPIFieldLabel accepts for v1 at all...
_CONVERTIBLE: Final = frozenset({
    "metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace",
    "metadata.uid", "spec.nodeName", "spec.restartPolicy", "spec.serviceAccountName",
    "spec.schedulerName", "status.phase", "status.hostIP", "status.hostIPs", "status.podIP",
    "status.podIPs",
})  # fmt: skip
# ...and what each use supports.
ENV_FIELDS: Final = (
    "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
    "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP",
    "status.podIPs",
)  # fmt: skip
VOLUME_FIELDS: Final = (
    "metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace",
    "metadata.uid",
)  # fmt: skip
RESOURCE_FIELDS: Final = (
    "limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu",
    "requests.ephemeral-storage", "requests.memory",
)  # fmt: skip
_SUBSCRIPTED: Final = re.compile(r"(metadata\.[a-z]+)\['(.*)'\]")
_BYTE_DIVISORS: Final = (
    "1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei",
)  # fmt: skip


def field_ref(ref: Obj, path: str, *, volume: bool) -> list[Cause]:
    if not ref.get("apiVersion"):
        return [v.required(f"{path}.apiVersion")]
    field_path = ref.get("fieldPath")
    if not field_path:
        return [v.required(f"{path}.fieldPath")]
    if not isinstance(field_path, str):
        return [v.type_invalid(f"{path}.fieldPath", field_path, detail="must be a string")]
    subscripted = _SUBSCRIPTED.fullmatch(field_path)
    base = subscripted.group(1) if subscripted else field_path
    if base not in _CONVERTIBLE:
        detail = f"error converting fieldPath: field label not supported: {base}"
        return [v.invalid_value(f"{path}.fieldPath", field_path, detail=detail)]
    if subscripted:
        key = subscripted.group(2)
        if base == "metadata.annotations":
            return v.qualified_name(key.lower(), path)
        if base == "metadata.labels":
            return v.qualified_name(key, path)
        return [v.invalid_value(path, base, detail="does not support subscript")]
    supported = VOLUME_FIELDS if volume else ENV_FIELDS
    if base not in supported:
        return [v.not_supported(f"{path}.fieldPath", base, supported=supported)]
    return []


def resource_field_ref(ref: Obj, path: str, *, volume: bool) -> list[Cause]:
    causes: list[Cause] = []
    resource = ref.get("resource")
    if volume and not ref.get("containerName"):
        causes.append(v.required(f"{path}.containerName"))
    elif not resource:
        causes.append(v.required(f"{path}.resource"))
    elif resource not in RESOURCE_FIELDS and not str(resource).startswith(
        ("requests.hugepages-", "limits.hugepages-")
    ):
        causes.append(v.not_supported(f"{path}.resource", resource, supported=RESOURCE_FIELDS))
    return causes + _divisor(str(resource or ""), ref.get("divisor"), path)


def _divisor(resource: str, divisor: object, path: str) -> list[Cause]:
    if divisor is None:
        return []
    try:
        shown = str(parse_quantity(str(divisor).strip()))
    except QuantityError as e:
        return [v.invalid_value(f"{path}.divisor", divisor, detail=str(e))]
    if shown == "0":
        return []
    name = resource.split(".", 1)[-1]
    if name == "cpu":
        allowed: tuple[str, ...] = ("1m", "1")
        detail = "only divisor's values 1m and 1 are supported with the cpu resource"
    elif name in ("memory", "ephemeral-storage") or name.startswith("hugepages-"):
        allowed = _BYTE_DIVISORS
        what = {"memory": "memory", "ephemeral-storage": "local ephemeral storage"}.get(
            name, "hugepages"
        )
        detail = (
            f"only divisor's values {', '.join(_BYTE_DIVISORS)} are supported with the "
            f"{what} resource"
        )
    else:
        return []
    if shown in allowed:
        return []
    return [v.invalid_value(f"{path}.divisor", resource, detail=detail)]
