"""A real ``bramble server`` (with its scheduler, as it runs by default) and hollow nodes:
Node objects made through the API with the labels, capacity and conditions an agent
writes, but no agent. Waiting is done on watches, with deadlines, never by sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from api.client import ApiClient
from api.resources import resource
from tests.controlplane.scheduler import builders
from tests.support.cluster import BrambleServer, Kubectl
from tests.support.waiting import TIMEOUT, wait_for

PODS = resource("", "Pod")
NODES = resource("", "Node")
EVENTS = resource("", "Event")
NAMESPACES = resource("", "Namespace")
LEASES = resource("coordination.k8s.io", "Lease")

Obj = dict[str, Any]


class Lab:
    def __init__(self, server: BrambleServer, client: ApiClient, kubectl: Kubectl | None) -> None:
        self.server = server
        self.client = client
        self.kubectl = kubectl

    # --- nodes -------------------------------------------------------------------------

    async def add_node(self, name: str, **spec: Any) -> Obj:
        """A hollow node: created, then its status written through nodes/status as an
        agent does (a create keeps no status)."""
        wanted = builders.node(name, **spec)
        created = await self.client.create(NODES, None, {**wanted, "status": {}})
        created["status"] = wanted["status"]
        return await self.client.update(NODES, None, name, created, subresource="status")

    async def update_node(self, name: str, **spec: Any) -> Obj:
        wanted = builders.node(name, **spec)
        current = await self.client.get(NODES, None, name)
        current["metadata"]["labels"] = wanted["metadata"]["labels"]
        current["spec"] = wanted["spec"]
        current = await self.client.update(NODES, None, name, current)
        current["status"] = wanted["status"]
        return await self.client.update(NODES, None, name, current, subresource="status")

    # --- pods --------------------------------------------------------------------------

    async def create_pod(self, namespace: str, name: str, **spec: Any) -> Obj:
        obj = builders.pod(name, namespace=namespace, **spec)
        obj["metadata"].pop("uid")
        obj["metadata"].pop("creationTimestamp")
        obj["spec"].pop("priority")  # set by the apiserver from priorityClassName
        obj.pop("status")
        return await self.client.create(PODS, namespace, obj)

    async def wait(
        self,
        namespace: str,
        name: str,
        predicate: Callable[[Obj], bool],
        *,
        what: str,
        timeout: float = TIMEOUT,
    ) -> Obj:
        """The pod once ``predicate`` holds, watched from its current version."""
        return await wait_for(
            self.client, PODS, namespace, name, predicate, what=what, timeout=timeout
        )

    async def bound(self, namespace: str, name: str, timeout: float = TIMEOUT) -> str:
        pod = await self.wait(
            namespace,
            name,
            lambda p: bool(p["spec"].get("nodeName")),
            what="bound",
            timeout=timeout,
        )
        return str(pod["spec"]["nodeName"])

    async def unschedulable(self, namespace: str, name: str, *, containing: str = "") -> str:
        """The pod's PodScheduled=False/Unschedulable message (containing ``containing``)."""
        pod = await self.wait(
            namespace, name,
            lambda p: any(
                c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable"
                and containing in str(c.get("message"))
                for c in (p.get("status") or {}).get("conditions") or []
            ),
            what=f"PodScheduled=False (Unschedulable) with {containing!r}",
        )  # fmt: skip
        return next(
            str(c["message"]) for c in pod["status"]["conditions"] if c["type"] == "PodScheduled"
        )

    async def event(self, namespace: str, name: str, reason: str, *, containing: str = "") -> Obj:
        """The first event ``reason`` about pod ``name`` (containing ``containing``)."""
        selector = f"involvedObject.name={name},reason={reason}"

        def matches(e: Obj) -> bool:
            return containing in str(e.get("message"))

        listed = await self.client.list(EVENTS, namespace, params={"fieldSelector": selector})
        for item in listed["items"]:
            if matches(item):
                return dict(item)
        params = {
            "fieldSelector": selector,
            "resourceVersion": listed["metadata"]["resourceVersion"],
        }

        async def watch() -> Obj:
            async for change in self.client.watch(EVENTS, namespace, params=params):
                if change["type"] in ("ADDED", "MODIFIED") and matches(change["object"]):
                    return dict(change["object"])
            raise AssertionError("the watch ended")

        try:
            return await asyncio.wait_for(watch(), TIMEOUT)
        except TimeoutError:
            raise AssertionError(
                f"no {reason} event about {namespace}/{name} containing {containing!r} in "
                f"{TIMEOUT:g}s; the server log ends:\n{self.server.log.text()[-3000:]}"
            ) from None
