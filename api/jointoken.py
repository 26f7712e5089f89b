"""A node's join token: the cluster CA's hash and the node's bearer token in one string
(k3s' "secure" token form), so that ``bramble agent --server URL --token TOKEN`` can tell
the real control plane from an impostor with nothing else given.

    K10<sha256 of the cluster CA certificate's DER, 64 hex digits>::<bearer token>

``bramble token create --role node`` prints one; the agent splits it, fetches the CA
from the server and trusts it only if the hash matches. A bare bearer token still works
with ``--ca-cert-hash`` or ``--ca-file``.
"""

from __future__ import annotations

import hashlib
import re
import ssl

PREFIX = "K10"
_HASH = re.compile(r"[0-9a-f]{64}")


class JoinTokenError(ValueError):
    """A token that starts as a join token but is not one; the message says what to do."""


def ca_hash(ca_pem: bytes) -> str:
    """``sha256:<hex>`` of a PEM certificate's DER (kubeadm's discovery hash form)."""
    try:
        der = ssl.PEM_cert_to_DER_cert(ca_pem.decode()) if ca_pem else b""
    except (ValueError, UnicodeDecodeError):
        der = b""
    return "sha256:" + hashlib.sha256(der).hexdigest()


def join_token(ca_hash_value: str, bearer: str) -> str:
    """The join token of ``bearer`` for the cluster whose CA hash is ``ca_hash_value``."""
    digest = ca_hash_value.removeprefix("sha256:").lower()
    if not _HASH.fullmatch(digest):
        raise JoinTokenError(f"not a CA hash: {ca_hash_value!r} (want sha256:<64 hex digits>)")
    return f"{PREFIX}{digest}::{bearer}"


def split(token: str) -> tuple[str | None, str]:
    """(the CA hash ``sha256:<hex>``, or None for a bare token; the bearer token)."""
    token = token.strip()
    if not (token.startswith(PREFIX) and "::" in token):
        return None, token
    digest, _, bearer = token[len(PREFIX) :].partition("::")
    if not _HASH.fullmatch(digest) or not bearer:
        raise JoinTokenError(
            "the token looks like a join token (K10...::...) but is damaged; copy it again "
            "from `bramble token create --role node`"
        )
    return f"sha256:{digest}", bearer
