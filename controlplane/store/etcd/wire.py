"""etcd's JSON gateway on the wire: base64 bytes, answers, error answers, and how
those errors map to the store's.

etcd 3.4's gateway writes bytes as base64 and 64-bit integers as strings, and omits
zero values. A unary call's error answer carries ``error``, ``code`` (the gRPC code)
and ``message`` at the top level; a stream's carries them in an ``error`` object
(``grpc_code``, ``http_code``, ``message``).
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from typing import Any

import orjson

from controlplane.store.errors import InvalidArgument, StoreError, StoreUnusable, Unavailable

Json = dict[str, Any]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


class EtcdError(Exception):
    """An error answer from etcd, before it is mapped to a StoreError."""

    def __init__(self, message: str, *, code: int, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


# gRPC codes that etcd uses for "cannot serve now" (UNAVAILABLE, DEADLINE_EXCEEDED,
# RESOURCE_EXHAUSTED, ABORTED).
TRANSIENT_CODES = {14, 4, 8, 10}
NO_LEADER = "etcdserver: no leader"
USER_EMPTY = "etcdserver: user name is empty"


def decode_answer(raw: bytes, status: int) -> Json:
    try:
        answer = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError as e:
        text = raw[:300].decode(errors="replace").strip()
        if status == 400 and "CommonName" in text:
            # etcd 3.4 with authentication on: the gateway cannot take the user from a
            # client certificate, so it refuses certificates that name one.
            raise StoreUnusable(
                f"etcd refuses the client certificate because it has a CommonName ({text}); "
                "with etcd authentication on, give bramble a client certificate without "
                "one and log in with user= and password-file="
            ) from e
        raise Unavailable(
            f"etcd answered HTTP {status} with a body that is not JSON: {text}"
        ) from e
    if not isinstance(answer, dict):
        raise Unavailable(f"etcd answered HTTP {status} with an unexpected body")
    if status != 200 or "error" in answer:
        raise error_of(answer, status)
    return answer


@contextlib.contextmanager
def reading(what: str) -> Iterator[None]:
    """Reads fields out of an etcd answer: an answer that lacks one, or holds something
    of the wrong shape (a proxy's page, a truncated or foreign message), becomes
    Unavailable naming ``what`` instead of a KeyError or ValueError from deep inside."""
    try:
        yield
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
        # ValueError covers bad base64 (binascii.Error), keys that are not UTF-8
        # (UnicodeDecodeError), bad numbers and JSON that does not parse.
        raise Unavailable(
            f"etcd answered {what} with an unexpected body ({type(e).__name__}: {e}); "
            "check that --store names etcd (3.4 or newer) and no other service"
        ) from e


def error_of(answer: Json, status: int) -> EtcdError:
    """The error in an answer: unary calls put it at the top level
    (``{"error", "code", "message"}``), streams in an object
    (``{"error": {"grpc_code", "http_code", "message"}}``)."""
    with reading("an error"):
        error = answer.get("error")
        if isinstance(error, dict):
            answer = error
            code = error.get("grpc_code", 0)
            status = int(error.get("http_code", status))
        else:
            code = answer.get("code", 0)
        message = str(answer.get("message") or answer.get("error") or f"HTTP {status}")
        code = int(code)
    return EtcdError(message, code=code, status=status)


def map_error(e: EtcdError) -> StoreError:
    """An etcd error answer as the store's error, for the cases callers do not handle."""
    if "request is too large" in e.message:
        return InvalidArgument(f"etcd refused the value as too large ({e.message})")
    if e.code in TRANSIENT_CODES or e.message == NO_LEADER:
        return Unavailable(f"etcd cannot serve the request now ({e.message})")
    if e.message == USER_EMPTY:
        return StoreUnusable(
            "etcd has authentication on and the store URL names no user; "
            "add user= and password-file= to --store"
        )
    if e.code in (7, 16):  # PERMISSION_DENIED, UNAUTHENTICATED
        return StoreUnusable(
            f"etcd refused the request ({e.message}); check the user and its role in --store"
        )
    return Unavailable(f"etcd answered with an error: {e.message}")
