"""``bramble token``: issue, list and revoke bearer tokens through the API.

A token is stored as a Secret in kube-system (only a salted hash of its secret part), so
every control-plane server sees it and ``bramble token revoke`` (or ``kubectl delete
secret``) ends it at once. The full token is shown once, when it is created.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from api import jointoken
from api.client import ApiClient, load_kubeconfig
from api.resources import resource
from controlplane.apiserver.auth import kubeconfig, tokens
from controlplane.apiserver.auth.identity import ROLES, Role

SECRETS = resource("", "Secret")

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class TokenError(Exception):
    """A mistake on the command line; the message says what to write instead."""


def role(name: str) -> Role:
    for known in ROLES:
        if known == name:
            return known
    raise TokenError(f"unknown role {name!r}; use one of {', '.join(ROLES)}")


def parse_ttl(text: str) -> timedelta | None:
    """``30m``, ``24h``, ``7d``; ``0`` for a token that never expires."""
    if text == "0":
        return None
    match = _DURATION.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise TokenError(f"--ttl {text!r}: write a duration such as 30m, 24h or 7d (0: never)")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


async def create(
    admin_kubeconfig: Path, *, role: Role, user: str | None, ttl: timedelta | None,
    description: str,
) -> tuple[str, tokens.TokenRecord]:  # fmt: skip
    record, full = tokens.new_record(
        user=user or f"bramble:{role}", role=role, ttl=ttl, description=description
    )
    client = await ApiClient.from_kubeconfig(admin_kubeconfig)
    try:
        await client.create(SECRETS, tokens.SECRET_NAMESPACE, tokens.record_to_secret(record))
    finally:
        await client.close()
    return full, record


def join_token(admin_kubeconfig: Path, bearer: str) -> str:
    """``bearer`` as a node's join token, with the hash of the cluster CA the admin
    kubeconfig trusts."""
    ca = load_kubeconfig(admin_kubeconfig).ca_pem
    if not ca:
        raise TokenError(f"{admin_kubeconfig} names no cluster CA; pass the server's --kubeconfig")
    return jointoken.join_token(jointoken.ca_hash(ca), bearer)


async def list_records(admin_kubeconfig: Path) -> list[tokens.TokenRecord]:
    client = await ApiClient.from_kubeconfig(admin_kubeconfig)
    try:
        listing = await client.list(
            SECRETS, tokens.SECRET_NAMESPACE, params={"fieldSelector": f"type={tokens.SECRET_TYPE}"}
        )
    finally:
        await client.close()
    records = [tokens.secret_to_record(item) for item in listing.get("items", [])]
    return [r for r in records if r is not None]


async def revoke(admin_kubeconfig: Path, token_id: str) -> None:
    client = await ApiClient.from_kubeconfig(admin_kubeconfig)
    try:
        await client.delete(SECRETS, tokens.SECRET_NAMESPACE, tokens.secret_name(token_id))
    finally:
        await client.close()


def token_kubeconfig(admin_kubeconfig: Path, token: str, user: str) -> str:
    """A kubeconfig for the new token: the admin kubeconfig's server and CA, the token."""
    creds = load_kubeconfig(admin_kubeconfig)
    return kubeconfig.token_kubeconfig(creds.server, creds.ca_pem or b"", user=user, token=token)


def table(records: list[tokens.TokenRecord], *, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    rows: list[list[Any]] = [["ID", "USER", "ROLE", "EXPIRES", "DESCRIPTION"]]
    for r in sorted(records, key=lambda r: r.id):
        if r.expires is None:
            expires = "never"
        elif r.expired(now):
            expires = "expired"
        else:
            expires = r.expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        rows.append([r.id, r.user, r.role or "", expires, r.description])
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "   ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
