"""Node health at a moment, and the state of a zone, as pure functions (Kubernetes'
``tryUpdateNodeHealth`` and ``ComputeZoneState``).

A node shows it is alive by renewing its Lease (``kube-node-lease/<node>``, every 10 s)
or by posting a new Ready heartbeat. What counts is *when this controller saw* the
renewal, on its own clock, never the renewTime the node wrote: a Raspberry Pi has no
real-time clock and may boot in 1970 or drift before NTP answers, so the node's
timestamps are compared only for change (not order: a clock that jumps back must still
count as a renewal). A node seen for the first time (a new leader) gets a full grace
period from that moment, as in Kubernetes, so a control plane coming back after a
reboot does not declare every node dead at once.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from controlplane.controllers.settings import NodeLifecycleSettings

Obj = dict[str, Any]

ZONE_LABEL: Final = "topology.kubernetes.io/zone"


class Health(enum.Enum):
    READY = "Ready"
    NOT_READY = "NotReady"  # the node says Ready=False (its runtime is down, ...)
    UNREACHABLE = "Unreachable"  # no lease renewal or heartbeat within the grace period


class ZoneState(enum.Enum):
    NORMAL = "Normal"
    PARTIAL_DISRUPTION = "PartialDisruption"
    FULL_DISRUPTION = "FullDisruption"


@dataclass(frozen=True, slots=True)
class Observation:
    """What the controller last saw of a node's signs of life, and when (its clock)."""

    renew_time: str  # the Lease's spec.renewTime, compared only for change
    heartbeat: str  # the Ready condition's lastHeartbeatTime, likewise
    probe_at: datetime  # when either last changed, or the node was first seen
    renewed: bool = False  # a change seen since then: the node is alive, not just new to us


def observe(
    previous: Observation | None, *, renew_time: str, heartbeat: str, now: datetime
) -> Observation:
    """The observation after looking at the node's lease and Ready condition at ``now``."""
    if previous is None:
        return Observation(renew_time, heartbeat, now)
    if (renew_time != previous.renew_time and renew_time) or (
        heartbeat != previous.heartbeat and heartbeat
    ):
        return Observation(renew_time, heartbeat, now, renewed=True)
    return previous


def condition(node: Obj, kind: str) -> Obj | None:
    for c in (node.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == kind:
            return c
    return None


def heartbeat_of(node: Obj) -> str:
    ready = condition(node, "Ready")
    return str((ready or {}).get("lastHeartbeatTime") or "")


def node_health(
    *, ready: Obj | None, observation: Observation, now: datetime, settings: NodeLifecycleSettings
) -> Health:
    """The node's health at ``now``. A Ready=Unknown (left by this controller, or by the
    leader before it) counts as Ready once a renewal has been seen since: the lease
    proves the agent alive, and the agent posts its real status on its next report.
    Until then it stands, so that a new leader does not untaint dead nodes for a grace
    period."""
    grace = (
        settings.node_startup_grace_period if ready is None else settings.node_monitor_grace_period
    )
    if now - observation.probe_at > timedelta(seconds=grace):
        return Health.UNREACHABLE
    if ready is None:
        return Health.READY  # still registering, within its startup grace
    status = ready.get("status")
    if status == "False":
        return Health.NOT_READY
    if status == "Unknown" and not observation.renewed:
        return Health.UNREACHABLE
    return Health.READY


def registering(
    node: Obj, *, ever_ready: bool, now: datetime, settings: NodeLifecycleSettings
) -> bool:
    """A node that joined less than ``node_startup_grace_period`` ago and has not been
    Ready yet (``ever_ready``: this controller saw it Ready). Its agent is still starting
    (its runtime not listed yet): it says nothing about its zone's health, so it is left
    out of the zone's count. Otherwise the first node of a new lab, alone and not Ready
    for its first seconds, would make the only zone fully disrupted and stop evictions,
    with a Warning at every first boot."""
    if ever_ready or (condition(node, "Ready") or {}).get("status") == "True":
        return False
    created = (node.get("metadata") or {}).get("creationTimestamp")
    try:
        since = datetime.fromisoformat(str(created).replace("Z", "+00:00"))
    except ValueError:
        return False
    return now - since <= timedelta(seconds=settings.node_startup_grace_period)


def zone_of(node: Obj) -> str:
    labels = (node.get("metadata") or {}).get("labels") or {}
    return str(labels.get(ZONE_LABEL) or "")


def zone_state(healths: Iterable[Health], *, settings: NodeLifecycleSettings) -> ZoneState:
    """Kubernetes' ComputeZoneState, with "more than two nodes" counted over the zone
    rather than over its unhealthy nodes: a home lab of three Pis behind one switch,
    two of them cut off, is the case to protect (Kubernetes would evict them)."""
    total = unhealthy = 0
    for health in healths:
        total += 1
        unhealthy += health is not Health.READY
    if unhealthy == 0:
        return ZoneState.NORMAL
    if unhealthy == total:
        return ZoneState.FULL_DISRUPTION
    if total > settings.small_zone_size and unhealthy / total >= settings.unhealthy_zone_threshold:
        return ZoneState.PARTIAL_DISRUPTION
    return ZoneState.NORMAL


def evictions_allowed(zone: str, states: Mapping[str, ZoneState]) -> bool:
    """Kubernetes' rule: evict in a normal zone; in a zone wholly down only while some
    other zone is not (a zone outage: its pods belong elsewhere); never in a partially
    disrupted zone, nor anywhere when every zone is down (the control plane is the one
    cut off, or the switch rebooted)."""
    state = states.get(zone, ZoneState.NORMAL)
    if state is ZoneState.NORMAL:
        return True
    if state is ZoneState.PARTIAL_DISRUPTION:
        return False
    return any(s is not ZoneState.FULL_DISRUPTION for s in states.values())
