"""SchedulingGates: a pod with ``spec.schedulingGates`` waits, out of the active queue,
until its gates are removed (k8s PodSchedulingReadiness)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from controlplane.scheduler.framework import ClusterEvent, Handle, Status, unresolvable
from controlplane.scheduler.podinfo import PodInfo

NAME: Final = "SchedulingGates"
GATED_REASON: Final = "SchedulingGated"  # the PodScheduled condition's reason
GATED_MESSAGE: Final = "Scheduling is blocked due to non-empty scheduling gates"


class SchedulingGates:
    name = NAME

    def events(self) -> frozenset[ClusterEvent]:
        return frozenset()  # only an update of the pod itself lifts a gate

    def pre_enqueue(self, pod: PodInfo) -> Status | None:
        if not pod.scheduling_gates:
            return None
        return unresolvable(NAME, f"waiting for scheduling gates: {list(pod.scheduling_gates)}")


def new(args: Mapping[str, Any], handle: Handle) -> SchedulingGates:
    return SchedulingGates()
