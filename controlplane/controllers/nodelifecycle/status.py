"""The node conditions the controller writes, as pure functions: Unknown when the node
stops renewing its lease (Kubernetes' reasons and messages), and what the agent last
posted put back when the lease returns (the agent writes its status only when it changes
or once a minute, so without this a node that was away for half a minute would show
NotReady for up to a minute more after it is back).
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any, Final

from controlplane.controllers.nodelifecycle.taints import stamp

Obj = dict[str, Any]

STALE_CONDITIONS: Final = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
OURS: Final = ("NodeStatusUnknown", "NodeStatusNeverUpdated")


def mark_unknown(node: Obj, conditions: list[Obj], now: datetime) -> list[Obj]:
    """Ready and the pressure conditions Unknown, keeping lastHeartbeatTime (a change of
    it is the agent's sign of life); the ones never posted are added."""
    result = copy.deepcopy(conditions)
    by_type = {c.get("type"): c for c in result}
    created = str((node.get("metadata") or {}).get("creationTimestamp") or stamp(now))
    for kind in STALE_CONDITIONS:
        c = by_type.get(kind)
        if c is None:
            result.append({
                "type": kind, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                "message": "Kubelet never posted node status.",
                "lastHeartbeatTime": created, "lastTransitionTime": stamp(now),
            })  # fmt: skip
        elif c.get("status") != "Unknown":
            c.update(
                status="Unknown",
                reason="NodeStatusUnknown",
                message="Kubelet stopped posting node status.",
                lastTransitionTime=stamp(now),
            )
    return result


def restore(current: list[Obj], before: list[Obj], now: datetime) -> list[Obj]:
    """The conditions the agent last posted back in place of our Unknowns, for the time
    until the agent writes its status again; heartbeats stay as they are now."""
    previous = {c.get("type"): c for c in before}
    result = []
    for c in current:
        if c.get("reason") not in OURS:
            result.append(copy.deepcopy(c))
            continue
        old = previous.get(c.get("type"))
        if old is None:
            continue  # one we added as never posted
        restored = {**copy.deepcopy(old), "lastTransitionTime": stamp(now)}
        if "lastHeartbeatTime" in c:
            restored["lastHeartbeatTime"] = c["lastHeartbeatTime"]
        result.append(restored)
    return result
