"""Unknown and duplicate fields in a request body, against the generated schema.

``fields.json`` (written by ``scripts/gen-schema`` from the ``kubernetes`` client's
models) lists every field of every model; it is read once, on first use. Paths are
Kubernetes' (``spec.template.spec.containers[0].imagePulPolicy``); maps and free-form
objects (labels, annotations, data, capacity, IntOrString, RawExtension) take any key.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson

from api.resources import Resource


@dataclass(frozen=True, slots=True)
class Schema:
    kinds: dict[str, str]  # "apps/v1/Deployment" -> model
    types: dict[str, dict[str, str]]  # model -> JSON field -> type


@functools.cache
def schema() -> Schema:
    text = resources.files(__package__).joinpath("fields.json").read_text(encoding="utf-8")
    data = json.loads(text)
    return Schema(kinds=data["kinds"], types=data["types"])


def root_type(api_version: str, kind: str) -> str | None:
    return schema().kinds.get(f"{api_version}/{kind}")


def unknown_fields(resource: Resource, obj: object) -> list[str]:
    """Paths of the fields of ``obj`` that ``resource``'s kind does not have, in
    document order; [] for kinds without a schema (metrics)."""
    root = root_type(resource.api_version, resource.kind)
    found: list[str] = []
    if root is not None:
        _walk(obj, root, "", found, schema().types)
    return found


def unknown_fields_of(api_version: str, kind: str, obj: object) -> list[str]:
    """``unknown_fields`` for a body that is not the URL's resource (a Scale, a Binding)."""
    root = root_type(api_version, kind)
    found: list[str] = []
    if root is not None:
        _walk(obj, root, "", found, schema().types)
    return found


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _walk(value: object, ref: str, path: str, found: list[str], types: dict[str, Any]) -> None:
    if ref.startswith("["):
        if isinstance(value, list):
            for i, item in enumerate(value):
                _walk(item, ref[1:-1], f"{path}[{i}]", found, types)
        return
    if ref.startswith("{"):
        if isinstance(value, dict):
            for key, item in value.items():
                _walk(item, ref[1:-1], _join(path, str(key)), found, types)
        return
    fields = types.get(ref)
    if fields is None or not isinstance(value, dict):
        return  # a scalar, "any", or a type mismatch (validation's business)
    for key, item in value.items():
        field_type = fields.get(key)
        if field_type is None:
            found.append(_join(path, str(key)))
        else:
            _walk(item, field_type, _join(path, key), found, types)


class _Object(dict[str, Any]):
    """A decoded JSON object that remembers the keys it saw more than once."""

    duplicates: list[str]


def _pairs(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object()
    obj.duplicates = []
    for key, value in pairs:
        if key in obj and key not in obj.duplicates:
            obj.duplicates.append(key)
        obj[key] = value
    return obj


# The end of a JSON key: a closing quote, maybe blanks, a colon. Every key of a body ends
# so; inside a string a quote is escaped, so the pattern can match there too (in an
# annotation holding JSON, say) but never fewer times than there are keys.
_KEY_END = re.compile(rb'"\s*:')


def duplicate_fields(body: bytes) -> list[str]:
    """Paths of the keys a JSON body repeats (``spec.replicas``); [] for a body that is
    not JSON (YAML, protobuf), whose decoders keep no such record.

    Most bodies repeat nothing, which is proved cheaply: if the body has no more key
    ends than its decoded objects have keys, no key can be there twice. Only otherwise
    is it decoded again, keeping every pair."""
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    else:
        if len(_KEY_END.findall(body)) == _count_keys(decoded):
            return []
    try:
        decoded = json.loads(body, object_pairs_hook=_pairs)
    except (ValueError, UnicodeDecodeError):
        return []
    found: list[str] = []
    _duplicates(decoded, "", found)
    return found


def _count_keys(value: object) -> int:
    count = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            count += len(item)
            stack.extend(v for v in item.values() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, (dict, list)))
    return count


def _duplicates(value: object, path: str, found: list[str]) -> None:
    if isinstance(value, _Object):
        found.extend(_join(path, key) for key in value.duplicates)
        for key, item in value.items():
            _duplicates(item, _join(path, key), found)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _duplicates(item, f"{path}[{i}]", found)
