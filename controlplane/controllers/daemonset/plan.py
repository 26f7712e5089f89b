"""The DaemonSet's decisions as pure functions of the nodes and their pods, so they are
tested as tables: which nodes need a pod and which pods must go (``manage``, as
Kubernetes' ``podsShouldBeOnNode``), what a rolling update does now (``rolling_update``,
as ``rollingUpdate``: delete-first with maxUnavailable, create-first with maxSurge) and
the status (``daemon_set_status``, as ``updateDaemonSetStatus``).

Invariants: at most one running daemon pod per node (the oldest is kept), except during a
surge update, where a node may hold one old and one new pod until the new one is
available (or the old one stops being ready); a failed pod is deleted before its
replacement is created (the next sync creates it). With maxSurge 0, a rolling update
never has more than ``maxUnavailable`` updated-or-old pods unavailable at once, counting
nodes that have no pod yet or two pods as unavailable. With maxSurge, no available old
pod is deleted before its node's new pod is available, and no more than ``maxSurge``
nodes wait for a new pod beside an available old one.
"""

from __future__ import annotations

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
from controlplane.controllers.deployment.rolling import scaled_value

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class NodeState:
    """A node, where the daemon belongs on it, and the daemon pods targeting it that
    are not being deleted (running, pending or finished)."""

    name: str
    placement: Placement
    pods: tuple[Obj, ...] = ()


@dataclass(frozen=True, slots=True)
class Revision:
    """What marks a pod as of the current template (the hash or the template
    generation), and when a ready pod counts as available."""

    hash: str
    generation: int | None
    min_ready_seconds: int
    now: datetime

    def updated(self, pod: Mapping[str, Any]) -> bool:
        return is_updated(pod, self.hash, self.generation)

    def available(self, pod: Mapping[str, Any]) -> bool:
        return is_available(pod, self.min_ready_seconds, self.now)


@dataclass(frozen=True, slots=True)
class ManagePlan:
    create_on: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()  # pod names
    failed: tuple[tuple[str, str], ...] = ()  # (pod, node): deleted because it finished
    held_back: tuple[str, ...] = field(default=())  # nodes whose failed pod waits (back-off)


@dataclass(frozen=True, slots=True)
class RolloutPlan:
    delete: tuple[str, ...] = ()  # pod names
    create_on: tuple[str, ...] = ()  # nodes that get their new pod beside the old one


@dataclass(frozen=True, slots=True)
class Limits:
    max_surge: int
    max_unavailable: int


def _finished(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _name(pod: Mapping[str, Any]) -> str:
    return str(pod["metadata"]["name"])


def manage(
    nodes: Sequence[NodeState],
    *,
    backoff: Collection[str] = (),
    surge: Revision | None = None,
) -> ManagePlan:
    """``backoff``: nodes whose last failed pod was deleted too recently to delete (and
    so replace) another one yet. ``surge``: the revision, when a surge update may keep
    an old and a new pod on one node."""
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
            if surge is None:
                delete.extend(_name(p) for p in running[1:])
            else:
                delete.extend(_surplus_while_surging(running, surge))
        else:
            delete.extend(_name(p) for p in node.pods)
    return ManagePlan(tuple(create), tuple(delete), tuple(failed), tuple(held))


def _surplus_while_surging(running: Sequence[Obj], revision: Revision) -> list[str]:
    """Kubernetes' surge rule in ``podsShouldBeOnNode``: the oldest new and the oldest
    old pod may share the node while the new one is not available yet and the old one
    is still ready; every other pod goes. ``running`` is in creation order."""
    oldest_new: Obj | None = None
    oldest_old: Obj | None = None
    surplus: list[str] = []
    for pod in running:
        if revision.updated(pod) and oldest_new is None:
            oldest_new = pod
        elif not revision.updated(pod) and oldest_old is None:
            oldest_old = pod
        else:
            surplus.append(_name(pod))
    replaced = oldest_new is not None and revision.available(oldest_new)
    if oldest_old is not None and oldest_new is not None and (replaced or not is_ready(oldest_old)):
        surplus.append(_name(oldest_old))
    return surplus


def rolling_limits(rolling: Mapping[str, Any] | None, desired: int) -> Limits:
    """maxSurge and maxUnavailable of ``desired`` nodes, percentages rounded up
    (``updatedDesiredNodeCounts``). The API refuses both zero; should they be anyway,
    one unavailable node is allowed so that the update can move, as in Kubernetes."""
    rolling = rolling or {}
    surge = scaled_value(rolling.get("maxSurge") or 0, desired, round_up=True)
    unavailable = scaled_value(rolling.get("maxUnavailable") or 0, desired, round_up=True)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return Limits(max_surge=surge, max_unavailable=unavailable)


def rolling_update(nodes: Sequence[NodeState], revision: Revision, limits: Limits) -> RolloutPlan:
    if limits.max_surge > 0:
        return _surge(nodes, revision, max_surge=limits.max_surge)
    replace = pods_to_replace(nodes, revision, max_unavailable=limits.max_unavailable)
    return RolloutPlan(delete=tuple(replace))


def _split(node: NodeState, revision: Revision) -> tuple[list[Obj], list[Obj]]:
    pods = [p for p in node.pods if not _finished(p)]
    new = [p for p in pods if revision.updated(p)]
    return new, [p for p in pods if not revision.updated(p)]


def pods_to_replace(
    nodes: Sequence[NodeState], revision: Revision, *, max_unavailable: int
) -> list[str]:
    """maxSurge 0: the old pods to delete now (the manage step then creates their
    updated replacements). Old pods that are unavailable anyway always go; available
    ones only while fewer than ``max_unavailable`` daemons are unavailable."""
    unavailable = 0
    broken: list[str] = []
    candidates: list[str] = []
    for node in sorted(nodes, key=lambda n: n.name):
        if not node.placement.should_continue_running:
            continue  # the manage step deletes its pods
        new, old = _split(node, revision)
        if not new and not old:
            if node.placement.should_run:
                unavailable += 1  # the manage step is creating it
            continue
        if len(new) > 1 or len(old) > 1 or (new and old):
            unavailable += 1  # the manage step prunes the extra one first
        elif new:
            if not revision.available(new[0]):
                unavailable += 1
        elif not revision.available(old[0]):
            broken.append(_name(old[0]))
        elif unavailable < max_unavailable:
            candidates.append(_name(old[0]))
    room = min(max(max_unavailable - unavailable, 0), len(candidates))
    return broken + candidates[:room]


def _surge(nodes: Sequence[NodeState], revision: Revision, *, max_surge: int) -> RolloutPlan:
    """maxSurge (Kubernetes' ``rollingUpdate`` when surging): a node whose old pod is
    unavailable gets its new pod at once; up to ``max_surge`` nodes whose old pod is
    available get theirs beside it, counting the nodes already waiting for a new pod;
    an old pod goes once the new one beside it is available. An available old pod on a
    node the daemon should leave (but may stay on) goes only while the other nodes keep
    as many available daemons as are desired."""
    delete: list[str] = []
    leaving: list[str] = []
    replace: list[str] = []  # nodes whose old pod is unavailable: no need to wait
    candidates: list[str] = []
    surging = available = desired = 0
    for node in sorted(nodes, key=lambda n: n.name):
        desired += int(node.placement.should_run)
        if not node.placement.should_continue_running:
            continue  # the manage step deletes its pods
        new, old = _split(node, revision)
        if len(new) > 1 or len(old) > 1:
            surging += 1  # the manage step prunes the extra ones first
            continue
        current = old or new
        if current and revision.available(current[0]):
            available += 1
        if not old:
            continue  # up to date, or the manage step creates its pod
        if new:
            if revision.available(new[0]):
                delete.append(_name(old[0]))
            else:
                surging += 1
        elif not revision.available(old[0]):
            if node.placement.should_run:
                replace.append(node.name)
            else:
                delete.append(_name(old[0]))
        elif not node.placement.should_run:
            leaving.append(_name(old[0]))
        else:
            candidates.append(node.name)
    delete += leaving[: max(available - desired, 0)]
    room = min(max(max_surge - surging, 0), len(candidates))
    return RolloutPlan(delete=tuple(delete), create_on=tuple(replace + candidates[:room]))


def daemon_set_status(nodes: Sequence[NodeState], revision: Revision) -> dict[str, int]:
    """Counted on each node's oldest pod (running first), as Kubernetes does: during a
    surge the old pod speaks for its node until it is gone."""
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
            available += int(revision.available(pod))
        updated += int(revision.updated(pod))
    return {
        "desiredNumberScheduled": desired,
        "currentNumberScheduled": current,
        "numberMisscheduled": misscheduled,
        "numberReady": ready,
        "numberAvailable": available,
        "numberUnavailable": desired - available,
        "updatedNumberScheduled": updated,
    }
