"""The Deployment controller's wiring: which events wake which Deployment, and which
ReplicaSets a Deployment owns (adoption and release by selector, as Kubernetes'
ClaimReplicaSets), before rollout.py does the work.

Wake-ups: a Deployment's own changes; a change of a ReplicaSet it controls (its status
carries the rollout forward); an orphan ReplicaSet whose labels a Deployment selects (to
adopt it); the deletion of a pod of a Recreate Deployment (its old pods must be gone
before new ones start).

Ownership: a ReplicaSet controlled by another object is never touched; one controlled by
this Deployment but no longer selected is released (unless the Deployment is being
deleted); an orphan that is selected is adopted, after re-reading the Deployment from
the API so that nothing is adopted by a Deployment that was just deleted and recreated.
"""

from __future__ import annotations

import copy
import logging
from typing import ClassVar

from api import errors
from api.informer import key_of
from api.resources import resource
from api.selectors import LabelSelector
from controlplane.controllers.base import Context, Controller, Result
from controlplane.controllers.deployment import rollout
from controlplane.controllers.deployment.objects import Obj, meta
from controlplane.controllers.deployment.sync import DEPLOYMENTS, REPLICASETS, Requeue, Sync
from controlplane.controllers.owners import controller_ref, controller_uid

logger = logging.getLogger(__name__)

PODS = resource("", "Pod")
BY_CONTROLLER = "deployment-controller/controller-uid"
BY_NAMESPACE = "deployment-controller/namespace"


def namespace_of(obj: Obj) -> list[str]:
    return [str(meta(obj).get("namespace") or "")]


def labels_of(obj: Obj) -> dict[str, str]:
    labels = meta(obj).get("labels")
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def selector_of(deployment: Obj) -> LabelSelector:
    """Raises api.errors.Invalid for a selector that does not parse."""
    selector = (deployment.get("spec") or {}).get("selector")
    return LabelSelector.from_object(selector if isinstance(selector, dict) else None)


class DeploymentController(Controller):
    name: ClassVar[str] = "deployment"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.deployments = self.informer(DEPLOYMENTS)
        self.replicasets = self.informer(REPLICASETS)
        self.pods = self.informer(PODS)
        self.replicasets.add_index(BY_NAMESPACE, namespace_of)
        self.pods.add_index(BY_CONTROLLER, controller_uid)
        self.deployments.add_handlers(
            on_add=self.enqueue,
            on_update=lambda _old, new: self.enqueue(new),
            on_delete=self.enqueue,
        )
        self.replicasets.add_handlers(
            on_add=self._rs_added, on_update=self._rs_updated, on_delete=self._rs_deleted
        )
        self.pods.add_handlers(on_delete=self._pod_deleted)

    # --- event handlers: they only enqueue ----------------------------------------------

    def _owner(self, obj: Obj) -> Obj | None:
        """The Deployment in the cache that controls this ReplicaSet, if any."""
        ref = controller_ref(obj)
        if ref is None or ref.get("kind") != "Deployment":
            return None
        key = f"{meta(obj).get('namespace')}/{ref.get('name')}"
        deployment = self.deployments.get(key)
        if deployment is None or meta(deployment).get("uid") != ref.get("uid"):
            return None
        return deployment

    def _selecting(self, rs: Obj) -> list[Obj]:
        namespace, labels = meta(rs).get("namespace"), labels_of(rs)
        found = []
        for deployment in self.deployments.list():
            if meta(deployment).get("namespace") != namespace:
                continue
            try:
                selector = selector_of(deployment)
            except errors.Invalid:
                continue
            if not selector.empty and selector.matches(labels):
                found.append(deployment)
        return found

    def _rs_added(self, rs: Obj) -> None:
        owner = self._owner(rs)
        if owner is not None:
            self.enqueue(owner)
        elif controller_ref(rs) is None:
            for deployment in self._selecting(rs):
                self.enqueue(deployment)

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        if controller_ref(old) != controller_ref(new):
            previous = self._owner(old)
            if previous is not None:
                self.enqueue(previous)
        owner = self._owner(new)
        if owner is not None:
            self.enqueue(owner)
        elif controller_ref(new) is None and (
            labels_of(old) != labels_of(new) or controller_ref(old) is not None
        ):
            for deployment in self._selecting(new):
                self.enqueue(deployment)

    def _rs_deleted(self, rs: Obj) -> None:
        owner = self._owner(rs)
        if owner is not None:
            self.enqueue(owner)

    def _pod_deleted(self, pod: Obj) -> None:
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.replicasets.get(f"{meta(pod).get('namespace')}/{ref.get('name')}")
        if rs is None:
            return
        owner = self._owner(rs)
        strategy = ((owner or {}).get("spec") or {}).get("strategy") or {}
        if owner is not None and strategy.get("type") == "Recreate":
            self.enqueue(owner)

    # --- reconcile ----------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        cached = self.deployments.get(key)
        if cached is None:
            return None
        deployment = copy.deepcopy(cached)
        try:
            selector = selector_of(deployment)
            replica_sets = [] if selector.empty else await self._claim(deployment, selector)
            sync = Sync(
                self.ctx.client, deployment, replica_sets, record=self.record, now=self.ctx.now()
            )
        except (errors.Invalid, ValueError, TypeError) as e:
            message = getattr(e, "message", None) or str(e)
            self.record(cached, "Warning", "InvalidDeployment", f"cannot reconcile: {message}")
            logger.warning("deployment=%s skipped: %s", key, message)
            return None
        if selector.empty:
            await self._selecting_all(sync)
            return None
        try:
            return await rollout.run(sync, self._pods_of)
        except Requeue:
            return Result(requeue_after=0.01)

    async def _selecting_all(self, sync: Sync) -> None:
        message = "This deployment is selecting all pods. A non-empty selector is required."
        self.record(sync.d, "Warning", "SelectingAll", message)
        generation = int(meta(sync.d).get("generation") or 0)
        if int(sync.status.get("observedGeneration") or 0) < generation:
            sync.status["observedGeneration"] = generation
            await sync.write_status()

    def _pods_of(self, uid: str) -> list[Obj]:
        return self.pods.by_index(BY_CONTROLLER, uid)

    async def _claim(self, deployment: Obj, selector: LabelSelector) -> list[Obj]:
        """The ReplicaSets this Deployment controls, after adopting and releasing."""
        d_meta = meta(deployment)
        uid, deleting = d_meta.get("uid"), bool(d_meta.get("deletionTimestamp"))
        namespace = str(d_meta.get("namespace"))
        owned: list[Obj] = []
        fresh: bool | None = None
        candidates = self.replicasets.by_index(BY_NAMESPACE, namespace)
        for rs in sorted(candidates, key=key_of):
            ref = controller_ref(rs)
            matches = not selector.empty and selector.matches(labels_of(rs))
            if ref is not None:
                if ref.get("uid") != uid:
                    continue
                if matches:
                    owned.append(rs)
                elif not deleting:
                    await self._release(deployment, rs)
                continue
            if deleting or not matches or meta(rs).get("deletionTimestamp"):
                continue
            if fresh is None:
                fresh = await self._can_adopt(deployment)
            if fresh:
                adopted = await self._adopt(deployment, rs)
                if adopted is not None:
                    owned.append(adopted)
        return owned

    async def _can_adopt(self, deployment: Obj) -> bool:
        d_meta = meta(deployment)
        try:
            current = await self.ctx.client.get(DEPLOYMENTS, d_meta["namespace"], d_meta["name"])
        except errors.NotFound:
            return False
        return meta(current).get("uid") == d_meta.get("uid") and not meta(current).get(
            "deletionTimestamp"
        )

    async def _adopt(self, deployment: Obj, rs: Obj) -> Obj | None:
        d_meta = meta(deployment)
        changed = copy.deepcopy(rs)
        refs = [
            r for r in meta(changed).get("ownerReferences") or [] if r.get("uid") != d_meta["uid"]
        ]
        refs.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": d_meta["name"],
                "uid": d_meta["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        )
        changed["metadata"]["ownerReferences"] = refs
        name = meta(rs)["name"]
        try:
            adopted = await self.ctx.client.update(REPLICASETS, d_meta["namespace"], name, changed)
        except errors.NotFound:
            return None
        logger.info(
            "deployment=%s/%s adopted replicaset=%s", d_meta["namespace"], d_meta["name"], name
        )
        return adopted

    async def _release(self, deployment: Obj, rs: Obj) -> None:
        d_meta = meta(deployment)
        changed = copy.deepcopy(rs)
        refs = [
            r for r in meta(changed).get("ownerReferences") or [] if r.get("uid") != d_meta["uid"]
        ]
        if refs:
            changed["metadata"]["ownerReferences"] = refs
        else:
            changed["metadata"].pop("ownerReferences", None)
        name = meta(rs)["name"]
        try:
            await self.ctx.client.update(REPLICASETS, d_meta["namespace"], name, changed)
        except errors.NotFound:
            return
        logger.info(
            "deployment=%s/%s released replicaset=%s", d_meta["namespace"], d_meta["name"], name
        )
