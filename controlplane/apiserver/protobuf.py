"""Kubernetes protobuf request bodies, decoded into the JSON objects they stand for.

kubectl 1.32 sends ``application/vnd.kubernetes.protobuf`` bodies for ``kubectl create
<generator>`` (deployment, namespace, configmap, secret, job, cronjob, service ...) and
for drain's DELETE fallback (DeleteOptions), and does not fall back to JSON on a 415.
``decode`` turns such a body into the dict the same command would have sent as JSON, so
the rest of the apiserver only ever sees JSON objects.

The body is the magic ``k8s\\x00`` and a ``runtime.Unknown``::

    1: typeMeta {1: apiVersion, 2: kind}
    2: raw              the object, a gogo-protobuf message (schema in protobuf_schema.py)
    3: contentEncoding  always "" from kubectl; anything else is refused
    4: contentType

The walker below is generic; everything kind-specific is a table in ``protobuf_schema``.
Fields a table does not know (a newer client's) are skipped, as a real apiserver with an
older schema would. A singular field seen twice keeps its last value.

Errors (from ``api.errors``), never anything else, whatever the bytes::

    BadRequest            no ``k8s\\x00`` magic, or malformed: a truncated varint, a length
                          past the end, a wrong wire type, invalid UTF-8, nesting too deep
    UnsupportedMediaType  well formed, but a kind (or content encoding) with no schema here
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

from api.errors import BadRequest, UnsupportedMediaType
from controlplane.apiserver.protobuf_schema import (
    BOOL,
    BYTES,
    INT,
    JSON_FORMS,
    KINDS,
    MESSAGES,
    SCALARS,
    STRING,
    Field,
)

CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_U64 = (1 << 64) - 1
# The schema is acyclic and about 15 messages deep at most (CronJob -> ... -> affinity ->
# matchExpressions); the bound is a second guard, not a limit anyone should meet.
_MAX_DEPTH = 32

Raw = int | bytes


def decode(body: bytes) -> dict[str, Any]:
    """The JSON object of a protobuf request body: ``{"kind", "apiVersion", ...}``."""
    if not body.startswith(MAGIC):
        raise BadRequest(
            f"the request body is not {CONTENT_TYPE} (it must start with k8s\\x00); "
            "send JSON with Content-Type: application/json instead"
        )
    type_meta: dict[str, Any] = {}
    raw, encoding = b"", ""
    for number, wire, value in _fields(body[len(MAGIC) :], "envelope"):
        if number == 1:
            where = "envelope.typeMeta"
            type_meta = _message(_as_bytes(value, wire, where), "TypeMeta", where, 1)
        elif number == 2:
            raw = _as_bytes(value, wire, "envelope.raw")
        elif number == 3:
            encoding = _value(value, wire, STRING, "envelope.contentEncoding", 1)
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    if not api_version or not kind:
        raise BadRequest(
            "the protobuf request body does not say what it holds (no apiVersion or kind "
            "in its envelope); send it as JSON instead"
        )
    if encoding:
        raise UnsupportedMediaType(
            f"the protobuf request body uses content encoding {encoding!r}, which bramble "
            "does not read; send it unencoded, or as JSON"
        )
    message = KINDS.get((api_version, kind))
    if message is None:
        raise UnsupportedMediaType(
            f"bramble cannot read {kind} ({api_version}) as protobuf; send it as JSON "
            "(Content-Type: application/json), e.g. with kubectl apply -f or create -f"
        )
    return {"kind": kind, "apiVersion": api_version, **_message(raw, message, kind, 1)}


def _message(buf: bytes, name: str, path: str, depth: int) -> dict[str, Any]:
    if depth > _MAX_DEPTH:
        raise _malformed(path, f"messages are nested more than {_MAX_DEPTH} deep")
    schema = MESSAGES[name]
    out: dict[str, Any] = {}
    for number, wire, raw in _fields(buf, path):
        field = schema.get(number)
        if field is None:
            continue  # a newer client's field, or one this table leaves out on purpose
        where = f"{path}.{field.json}" if field.json else path
        if field.embedded:
            out.update(_message(_as_bytes(raw, wire, where), field.type, path, depth + 1))
        elif field.map_value is not None:
            entries = out.setdefault(field.json, {})
            key, value = _map_entry(_as_bytes(raw, wire, where), field.map_value, where, depth)
            entries[key] = value
        elif field.repeated:
            items = out.setdefault(field.json, [])
            items.extend(_elements(raw, wire, field, f"{where}[{len(items)}]", depth))
        else:
            value = _value(raw, wire, field.type, where, depth)
            if _omitted(field, value):
                out.pop(field.json, None)
            else:
                out[field.json] = value
    return out


def _omitted(field: Field, value: Any) -> bool:
    # gogo writes non-pointer scalars even when empty; JSON omits them (omitempty). A
    # message is always kept: a non-pointer struct prints as {} in JSON too. None is a
    # zero Time, which JSON prints as null.
    if value is None:
        return True
    return field.type in SCALARS and not field.ptr and value in ("", 0)


def _elements(raw: Raw, wire: int, field: Field, where: str, depth: int) -> list[Any]:
    if wire == _LEN and field.type in (INT, BOOL):
        # A packed repeated scalar: gogo writes proto2's unpacked form, but both are legal.
        data = _as_bytes(raw, wire, where)
        values: list[Any] = []
        pos = 0
        while pos < len(data):
            number, pos = _varint(data, pos, where)
            values.append(_value(number, _VARINT, field.type, where, depth))
        return values
    return [_value(raw, wire, field.type, where, depth)]


def _map_entry(buf: bytes, value_type: str, where: str, depth: int) -> tuple[str, Any]:
    key: str = ""
    value: Any = None
    for number, wire, raw in _fields(buf, where):
        if number == 1:
            key = _value(raw, wire, STRING, where, depth)
        elif number == 2:
            value = _value(raw, wire, value_type, f"{where}[{key}]", depth)
    if value is None:  # an entry may leave out an empty value: "", or a zero Quantity
        value = _value(b"", _LEN, value_type, f"{where}[{key}]", depth)
    return key, value


def _value(raw: Raw, wire: int, type_name: str, where: str, depth: int) -> Any:
    """One value of a scalar type, or of a message (as its JSON form)."""
    if type_name == INT:
        number = _as_int(raw, wire, where)
        return number - (1 << 64) if number >= 1 << 63 else number  # two's complement
    if type_name == BOOL:
        return _as_int(raw, wire, where) != 0
    data = _as_bytes(raw, wire, where)
    if type_name == STRING:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise _malformed(where, "a string is not valid UTF-8") from e
    if type_name == BYTES:
        return base64.b64encode(data).decode("ascii")
    fields = _message(data, type_name, where, depth + 1)
    form = JSON_FORMS.get(type_name)
    if form is None:
        return fields
    try:
        return form(fields)
    except (ValueError, OverflowError, OSError) as e:  # e.g. a Time past year 9999
        raise _malformed(where, f"not a valid {type_name}: {e}") from e


def _as_int(raw: Raw, wire: int, where: str) -> int:
    if wire != _VARINT or not isinstance(raw, int):
        raise _malformed(where, f"expected a varint, found wire type {wire}")
    return raw


def _as_bytes(raw: Raw, wire: int, where: str) -> bytes:
    if wire != _LEN or not isinstance(raw, bytes):
        raise _malformed(where, f"expected a length-delimited field, found wire type {wire}")
    return raw


def _fields(buf: bytes, path: str) -> Iterator[tuple[int, int, Raw]]:
    """(field number, wire type, value) for each field of one message's bytes."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos, path)
        number, wire = key >> 3, key & 7
        if not 0 < number < 1 << 29:
            raise _malformed(path, f"field number {number} is out of range")
        value: Raw
        if wire == _VARINT:
            value, pos = _varint(buf, pos, path)
        elif wire == _LEN:
            size, pos = _varint(buf, pos, path)
            if size > end - pos:
                raise _malformed(path, f"field {number} claims {size} bytes; {end - pos} remain")
            value, pos = buf[pos : pos + size], pos + size
        elif wire in (_I64, _I32):
            size = 8 if wire == _I64 else 4
            if size > end - pos:
                raise _malformed(path, f"field {number} is cut short")
            value, pos = int.from_bytes(buf[pos : pos + size], "little"), pos + size
        else:  # 3 and 4 are proto2 groups, which Kubernetes never uses; 6 and 7 do not exist
            raise _malformed(path, f"field {number} has wire type {wire}")
        yield number, wire, value


def _varint(buf: bytes, pos: int, path: str) -> tuple[int, int]:
    result = shift = 0
    for i in range(pos, min(pos + 10, len(buf))):
        byte = buf[i]
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & _U64, i + 1
        shift += 7
    if len(buf) - pos >= 10:
        raise _malformed(path, "a varint is longer than 10 bytes")
    raise _malformed(path, "the body ends inside a varint")


def _malformed(path: str, detail: str) -> BadRequest:
    where = f" at {path}" if path else ""
    return BadRequest(
        f"the protobuf request body is malformed{where}: {detail}; "
        "send it as JSON (Content-Type: application/json) instead"
    )
