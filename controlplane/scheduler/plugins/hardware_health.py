"""HardwareHealth: bramble's own plugin for what Pis go through, read from the Node
conditions and labels the agent writes.

Filter: a node whose supply is under-voltage *right now* (condition UnderVoltage True,
reason UnderVoltageNow) takes no new pods: it is already browning out, and every write
risks its SD card. A pod that must run there anyway tolerates the key
``bramble.io/under-voltage`` (effect NoSchedule, or any effect).

Score: 100, less a penalty per problem (floored at 0), so healthy machines win ties:

    ThermalThrottling True (throttling now, hot)           throttling       50
    UnderVoltage True (since boot, or now and tolerated)   underVoltage     40
    MemoryCgroupDisabled True (memory limits not enforced) memoryCgroup     20
    ThermalThrottling False, ThrottledSinceBoot            throttledBefore  10
    ClockUnsynchronized True                               clock            10
    ``bramble.io/storage: sdcard``, for a pod that writes  sdCardWrites     20
      local storage (an emptyDir on disk or an
      ephemeral-storage request): SD cards wear out

Args: ``penalties`` (a mapping of the names above to 0..100).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Final

from controlplane.scheduler import terms
from controlplane.scheduler.framework import (
    MAX_NODE_SCORE,
    ClusterEvent,
    CycleState,
    Handle,
    Status,
    unresolvable,
)
from controlplane.scheduler.nodeinfo import NodeInfo
from controlplane.scheduler.podinfo import PodInfo

NAME: Final = "HardwareHealth"
ERR_REASON_UNDER_VOLTAGE: Final = "node(s) were under-voltage"
UNDER_VOLTAGE_KEY: Final = "bramble.io/under-voltage"
LABEL_STORAGE: Final = "bramble.io/storage"
UNDER_VOLTAGE: Final = "UnderVoltage"
UNDER_VOLTAGE_NOW: Final = "UnderVoltageNow"
THERMAL_THROTTLING: Final = "ThermalThrottling"
THROTTLED_SINCE_BOOT: Final = "ThrottledSinceBoot"
MEMORY_CGROUP_DISABLED: Final = "MemoryCgroupDisabled"
CLOCK_UNSYNCHRONIZED: Final = "ClockUnsynchronized"
DEFAULT_PENALTIES: Final = {
    "throttling": 50,
    "underVoltage": 40,
    "memoryCgroup": 20,
    "throttledBefore": 10,
    "clock": 10,
    "sdCardWrites": 20,
}
_REJECT: Final = unresolvable(NAME, ERR_REASON_UNDER_VOLTAGE)
_TAINT: Final = terms.Taint(UNDER_VOLTAGE_KEY, "", terms.NO_SCHEDULE)


def under_voltage_now(node: NodeInfo) -> bool:
    c = node.conditions.get(UNDER_VOLTAGE)
    return c is not None and c.status == "True" and c.reason == UNDER_VOLTAGE_NOW


class HardwareHealth:
    name = NAME

    def __init__(self, penalties: Mapping[str, int] | None = None) -> None:
        unknown = set(penalties or {}) - set(DEFAULT_PENALTIES)
        if unknown:
            raise ValueError(
                f"unknown penalties {sorted(unknown)}; known: {sorted(DEFAULT_PENALTIES)}"
            )
        self.penalties = {**DEFAULT_PENALTIES, **(penalties or {})}
        self._memo = f"{NAME}/{id(self)}"  # per instance: profiles may weigh differently
        if any(not 0 <= p <= MAX_NODE_SCORE for p in self.penalties.values()):
            raise ValueError("penalties must be in the range 0-100")

    def events(self) -> frozenset[ClusterEvent]:
        return frozenset({ClusterEvent.NODE_ADD, ClusterEvent.NODE_CONDITION})

    def passes_all(self, node: NodeInfo) -> bool:
        return not under_voltage_now(node)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if under_voltage_now(node) and not terms.tolerated(_TAINT, pod.tolerations):
            return _REJECT
        return None

    def sign_filter(self, state: CycleState, pod: PodInfo) -> Hashable:
        return pod.tolerations

    def sign_score(self, state: CycleState, pod: PodInfo) -> Hashable:
        return pod.writes_local_storage

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        return self.score_nodes(state, pod, [node])[0]

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        # A node's health changes with its Node object only, not with its pods: it is
        # computed once per Node update (NodeInfo.memo) instead of once per pod.
        writes = pod.writes_local_storage
        sd_penalty = self.penalties["sdCardWrites"]
        result = []
        for node in nodes:
            health = node.memo.get(self._memo)
            if health is None:
                health = node.memo[self._memo] = self._health(node)
            score, sdcard = health
            result.append(max(score - sd_penalty, 0) if writes and sdcard else score)
        return result

    def _health(self, node: NodeInfo) -> tuple[int, bool]:
        """(the score without the pod's part, whether the node boots from an SD card)"""
        sdcard = node.labels.get(LABEL_STORAGE) == "sdcard"
        conditions = node.conditions
        if not conditions:
            return MAX_NODE_SCORE, sdcard
        p = self.penalties
        score = MAX_NODE_SCORE
        thermal = conditions.get(THERMAL_THROTTLING)
        if thermal is not None:
            if thermal.status == "True":
                score -= p["throttling"]
            elif thermal.reason == THROTTLED_SINCE_BOOT:
                score -= p["throttledBefore"]
        voltage = conditions.get(UNDER_VOLTAGE)
        if voltage is not None and voltage.status == "True":
            score -= p["underVoltage"]
        cgroup = conditions.get(MEMORY_CGROUP_DISABLED)
        if cgroup is not None and cgroup.status == "True":
            score -= p["memoryCgroup"]
        clock = conditions.get(CLOCK_UNSYNCHRONIZED)
        if clock is not None and clock.status == "True":
            score -= p["clock"]
        return max(score, 0), sdcard


def new(args: Mapping[str, Any], handle: Handle) -> HardwareHealth:
    return HardwareHealth(args.get("penalties"))
