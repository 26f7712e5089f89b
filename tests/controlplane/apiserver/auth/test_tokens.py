"""Bearer tokens: shape, hashing, expiry, and their life as Secrets."""

from __future__ import annotations

import base64
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controlplane.apiserver.auth.identity import UserInfo
from controlplane.apiserver.auth.tokens import (
    ParsedToken,
    TokenRecord,
    authenticate,
    hash_secret,
    new_record,
    new_token,
    parse_authorization,
    parse_token,
    record_to_secret,
    secret_name,
    secret_to_record,
    verify_secret,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_new_token_shape_and_uniqueness() -> None:
    tokens = [new_token() for _ in range(200)]
    for token_id, secret, full in tokens:
        assert re.fullmatch(r"[a-z0-9]{6}", token_id)
        assert re.fullmatch(r"[a-z0-9]{16}", secret)
        assert full == f"{token_id}.{secret}"
        assert parse_token(full) == ParsedToken(token_id, secret)
    assert len({full for _, _, full in tokens}) == len(tokens)
    assert len(new_token(secret_length=64)[1]) == 64
    with pytest.raises(ValueError, match="secret_length"):
        new_token(secret_length=8)


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "abcdef",
        "abcdef0123456789abcdef",  # no dot
        ".0123456789abcdef",
        "abcdef.",
        "abcde.0123456789abcdef",  # id too short
        "abcdefg.0123456789abcdef",  # id too long
        "abcdef.0123456789abcde",  # secret too short
        "abcdef." + "a" * 65,  # secret too long
        "ABCDEF.0123456789abcdef",  # upper case
        "abcdef.0123456789abcdeF",
        "abcdéf.0123456789abcdef",  # non-ascii
        "abcdef.0123456789abcde\u0660",  # an Arabic-Indic digit is not [0-9]
        "abcdef.0123456789abcdef\n",
        " abcdef.0123456789abcdef",
        "abcdef.0123456789abcdef.x",
        "abcdef..0123456789abcdef",
        "a" * 1_000_000,
        "abcdef." + "0" * 10_000_000,
    ],
)
def test_malformed_tokens_are_none(presented: str) -> None:
    assert parse_token(presented) is None
    if presented == presented.strip(" "):  # the header's spaces around the token are lenient
        assert parse_authorization(f"Bearer {presented}") is None


@pytest.mark.parametrize("presented", [None, 123, b"abcdef.0123456789abcdef", ["x"], object()])
def test_non_strings_are_none(presented: object) -> None:
    assert parse_token(presented) is None
    assert parse_authorization(presented) is None


@given(st.text(max_size=200))
def test_parse_token_never_raises(text: str) -> None:
    parsed = parse_token(text)
    if parsed is not None:
        assert text == f"{parsed.id}.{parsed.secret}"
        assert text.isascii()


@given(st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_parse_authorization_never_raises(text: str) -> None:
    parse_authorization(text)
    parse_authorization("Bearer " + text)


@given(
    st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=6, max_size=6),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=16, max_size=64),
)
def test_every_well_formed_token_parses(token_id: str, secret: str) -> None:
    assert parse_token(f"{token_id}.{secret}") == ParsedToken(token_id, secret)


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        ("Bearer abcdef.0123456789abcdef", ParsedToken("abcdef", "0123456789abcdef")),
        ("bearer abcdef.0123456789abcdef", ParsedToken("abcdef", "0123456789abcdef")),
        ("BEARER  abcdef.0123456789abcdef ", ParsedToken("abcdef", "0123456789abcdef")),
        ("Basic abcdef.0123456789abcdef", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("abcdef.0123456789abcdef", None),
        ("Bearer abcdef.0123456789abcdef extra", None),
        ("", None),
    ],
)
def test_parse_authorization(header: str, parsed: ParsedToken | None) -> None:
    assert parse_authorization(header) == parsed


def test_parsed_token_repr_hides_the_secret() -> None:
    parsed = parse_token("abcdef.0123456789abcdef")
    assert parsed is not None
    assert "0123456789abcdef" not in repr(parsed)
    assert "abcdef" in repr(parsed)


def test_hash_is_salted_and_verifies() -> None:
    _, secret, _ = new_token()
    first, second = hash_secret(secret), hash_secret(secret)
    assert first != second
    assert secret not in first
    assert verify_secret(secret, first)
    assert verify_secret(secret, second)
    assert not verify_secret(secret[:-1] + ("0" if secret[-1] != "0" else "1"), first)
    assert not verify_secret("", first)


@pytest.mark.parametrize(
    "stored",
    ["", "x", "hmac-sha256$", "hmac-sha256$zz$00", "md5$00$00", "hmac-sha256$00", "$$"],
)
def test_malformed_hash_never_verifies(stored: str) -> None:
    assert not verify_secret("0123456789abcdef", stored)


def _record(**changes: Any) -> tuple[TokenRecord, str]:
    record, full = new_record(
        user="alice", groups=("team-a",), role="viewer", description="laptop", now=NOW
    )
    return replace(record, **changes), full


def test_authenticate_gives_the_records_user_with_its_role_group() -> None:
    record, full = _record()
    parsed = parse_token(full)
    assert parsed is not None

    user = authenticate(parsed, record, now=NOW)

    assert user == UserInfo("alice", ("team-a", "bramble:viewers", "system:authenticated"))


def test_authenticate_refuses_wrong_secret_unknown_record_and_other_id() -> None:
    record, full = _record()
    parsed = parse_token(full)
    assert parsed is not None
    wrong = ParsedToken(parsed.id, "0" * 16 if parsed.secret != "0" * 16 else "1" * 16)
    other_id = ParsedToken("zzzzzz" if parsed.id != "zzzzzz" else "yyyyyy", parsed.secret)

    assert authenticate(wrong, record, now=NOW) is None
    assert authenticate(parsed, None, now=NOW) is None
    assert authenticate(other_id, record, now=NOW) is None


@pytest.mark.parametrize(
    ("ttl", "at", "valid"),
    [
        (None, timedelta(days=10_000), True),
        (timedelta(hours=1), timedelta(minutes=59), True),
        (timedelta(hours=1), timedelta(hours=1), False),  # expiry is exclusive
        (timedelta(hours=1), timedelta(days=1), False),
    ],
)
def test_expiry(ttl: timedelta | None, at: timedelta, valid: bool) -> None:
    record, full = new_record(user="system:bootstrap:x", role="join", ttl=ttl, now=NOW)
    parsed = parse_token(full)
    assert parsed is not None
    assert (authenticate(parsed, record, now=NOW + at) is not None) is valid
    assert record.expired(NOW + at) is not valid


@pytest.mark.parametrize(
    "record",
    [
        _record()[0],
        _record(expires=NOW + timedelta(hours=24, microseconds=5))[0],
        _record(role=None, groups=(), description="")[0],
        _record(role="admin", description="ünïcödé, with, commas\nand lines")[0],
        _record(user="system:node:pi-2", role="node", groups=())[0],
        _record(expires=datetime(2027, 1, 1, 2, 0, tzinfo=UTC) + timedelta(hours=0))[0],
    ],
)
def test_secret_round_trip(record: TokenRecord) -> None:
    secret = record_to_secret(record)

    assert secret["kind"] == "Secret"
    assert secret["type"] == "bramble.io/token"
    assert secret["metadata"] == {"name": f"bramble-token-{record.id}", "namespace": "kube-system"}
    for value in secret["data"].values():
        base64.b64decode(value, validate=True)
    assert secret_to_record(secret) == record


def test_secret_never_holds_the_token_secret() -> None:
    record, full = _record()
    data = record_to_secret(record)["data"]
    decoded = " ".join(base64.b64decode(v).decode() for v in data.values())
    assert full.split(".")[1] not in decoded


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _good_secret() -> dict[str, Any]:
    return record_to_secret(_record(expires=NOW)[0])


def _damaged(change: str) -> dict[str, Any]:
    secret = _good_secret()
    data = secret["data"]
    if change == "type":
        secret["type"] = "Opaque"
    elif change == "no data":
        del secret["data"]
    elif change == "data not a map":
        secret["data"] = ["x"]
    elif change == "not base64":
        data["user"] = "!!!"
    elif change == "not utf-8":
        data["user"] = base64.b64encode(b"\xff\xfe").decode()
    elif change == "value not a string":
        data["user"] = 5
    elif change == "missing user":
        del data["user"]
    elif change == "empty user":
        data["user"] = ""
    elif change == "bad id":
        data["token-id"] = _b64("ABC")
    elif change == "unknown role":
        data["role"] = _b64("root")
    elif change == "naive expiration":
        data["expiration"] = _b64("2026-01-01T00:00:00")
    elif change == "bad expiration":
        data["expiration"] = _b64("tomorrow")
    elif change == "renamed":
        secret["metadata"]["name"] = "bramble-token-zzzzzz"
    elif change == "no metadata":
        del secret["metadata"]
    elif change == "node role, other user":
        data["role"] = _b64("node")
    return secret


@pytest.mark.parametrize(
    "change",
    [
        "type",
        "no data",
        "data not a map",
        "not base64",
        "not utf-8",
        "value not a string",
        "missing user",
        "empty user",
        "bad id",
        "unknown role",
        "naive expiration",
        "bad expiration",
        "renamed",
        "no metadata",
        "node role, other user",
    ],
)
def test_damaged_secrets_are_none(change: str) -> None:
    assert secret_to_record(_good_secret()) is not None
    assert secret_to_record(_damaged(change)) is None


@given(st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=8))
def test_secret_to_record_never_raises_on_junk_data(data: dict[str, str]) -> None:
    secret = {"type": "bramble.io/token", "metadata": {"name": "x"}, "data": data}
    assert secret_to_record(secret) is None


def test_secret_name() -> None:
    assert secret_name("abc123") == "bramble-token-abc123"


@pytest.mark.parametrize(
    "changes",
    [
        {"id": "ABC"},
        {"user": ""},
        {"groups": ("a,b",)},
        {"groups": ("",)},
        {"role": "root"},
        {"role": "node"},  # user is not system:node:<name>
        {"expires": datetime(2026, 1, 1)},  # naive
    ],
)
def test_invalid_records_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        _record(**changes)
