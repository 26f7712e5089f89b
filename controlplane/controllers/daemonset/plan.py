"""The DaemonSet's decisions as pure functions of the nodes and their pods, so they are
tested as tables: which nodes need a pod and which pods must go (``manage``, as
Kubernetes' ``podsShouldBeOnNode``), which old pods a rolling update replaces now
(``pods_to_replace``, as ``rollingUpdate`` with maxSurge 0) and the status
(``daemon_set_status``, as ``updateDaemonSetStatus``).

Invariants: at most one running daemon pod per node (the oldest is kept), a failed pod
is deleted before its replacement is created (the next sync creates it), and a rolling
update never has more than ``maxUnavailable`` updated-or-old pods unavailable at once,
counting nodes that have no pod yet or two pods as unavailable.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controlplane.controllers.daemonset.eligibility import Placement
from controlplane.controllers.daemonset.pods import (
    creation_order,
    is_available,
    is_ready,
    is_updated,
)

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class NodeState:
    """A node, where the daemon belongs on it, and the daemon pods targeting it that
    are not being deleted (running, pending or finished)."""

    name: str
    placement: Placement
    pods: tuple[Obj, ...] = ()


@dataclass(frozen=True, slots=True)
class ManagePlan:
    create_on: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()  # pod names
    failed: tuple[tuple[str, str], ...] = ()  # (pod, node): deleted because it finished
    held_back: tuple[str, ...] = field(default=())  # nodes whose failed pod waits (back-off)


def _finished(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _name(pod: Mapping[str, Any]) -> str:
    return str(pod["metadata"]["name"])


def manage(nodes: Sequence[NodeState], *, backoff: Collection[str] = ()) -> ManagePlan:
    """``backoff``: nodes whose last failed pod was deleted too recently to delete (and
    so replace) another one yet."""
    create: list[str] = []
    delete: list[str] = []
    failed: list[tuple[str, str]] = []
    held: list[str] = []
    for node in nodes:
        if node.placement.should_run and not node.pods:
            create.append(node.name)
        elif node.placement.should_continue_running:
            running = []
            for pod in node.pods:
                if not _finished(pod):
                    running.append(pod)
                elif node.name in backoff:
                    held.append(node.name)
                else:
                    failed.append((_name(pod), node.name))
                    delete.append(_name(pod))
            running.sort(key=creation_order)
            delete.extend(_name(p) for p in running[1:])
        else:
            delete.extend(_name(p) for p in node.pods)
    return ManagePlan(tuple(create), tuple(delete), tuple(failed), tuple(held))


def max_unavailable(value: object, desired: int) -> int:
    """maxUnavailable of ``desired`` (an int or a percentage, rounded up), at least 1
    (Kubernetes' ``updatedDesiredNodeCounts`` when maxSurge is 0)."""
    if isinstance(value, str) and value.endswith("%"):
        try:
            result = math.ceil(int(value[:-1]) * desired / 100)
        except ValueError:
            result = 1
    elif isinstance(value, int) and not isinstance(value, bool):
        result = value
    else:
        result = 1
    return max(result, 1)


def pods_to_replace(
    nodes: Sequence[NodeState],
    *,
    revision_hash: str,
    generation: int | None,
    max_unavailable: int,
    min_ready_seconds: int,
    now: datetime,
) -> list[str]:
    """The old pods to delete now (the manage step then creates their updated
    replacements). Old pods that are unavailable anyway always go; available ones only
    while fewer than ``max_unavailable`` daemons are unavailable."""
    unavailable = 0
    broken: list[str] = []
    candidates: list[str] = []
    for node in sorted(nodes, key=lambda n: n.name):
        if not node.placement.should_continue_running:
            continue  # the manage step deletes its pods
        pods = [p for p in node.pods if not _finished(p)]
        if not pods:
            if node.placement.should_run:
                unavailable += 1  # the manage step is creating it
            continue
        new = [p for p in pods if is_updated(p, revision_hash, generation)]
        old = [p for p in pods if not is_updated(p, revision_hash, generation)]
        if len(new) > 1 or len(old) > 1 or (new and old):
            unavailable += 1  # the manage step prunes the extra one first
        elif new:
            if not is_available(new[0], min_ready_seconds, now):
                unavailable += 1
        elif not is_available(old[0], min_ready_seconds, now):
            broken.append(_name(old[0]))
        elif unavailable < max_unavailable:
            candidates.append(_name(old[0]))
    room = min(max(max_unavailable - unavailable, 0), len(candidates))
    return broken + candidates[:room]


def daemon_set_status(
    nodes: Sequence[NodeState],
    *,
    revision_hash: str,
    generation: int | None,
    min_ready_seconds: int,
    now: datetime,
) -> dict[str, int]:
    desired = current = misscheduled = ready = available = updated = 0
    for node in nodes:
        pods = sorted((p for p in node.pods if not _finished(p)), key=creation_order)
        if not node.placement.should_run:
            misscheduled += int(bool(pods))
            continue
        desired += 1
        if not pods:
            continue
        current += 1
        pod = pods[0]
        if is_ready(pod):
            ready += 1
            available += int(is_available(pod, min_ready_seconds, now))
        updated += int(is_updated(pod, revision_hash, generation))
    return {
        "desiredNumberScheduled": desired,
        "currentNumberScheduled": current,
        "numberMisscheduled": misscheduled,
        "numberReady": ready,
        "numberAvailable": available,
        "numberUnavailable": desired - available,
        "updatedNumberScheduled": updated,
    }
