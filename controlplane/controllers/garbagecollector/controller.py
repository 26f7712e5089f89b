"""The garbage collector (Kubernetes' ``GarbageCollector``): objects whose owners are all
gone are deleted; owners deleted with ``propagationPolicy: Foreground`` wait, under the
``foregroundDeletion`` finalizer, until their blocking dependents are gone; owners deleted
with ``Orphan`` first have the references to them removed from their dependents.

The graph is the informers' "owner uid -> dependents" index over every kind that can
carry ownerReferences (Events aside); work queue keys are ``plural.group|namespace/name``.
An object is looked at when its references or deletion state change, and when an owner
or a dependent of it goes away. The rules for one object are in decide.py; owner lookups
(live before any deletion) in owners.py.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any, ClassVar, Final

from api import errors
from api.informer import Informer, key_of
from api.resources import RESOURCES, Resource
from controlplane.controllers.base import Context, Controller, Result
from controlplane.controllers.garbagecollector import decide
from controlplane.controllers.garbagecollector.owners import Owners

logger = logging.getLogger(__name__)

BY_OWNER: Final = "garbagecollector/owner-uid"
Obj = dict[str, Any]


def collected() -> list[Resource]:
    """Every stored kind that can be deleted and watched, except Events (which nothing
    owns; Kubernetes' collector ignores them too)."""
    return [
        r
        for r in RESOURCES
        if "watch" in r.verbs and "delete" in r.verbs and (r.group, r.kind) != ("", "Event")
    ]


def _meta(obj: Obj) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _refs(obj: Obj) -> list[Obj]:
    refs = _meta(obj).get("ownerReferences")
    return [r for r in refs if isinstance(r, dict)] if isinstance(refs, list) else []


def _owner_uids(obj: Obj) -> list[str]:
    return [u for r in _refs(obj) if isinstance(u := r.get("uid"), str)]


def _deletion_state(obj: Obj) -> tuple[object, list[str]]:
    return _meta(obj).get("deletionTimestamp"), decide.finalizers(obj)


class GarbageCollector(Controller):
    name: ClassVar[str] = "garbagecollector"
    component: ClassVar[str] = "garbage-collector-controller"
    workers: ClassVar[int] = 4

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.kinds: dict[str, Resource] = {}
        self.by_resource: dict[Resource, Informer] = {}
        for resource in collected():
            informer = self.informer(resource)
            informer.add_index(BY_OWNER, _owner_uids)
            self.kinds[resource.qualified] = resource
            self.by_resource[resource] = informer
            self._watch(resource, informer)
        self.owners = Owners(ctx.client, self.by_resource)

    def _watch(self, resource: Resource, informer: Informer) -> None:
        def added(obj: Obj) -> None:
            deleting, _ = _deletion_state(obj)
            if _refs(obj) or deleting:
                self.queue.add(self.key(resource, obj))

        def updated(old: Obj, new: Obj) -> None:
            if _refs(old) != _refs(new) or _deletion_state(old) != _deletion_state(new):
                self.queue.add(self.key(resource, new))
            deleting, finals = _deletion_state(new)
            if deleting and decide.FOREGROUND in finals:
                self._enqueue_dependents(new)
            dropped = {r.get("uid") for r in _refs(old)} - {r.get("uid") for r in _refs(new)}
            self._enqueue_owners(old, only=dropped)

        def deleted(obj: Obj) -> None:
            self._enqueue_dependents(obj)
            self._enqueue_owners(obj)

        informer.add_handlers(on_add=added, on_update=updated, on_delete=deleted)

    def key(self, resource: Resource, obj: Obj) -> str:
        return f"{resource.qualified}|{key_of(obj)}"

    def _dependents(self, uid: str) -> Iterator[tuple[Resource, Obj]]:
        for resource, informer in self.by_resource.items():
            for obj in informer.by_index(BY_OWNER, uid):
                yield resource, obj

    def _enqueue_dependents(self, owner: Obj) -> None:
        uid = _meta(owner).get("uid")
        if isinstance(uid, str):
            for resource, obj in self._dependents(uid):
                self.queue.add(self.key(resource, obj))

    def _enqueue_owners(self, obj: Obj, *, only: set[object] | None = None) -> None:
        """A dependent went away (or dropped a reference): its owners may be waiting."""
        for ref in _refs(obj):
            if only is not None and ref.get("uid") not in only:
                continue
            where = self.owners.cached(ref, _meta(obj).get("namespace"))
            if where is not None and where[0] in self.by_resource:
                self.queue.add(f"{where[0].qualified}|{where[1]}")

    # --- reconcile --------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        kind, _, obj_key = key.partition("|")
        resource = self.kinds.get(kind)
        item = self.by_resource[resource].get(obj_key) if resource else None
        if resource is None or item is None:
            return None
        deleting, finals = _deletion_state(item)
        if deleting:
            if decide.ORPHAN in finals:
                await self._orphan_dependents(resource, item)
            elif decide.FOREGROUND in finals:
                await self._delete_dependents_first(resource, item)
            return None  # going away; its own owners no longer matter
        refs = _refs(item)
        if not refs:
            return None
        namespace = _meta(item).get("namespace")
        states = [(str(r.get("uid")), await self.owners.state(r, namespace)) for r in refs]
        uid = str(_meta(item).get("uid"))
        has_dependents = next(self._dependents(uid), None) is not None
        action = decide.decide(item, states, has_dependents=has_dependents)
        if isinstance(action, decide.RemoveReferences):
            logger.info("garbagecollector removing owner references object=%s uids=%s",
                        key, ",".join(sorted(action.uids)))  # fmt: skip
            await self._set_refs(
                resource, item, [r for r in refs if r.get("uid") not in action.uids]
            )
        elif isinstance(action, decide.Delete):
            logger.info("garbagecollector deleting object=%s policy=%s", key, action.policy)
            # NotFound: already gone; Conflict: the name belongs to a new object.
            with contextlib.suppress(errors.NotFound, errors.Conflict):
                await self.ctx.client.delete(
                    resource, namespace, str(_meta(item).get("name")),
                    propagation_policy=action.policy, uid=uid,
                )  # fmt: skip
        return None

    async def _orphan_dependents(self, resource: Resource, owner: Obj) -> None:
        uid = str(_meta(owner).get("uid"))
        for dep_resource, dep in list(self._dependents(uid)):
            kept = [r for r in _refs(dep) if r.get("uid") != uid]
            await self._set_refs(dep_resource, dep, kept)
        logger.info("garbagecollector orphaned dependents owner=%s", self.key(resource, owner))
        await self._drop_finalizer(resource, owner, decide.ORPHAN)

    async def _delete_dependents_first(self, resource: Resource, owner: Obj) -> None:
        uid = str(_meta(owner).get("uid"))
        blocking = 0
        for dep_resource, dep in self._dependents(uid):
            self.queue.add(self.key(dep_resource, dep))
            blocking += any(
                r.get("uid") == uid and r.get("blockOwnerDeletion") is True for r in _refs(dep)
            )
        if blocking == 0:
            logger.info("garbagecollector dependents gone owner=%s", self.key(resource, owner))
            await self._drop_finalizer(resource, owner, decide.FOREGROUND)

    async def _set_refs(self, resource: Resource, obj: Obj, refs: list[Obj]) -> None:
        await self._patch(resource, obj, {"ownerReferences": refs or None})

    async def _drop_finalizer(self, resource: Resource, obj: Obj, finalizer: str) -> None:
        kept = [f for f in decide.finalizers(obj) if f != finalizer]
        await self._patch(resource, obj, {"finalizers": kept or None})

    async def _patch(self, resource: Resource, obj: Obj, metadata: Obj) -> None:
        """A merge patch of metadata that carries the object's resourceVersion: a stale
        cache gives a Conflict (retried), never a lost write."""
        meta = _meta(obj)
        body = {"metadata": {**metadata, "resourceVersion": meta.get("resourceVersion")}}
        namespace = meta.get("namespace") if resource.namespaced else None
        with contextlib.suppress(errors.NotFound):
            await self.ctx.client.patch(resource, namespace, str(meta.get("name")), body)
