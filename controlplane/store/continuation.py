"""Continue tokens for paged lists: the page's revision and the next key, opaque to clients.

Like Kubernetes' continue tokens they pin the revision, so every page of one list is read
at the same revision; a token whose revision has been compacted gives Expired.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import orjson

from controlplane.store.errors import InvalidArgument

_VERSION = 1


@dataclass(frozen=True, slots=True)
class Continuation:
    revision: int
    start_key: bytes


def encode(revision: int, start_key: bytes) -> str:
    body = orjson.dumps(
        {"v": _VERSION, "rev": revision, "start": base64.b64encode(start_key).decode()}
    )
    return base64.urlsafe_b64encode(body).decode().rstrip("=")


def decode(token: str) -> Continuation:
    try:
        padded = token + "=" * (-len(token) % 4)
        body = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(body, dict) or body.get("v") != _VERSION:
            raise ValueError("unknown version")
        revision = body["rev"]
        start = base64.b64decode(body["start"], validate=True)
        if not isinstance(revision, int) or revision < 0:
            raise ValueError("bad revision")
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError) as e:
        raise InvalidArgument(
            "the continue token is malformed; start the list again without it"
        ) from e
    return Continuation(revision=revision, start_key=start)
