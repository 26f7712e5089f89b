"""In-memory stand-ins for what the sync loop talks to besides the runtime: the apiserver
calls the agent makes (ApiClient's get, list, watch, create, update, patch, delete) and a
clock.

``FakeApi`` keeps objects by (plural, namespace, name) and tells watchers about pod
changes as the apiserver does (ADDED, MODIFIED, DELETED). Deleting a pod with a grace
period only marks it (deletionTimestamp, deletionGracePeriodSeconds), as Kubernetes does
for a pod on a node; grace 0 removes it. Patches are JSON merge patches; an update (PUT)
whose resourceVersion is not the stored one is a Conflict. Every call is
recorded in ``calls``. Knobs: ``hang`` (keys whose GET never answers) and ``fail`` (keys
whose PATCH raises the given exception).

It is a fake of the API, not of the agent: the agent's own code (workers, relister,
informer, event recorder) runs for real against it.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from api import errors
from api.resources import Resource

Obj = dict[str, Any]
Key = tuple[str, str, str]  # (plural, namespace, name)

START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@dataclass
class Clock:
    """Time that moves only when a test says so."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class Call:
    verb: str
    plural: str
    namespace: str
    name: str
    detail: Any = None  # the patch, the grace period, ...


def merge_patch(target: Obj, patch: Mapping[str, Any]) -> Obj:
    """RFC 7386: ``null`` removes a key, objects merge, anything else replaces."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), dict):
            result[key] = merge_patch(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


@dataclass
class FakeApi:
    clock: Clock = field(default_factory=Clock)
    objects: dict[Key, Obj] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    hang: set[Key] = field(default_factory=set)
    fail: dict[Key, Exception] = field(default_factory=dict)
    _watchers: list[asyncio.Queue[Obj]] = field(default_factory=list)
    _revision: int = 0
    _uids: int = 0

    # --- for tests ------------------------------------------------------------------------

    def put(self, obj: Obj) -> Obj:
        """Create or replace an object (as ``kubectl apply`` would); returns the stored copy."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        key = (_plural(obj), str(meta.get("namespace") or ""), str(meta["name"]))
        old = self.objects.get(key)
        if old is None:
            self._uids += 1
            meta.setdefault("uid", f"uid-{self._uids}")
        else:
            meta["uid"] = old["metadata"]["uid"]
        return self._store(key, obj, "ADDED" if old is None else "MODIFIED")

    def get_pod(self, namespace: str, name: str) -> Obj | None:
        return self.objects.get(("pods", namespace, name))

    def events(self, name: str | None = None) -> list[Obj]:
        """The Events recorded (about the object ``name``, if given), oldest first."""
        return [
            obj
            for (plural, _, _), obj in self.objects.items()
            if plural == "events" and name in (None, obj["involvedObject"]["name"])
        ]

    def counts(self, name: str | None = None) -> dict[str, int]:
        """How often each reason was recorded (a repeat is a PATCH of ``count``)."""
        result: dict[str, int] = {}
        for event in self.events(name):
            result[event["reason"]] = result.get(event["reason"], 0) + int(event["count"])
        return result

    def deletes(self, namespace: str, name: str) -> list[Any]:
        """The grace periods of the DELETE calls for a pod."""
        return [
            c.detail
            for c in self.calls
            if (c.verb, c.plural, c.namespace, c.name) == ("delete", "pods", namespace, name)
        ]

    def _store(self, key: Key, obj: Obj, kind: str) -> Obj:
        self._revision += 1
        obj["metadata"]["resourceVersion"] = str(self._revision)
        self.objects[key] = obj
        if key[0] == "pods":
            self._notify(kind, obj)
        return copy.deepcopy(obj)

    def _notify(self, kind: str, obj: Obj) -> None:
        for queue in self._watchers:
            queue.put_nowait({"type": kind, "object": copy.deepcopy(obj)})

    def _find(self, resource: Resource, namespace: str | None, name: str) -> tuple[Key, Obj]:
        key = (resource.plural, namespace or "", name)
        obj = self.objects.get(key)
        if obj is None:
            raise errors.NotFound(f'{resource.plural} "{name}" not found', name=name)
        return key, obj

    # --- what ApiClient offers --------------------------------------------------------------

    async def get(self, resource: Resource, namespace: str | None, name: str) -> Obj:
        key = (resource.plural, namespace or "", name)
        self.calls.append(Call("get", *key))
        if key in self.hang:
            await asyncio.Event().wait()  # never answers (cancellable)
        return copy.deepcopy(self._find(resource, namespace, name)[1])

    async def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        params: Mapping[str, str] | None = None,
    ) -> Obj:
        items = [
            copy.deepcopy(obj)
            for (plural, ns, _), obj in self.objects.items()
            if plural == resource.plural and namespace in (None, ns)
        ]
        return {"items": items, "metadata": {"resourceVersion": str(self._revision)}}

    async def watch(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        params: Mapping[str, str] | None = None,
    ) -> AsyncIterator[Obj]:
        queue: asyncio.Queue[Obj] = asyncio.Queue()
        self._watchers.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._watchers.remove(queue)

    async def create(self, resource: Resource, namespace: str | None, obj: Obj) -> Obj:
        name = str(obj["metadata"]["name"])
        self.calls.append(Call("create", resource.plural, namespace or "", name))
        key = (resource.plural, namespace or "", name)
        if key in self.objects:
            raise errors.AlreadyExists(f'{resource.plural} "{name}" already exists')
        return self._store(key, copy.deepcopy(obj), "ADDED")

    async def update(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        obj: Obj,
        *,
        subresource: str | None = None,
    ) -> Obj:
        key = (resource.plural, namespace or "", name)
        self.calls.append(Call("update", *key))
        if key in self.fail:
            raise self.fail[key]
        _, stored = self._find(resource, namespace, name)
        sent = (obj.get("metadata") or {}).get("resourceVersion")
        if sent != stored["metadata"]["resourceVersion"]:
            raise errors.Conflict(
                f'Operation cannot be fulfilled on {resource.plural} "{name}": the object '
                "has been modified; please apply your changes to the latest version and try again"
            )
        obj = copy.deepcopy(obj)
        if "uid" in stored["metadata"]:
            obj["metadata"]["uid"] = stored["metadata"]["uid"]
        return self._store(key, obj, "MODIFIED")

    async def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        subresource: str | None = None,
        patch_type: str = "application/merge-patch+json",
    ) -> Obj:
        key = (resource.plural, namespace or "", name)
        self.calls.append(Call("patch", *key, patch))
        if key in self.fail:
            raise self.fail[key]
        _, obj = self._find(resource, namespace, name)
        return self._store(key, merge_patch(obj, patch), "MODIFIED")

    async def delete(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        *,
        grace_period: int | None = None,
    ) -> Obj:
        key, obj = self._find(resource, namespace, name)
        self.calls.append(Call("delete", *key, grace_period))
        spec = obj.get("spec") or {}
        grace = (
            grace_period
            if grace_period is not None
            else spec.get("terminationGracePeriodSeconds", 30)
        )
        if key[0] == "pods" and grace > 0 and spec.get("nodeName"):
            # A pod on a node: marked; its agent stops it, then confirms with grace 0.
            meta = obj["metadata"]
            if "deletionTimestamp" not in meta:
                at = self.clock() + timedelta(seconds=grace)
                meta["deletionTimestamp"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
                meta["deletionGracePeriodSeconds"] = grace
            return self._store(key, obj, "MODIFIED")
        del self.objects[key]
        if key[0] == "pods":
            self._notify("DELETED", obj)
        return copy.deepcopy(obj)


def _plural(obj: Obj) -> str:
    plurals = {"Pod": "pods", "ConfigMap": "configmaps", "Secret": "secrets",
               "Event": "events", "Lease": "leases"}  # fmt: skip
    return plurals[str(obj.get("kind"))]
