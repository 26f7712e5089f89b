"""JSON values as the patch functions see them, and the limits that keep them safe.

Every patch function works on plain JSON (dict, list, str, int, float, bool, None). The
helpers here are iterative or depth-bounded so that no input, however deep, can raise
``RecursionError``: callers check :func:`check_depth` first, and the recursive merges
then stay far below Python's recursion limit.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import orjson

from api import errors

JsonValue: TypeAlias = "dict[str, JsonValue] | list[JsonValue] | str | int | float | bool | None"
JsonObject: TypeAlias = dict[str, Any]

# Kubernetes objects nest about 15 levels (a CRD's openAPIV3Schema a few dozen). 100 is
# generous for them and keeps the merges, which recurse two or three frames per level,
# far below Python's default recursion limit of 1000.
MAX_DEPTH = 100


def depth_exceeds(value: JsonValue, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` nests more than ``limit`` objects/arrays deep (``{}`` is 1)."""
    stack: list[tuple[JsonValue, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list[JsonValue] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def check_depth(value: JsonValue, what: str) -> None:
    """Raise BadRequest when ``value`` (described by ``what``) nests too deeply."""
    if depth_exceeds(value):
        raise errors.BadRequest(
            f"{what} is nested more than {MAX_DEPTH} levels deep; "
            "Kubernetes objects never need that many, so it is refused"
        )


def clone(value: JsonValue) -> JsonValue:
    """A deep copy of a JSON value (faster than ``copy.deepcopy`` for plain JSON)."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def clone_object(value: JsonObject) -> JsonObject:
    """A deep copy of a JSON object."""
    return {k: clone(v) for k, v in value.items()}


def identity(value: JsonValue) -> tuple[str, object]:
    """A hashable identity with JSON's notion of equality for scalars.

    Python says ``True == 1 == 1.0``; Kubernetes (Go, decoding integers as int64) tells
    all three apart, so the type is part of the identity. Objects and arrays, which only
    a malformed patch uses as merge-key values, are identified by their canonical JSON.
    """
    if isinstance(value, dict | list):
        try:
            return ("json", orjson.dumps(value, option=orjson.OPT_SORT_KEYS))
        except (TypeError, orjson.JSONEncodeError):
            return ("repr", repr(value))
    return (type(value).__name__, value)


def describe(value: JsonValue) -> str:
    """A short JSON rendering of ``value`` for error messages."""
    try:
        text = orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
