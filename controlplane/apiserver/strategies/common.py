"""Rules every kind shares: metadata validation, and helpers for the kinds' rules."""

from __future__ import annotations

from typing import Any

from api import validation
from api.errors import Cause
from api.resources import Resource

Obj = dict[str, Any]


def validate_metadata(resource: Resource, obj: Obj, old: Obj | None) -> list[Cause]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return [Cause("metadata", "FieldValueRequired", "Required value")]
    return validation.object_meta(meta, namespaced=resource.namespaced)


def mapping(obj: Obj, key: str) -> dict[str, Any]:
    """``obj[key]`` as a dict, created empty if missing or not a dict."""
    value = obj.get(key)
    if not isinstance(value, dict):
        value = {}
        obj[key] = value
    return value
