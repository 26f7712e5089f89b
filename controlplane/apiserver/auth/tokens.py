"""Bearer tokens: made with ``secrets``, hashed at rest, stored as Secrets.

A token is ``<id>.<secret>``: a 6-character id and a 16-64 character secret, both
``[a-z0-9]``, the shape of Kubernetes bootstrap tokens. The id is not secret (it names
the record and shows up in logs and ``kubectl get secrets``); the secret is shown once,
when the token is made, and only its hash is kept.

Hashing: HMAC-SHA256 keyed with a random per-token salt, stored as
``hmac-sha256$<salt hex>$<digest hex>`` and compared with ``hmac.compare_digest``. A
fast hash is enough because the secret is random (16 characters of 36 are 82 bits), not
a password a person chose.

Storage: the apiserver keeps each record as a Secret, so every control-plane server
sees the same tokens and ``kubectl -n kube-system delete secret bramble-token-<id>``
revokes one::

    kind: Secret, namespace kube-system, name bramble-token-<id>, type bramble.io/token
    data (base64, as Kubernetes stores Secret data):
      token-id  secret-hash  user  groups (comma-separated)  role  description
      expiration (RFC 3339; absent = never)

Authenticating a request: ``parse_authorization(header)`` (or ``parse_token``) ->
read Secret ``secret_name(id)`` -> ``secret_to_record`` -> ``authenticate``. Every step
returns None on anything malformed, never raises; a presented token that fails is a 401.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from controlplane.apiserver.auth.identity import (
    NODE_USER_PREFIX,
    ROLE_GROUPS,
    ROLES,
    Role,
    UserInfo,
    authenticated,
)

TOKEN_ID_LENGTH: Final = 6
SECRET_LENGTH: Final = 16
MAX_SECRET_LENGTH: Final = 64
SECRET_TYPE: Final = "bramble.io/token"
SECRET_NAMESPACE: Final = "kube-system"
SECRET_NAME_PREFIX: Final = "bramble-token-"

_ALPHABET = string.ascii_lowercase + string.digits
_ID = re.compile(r"[a-z0-9]{6}")
_TOKEN = re.compile(r"([a-z0-9]{6})\.([a-z0-9]{16,64})")
_MAX_TOKEN = TOKEN_ID_LENGTH + 1 + MAX_SECRET_LENGTH
_SCHEME = "hmac-sha256"


@dataclass(frozen=True, slots=True)
class ParsedToken:
    """A presented token that has the right shape (not yet checked against a record).
    Its repr leaves the secret out, so logging one leaks nothing."""

    id: str
    secret: str = field(repr=False)


def new_token(*, secret_length: int = SECRET_LENGTH) -> tuple[str, str, str]:
    """A fresh ``(token_id, secret, "<token_id>.<secret>")``."""
    if not SECRET_LENGTH <= secret_length <= MAX_SECRET_LENGTH:
        raise ValueError(f"secret_length must be {SECRET_LENGTH}-{MAX_SECRET_LENGTH}")
    token_id = "".join(secrets.choice(_ALPHABET) for _ in range(TOKEN_ID_LENGTH))
    secret = "".join(secrets.choice(_ALPHABET) for _ in range(secret_length))
    return token_id, secret, f"{token_id}.{secret}"


def parse_token(presented: object) -> ParsedToken | None:
    """The id and secret of a presented token, or None if it is not one."""
    if not isinstance(presented, str) or len(presented) > _MAX_TOKEN:
        return None
    match = _TOKEN.fullmatch(presented)
    return ParsedToken(match[1], match[2]) if match else None


def parse_authorization(header: object) -> ParsedToken | None:
    """The token of an ``Authorization: Bearer <token>`` header value, or None."""
    if not isinstance(header, str) or len(header) > _MAX_TOKEN + 64:
        return None
    scheme, _, rest = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return parse_token(rest.strip(" \t"))


def hash_secret(secret: str) -> str:
    """The at-rest form of a token secret, salted: two hashes of one secret differ."""
    salt = secrets.token_bytes(16)
    digest = hmac.new(salt, secret.encode(), hashlib.sha256).hexdigest()
    return f"{_SCHEME}${salt.hex()}${digest}"


def verify_secret(secret: str, secret_hash: str) -> bool:
    """Whether ``secret`` is the one ``secret_hash`` was made from (constant time)."""
    scheme, _, rest = secret_hash.partition("$")
    salt_hex, _, digest = rest.partition("$")
    if scheme != _SCHEME or not digest:
        return False
    try:
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    expected = hmac.new(salt, secret.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), digest.encode())


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """What the cluster knows about one token. ``role`` adds its group
    (``identity.ROLE_GROUPS``) to ``groups``; ``expires`` None means never."""

    id: str
    secret_hash: str
    user: str
    groups: tuple[str, ...] = ()
    role: Role | None = None
    expires: datetime | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not _ID.fullmatch(self.id):
            raise ValueError(f"token id {self.id!r} is not 6 characters of [a-z0-9]")
        if not self.user:
            raise ValueError("a token needs a user name")
        for group in self.groups:
            if not group or "," in group:
                raise ValueError(f"group {group!r} is empty or has a comma")
        if self.role is not None and self.role not in ROLES:
            raise ValueError(f"role {self.role!r} is not one of {', '.join(ROLES)}")
        if self.role == "node" and not self.user.startswith(NODE_USER_PREFIX):
            raise ValueError(f"a node token's user must be {NODE_USER_PREFIX}<node name>")
        if self.expires is not None and self.expires.tzinfo is None:
            raise ValueError("expires must be timezone-aware")

    def expired(self, now: datetime) -> bool:
        return self.expires is not None and now >= self.expires

    def user_info(self) -> UserInfo:
        groups = [*self.groups, *([ROLE_GROUPS[self.role]] if self.role else [])]
        return authenticated(self.user, groups)


def new_record(
    *,
    user: str,
    groups: tuple[str, ...] = (),
    role: Role | None = None,
    ttl: timedelta | None = None,
    description: str = "",
    now: datetime | None = None,
) -> tuple[TokenRecord, str]:
    """A new token: its record (to store) and the full token (to show once)."""
    token_id, secret, full = new_token()
    expires = None if ttl is None else (now or datetime.now(UTC)) + ttl
    record = TokenRecord(token_id, hash_secret(secret), user, groups, role, expires, description)
    return record, full


def authenticate(
    presented: ParsedToken, record: TokenRecord | None, *, now: datetime
) -> UserInfo | None:
    """The user a presented token stands for, or None (unknown, wrong or expired)."""
    if record is None or record.id != presented.id or record.expired(now):
        return None
    if not verify_secret(presented.secret, record.secret_hash):
        return None
    return record.user_info()


def secret_name(token_id: str) -> str:
    return SECRET_NAME_PREFIX + token_id


def record_to_secret(record: TokenRecord) -> dict[str, Any]:
    """The Secret that stores ``record``."""
    fields = {
        "token-id": record.id,
        "secret-hash": record.secret_hash,
        "user": record.user,
        "groups": ",".join(record.groups),
        "role": record.role or "",
        "description": record.description,
    }
    if record.expires is not None:
        fields["expiration"] = _rfc3339(record.expires)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret_name(record.id), "namespace": SECRET_NAMESPACE},
        "type": SECRET_TYPE,
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in fields.items()},
    }


def secret_to_record(secret: Mapping[str, Any]) -> TokenRecord | None:
    """The record a Secret stores, or None if it is not a well-formed token Secret."""
    try:
        data = secret.get("data")
        if secret.get("type") != SECRET_TYPE or not isinstance(data, Mapping):
            return None
        fields = {str(k): _unbase64(v) for k, v in data.items()}
        role = fields.get("role") or None
        if role is not None and role not in ROLES:
            return None
        expiration = fields.get("expiration")
        record = TokenRecord(
            id=fields["token-id"],
            secret_hash=fields["secret-hash"],
            user=fields["user"],
            groups=tuple(g for g in fields.get("groups", "").split(",") if g),
            role=_role(role),
            expires=datetime.fromisoformat(expiration) if expiration else None,
            description=fields.get("description", ""),
        )
        metadata = secret.get("metadata")
        if not isinstance(metadata, Mapping) or metadata.get("name") != secret_name(record.id):
            return None  # a copy under another name must not answer for this id
        return record
    except (KeyError, ValueError, TypeError):
        return None


def _role(value: str | None) -> Role | None:
    for role in ROLES:
        if value == role:
            return role
    return None


def _unbase64(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("Secret data values are base64 strings")
    return base64.b64decode(value, validate=True).decode()


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
