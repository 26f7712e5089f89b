"""The ReplicaSet controller (Kubernetes' ``ReplicaSetController``): keep
``spec.replicas`` active pods that match the selector and are controlled by the set.

A sync (``reconcile``) claims pods (``claims.PodClaims``: adopts orphans that match,
releases owned pods that no longer match), then, if the expectations of the previous
sync were observed, creates or deletes the difference, and finally writes the status.

Invariants and why:

* pods being deleted and finished pods (Succeeded, Failed) do not count; they are
  replaced, as in Kubernetes;
* a sync never acts on a cache that has not seen its own previous writes: creations and
  deletions are expected (``Expectations``) and observed in the pod handlers; deletions
  are tracked per pod key, because one deletion is seen twice (deletionTimestamp, then
  the removal);
* a set being deleted manages nothing and adopts nothing (the garbage collector is
  taking its pods away).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Final

from api import errors
from api.informer import key_of
from api.resources import resource
from api.selectors import LabelSelector
from controlplane.controllers.base import Context, Controller, Expectations, Result
from controlplane.controllers.claims import PodClaims, owner_reference
from controlplane.controllers.owners import controller_ref
from controlplane.controllers.replicaset import podcontrol, pods, ranking, status

logger = logging.getLogger(__name__)

REPLICASETS: Final = resource("apps", "ReplicaSet")
PODS: Final = resource("", "Pod")
NODES: Final = resource("", "Node")
# Kubernetes' burstReplicas: at most this many creations or deletions per sync, so that
# one huge scale does not starve the other sets.
BURST: Final = 500

Obj = dict[str, Any]


class ReplicaSetController(Controller):
    name: ClassVar[str] = "replicaset"
    workers: ClassVar[int] = 4

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.sets = self.informer(REPLICASETS)
        self.pods = self.informer(PODS)
        self.nodes = self.informer(NODES)
        self.claims = PodClaims(ctx.client, pods=self.pods, owners=self.sets, enqueue=self.enqueue)
        self.expectations = Expectations()
        self._deleting: dict[str, set[str]] = {}  # set key -> pod keys it deleted
        self.control = podcontrol.PodControl(ctx.client, self.record)
        self.sets.add_handlers(
            on_add=self.enqueue,
            on_update=lambda _old, new: self.enqueue(new),
            on_delete=self._set_deleted,
        )
        self.pods.add_handlers(
            on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted
        )

    # --- handlers: only bookkeeping and enqueueing ------------------------------------

    def _set_deleted(self, rs: Obj) -> None:
        key = key_of(rs)
        self.expectations.forget(key)
        self._deleting.pop(key, None)

    def _owner_key(self, pod: Obj) -> str | None:
        """The key of the cached set that controls ``pod`` (same name and uid)."""
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return None
        key = f"{pods.meta(pod).get('namespace')}/{ref.get('name')}"
        rs = self.sets.get(key)
        return key if rs is not None and pods.meta(rs).get("uid") == ref.get("uid") else None

    def _pod_added(self, pod: Obj) -> None:
        if pods.meta(pod).get("deletionTimestamp"):
            # Seen for the first time already going (a restart): not a creation we await.
            self._pod_deleted(pod)
            return
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.created(key)
            self.queue.add(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if pods.meta(old).get("resourceVersion") == pods.meta(new).get("resourceVersion"):
            return
        relabelled = pods.labels(old) != pods.labels(new)
        if pods.meta(new).get("deletionTimestamp"):
            self._pod_deleted(new)
            if relabelled:
                self._pod_deleted(old)
            return
        old_key, new_key = self._owner_key(old), self._owner_key(new)
        if old_key is not None and old_key != new_key:
            self.queue.add(old_key)
        if new_key is not None:
            self.queue.add(new_key)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is None:
            return
        waiting = self._deleting.get(key)
        if waiting is not None and key_of(pod) in waiting:
            waiting.discard(key_of(pod))
            self.expectations.deleted(key)
        self.queue.add(key)

    # --- the sync ---------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        rs = self.sets.get(key)
        if rs is None:
            self.expectations.forget(key)
            self._deleting.pop(key, None)
            return None
        spec = rs.get("spec") if isinstance(rs.get("spec"), dict) else {}
        assert isinstance(spec, dict)
        try:
            selector = LabelSelector.from_object(spec.get("selector"))
        except (errors.ApiError, ValueError, KeyError, TypeError) as e:
            self.record(rs, "Warning", "InvalidSelector", f"Invalid selector: {e}")
            return None
        owned = await self.claims.claim(rs, selector)
        active = [p for p in owned if pods.is_active(p)]
        failure: status.Failure | None = None
        error: Exception | None = None
        if self.expectations.satisfied(key) and not pods.meta(rs).get("deletionTimestamp"):
            failure, error = await self._manage(rs, key, spec, active)
        now = self.ctx.now()
        computed = status.compute(rs, active, failure=failure, now=now)
        if status.differs(rs.get("status"), computed.status):
            fresh = {**rs, "status": computed.status}
            ns, name = key.split("/", 1)
            await self.ctx.client.update(REPLICASETS, ns, name, fresh, subresource="status")
        if error is not None:
            raise error  # retried with back-off by the base
        if computed.recheck_at is not None:
            return Result(requeue_after=max(0.0, (computed.recheck_at - now).total_seconds()) + 0.1)
        return None

    async def _manage(
        self, rs: Obj, key: str, spec: Obj, active: list[Obj]
    ) -> tuple[status.Failure | None, Exception | None]:
        replicas = spec.get("replicas")
        want = replicas if isinstance(replicas, int) and replicas >= 0 else 1
        diff = len(active) - want
        if diff < 0:
            count = min(-diff, BURST)
            self.expectations.expect(key, creations=count)
            name = str(pods.meta(rs).get("name"))
            ref = owner_reference(rs, REPLICASETS)
            template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
            assert isinstance(template, dict)
            pod = pods.pod_from_template(template, owner_ref=ref, prefix=f"{name}-")
            created, error = await self.control.create_batches(rs, pod, count)
            for _ in range(count - created):  # never coming: do not wait for them
                self.expectations.created(key)
            if error is not None:
                if _namespace_terminating(error):
                    return None, None  # the namespace controller is emptying it
                return status.Failure("FailedCreate", _message(error)), error
        elif diff > 0:
            count = min(diff, BURST)
            victims = ranking.deletion_order(active, nodes=self.nodes.cache)[:count]
            self._deleting[key] = {key_of(p) for p in victims}
            self.expectations.expect(key, deletions=count)
            failures = await podcontrol.gather_errors([self.control.delete(rs, p) for p in victims])
            for _ in failures:
                self.expectations.deleted(key)
            if failures:
                return status.Failure("FailedDelete", _message(failures[0])), failures[0]
            logger.info("replicaset=%s deleted=%d", key, count)
        return None, None


def _message(error: Exception) -> str:
    return error.message if isinstance(error, errors.ApiError) else str(error)


def _namespace_terminating(error: Exception) -> bool:
    return isinstance(error, errors.Forbidden) and "being terminated" in error.message
