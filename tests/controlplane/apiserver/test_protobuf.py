"""The protobuf decoder without kubectl: bodies real kubectl 1.32 sent (data/, captured by
test_protobuf_kubectl.py), hand-built bodies for the wire format's corners, the schema's
shape, and fuzzing: whatever the bytes, decode returns a dict or raises an ApiError."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.errors import ApiError, BadRequest, UnsupportedMediaType
from controlplane.apiserver import protobuf
from controlplane.apiserver.protobuf import MAGIC, decode
from controlplane.apiserver.protobuf_schema import (
    BYTES,
    JSON_FORMS,
    KINDS,
    MESSAGES,
    SCALARS,
    SERVER_OWNED,
    STRING,
)

DATA = Path(__file__).parent / "data"
CAPTURED = sorted(p.stem for p in DATA.glob("*.pb"))
BODIES = [(DATA / f"{name}.pb").read_bytes() for name in CAPTURED]


# --- a tiny encoder, for bodies no kubectl command sends ------------------------------


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative numbers as 64-bit two's complement, as Go writes int32s
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out) + bytes([n])


def num(field: int, value: int) -> bytes:
    return varint(field << 3) + varint(value)


def ld(field: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(field << 3 | 2) + varint(len(data)) + data


def envelope(api_version: str, kind: str, raw: bytes, *, encoding: str = "") -> bytes:
    type_meta = ld(1, ld(1, api_version) + ld(2, kind))
    return MAGIC + type_meta + ld(2, raw) + ld(3, encoding) + ld(4, "")


def deployment_spec(spec: bytes) -> dict[str, Any]:
    decoded: dict[str, Any] = decode(envelope("apps/v1", "Deployment", ld(2, spec)))["spec"]
    return decoded


# --- real bodies ---------------------------------------------------------------------


def test_the_captured_bodies_are_there() -> None:
    assert {"deployment", "namespace", "configmap", "secret", "job", "service",
            "deleteoptions", "pod-rich"} <= set(CAPTURED)  # fmt: skip


@pytest.mark.parametrize("name", CAPTURED)
def test_a_captured_body_decodes_to_the_json_kubectl_prints(name: str) -> None:
    expected = json.loads((DATA / f"{name}.json").read_text())
    assert decode((DATA / f"{name}.pb").read_bytes()) == expected


def test_fields_a_newer_kubectl_might_send_are_skipped() -> None:
    unknown = num(99, 7) + varint(98 << 3 | 1) + bytes(8) + ld(97, "x") + varint(96 << 3 | 5)
    unknown += bytes(4)  # one of each wire type: varint, fixed64, length-delimited, fixed32
    spec = num(1, 2) + ld(3, b"")
    plain = decode(envelope("apps/v1", "Deployment", ld(2, spec)))
    assert plain["spec"] == {"replicas": 2, "template": {}}
    assert decode(envelope("apps/v1", "Deployment", ld(2, spec + unknown) + unknown)) == plain
    real = (DATA / "deployment.pb").read_bytes()
    assert decode(real + unknown) == decode(real)  # in the envelope too


def test_a_status_a_client_sends_is_dropped() -> None:
    obj = decode(envelope("apps/v1", "Deployment", ld(3, num(2, 5) + ld(6, ld(1, "x")))))
    assert obj == {"kind": "Deployment", "apiVersion": "apps/v1", "status": {}}


# --- the wire format's corners --------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        # A pointer keeps an explicit zero; a plain scalar's zero is gogo's "not set".
        (num(1, 0) + num(5, 0) + num(7, 0), {"replicas": 0}),
        (num(1, 2) + num(6, 0) + num(9, 0),
         {"replicas": 2, "revisionHistoryLimit": 0, "progressDeadlineSeconds": 0}),
        (num(5, 10) + num(7, 1), {"minReadySeconds": 10, "paused": True}),
        # A singular field seen twice keeps the last value, a zero included.
        (num(5, 10) + num(5, 0), {}),
        (num(1, 5) + num(1, 4), {"replicas": 4}),
        # Negative int32s are ten-byte varints.
        (num(1, -1), {"replicas": -1}),
        (ld(4, ld(1, "RollingUpdate") + ld(2, ld(1, num(2, 1)) + ld(2, num(1, 1) + ld(3, "25%")))),
         {"strategy": {"type": "RollingUpdate",
                       "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"}}}),
        (ld(2, ld(1, ld(1, "app") + ld(2, "web")) + ld(1, ld(1, "tier")) +
            ld(2, ld(1, "env") + ld(2, "In") + ld(3, "prod") + ld(3, "dev"))),
         {"selector": {"matchLabels": {"app": "web", "tier": ""},
                       "matchExpressions": [{"key": "env", "operator": "In",
                                             "values": ["prod", "dev"]}]}}),
    ],
)  # fmt: skip
def test_scalars_maps_and_int_or_strings(spec: bytes, expected: dict[str, Any]) -> None:
    assert deployment_spec(spec) == expected


def test_times_are_rfc3339_and_the_zero_time_is_left_out() -> None:
    meta = ld(8, b"") + ld(9, num(1, 1_700_000_000) + num(2, 5))
    obj = decode(envelope("v1", "Namespace", ld(1, meta)))
    assert obj["metadata"] == {"deletionTimestamp": "2023-11-14T22:13:20Z"}


def test_quantities_bytes_and_packed_repeated_ints() -> None:
    container = ld(8, ld(1, ld(1, "cpu") + ld(2, ld(1, "250m"))) + ld(2, ld(1, "memory")))
    packed = ld(4, varint(3000) + varint(4000))
    pod = ld(2, ld(2, container) + ld(14, packed + num(4, 5000)))
    spec = decode(envelope("v1", "Pod", pod))["spec"]
    assert spec["containers"] == [{"resources": {"limits": {"cpu": "250m"},
                                                 "requests": {"memory": "0"}}}]  # fmt: skip
    assert spec["securityContext"] == {"supplementalGroups": [3000, 4000, 5000]}
    secret = decode(envelope("v1", "Secret", ld(2, ld(1, "k") + ld(2, b"\x00\xff"))))
    assert secret["data"] == {"k": "AP8="}


# --- malformed bodies -----------------------------------------------------------------

_GOOD_META = ld(1, ld(1, "v1") + ld(2, "Namespace"))


@pytest.mark.parametrize(
    ("body", "error", "words"),
    [
        (b"", BadRequest, "k8s\\x00"),
        (b'{"kind":"Namespace"}', BadRequest, "k8s\\x00"),
        (MAGIC, BadRequest, "no apiVersion or kind"),
        (MAGIC + b"\x0a", BadRequest, "ends inside a varint"),
        (MAGIC + b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", BadRequest, "longer than 10"),
        (MAGIC + b"\x0a\x05ab", BadRequest, "claims 5 bytes; 2 remain"),
        (MAGIC + b"\x0b", BadRequest, "wire type 3"),
        (MAGIC + b"\x0e", BadRequest, "wire type 6"),
        (MAGIC + b"\x00\x00", BadRequest, "field number 0"),
        (MAGIC + b"\x09\x00", BadRequest, "cut short"),
        (MAGIC + num(1, 5), BadRequest, "envelope.typeMeta: expected a length-delimited"),
        (MAGIC + _GOOD_META + ld(2, ld(1, ld(1, b"\xff\xfe"))), BadRequest, "UTF-8"),
        (MAGIC + _GOOD_META + ld(2, num(1, 3)), BadRequest, "Namespace.metadata: expected"),
        (envelope("apps/v1", "Deployment", ld(2, ld(1, b""))), BadRequest,
         "Deployment.spec.replicas: expected a varint"),
        (envelope("apps/v1", "Deployment", ld(2, ld(4, ld(2, ld(2, num(1, 7)))))), BadRequest,
         "rollingUpdate.maxSurge: not a valid IntOrString"),
        (envelope("v1", "Namespace", ld(1, ld(8, num(1, 1 << 62)))), BadRequest,
         "creationTimestamp: not a valid Time"),
        (envelope("v1", "Pod", ld(2, ld(14, ld(4, b"\x80")))), BadRequest,
         "supplementalGroups[0]: the body ends inside a varint"),
        (envelope("autoscaling/v2", "HorizontalPodAutoscaler", b""), UnsupportedMediaType,
         "cannot read HorizontalPodAutoscaler (autoscaling/v2)"),
        (envelope("v1", "Namespace", b"", encoding="gzip"), UnsupportedMediaType, "'gzip'"),
    ],
)  # fmt: skip
def test_a_malformed_body_is_a_clear_error(body: bytes, error: type[ApiError], words: str) -> None:
    with pytest.raises(error) as caught:
        decode(body)
    assert type(caught.value) is error
    assert words in caught.value.message
    assert "JSON" in caught.value.message  # says what to do instead


# --- the schema's shape ---------------------------------------------------------------


def test_every_message_a_table_names_exists_and_none_is_recursive() -> None:
    def depth(message: str, path: tuple[str, ...]) -> int:
        assert message not in path, f"recursive: {' -> '.join((*path, message))}"
        below = [0]
        for field in MESSAGES[message].values():
            target = field.map_value or field.type
            if field.map_value is not None:
                assert target in (STRING, BYTES) or target in JSON_FORMS, field
            if target not in SCALARS:
                assert target in MESSAGES, f"{message}.{field.json} names {target}"
                below.append(depth(target, (*path, message)))
        return 1 + max(below)

    deepest = max(depth(message, ()) for message in KINDS.values())
    assert deepest < protobuf._MAX_DEPTH
    assert MESSAGES[SERVER_OWNED] == {}
    assert all(f.embedded == (f.json == "") for m in MESSAGES.values() for f in m.values())


# --- fuzzing: an ApiError or a dict, never another exception, never a hang -------------


def decodes_or_refuses(body: bytes) -> None:
    """decode returns a dict or raises one of its two documented errors."""
    with contextlib.suppress(BadRequest, UnsupportedMediaType):
        assert isinstance(decode(body), dict)


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_random_bytes(body: bytes) -> None:
    decodes_or_refuses(body)
    decodes_or_refuses(MAGIC + body)


@settings(max_examples=1000)
@given(st.sampled_from(sorted(KINDS)), st.binary(max_size=400))
def test_random_objects_in_a_valid_envelope(kind: tuple[str, str], raw: bytes) -> None:
    decodes_or_refuses(envelope(*kind, raw))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    body = bytearray(draw(st.sampled_from(BODIES)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(body)))
        action = draw(st.sampled_from(["cut", "flip", "insert", "delete"]))
        if action == "cut":
            del body[at:]
        elif action == "insert":
            body[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif at < len(body):
            if action == "flip":
                body[at] ^= 1 << draw(st.integers(0, 7))
            else:
                del body[at]
    return bytes(body)


@settings(max_examples=1000)
@given(mutated())
def test_mutated_real_bodies(body: bytes) -> None:
    decodes_or_refuses(body)


@pytest.mark.parametrize("body", BODIES, ids=CAPTURED)
def test_every_prefix_of_a_real_body(body: bytes) -> None:
    for end in range(len(body)):
        decodes_or_refuses(body[:end])
