"""Request bodies: JSON, YAML or protobuf in, a plain object out, or a clear 4xx.

Limits protect the server: the body size is capped by the HTTP layer (413); JSON nesting
by orjson (1024 levels) and YAML's by a check before parsing; anything that is not one
object is refused with 400.
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml

from api import errors

Obj = dict[str, Any]

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
_MAX_DEPTH = 100


def media_type(content_type: str | None) -> str:
    """The bare media type of a Content-Type header (no parameters); JSON when absent
    (the Python client sends bodies without one)."""
    if not content_type:
        return JSON
    return content_type.split(";", 1)[0].strip().lower()


def parse_object(body: bytes, content_type: str | None) -> Obj:
    kind = media_type(content_type)
    if kind == JSON or kind == "*/*":
        value = parse_json(body)
    elif kind in (YAML, "application/x-yaml", "text/yaml"):
        value = parse_yaml(body)
    elif kind == PROTOBUF:
        from controlplane.apiserver import protobuf

        value = protobuf.decode(body)
    else:
        raise errors.UnsupportedMediaType(
            f"the body of the request was in an unknown format - accepted media types "
            f'include: {JSON}, {YAML}, {PROTOBUF} (got "{kind}")'
        )
    if not isinstance(value, dict):
        raise errors.BadRequest("the request body must be a single object")
    return value


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise errors.BadRequest("the request body is empty; expected a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise errors.BadRequest(f"the request body is not valid JSON: {e}") from e


def parse_yaml(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise errors.BadRequest("the request body is not UTF-8") from e
    if _nesting(text) > _MAX_DEPTH:
        raise errors.BadRequest(f"the request body is nested deeper than {_MAX_DEPTH} levels")
    try:
        documents = list(yaml.safe_load_all(text))
    except (yaml.YAMLError, RecursionError, ValueError) as e:
        raise errors.BadRequest(f"the request body is not valid YAML: {e}") from e
    documents = [d for d in documents if d is not None]
    if len(documents) != 1:
        raise errors.BadRequest("the request body must hold exactly one YAML document")
    return _jsonable(documents[0])


def _nesting(text: str) -> int:
    """An upper bound of the flow nesting ([ and {) in a YAML text, cheap to compute."""
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
    indent = max((len(line) - len(line.lstrip(" ")) for line in text.splitlines()), default=0)
    return max(deepest, indent // 2)


def _jsonable(value: Any) -> Any:
    """YAML may produce dates and non-string keys; the API is JSON."""
    try:
        result: Any = orjson.loads(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))
    except (TypeError, orjson.JSONEncodeError) as e:
        raise errors.BadRequest(f"the request body cannot be represented as JSON: {e}") from e
    return result
