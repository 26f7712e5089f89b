"""Waiting on a namespace's pods as a whole (the DaemonSet and Job suites): list, then
watch, re-evaluating a predicate over all of them after every event, with a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from api.client import ApiClient
from tests.controlplane.controllers.harness import EVENTS, PODS

Obj = dict[str, Any]


async def wait_pods(
    client: ApiClient,
    namespace: str,
    predicate: Callable[[list[Obj]], bool],
    *,
    what: str,
    labels: dict[str, str] | None = None,
    timeout: float = 20.0,
) -> list[Obj]:
    """The pods (with ``labels``, not being deleted) once ``predicate`` holds for them;
    the predicate also sees every intermediate state, so it can check invariants."""
    listed = await client.list(PODS, namespace)
    pods = {p["metadata"]["name"]: p for p in listed["items"]}

    def current() -> list[Obj]:
        return [
            p
            for p in pods.values()
            if all(p["metadata"].get("labels", {}).get(k) == v for k, v in (labels or {}).items())
            and not p["metadata"].get("deletionTimestamp")
        ]

    if predicate(current()):
        return current()
    query = {"resourceVersion": listed["metadata"]["resourceVersion"]}

    async def watch() -> list[Obj]:
        while True:  # a watch the server ends is reopened from the last version seen
            async for change in client.watch(PODS, namespace, params=query):
                obj = change["object"]
                query["resourceVersion"] = obj["metadata"]["resourceVersion"]
                if change["type"] == "DELETED":
                    pods.pop(obj["metadata"]["name"], None)
                elif change["type"] != "BOOKMARK":
                    pods[obj["metadata"]["name"]] = obj
                if predicate(current()):
                    return current()

    try:
        return await asyncio.wait_for(watch(), timeout)
    except TimeoutError:
        raise AssertionError(f"pods: not {what} within {timeout:g}s: {current()}") from None


async def wait_event(
    client: ApiClient, namespace: str, name: str, reason: str, *, count: int = 1,
    timeout: float = 20.0,
) -> list[Obj]:  # fmt: skip
    """The first ``count`` Events (distinct ones) about the object ``name`` with
    ``reason``: events are sent in the background, so a test waits for them before it
    stops the controllers."""
    params = {"fieldSelector": f"involvedObject.name={name}"}
    listed = await client.list(EVENTS, namespace, params=params)
    found = {e["metadata"]["name"]: e for e in listed["items"] if e.get("reason") == reason}
    if len(found) >= count:
        return list(found.values())
    query = {**params, "resourceVersion": listed["metadata"]["resourceVersion"]}

    async def watch() -> list[Obj]:
        while True:
            async for change in client.watch(EVENTS, namespace, params=query):
                obj = change["object"]
                query["resourceVersion"] = obj["metadata"]["resourceVersion"]
                if change["type"] != "BOOKMARK" and obj.get("reason") == reason:
                    found[obj["metadata"]["name"]] = obj
                    if len(found) >= count:
                        return list(found.values())

    try:
        return await asyncio.wait_for(watch(), timeout)
    except TimeoutError:
        raise AssertionError(
            f"{len(found)} of {count} {reason} events for {name} within {timeout:g}s"
        ) from None
