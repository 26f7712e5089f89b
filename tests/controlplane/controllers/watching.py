"""Waiting on a whole list (the pods of a set, the events of a namespace) rather than one
named object: list, then watch from that version and keep the picture up to date,
until a predicate over every item holds or the deadline passes. Never sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from api.client import ApiClient
from api.resources import Resource

Obj = dict[str, Any]


async def wait_list(
    client: ApiClient,
    res: Resource,
    namespace: str | None,
    predicate: Callable[[list[Obj]], bool],
    *,
    what: str,
    params: Mapping[str, str] | None = None,
    timeout: float = 20.0,
) -> list[Obj]:
    """The items once ``predicate(items)`` holds (items of the list, in name order)."""
    listed = await client.list(res, namespace, params=params)
    items = {i["metadata"]["name"]: i for i in listed["items"]}

    def current() -> list[Obj]:
        return [items[k] for k in sorted(items)]

    if predicate(current()):
        return current()

    async def watch() -> list[Obj]:
        query = {**(params or {}), "resourceVersion": listed["metadata"]["resourceVersion"]}
        while True:
            async for change in client.watch(res, namespace, params=query):
                obj = change["object"]
                query["resourceVersion"] = obj["metadata"]["resourceVersion"]
                if change["type"] == "BOOKMARK":
                    continue
                if change["type"] == "DELETED":
                    items.pop(obj["metadata"]["name"], None)
                else:
                    items[obj["metadata"]["name"]] = obj
                if predicate(current()):
                    return current()

    try:
        return await asyncio.wait_for(watch(), timeout)
    except TimeoutError:
        names = [(i["metadata"]["name"], (i.get("status") or {}).get("phase")) for i in current()]
        raise AssertionError(f"not {what} within {timeout:g}s; last seen: {names}") from None


def events_with(reason: str, *, about: str | None = None) -> Callable[[list[Obj]], bool]:
    """A predicate: some event has ``reason`` (about the object named ``about``)."""

    def check(events: list[Obj]) -> bool:
        return any(matching(events, reason, about=about))

    return check


def matching(events: list[Obj], reason: str, *, about: str | None = None) -> list[Obj]:
    return [
        e
        for e in events
        if e.get("reason") == reason
        and (about is None or (e.get("involvedObject") or {}).get("name") == about)
    ]
