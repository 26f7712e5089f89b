"""A node's join token: the cluster CA's hash and the bearer token in one string."""

from __future__ import annotations

import pytest

from api import jointoken

HEX = "ab" * 32


def test_a_join_token_carries_the_ca_hash_and_the_bearer_token() -> None:
    token = jointoken.join_token(f"sha256:{HEX}", "abcdef.0123456789abcdef")
    assert token == f"K10{HEX}::abcdef.0123456789abcdef"
    assert jointoken.split(token) == (f"sha256:{HEX}", "abcdef.0123456789abcdef")
    assert jointoken.split(f"  {token}\n") == (f"sha256:{HEX}", "abcdef.0123456789abcdef")


@pytest.mark.parametrize("bare", ["abcdef.0123456789abcdef", "K10abcdef.0123456789abcdef", ""])
def test_a_bare_token_has_no_ca_hash(bare: str) -> None:
    assert jointoken.split(bare) == (None, bare)


@pytest.mark.parametrize(
    "damaged",
    [f"K10{HEX[:-1]}::abcdef.0123", f"K10{HEX.upper()}::abcdef.0123", f"K10{HEX}::", "K10::x"],
    ids=["short-hash", "upper-case", "no-bearer", "no-hash"],
)
def test_a_damaged_join_token_says_so(damaged: str) -> None:
    with pytest.raises(jointoken.JoinTokenError, match="damaged; copy it again"):
        jointoken.split(damaged)


def test_only_a_real_hash_makes_a_join_token() -> None:
    with pytest.raises(jointoken.JoinTokenError, match="not a CA hash"):
        jointoken.join_token("sha256:nothex", "t")


def test_the_ca_hash_is_of_the_certificates_der() -> None:
    # the DER of any PEM is its base64 body: hash it independently
    import base64
    import hashlib

    body = base64.b64encode(b"not really a certificate, but DER all the same").decode()
    pem = f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n".encode()
    expected = hashlib.sha256(base64.b64decode(body)).hexdigest()
    assert jointoken.ca_hash(pem) == f"sha256:{expected}"
