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
    return unknown_fields_of(resource.api_version, resource.kind, obj)


def unknown_fields_of(api_version: str, kind: str, obj: object) -> list[str]:
    """``unknown_fields`` for a body that is not the URL's resource (a Scale, a Binding)."""
    root = root_type(api_version, kind)
    if root is None:
        return []
    return [path.removeprefix(".") for path in _unknown(obj, root, schema().types)]


_NONE: list[str] = []  # "nothing unknown here", shared: never appended to


def _unknown(value: object, ref: str, types: dict[str, dict[str, str]]) -> list[str]:
    """The unknown fields under ``value`` (of type ``ref``) as path suffixes (``.spec.x``,
    ``[0].y``). Every request body passes through here and nearly all have none, so
    paths are built only on the way back up from a find, and scalars are not visited."""
    found = _NONE
    if ref[0] == "[":
        if isinstance(value, list):
            inner = ref[1:-1]
            for i, item in enumerate(value):
                if isinstance(item, dict | list) and (sub := _unknown(item, inner, types)):
                    found = found or []
                    found += [f"[{i}]{path}" for path in sub]
        return found
    if ref[0] == "{":
        if isinstance(value, dict):
            inner = ref[1:-1]
            for key, item in value.items():
                if isinstance(item, dict | list) and (sub := _unknown(item, inner, types)):
                    found = found or []
                    found += [f".{key}{path}" for path in sub]
        return found
    fields = types.get(ref)
    if fields is None or not isinstance(value, dict):
        return found  # a scalar, "any", or a type mismatch (validation's business)
    for key, item in value.items():
        field_type = fields.get(key)
        if field_type is None:
            found = found or []
            found.append(f".{key}")
        elif isinstance(item, dict | list) and (sub := _unknown(item, field_type, types)):
            found = found or []
            found += [f".{key}{path}" for path in sub]
    return found


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


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
_NOT_DECODED: object = object()  # duplicate_fields' "decode the body yourself"


def duplicate_fields(body: bytes, decoded: object = _NOT_DECODED) -> list[str]:
    """Paths of the keys a JSON body repeats (``spec.replicas``); [] for a body that is
    not JSON (YAML, protobuf), whose decoders keep no such record. ``decoded``: the body
    as the request's handler already decoded it (else it is decoded here).

    Most bodies repeat nothing, which is proved cheaply: if the body has no more key
    ends than its decoded objects have keys, no key can be there twice. Only otherwise
    is it decoded again, keeping every pair."""
    if decoded is _NOT_DECODED:
        try:
            decoded = orjson.loads(body)
        except orjson.JSONDecodeError:
            decoded = _NOT_DECODED
    if decoded is not _NOT_DECODED and len(_KEY_END.findall(body)) == _count_keys(decoded):
        return []
    try:
        decoded = json.loads(body, object_pairs_hook=_pairs)
    except (ValueError, UnicodeDecodeError):
        return []
    found: list[str] = []
    _duplicates(decoded, "", found)
    return found


def _count_keys(value: object) -> int:
    """The keys of every object in a decoded body (a loop, not recursion: a body may
    nest deeper than Python's stack)."""
    count = 0
    stack = [value]
    pop, push = stack.pop, stack.append
    while stack:
        item = pop()
        if type(item) is dict:
            count += len(item)
            for inner in item.values():
                if type(inner) is dict or type(inner) is list:
                    push(inner)
        elif type(item) is list:
            for inner in item:
                if type(inner) is dict or type(inner) is list:
                    push(inner)
    return count


def _duplicates(value: object, path: str, found: list[str]) -> None:
    if isinstance(value, _Object):
        found.extend(_join(path, key) for key in value.duplicates)
        for key, item in value.items():
            _duplicates(item, _join(path, key), found)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _duplicates(item, f"{path}[{i}]", found)
