"""A container's ``env`` and ``envFrom``, as k8s ``ValidateEnv`` and ``ValidateEnvFrom``.

An env var has a name (Kubernetes 1.32's relaxed rule: printable ASCII but ``=``) and at
most one of ``value`` and ``valueFrom``, which names exactly one source. As in
Kubernetes, the ``envFrom`` source errors name the list, not the item.
"""

from __future__ import annotations

from typing import Final

from api import validation as v
from api.errors import Cause
from controlplane.apiserver.strategies import formats
from controlplane.apiserver.strategies.common import Obj, expect_list, items
from controlplane.apiserver.strategies.pods.downward import field_ref, resource_field_ref

_SOURCES: Final = ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")


def validate_env(container: Obj, path: str) -> list[Cause]:
    causes = expect_list(container, "env", path)
    for item_path, env in items(container, "env", path):
        name = env.get("name")
        if not name:
            causes.append(v.required(f"{item_path}.name"))
        else:
            causes += formats.check(name, f"{item_path}.name", formats.is_relaxed_env_var_name)
        value_from = env.get("valueFrom")
        if isinstance(value_from, dict):
            causes += _value_from(value_from, env.get("value"), f"{item_path}.valueFrom")
    return causes


def _value_from(value_from: Obj, value: object, path: str) -> list[Cause]:
    causes: list[Cause] = []
    found = [s for s in _SOURCES if value_from.get(s) is not None]
    for source in found:
        body = value_from[source]
        if not isinstance(body, dict):
            causes.append(v.type_invalid(f"{path}.{source}", body, detail="must be an object"))
        elif source == "fieldRef":
            causes += field_ref(body, f"{path}.fieldRef", volume=False)
        elif source == "resourceFieldRef":
            causes += resource_field_ref(body, f"{path}.resourceFieldRef", volume=False)
        else:
            causes += _key_selector(body, f"{path}.{source}")
    if not found:
        detail = (
            "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or "
            "`secretKeyRef`"
        )
        causes.append(v.invalid_value(path, "", detail=detail))
    elif value:
        causes.append(
            v.invalid_value(path, "", detail="may not be specified when `value` is not empty")
        )
    elif len(found) > 1:
        detail = "may not have more than one field specified at a time"
        causes.append(v.invalid_value(path, "", detail=detail))
    return causes


def _key_selector(selector: Obj, path: str) -> list[Cause]:
    """configMapKeyRef / secretKeyRef: a name (checked even when empty, as k8s does) and a
    config key."""
    name = selector.get("name", "")
    causes = formats.check(name, f"{path}.name", lambda n: v.name_is_dns_subdomain(n, False))
    key = selector.get("key")
    if not key:
        causes.append(v.required(f"{path}.key"))
    else:
        causes += formats.check(key, f"{path}.key", formats.is_config_key)
    return causes


def validate_env_from(container: Obj, path: str) -> list[Cause]:
    causes = expect_list(container, "envFrom", path)
    for item_path, source in items(container, "envFrom", path):
        prefix = source.get("prefix")
        if prefix:
            causes += formats.check(prefix, f"{item_path}.prefix", formats.is_relaxed_env_var_name)
        found = [k for k in ("configMapRef", "secretRef") if source.get(k) is not None]
        for kind in found:
            ref = source[kind]
            name = ref.get("name") if isinstance(ref, dict) else None
            ref_path = f"{item_path}.{kind}.name"
            if not name:
                causes.append(v.required(ref_path))
            else:
                causes += formats.check(name, ref_path, lambda n: v.name_is_dns_subdomain(n, True))
        if not found:
            detail = "must specify one of: `configMapRef` or `secretRef`"
            causes.append(v.invalid_value(path, "", detail=detail))
        elif len(found) > 1:
            detail = "may not have more than one field specified at a time"
            causes.append(v.invalid_value(path, "", detail=detail))
    return causes
