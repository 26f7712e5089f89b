"""Core kinds other than pods: Namespace, Node, Service, Secret, ConfigMap, Event, Lease."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from api.errors import Cause
from controlplane.apiserver import kinds
from controlplane.apiserver.strategies.common import mapping

Obj = dict[str, Any]


def _namespace_create(obj: Obj, now: datetime) -> None:
    spec = mapping(obj, "spec")
    spec["finalizers"] = ["kubernetes"]
    obj["status"] = {"phase": "Active"}


def _node_create(obj: Obj, now: datetime) -> None:
    mapping(obj, "spec")
    obj.setdefault("status", {})  # a node registers with its status


def _service_create(obj: Obj, now: datetime) -> None:
    spec = mapping(obj, "spec")
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
    obj["status"] = {"loadBalancer": {}}


def _secret_create(obj: Obj, now: datetime) -> None:
    obj.setdefault("type", "Opaque")
    _fold_string_data(obj)


def _secret_update(new: Obj, old: Obj, now: datetime) -> None:
    new.setdefault("type", old.get("type", "Opaque"))
    _fold_string_data(new)


def _fold_string_data(obj: Obj) -> None:
    """stringData is write-only: merged into data (base64), never stored."""
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = mapping(obj, "data")
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()


def _validate_secret(obj: Obj, old: Obj | None) -> list[Cause]:
    causes: list[Cause] = []
    data = obj.get("data") or {}
    if not isinstance(data, dict):
        return [Cause("data", "FieldValueInvalid", "must be a map of base64 strings")]
    for k, v in data.items():
        try:
            base64.b64decode(str(v), validate=True)
        except (binascii.Error, ValueError):
            causes.append(Cause(f"data[{k}]", "FieldValueInvalid", "illegal base64 data"))
    if old is not None and old.get("type") != obj.get("type"):
        causes.append(Cause("type", "FieldValueInvalid", "field is immutable"))
    return causes


def _validate_event(obj: Obj, old: Obj | None) -> list[Cause]:
    involved = obj.get("involvedObject")
    if not isinstance(involved, dict):
        return [Cause("involvedObject", "FieldValueRequired", "Required value")]
    return []


def register() -> None:
    kinds.register("", "Namespace", kinds.Strategy(prepare_create=_namespace_create))
    kinds.register("", "Node", kinds.Strategy(prepare_create=_node_create))
    kinds.register("", "Service", kinds.Strategy(prepare_create=_service_create))
    kinds.register("", "Secret", kinds.Strategy(_secret_create, _secret_update, _validate_secret))
    kinds.register("", "Event", kinds.Strategy(validate=_validate_event))
