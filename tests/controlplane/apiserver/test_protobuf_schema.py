"""The protobuf tables against the .proto descriptors compiled into kubectl 1.32.

gogo-protobuf registers each ``generated.proto`` as a gzipped FileDescriptorProto, so the
kubectl binary carries the exact schema it encodes with. Every table's field numbers,
names, types and repetition must match it; which Go fields are pointers the descriptors
cannot say, and test_protobuf_kubectl.py checks those against real bodies.
"""

from __future__ import annotations

import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# The decoder's own wire walker reads the descriptors too.
from controlplane.apiserver.protobuf import _fields
from controlplane.apiserver.protobuf_schema import (
    BOOL,
    BYTES,
    INT,
    KINDS,
    MESSAGES,
    SERVER_OWNED,
    STRING,
    Field,
)
from tests.support.real import require_binary

pytestmark = pytest.mark.real("kubectl")


# FieldDescriptorProto.type values: string, int64, int32, bool, bytes, message.
_PROTO_TYPES = {STRING: {9}, INT: {3, 5}, BOOL: {8}, BYTES: {12}}
_MESSAGE = 11
_PACKAGES = {"v1": "k8s.io.api.core.v1", "apps/v1": "k8s.io.api.apps.v1",
             "batch/v1": "k8s.io.api.batch.v1"}  # fmt: skip
_META = "k8s.io.apimachinery.pkg.apis.meta.v1"


@dataclass(frozen=True)
class ProtoField:
    name: str
    repeated: bool
    type: int
    type_name: str


def test_every_table_matches_the_proto_kubectl_was_built_from() -> None:
    """Field numbers, names, types and repetition of every table, checked against the
    FileDescriptorProtos (gzipped, as gogo registers them) inside the kubectl binary."""
    require_binary("kubectl", package="kubectl")
    binary = Path(os.path.realpath("/usr/bin/kubectl")).parent / "kubectl.1.32"
    if not binary.exists():
        pytest.skip(f"{binary} is not installed (the gcloud kubectl dispatcher's 1.32)")
    proto = _descriptors(binary.read_bytes())
    roots = [("TypeMeta", "k8s.io.apimachinery.pkg.runtime.TypeMeta")] + [
        (message, f"{_META if kind == 'DeleteOptions' else _PACKAGES[version]}.{kind}")
        for (version, kind), message in KINDS.items()
    ]
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    for message, proto_name in roots:
        _compare(message, proto_name, proto, problems, seen)
    assert problems == []
    assert {m for m, _ in seen} == set(MESSAGES), "tables no kind reaches"


def _compare(
    message: str,
    proto_name: str,
    proto: dict[str, dict[int, ProtoField]],
    problems: list[str],
    seen: set[tuple[str, str]],
) -> None:
    if (message, proto_name) in seen:
        return
    seen.add((message, proto_name))
    if message == SERVER_OWNED:
        return
    for number, wanted in MESSAGES[message].items():
        actual = proto[proto_name].get(number)
        where = f"{message}[{number}] vs {proto_name}"
        if actual is None:
            problems.append(f"{where}: no field {number}")
            continue
        if wanted.json and wanted.json != actual.name:
            problems.append(f"{where}: named {wanted.json!r}, proto says {actual.name!r}")
        if actual.repeated != (wanted.repeated or wanted.map_value is not None):
            problems.append(f"{where}: repeated is {wanted.repeated}, proto says {actual.repeated}")
        _compare_type(wanted, actual, where, proto, problems, seen)


def _compare_type(
    field: Field,
    actual: ProtoField,
    where: str,
    proto: dict[str, dict[int, ProtoField]],
    problems: list[str],
    seen: set[tuple[str, str]],
) -> None:
    if field.map_value is not None:
        entry = proto[actual.type_name]
        key, value = entry[1], entry[2]
        if key.type != 9:
            problems.append(f"{where}: a map keyed by type {key.type}")
        field, actual = Field(field.json, field.map_value), value
    if field.type in _PROTO_TYPES:
        if actual.type not in _PROTO_TYPES[field.type]:
            problems.append(f"{where}: {field.type}, proto type {actual.type}")
    elif actual.type != _MESSAGE:
        problems.append(f"{where}: message {field.type}, proto type {actual.type}")
    else:
        _compare(field.type, actual.type_name, proto, problems, seen)


def _descriptors(binary: bytes) -> dict[str, dict[int, ProtoField]]:
    """Every message of every k8s generated.proto in a Go binary, by full name."""
    messages: dict[str, dict[int, ProtoField]] = {}
    for match in re.finditer(rb"\x1f\x8b\x08\x00\x00\x00\x00\x00", binary):
        try:
            data = zlib.decompressobj(wbits=31).decompress(binary[match.start() :], 1 << 22)
        except zlib.error:
            continue
        if b"generated.proto" not in data[:200]:
            continue
        file = _by_number(data)
        if not file.get(1, [b""])[0].endswith(b"generated.proto"):
            continue
        package = file[2][0].decode()
        for raw in file.get(4, []):
            _message_descriptor(raw, package, messages)
    return messages


def _message_descriptor(raw: bytes, scope: str, out: dict[str, dict[int, ProtoField]]) -> None:
    message = _by_number(raw)
    name = f"{scope}.{message[1][0].decode()}"
    fields: dict[int, ProtoField] = {}
    for field_raw in message.get(2, []):
        f = _by_number(field_raw)
        fields[f[3][0]] = ProtoField(
            name=f[1][0].decode(),
            repeated=f[4][0] == 3,
            type=f[5][0],
            type_name=f.get(6, [b"."])[0].decode()[1:],
        )
    out[name] = fields
    for nested in message.get(3, []):
        _message_descriptor(nested, name, out)


def _by_number(raw: bytes) -> dict[int, list[Any]]:
    values: dict[int, list[Any]] = {}
    for number, _wire, value in _fields(raw, "descriptor"):
        values.setdefault(number, []).append(value)
    return values
