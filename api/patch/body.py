"""Patch request bodies: bytes in, a JSON value out, or a BadRequest that says why.

JSON is read by orjson (strict RFC 8259: no NaN, no trailing commas, 64-bit integers).
YAML, only for apply patches, is read the way Kubernetes reads it (sigs.k8s.io/yaml
turns YAML into JSON): timestamps stay strings, keys become strings, and values JSON
cannot hold (binary, sets, infinities) are refused. A YAML alias can stand for a big
subtree in a few bytes, so the expanded document may hold at most about one value per
byte of the body (no real manifest comes near; a "billion laughs" body stops there).
"""

from __future__ import annotations

import math
from typing import Final

import orjson
import yaml

from api import errors
from api.patch.jsonvalue import MAX_DEPTH, JsonValue, check_depth

# Go decodes JSON integers into int64 (uint64 for large positive ones); larger cannot
# round-trip through the apiserver, nor through orjson when bramble stores the object.
_INT_RANGE: Final = range(-(2**63), 2**64)
_TIMESTAMP: Final = "tag:yaml.org,2002:timestamp"


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader without its timestamp resolver (see the module docstring)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_json(body: bytes, expected: str) -> JsonValue:
    """The JSON value of ``body``; ``expected`` names what it should be, for messages
    (e.g. "a JSON object (a strategic merge patch)")."""
    text = _text(body, expected)
    try:
        value: JsonValue = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise errors.BadRequest(
            f"the request body is not valid JSON ({e}); expected {expected}"
        ) from e
    check_depth(value, "the request body")
    return value


def parse_yaml(body: bytes, expected: str) -> JsonValue:
    """The value of a YAML (or JSON, which is YAML) ``body``."""
    text = _text(body, expected)
    try:
        # kubectl sends JSON; orjson reads it faster, and exactly as Go does.
        value: JsonValue = orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    else:
        check_depth(value, "the request body")
        return value
    try:
        loaded: object = yaml.load(text, Loader=_Loader)  # a SafeLoader: no Python objects
    except yaml.YAMLError as e:
        raise errors.BadRequest(
            f"the request body is not valid YAML or JSON ({e}); expected {expected}"
        ) from e
    except RecursionError as e:
        raise _too_deep() from e
    return _to_json(loaded, 1, _Budget(len(text) + 1000))


def _text(body: bytes, expected: str) -> str:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise errors.BadRequest(
            f"the request body is not valid UTF-8 (byte {e.start} is not); expected {expected}"
        ) from e
    if not text.strip():
        raise errors.BadRequest(f"the request body is empty; expected {expected}")
    return text


class _Budget:
    """How many more values the converted YAML document may hold."""

    def __init__(self, values: int) -> None:
        self.left = values

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise errors.BadRequest(
                "the YAML body expands (through aliases) to far more values than its size "
                "allows; write the document out without aliases"
            )


def _to_json(value: object, depth: int, budget: _Budget) -> JsonValue:
    """``value`` as loaded by PyYAML, checked and converted to plain JSON."""
    budget.spend()
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if value not in _INT_RANGE:
            raise errors.BadRequest(f"the integer {value} in the request body is out of range")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise errors.BadRequest(f"the request body holds {value}, which JSON cannot hold")
        return value
    if isinstance(value, dict | list) and depth > MAX_DEPTH:
        raise _too_deep()
    if isinstance(value, dict):
        return {_key(k): _to_json(v, depth + 1, budget) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_json(v, depth + 1, budget) for v in value]
    raise errors.BadRequest(
        f"the request body holds a YAML {type(value).__name__} value, which JSON cannot "
        "hold; quote it to make it a string"
    )


def _key(key: object) -> str:
    """YAML allows non-string keys; JSON, and so Kubernetes, turns them into strings."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, int | float):
        return repr(key)
    raise errors.BadRequest(
        f"the request body uses a YAML {type(key).__name__} as a key; keys must be strings"
    )


def _too_deep() -> errors.BadRequest:
    return errors.BadRequest(
        f"the request body is nested more than {MAX_DEPTH} levels deep; "
        "Kubernetes objects never need that many, so it is refused"
    )
