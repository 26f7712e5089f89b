"""Waiting on the API the way tests should: list, then watch from that version, with a
deadline; never sleeping and polling. Shared by the scheduler and controller suites."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any

from api import errors
from api.client import ApiClient
from api.resources import resource

NAMESPACES = resource("", "Namespace")
TIMEOUT = 30.0

Obj = dict[str, Any]


async def wait_for(
    client: ApiClient,
    res: Any,
    namespace: str | None,
    name: str,
    predicate: Callable[[Obj], bool],
    *,
    what: str,
    timeout: float = TIMEOUT,
) -> Obj:
    params = {"fieldSelector": f"metadata.name={name}"}
    listed = await client.list(res, namespace, params=params)
    last: Obj | None = None
    for item in listed["items"]:
        last = item
        if predicate(item):
            return dict(item)

    async def watch() -> Obj:
        nonlocal last
        query = {**params, "resourceVersion": listed["metadata"]["resourceVersion"]}
        while True:  # a watch the server ends is reopened from the last version seen
            async for change in client.watch(res, namespace, params=query):
                obj = change["object"]
                query["resourceVersion"] = obj["metadata"]["resourceVersion"]
                if change["type"] == "BOOKMARK":
                    continue
                last = obj
                if change["type"] != "DELETED" and predicate(obj):
                    return dict(obj)

    try:
        return await asyncio.wait_for(watch(), timeout)
    except TimeoutError:
        raise AssertionError(f"{name}: not {what} within {timeout:g}s; last seen: {last}") from None


async def new_namespace(
    client: ApiClient, name: str, labels: Mapping[str, str] | None = None
) -> None:
    await client.create(
        NAMESPACES, None, {"metadata": {"name": name, "labels": dict(labels or {})}}
    )


async def delete_quietly(client: ApiClient, res: Any, namespace: str | None, name: str) -> None:
    with contextlib.suppress(errors.NotFound):
        await client.delete(res, namespace, name, grace_period=0)
