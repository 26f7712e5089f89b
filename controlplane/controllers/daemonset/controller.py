"""The DaemonSet controller's reconcile: read the DaemonSet, the nodes and its pods from
the caches, find or make the current template's ControllerRevision (``revisions``),
create and delete pods as ``plan`` says, prune old revisions, write the status.

Pods are the DaemonSet's when their controller ownerReference carries its uid (found
through an owner index, never a scan); orphans its selector matches are adopted and its
pods that no longer match released (``claims``), so re-creating a DaemonSet deleted with
``--cascade=orphan`` takes its old pods back instead of doubling them. Pods it created
or deleted are expected (``Expectations``) until the cache shows them, so a lagging
cache never makes a second pod for a node; until then only the status is refreshed.
A node whose daemon keeps failing gets its next pod after a per-node back-off (1 s
doubling to ``BACKOFF_MAX``), as Kubernetes' ``failedPodsBackoff``, so a kubelet
rejecting the pod is not fought in a hot loop.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
import time
from typing import Any, ClassVar

from api import errors
from api.resources import resource
from api.selectors import LabelSelector
from controlplane.controllers.base import (
    Context,
    Controller,
    Expectations,
    Obj,
    Result,
    watch_owned_pods,
)
from controlplane.controllers.claims import PodClaims
from controlplane.controllers.daemonset import history
from controlplane.controllers.daemonset import pods as daemon_pods
from controlplane.controllers.daemonset.eligibility import NOT_HERE, placement
from controlplane.controllers.daemonset.plan import (
    NodeState,
    Revision,
    daemon_set_status,
    manage,
    rolling_limits,
    rolling_update,
)
from controlplane.controllers.daemonset.revisions import Histories
from controlplane.scheduler.terms import TermError

logger = logging.getLogger(__name__)

DAEMONSETS = resource("apps", "DaemonSet")
PODS = resource("", "Pod")
NODES = resource("", "Node")
CONTROLLER_REVISIONS = resource("apps", "ControllerRevision")


def _placement_fields(node: Obj) -> tuple[Any, ...]:
    return (
        (node.get("metadata") or {}).get("labels"),
        (node.get("spec") or {}).get("taints"),
    )


class DaemonSetController(Controller):
    name: ClassVar[str] = "daemonset"
    BACKOFF_BASE: ClassVar[float] = 1.0
    BACKOFF_MAX: ClassVar[float] = 60.0

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.daemon_sets = self.informer(DAEMONSETS)
        self.pods = self.informer(PODS)
        self.nodes = self.informer(NODES)
        self.claims = PodClaims(
            ctx.client, pods=self.pods, owners=self.daemon_sets, enqueue=self.enqueue
        )
        self.histories = Histories(
            ctx.client,
            revisions=self.informer(CONTROLLER_REVISIONS),
            daemon_sets=self.daemon_sets,
            claims=self.claims,
            enqueue=self.enqueue,
            enqueue_key=self.queue.add,
        )
        self.expectations = Expectations()
        self._backoff: dict[tuple[str, str], tuple[float, float]] = {}  # delay, since
        self.daemon_sets.add_handlers(
            on_add=self.enqueue,
            on_update=lambda _old, new: self.enqueue(new),
            on_delete=self.enqueue,
        )
        watch_owned_pods(self.pods, self.queue, self.expectations, owner_kind="DaemonSet")
        self.nodes.add_handlers(
            on_add=lambda _node: self._enqueue_all(),
            on_update=self._node_updated,
            on_delete=lambda _node: self._enqueue_all(),
        )

    # --- handlers: enqueue only ---------------------------------------------------------

    def _enqueue_all(self) -> None:
        for daemon_set in self.daemon_sets.list():
            self.enqueue(daemon_set)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if _placement_fields(old) != _placement_fields(new):
            self._enqueue_all()

    # --- reconcile ----------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        daemon_set = self.daemon_sets.get(key)
        if daemon_set is None:
            self.expectations.forget(key)
            for backoff_key in [k for k in self._backoff if k[0] == key]:
                del self._backoff[backoff_key]
            return None
        if daemon_set["metadata"].get("deletionTimestamp"):
            return None  # the garbage collector deletes its pods
        spec = daemon_set.get("spec") or {}
        template_spec = (spec.get("template") or {}).get("spec") or {}
        try:
            selector = LabelSelector.from_object(spec.get("selector"))
            nodes = {n["metadata"]["name"]: placement(template_spec, n) for n in self.nodes.list()}
        except (errors.Invalid, TermError) as e:
            message = getattr(e, "message", None) or str(e)
            self.record(daemon_set, "Warning", "InvalidSpec", message)
            logger.warning("daemonset=%s invalid spec: %s", key, message)
            return None
        by_node: dict[str, list[Obj]] = {}
        strays: list[Obj] = []  # pods for nodes that are gone
        claimed = await self.claims.claim(daemon_set, selector)
        # The current template's revision names the hash its pods carry (Kubernetes'
        # ``constructHistory``); an API error here is retried before any pod is made.
        current, old = await self.histories.construct(daemon_set, selector, claimed)
        for pod in claimed:
            if pod["metadata"].get("deletionTimestamp"):
                continue
            node = daemon_pods.target_node(pod)
            if node is None:
                # An adopted pod that names no node: Kubernetes leaves it alone too.
                logger.debug("daemonset=%s pod=%s targets no node", key, pod["metadata"]["name"])
            elif node not in nodes:
                strays.append(pod)
            else:
                by_node.setdefault(node, []).append(pod)
        states = [NodeState(n, nodes.get(n, NOT_HERE), tuple(by_node.get(n, ()))) for n in nodes]
        min_ready = int(spec.get("minReadySeconds") or 0)
        revision = Revision(
            hash=history.revision_hash(current),
            generation=daemon_set["metadata"].get("generation"),
            min_ready_seconds=min_ready,
            now=self.ctx.now(),
        )
        requeue: list[float] = []
        if self.expectations.satisfied(key):
            requeue += await self._manage(key, daemon_set, states, strays, revision)
            await self.histories.cleanup(daemon_set, old, claimed)
        revision = dataclasses.replace(revision, now=self.ctx.now())
        await self._write_status(daemon_set, daemon_set_status(states, revision))
        if min_ready:
            # A ready pod becomes available later: the status, and a surge update waiting
            # to delete the old pod beside it, look again then.
            for pods in by_node.values():
                for pod in pods:
                    remaining = daemon_pods.available_in(pod, min_ready, revision.now)
                    if remaining:
                        requeue.append(remaining + 0.05)
        return Result(requeue_after=min(requeue)) if requeue else None

    async def _manage(
        self,
        key: str,
        daemon_set: Obj,
        states: list[NodeState],
        strays: list[Obj],
        revision: Revision,
    ) -> list[float]:
        clock = time.monotonic()
        backoff = {
            node
            for (ds_key, node), (delay, since) in self._backoff.items()
            if ds_key == key and clock - since < delay
        }
        strategy = daemon_set["spec"].get("updateStrategy") or {}
        rolling = strategy.get("type", "RollingUpdate") == "RollingUpdate"
        desired = sum(1 for s in states if s.placement.should_run)
        limits = rolling_limits(strategy.get("rollingUpdate"), desired) if rolling else None
        surging = limits is not None and limits.max_surge > 0
        plan = manage(states, backoff=backoff, surge=revision if surging else None)
        delete = list(plan.delete) + [p["metadata"]["name"] for p in strays]
        create_on = list(plan.create_on)
        if limits is not None:
            rollout = rolling_update(states, revision, limits)
            delete += [name for name in rollout.delete if name not in delete]
            create_on += [node for node in rollout.create_on if node not in create_on]
        for pod_name, node in plan.failed:
            ns = daemon_set["metadata"]["namespace"]
            message = f"Found failed daemon pod {ns}/{pod_name} on node {node}, will try to kill it"
            self.record(daemon_set, "Warning", "FailedDaemonPod", message)
            delay, since = self._backoff.get((key, node), (0.0, 0.0))
            if clock - since > 2 * self.BACKOFF_MAX:
                delay = 0.0  # healthy for long: start again from the base (client-go's GC)
            delay = min(delay * 2, self.BACKOFF_MAX) if delay else self.BACKOFF_BASE
            self._backoff[(key, node)] = (delay, clock)
        # A failed pod held back by its node's back-off is looked at again when it ends.
        requeue = [
            self._backoff[(key, node)][0] + self._backoff[(key, node)][1] - clock + 0.05
            for node in plan.held_back
        ]
        if not create_on and not delete:
            return requeue
        self.expectations.expect(key, creations=len(create_on), deletions=len(delete))
        pods_by_name = {p["metadata"]["name"]: p for s in states for p in s.pods}
        pods_by_name.update({p["metadata"]["name"]: p for p in strays})
        stray_names = {p["metadata"]["name"] for p in strays}
        await asyncio.gather(
            *(self._create(key, daemon_set, node, revision.hash) for node in create_on),
            *(
                self._delete(key, daemon_set, pods_by_name[n], force=n in stray_names)
                for n in delete
            ),
        )
        return []

    async def _create(self, key: str, daemon_set: Obj, node: str, revision_hash: str) -> None:
        pod = daemon_pods.new_pod(daemon_set, node, revision_hash)
        namespace = daemon_set["metadata"]["namespace"]
        try:
            created = await self.ctx.client.create(PODS, namespace, pod)
        except errors.ApiError as e:
            self.expectations.created(key)  # it will never be seen
            self.record(daemon_set, "Warning", "FailedCreate", f"Error creating: {e.message}")
            logger.warning("daemonset=%s node=%s create failed: %s", key, node, e.message)
            return
        name = created["metadata"]["name"]
        logger.info("daemonset=%s node=%s created pod=%s", key, node, name)
        self.record(daemon_set, "Normal", "SuccessfulCreate", f"Created pod: {name}")

    async def _delete(self, key: str, daemon_set: Obj, pod: Obj, *, force: bool) -> None:
        meta = pod["metadata"]
        # A bound pod whose node is gone has no agent left to confirm a graceful delete.
        grace = 0 if force and (pod.get("spec") or {}).get("nodeName") else None
        try:
            await self.ctx.client.delete(
                PODS, meta["namespace"], meta["name"], grace_period=grace, uid=meta["uid"]
            )
        except errors.NotFound:
            self.expectations.deleted(key)
            return
        except errors.ApiError as e:
            self.expectations.deleted(key)
            self.record(daemon_set, "Warning", "FailedDelete", f"Error deleting: {e.message}")
            logger.warning("daemonset=%s pod=%s delete failed: %s", key, meta["name"], e.message)
            return
        logger.info("daemonset=%s deleted pod=%s", key, meta["name"])
        self.record(daemon_set, "Normal", "SuccessfulDelete", f"Deleted pod: {meta['name']}")

    async def _write_status(self, daemon_set: Obj, counts: dict[str, int]) -> None:
        current = daemon_set.get("status") or {}
        wanted = {
            **current,
            **counts,
            "observedGeneration": daemon_set["metadata"].get("generation"),
        }
        if wanted == current:
            return
        updated = copy.deepcopy(daemon_set)
        updated["status"] = wanted
        meta = daemon_set["metadata"]
        await self.ctx.client.update(
            DAEMONSETS, meta["namespace"], meta["name"], updated, subresource="status"
        )
