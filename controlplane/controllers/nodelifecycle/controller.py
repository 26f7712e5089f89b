"""The node lifecycle controller: node health from leases, the node's conditions and
taints, and taint-based eviction of its pods (Kubernetes' node lifecycle controller and
taint eviction controller in one, keyed by node name).

One reconcile of a node, at ``now`` (``Context.now``):

1. health: when its lease or Ready heartbeat last changed, seen on our clock (health.py);
2. status: unreachable -> Ready (and the pressure conditions) Unknown, reason
   NodeStatusUnknown; its pods' Ready condition False (so Services stop sending to
   them). A lease that comes back restores the conditions the agent last posted, since
   the agent only writes its status when it changes or once a minute;
3. taints: what taints.py says, NoExecute ones held back while the zone's evictions are
   stopped (a switch reboot must not move every pod of the lab), and a node's first
   NoExecute taint only when its zone's token bucket allows (ratelimit.py: at most
   ``node_eviction_rate`` newly unhealthy nodes a second per zone);
4. pods: evicted (graceful delete, event TaintManagerEviction) when a NoExecute taint is
   not tolerated or its tolerationSeconds ran out; a pod of an unreachable node whose
   deletion grace period has passed is deleted with grace 0, since its agent will never
   confirm it (the owner has already replaced it: controllers do not count pods with a
   deletionTimestamp).

Events, with Kubernetes' reasons: RegisteredNode when the controller first sees a node
(so again for every node when a new leader starts, as in Kubernetes), RemovingNode when
it goes, NodeNotReady on a Ready node it marks Unknown ("Node X status is now:
NodeNotReady") and, as a Warning, on each pod it marks not ready; EvictionsStopped and
EvictionsResumed (bramble's own) when a zone's evictions stop or resume.

A reconcile asks to come back when the next of these times falls due, and at least every
``node_monitor_period``. Zone states are recomputed at every reconcile from every node's
health at the same ``now``, and an eviction is checked against the zone's state when it
falls due, not when the taint was added: in a switch reboot the nodes' leases run out
up to one renewal interval apart, and the first node's pods must still be spared once
the others have followed. A node still registering (``health.registering``) is not
counted in its zone.
"""

from __future__ import annotations

import copy
import logging
from datetime import datetime, timedelta
from typing import Any, ClassVar, Final

from api.resources import resource
from controlplane.controllers.base import Context, Controller, Result
from controlplane.controllers.nodelifecycle import health as hl
from controlplane.controllers.nodelifecycle import ratelimit as rl
from controlplane.controllers.nodelifecycle import status as st
from controlplane.controllers.nodelifecycle import taints as tn
from controlplane.controllers.nodelifecycle.eviction import PodEvictor

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

NODES = resource("", "Node")
PODS = resource("", "Pod")  # the evictor's writes use eviction.PODS
LEASES = resource("coordination.k8s.io", "Lease")
LEASE_NAMESPACE: Final = "kube-node-lease"
BY_NODE: Final = "spec.nodeName"
_SOON: Final = 0.05


def _pod_node(pod: Obj) -> list[str]:
    node = (pod.get("spec") or {}).get("nodeName")
    return [node] if isinstance(node, str) and node else []


class NodeLifecycleController(Controller):
    name: ClassVar[str] = "nodelifecycle"
    component: ClassVar[str] = "node-controller"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.settings = ctx.settings.node_lifecycle
        self.limiter = rl.EvictionLimiter(self.settings.node_eviction_rate)
        self.nodes = self.informer(NODES)
        self.leases = self.informer(LEASES)
        self.pods = self.informer(PODS)
        self.pods.add_index(BY_NODE, _pod_node)
        self.evictor = PodEvictor(ctx.client, self.record)
        self.nodes.add_handlers(
            on_add=self.enqueue,
            on_update=lambda _old, new: self.enqueue(new),
            on_delete=self.enqueue,
        )
        self.leases.add_handlers(on_add=self._lease, on_update=lambda _old, new: self._lease(new))
        self.pods.add_handlers(
            on_add=self._pod,
            on_update=lambda _old, new: self._pod(new),
            on_delete=self.evictor.pod_deleted,
        )
        self._observed: dict[str, hl.Observation] = {}
        self._allowed: dict[str, bool] = {}  # zone -> evictions allowed, as last logged
        self._replaced: dict[str, list[Obj]] = {}  # node -> conditions we set to Unknown
        self._known: dict[str, Obj] = {}  # node -> as last reconciled (for RemovingNode)
        self._ever_ready: set[str] = set()  # nodes seen Ready: no longer registering

    # --- handlers: only enqueue ---------------------------------------------------------

    def _lease(self, lease: Obj) -> None:
        meta = lease.get("metadata") or {}
        if meta.get("namespace") == LEASE_NAMESPACE and meta.get("name"):
            self.queue.add(str(meta["name"]))

    def _pod(self, pod: Obj) -> None:
        for node_name in _pod_node(pod):
            node = self.nodes.get(node_name)
            if node is not None and (
                tn.no_execute_taints(node) or (pod.get("metadata") or {}).get("deletionTimestamp")
            ):
                self.queue.add(node_name)

    # --- health and zones ---------------------------------------------------------------

    def _health(self, node: Obj, now: datetime) -> hl.Health:
        name = str(node["metadata"]["name"])
        lease = self.leases.get(f"{LEASE_NAMESPACE}/{name}") or {}
        renew = str((lease.get("spec") or {}).get("renewTime") or "")
        observation = hl.observe(
            self._observed.get(name), renew_time=renew, heartbeat=hl.heartbeat_of(node), now=now
        )
        self._observed[name] = observation
        return hl.node_health(
            ready=hl.condition(node, "Ready"),
            observation=observation,
            now=now,
            settings=self.settings,
        )

    def _zones(self, now: datetime) -> tuple[dict[str, hl.Health], dict[str, bool]]:
        """Every node's health and, per zone, whether evictions may go on; logs, records
        and enqueues the zone's nodes when that changes."""
        healths: dict[str, hl.Health] = {}
        zones: dict[str, dict[str, hl.Health]] = {}
        for node in self.nodes.list():
            name = str(node["metadata"]["name"])
            healths[name] = self._health(node, now)
            if (hl.condition(node, "Ready") or {}).get("status") == "True":
                self._ever_ready.add(name)
            ever_ready = name in self._ever_ready
            if hl.registering(node, ever_ready=ever_ready, now=now, settings=self.settings):
                continue
            zones.setdefault(hl.zone_of(node), {})[name] = healths[name]
        states = {z: hl.zone_state(h.values(), settings=self.settings) for z, h in zones.items()}
        allowed = {z: hl.evictions_allowed(z, states) for z in zones}
        for zone, ok in allowed.items():
            if self._allowed.get(zone, True) != ok:
                self._zone_changed(zone, ok, states[zone], zones[zone])
        self._allowed = allowed
        return healths, allowed

    def _zone_changed(
        self, zone: str, allowed: bool, state: hl.ZoneState, members: dict[str, hl.Health]
    ) -> None:
        unhealthy = sum(h is not hl.Health.READY for h in members.values())
        label = zone or "(none)"
        if allowed:
            logger.info("evictions resumed zone=%s state=%s", label, state.value)
            message = f"Zone {label} is {state.value} again: evictions resumed"
        else:
            logger.warning(
                "evictions stopped zone=%s state=%s unhealthy=%d nodes=%d",
                label, state.value, unhealthy, len(members),
            )  # fmt: skip
            message = (
                f"Zone {label} is {state.value}: {unhealthy} of {len(members)} nodes are not "
                "ready at once, so no pod is evicted until they recover (a node that is "
                "really gone: kubectl delete node NAME)"
            )
        for name in members:
            node = self.nodes.get(name)
            if node is not None:
                kind = "Normal" if allowed else "Warning"
                self.record(
                    node, kind, "EvictionsResumed" if allowed else "EvictionsStopped", message
                )
            self.queue.add(name)

    # --- reconcile ----------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        now = self.ctx.now()
        cached = self.nodes.get(key)
        if cached is None:
            gone = self._known.pop(key, None)
            if gone is not None:
                self.record(gone, "Normal", "RemovingNode", f"Removing Node {key} from Controller")
            self._forget(key)
            return None
        if key not in self._known:
            self.record(cached, "Normal", "RegisteredNode", f"Registered Node {key} in Controller")
        self._known[key] = cached
        healths, allowed = self._zones(now)
        health = healths[key]
        zone = hl.zone_of(cached)
        evicting = allowed.get(zone, True)
        node = await self._update_status(cached, health, now)
        deadlines = [now + timedelta(seconds=self.settings.node_monitor_period)]
        wanted = tn.desired_taints(node, health, evictions_allowed=evicting, now=now)
        if tn.starts_eviction(node, wanted):
            retry_at = self.limiter.take(zone, key, now)
            if retry_at is not None:
                # Tainted NoSchedule (and its pods marked not ready) now, NoExecute when
                # the zone's next token is there.
                logger.info(
                    "node taint paced node=%s zone=%s retry_in=%.1fs",
                    key, zone or "(none)", (retry_at - now).total_seconds(),
                )  # fmt: skip
                wanted = tn.desired_taints(node, health, evictions_allowed=False, now=now)
                deadlines.append(retry_at)
        if wanted != ((node.get("spec") or {}).get("taints") or []):
            before = {(t.get("key"), t.get("effect")) for t in tn.no_execute_taints(node)}
            node = copy.deepcopy(node)
            node.setdefault("spec", {})["taints"] = wanted
            for taint in tn.no_execute_taints(node):
                if (taint.get("key"), taint.get("effect")) not in before:
                    self.evictor.taint_added(key, str(taint.get("key")), now)
            logger.info(
                "node taints node=%s health=%s taints=%s",
                key, health.value, ",".join(f"{t['key']}:{t['effect']}" for t in wanted) or "-",
            )  # fmt: skip
            node = await self.ctx.client.update(NODES, None, key, node)
        if health is hl.Health.READY or tn.eviction_tainted(node):
            self.limiter.done(key)  # its token spent, or no longer wanted
        if health is not hl.Health.UNREACHABLE:
            ready = hl.condition(node, "Ready")
            grace = (
                self.settings.node_startup_grace_period
                if ready is None
                else self.settings.node_monitor_grace_period
            )
            deadlines.append(
                self._observed[key].probe_at + timedelta(seconds=grace, milliseconds=10)
            )
        pods = self.pods.by_index(BY_NODE, key)
        deadlines += await self.evictor.sync(node, pods, health, evicting=evicting, now=now)
        delay = (min(deadlines) - now).total_seconds()
        return Result(requeue_after=max(delay, _SOON))

    def _forget(self, name: str) -> None:
        self._observed.pop(name, None)
        self._replaced.pop(name, None)
        self._ever_ready.discard(name)
        self.limiter.done(name)
        self.evictor.forget(name)

    async def _update_status(self, node: Obj, health: hl.Health, now: datetime) -> Obj:
        name = str(node["metadata"]["name"])
        conditions = [
            c for c in (node.get("status") or {}).get("conditions") or [] if isinstance(c, dict)
        ]
        ready = hl.condition(node, "Ready") or {}
        ours = ready.get("status") == "Unknown" and ready.get("reason") in st.OURS
        was_ready = ready.get("status") == "True"
        if health is hl.Health.UNREACHABLE and not (ready and ready.get("status") == "Unknown"):
            self._replaced[name] = copy.deepcopy(conditions)
            changed = st.mark_unknown(node, conditions, now)
            logger.warning("node unreachable node=%s: Ready=Unknown", name)
        elif health is not hl.Health.UNREACHABLE and ours and name in self._replaced:
            changed = st.restore(conditions, self._replaced.pop(name), now)
            logger.info("node reachable again node=%s: conditions restored", name)
        else:
            return node
        fresh = copy.deepcopy(node)
        fresh.setdefault("status", {})["conditions"] = changed
        result: Obj = await self.ctx.client.update(NODES, None, name, fresh, subresource="status")
        if was_ready and health is hl.Health.UNREACHABLE:
            # Kubernetes' RecordNodeStatusChange: once, when Ready stops being True.
            message = f"Node {name} status is now: NodeNotReady"
            self.record(result, "Normal", "NodeNotReady", message)
        return result
