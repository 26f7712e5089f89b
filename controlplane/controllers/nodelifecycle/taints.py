"""Which taints a node should carry, and when a pod on it is to be evicted: pure
functions of the node, its health and the clock (Kubernetes' node lifecycle taints,
TaintNodesByCondition, and the taint eviction controller's toleration arithmetic).

Owned taints: ``node.kubernetes.io/{not-ready,unreachable}`` (NoSchedule and NoExecute),
``node.kubernetes.io/unschedulable`` (NoSchedule, from ``spec.unschedulable``) and the
pressure NoSchedule taints of the conditions. Every other taint (a person's
``kubectl taint``) is left where it is. A taint that stays keeps its ``timeAdded``,
because tolerationSeconds count from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from controlplane.controllers.nodelifecycle.health import Health, condition

Obj = dict[str, Any]

NO_SCHEDULE: Final = "NoSchedule"
NO_EXECUTE: Final = "NoExecute"
NOT_READY: Final = "node.kubernetes.io/not-ready"
UNREACHABLE: Final = "node.kubernetes.io/unreachable"
UNSCHEDULABLE: Final = "node.kubernetes.io/unschedulable"
_PRESSURE: Final = {
    "MemoryPressure": "node.kubernetes.io/memory-pressure",
    "DiskPressure": "node.kubernetes.io/disk-pressure",
    "PIDPressure": "node.kubernetes.io/pid-pressure",
    "NetworkUnavailable": "node.kubernetes.io/network-unavailable",
}
OWNED: Final = frozenset({NOT_READY, UNREACHABLE, UNSCHEDULABLE, *_PRESSURE.values()})


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _wanted(node: Obj, health: Health, *, no_execute: bool) -> list[tuple[str, str]]:
    """The owned (key, effect) pairs the node should carry."""
    wanted: list[tuple[str, str]] = []
    if health is Health.NOT_READY:
        wanted.append((NOT_READY, NO_SCHEDULE))
    elif health is Health.UNREACHABLE:
        wanted.append((UNREACHABLE, NO_SCHEDULE))
    else:
        # Conditions of an unreachable node are stale (and set to Unknown): only a node
        # that talks to us has pressure worth a taint.
        for kind, key in _PRESSURE.items():
            if (condition(node, kind) or {}).get("status") == "True":
                wanted.append((key, NO_SCHEDULE))
    if (node.get("spec") or {}).get("unschedulable") is True:
        wanted.append((UNSCHEDULABLE, NO_SCHEDULE))
    if no_execute and health is not Health.READY:
        wanted.append((NOT_READY if health is Health.NOT_READY else UNREACHABLE, NO_EXECUTE))
    return wanted


def desired_taints(
    node: Obj, health: Health, *, evictions_allowed: bool, now: datetime
) -> list[Obj]:
    """The node's taints as they should be. While evictions are stopped in its zone, no
    new NoExecute taint is added (the ones already there, from before the outage, stay);
    a node that goes from not-ready to unreachable, or back, keeps the time it first
    became unhealthy, so a flapping node is still evicted in time."""
    current = [t for t in (node.get("spec") or {}).get("taints") or [] if isinstance(t, dict)]
    held_no_execute = [
        t
        for t in current
        if t.get("key") in (NOT_READY, UNREACHABLE) and t.get("effect") == NO_EXECUTE
    ]
    wanted = _wanted(node, health, no_execute=evictions_allowed)
    if not evictions_allowed and health is not Health.READY:
        # Keep what is there, add nothing that would start an eviction clock.
        wanted += [(str(t.get("key")), NO_EXECUTE) for t in held_no_execute]
    since = min(
        (t for t in (parse_time(t.get("timeAdded")) for t in held_no_execute) if t is not None),
        default=now,
    )
    result: list[Obj] = []
    present: set[tuple[str, str]] = set()
    for taint in current:
        pair = (str(taint.get("key")), str(taint.get("effect")))
        if taint.get("key") in OWNED and pair not in wanted:
            continue
        if pair in present:
            continue  # a duplicate: Kubernetes' validation would refuse it anyway
        present.add(pair)
        result.append(taint)
    for key, effect in wanted:
        if (key, effect) not in present:
            present.add((key, effect))
            added = since if effect == NO_EXECUTE else now
            result.append({"key": key, "effect": effect, "timeAdded": stamp(added)})
    return result


def eviction_tainted(node: Obj) -> bool:
    """Does the node carry a not-ready or unreachable NoExecute taint?"""
    return _owned_no_execute((node.get("spec") or {}).get("taints") or [])


def _owned_no_execute(taints: Iterable[object]) -> bool:
    return any(
        isinstance(t, dict)
        and t.get("key") in (NOT_READY, UNREACHABLE)
        and t.get("effect") == NO_EXECUTE
        for t in taints
    )


def starts_eviction(node: Obj, wanted: Sequence[Obj]) -> bool:
    """Would ``wanted`` give the node its first not-ready or unreachable NoExecute taint
    (start its pods' eviction clocks)? Swapping one for the other does not: the clocks
    are running already. This is what the eviction rate paces."""
    return _owned_no_execute(wanted) and not eviction_tainted(node)


def no_execute_taints(node: Obj) -> list[Obj]:
    taints = (node.get("spec") or {}).get("taints") or []
    return [t for t in taints if isinstance(t, dict) and t.get("effect") == NO_EXECUTE]


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """Kubernetes' Toleration.ToleratesTaint."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def taint_started(taint: Obj, *, added_here: datetime | None, first_seen: datetime) -> datetime:
    """When a NoExecute taint's clock started: its timeAdded, made exact by the moment
    this controller added it (timeAdded has whole seconds, too coarse for a toleration
    of one second); a taint without timeAdded counts from when it was first seen."""
    added = parse_time(taint.get("timeAdded"))
    if added is None:
        return first_seen
    if added_here is not None and timedelta(0) <= added_here - added < timedelta(seconds=1):
        return added_here
    return added


def eviction_time(
    tolerations: Sequence[Obj], taints: Iterable[tuple[Obj, datetime]]
) -> datetime | None:
    """When a pod with ``tolerations`` is to be evicted from a node with NoExecute
    ``taints`` (each with the time its clock started); None for never. An untolerated
    taint evicts at once (``datetime.min``); a tolerated one at its start plus the
    shortest tolerationSeconds among the matching tolerations (as Kubernetes: one
    without seconds does not lengthen that; only when none has seconds is the taint
    tolerated for good; negative counts as zero)."""
    deadline: datetime | None = None
    for taint, started in taints:
        matching = [t for t in tolerations if isinstance(t, dict) and tolerates(t, taint)]
        if not matching:
            return datetime.min.replace(tzinfo=started.tzinfo)
        seconds = [
            t["tolerationSeconds"] for t in matching if isinstance(t.get("tolerationSeconds"), int)
        ]
        if not seconds:
            continue  # tolerated for good
        at = started + timedelta(seconds=max(0, min(seconds)))
        deadline = at if deadline is None else min(deadline, at)
    return deadline
