"""Building responses: JSON bodies, Status objects, lists from cached bytes, Tables."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from api import errors
from api.resources import Resource
from controlplane.apiserver.cache import Entry
from controlplane.apiserver.httpd import (
    JSON_TYPE,
    Answer,
    Request,
    Response,
    Stream,
    status_response,
)


def json(body: Any, *, status: int = 200, content_type: str = JSON_TYPE) -> Response:
    return Response(orjson.dumps(body), status=status, content_type=content_type)


def raw(body: bytes, *, status: int = 200, content_type: str = JSON_TYPE) -> Response:
    return Response(body, status=status, content_type=content_type)


# Bodies above this are written in slices, each followed by a turn of the event loop.
LARGE_BODY = 256 * 1024


async def large(request: Request, parts: list[bytes]) -> Answer:
    """A big JSON body (a list of thousands of objects), given in slices of about
    LARGE_BODY (``list_parts``), written a slice at a time with a turn of the event loop
    after each. Written at once, its TLS encryption and send held every other request
    for tens of milliseconds: with one 4 MB list a second that was the p99 of every
    other call in bench/api.py; joined into one body first, its copies took as long."""
    if len(parts) <= 1:
        return raw(parts[0] if parts else b"")
    response = Stream(request, content_length=sum(len(p) for p in parts))
    await response.prepare()
    await write_slices(response, parts)
    await response.write_eof()
    return response


def slices(pieces: Iterable[bytes]) -> list[bytes]:
    """Consecutive ``pieces`` joined into slices of about LARGE_BODY bytes."""
    joined: list[bytes] = []
    batch: list[bytes] = []
    size = 0
    for piece in pieces:
        batch.append(piece)
        size += len(piece)
        if size >= LARGE_BODY:
            joined.append(b"".join(batch))
            batch, size = [], 0
    if batch:
        joined.append(b"".join(batch))
    return joined


async def write_slices(response: Stream, parts: list[bytes]) -> None:
    """One write per slice, with a turn of the event loop between them."""
    for i, part in enumerate(parts):
        if i:
            await asyncio.sleep(0)
        await response.write(part)


error = status_response  # an ApiError as a Status answer


def success_status(resource: Resource, name: str, uid: str | None = None) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "group": resource.group, "kind": resource.plural}
    if uid:
        details["uid"] = uid
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }


def wants_table(accept: str) -> bool:
    for part in accept.split(","):
        params = {p.strip() for p in part.split(";")}
        if "as=Table" in params and "g=meta.k8s.io" in params:
            return True
    return False


def include_object(query: Mapping[str, str]) -> str:
    value = query.get("includeObject", "Metadata")
    if value not in ("None", "Metadata", "Object"):
        raise errors.BadRequest(f'includeObject must be None, Metadata or Object (got "{value}")')
    return value


def list_body(
    resource: Resource, entries: Iterable[Entry], revision: int, continue_token: str | None
) -> bytes:
    """A List from cached bytes: no object is decoded or encoded again."""
    return b"".join(_list_pieces(resource, entries, revision, continue_token))


def list_parts(
    resource: Resource, entries: Iterable[Entry], revision: int, continue_token: str | None
) -> list[bytes]:
    """A List from cached bytes, in consecutive slices of about LARGE_BODY bytes."""
    return slices(_list_pieces(resource, entries, revision, continue_token))


def _list_pieces(
    resource: Resource, entries: Iterable[Entry], revision: int, continue_token: str | None
) -> Iterator[bytes]:
    meta: dict[str, str] = {"resourceVersion": str(revision)}
    if continue_token:
        meta["continue"] = continue_token
    head = orjson.dumps(
        {"kind": resource.list_kind, "apiVersion": resource.api_version, "metadata": meta}
    )
    yield head[:-1] + b',"items":['
    for i, entry in enumerate(entries):
        if i:
            yield b","
        yield entry.raw
    yield b"]}"


def table(
    resource: Resource,
    objects: list[dict[str, Any]],
    *,
    revision: int,
    include: str,
    continue_token: str | None = None,
) -> dict[str, Any]:
    from controlplane.apiserver import tables

    return dict(
        tables.table(
            resource.group,
            resource.kind,
            objects,
            now=datetime.now(UTC),
            resource_version=str(revision),
            include_object=include,
            continue_token=continue_token,
        )
    )
