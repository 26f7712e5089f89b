"""Which pods a controller owns (Kubernetes' ``PodControllerRefManager.ClaimPods``), for
every controller of pods (ReplicaSet, DaemonSet, Job): its own pods still selected, plus
orphans it adopts, minus pods it releases because they no longer match.

* An orphan (no controller ownerReference, not being deleted) that matches an owner's
  selector gets that owner as its controller; the owner is re-read from the API first
  (``can_adopt``): a cache still holding an owner that was deleted, or deleted and
  recreated under a new uid, must not hand the pods to it.
* An owned pod whose labels no longer match is released (its reference removed), unless
  the owner is being deleted: the garbage collector is taking its pods away then.
* Adoption and release are JSON merge patches of ``ownerReferences`` carrying the pod's
  resourceVersion: a pod changed since the cache saw it gives a Conflict (the reconcile
  is retried) instead of dropping another writer's reference.

Handlers registered here enqueue the owners an orphan might belong to (a pod added or
relabelled without a controller, or just released); the owner's own pod events stay the
controller's. Concurrency: claims run inside a reconcile, one worker per owner key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from api import errors
from api.client import ApiClient
from api.informer import Informer, key_of
from api.resources import Resource, resource
from api.selectors import LabelSelector
from controlplane.controllers.owners import controller_ref, controller_uid

logger = logging.getLogger(__name__)

PODS: Final = resource("", "Pod")
BY_CONTROLLER: Final = "claims/controller-uid"
ORPHANS: Final = "claims/orphans-by-namespace"
BY_NAMESPACE: Final = "claims/namespace"

Obj = dict[str, Any]


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    value = obj.get("metadata")
    return value if isinstance(value, dict) else {}


def _labels(obj: Mapping[str, Any]) -> dict[str, str]:
    value = _meta(obj).get("labels")
    return value if isinstance(value, dict) else {}


def namespace_of(obj: Mapping[str, Any]) -> list[str]:
    """Index function: the object's namespace."""
    ns = _meta(obj).get("namespace")
    return [ns] if isinstance(ns, str) else []


def _orphan_namespace(pod: Mapping[str, Any]) -> list[str]:
    return [] if controller_ref(pod) else namespace_of(pod)


def _refs(obj: Mapping[str, Any]) -> list[Obj]:
    refs = _meta(obj).get("ownerReferences")
    return [r for r in refs if isinstance(r, dict)] if isinstance(refs, list) else []


def owner_reference(owner: Mapping[str, Any], owners: Resource) -> Obj:
    """The reference a controller puts on the pods it creates or adopts."""
    return {
        "apiVersion": owners.api_version,
        "kind": owners.kind,
        "name": _meta(owner).get("name"),
        "uid": _meta(owner).get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def selector_of(owner: Mapping[str, Any]) -> LabelSelector:
    spec = owner.get("spec")
    return LabelSelector.from_object(spec.get("selector") if isinstance(spec, dict) else None)


class PodClaims:
    """The claims of the owners in ``owners`` (an informer of ReplicaSets, DaemonSets or
    Jobs) over the pods in ``pods``; ``enqueue`` queues an owner for its reconcile."""

    def __init__(
        self,
        client: ApiClient,
        *,
        pods: Informer,
        owners: Informer,
        enqueue: Callable[[Obj], None],
    ) -> None:
        self._client = client
        self._pods = pods
        self._owners = owners
        self._enqueue = enqueue
        # The same index functions under the same names for every controller: the
        # informers are shared, and adding an index again only rebuilds it.
        pods.add_index(BY_CONTROLLER, controller_uid)
        pods.add_index(ORPHANS, _orphan_namespace)
        owners.add_index(BY_NAMESPACE, namespace_of)
        pods.add_handlers(on_add=self._pod_added, on_update=self._pod_updated)

    # --- handlers: enqueue the owners an orphan may belong to -------------------------

    def _pod_added(self, pod: Obj) -> None:
        if controller_ref(pod) is None and not _meta(pod).get("deletionTimestamp"):
            self._enqueue_matching(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if controller_ref(new) is not None or _meta(new).get("deletionTimestamp"):
            return
        if _labels(old) != _labels(new) or controller_ref(old) is not None:
            self._enqueue_matching(new)

    def _enqueue_matching(self, pod: Obj) -> None:
        labels = _labels(pod)
        for ns in namespace_of(pod):
            for owner in self._owners.by_index(BY_NAMESPACE, ns):
                try:
                    selector = selector_of(owner)
                except (errors.ApiError, ValueError, KeyError, TypeError):
                    continue
                if not selector.empty and selector.matches(labels):
                    self._enqueue(owner)

    # --- the claim --------------------------------------------------------------------

    def owned(self, owner: Mapping[str, Any]) -> list[Obj]:
        """The cached pods whose controller is ``owner`` (by uid), selected or not."""
        return self._pods.by_index(BY_CONTROLLER, str(_meta(owner).get("uid")))

    async def claim(self, owner: Obj, selector: LabelSelector) -> list[Obj]:
        """The pods ``owner`` controls once matching orphans are adopted and owned pods
        that no longer match are released (pods being deleted included, as cached)."""
        meta = _meta(owner)
        uid, ns = str(meta.get("uid")), str(meta.get("namespace"))
        deleting = bool(meta.get("deletionTimestamp"))
        claimed: list[Obj] = []
        for pod in self.owned(owner):
            if selector.matches(_labels(pod)):
                claimed.append(pod)
            elif not deleting:
                logger.info("owner=%s releasing pod=%s", key_of(owner), key_of(pod))
                await self.release(pod, uid)
        orphans = [
            pod
            for pod in self._pods.by_index(ORPHANS, ns)
            if not _meta(pod).get("deletionTimestamp") and selector.matches(_labels(pod))
        ]
        if orphans and not deleting and not selector.empty and await self.can_adopt(owner):
            ref = owner_reference(owner, self._owners.resource)
            for pod in orphans:
                logger.info("owner=%s adopting pod=%s", key_of(owner), key_of(pod))
                adopted = await self.adopt(pod, ref)
                if adopted is not None:
                    claimed.append(adopted)
        return claimed

    async def can_adopt(self, owner: Obj) -> bool:
        """The owner, read from the API, is still this one and not being deleted."""
        meta = _meta(owner)
        try:
            fresh = await self._client.get(
                self._owners.resource, meta.get("namespace"), str(meta.get("name"))
            )
        except errors.NotFound:
            return False
        fresh_meta = _meta(fresh)
        return fresh_meta.get("uid") == meta.get("uid") and not fresh_meta.get("deletionTimestamp")

    async def adopt(self, pod: Obj, ref: Obj) -> Obj | None:
        """Add the controller reference; None if the pod is gone."""
        refs = [r for r in _refs(pod) if r.get("uid") != ref.get("uid")]
        return await self._patch_refs(pod, [*refs, ref])

    async def release(self, pod: Obj, uid: str) -> Obj | None:
        """Remove the reference to ``uid``; None if the pod is gone."""
        return await self._patch_refs(pod, [r for r in _refs(pod) if r.get("uid") != uid])

    async def _patch_refs(self, pod: Obj, refs: Iterable[Obj]) -> Obj | None:
        meta = _meta(pod)
        patch = {
            "metadata": {
                "ownerReferences": list(refs) or None,
                "resourceVersion": meta.get("resourceVersion"),
            }
        }
        try:
            return await self._client.patch(
                PODS, meta.get("namespace"), str(meta.get("name")), patch
            )
        except errors.NotFound:
            return None
