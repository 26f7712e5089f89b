"""Which nodes a DaemonSet's pod belongs on (Kubernetes' ``NodeShouldRunDaemonPod``).

A node is eligible when the pod's ``nodeSelector`` and required node affinity match its
labels and every NoSchedule and NoExecute taint in ``spec.taints`` is tolerated. The
pod's tolerations are the template's plus the ones Kubernetes adds to every daemon pod
(``AddOrUpdateDaemonPodTolerations``), so a daemon stays on a NotReady, unreachable,
pressured or cordoned node: a node's agent, log shipper or CNI is exactly what must
keep running there.

Two answers, as in Kubernetes: ``should_run`` (a pod should be created there) and
``should_continue_running`` (an existing pod may stay): a pod that tolerates a node's
NoExecute taints but not a NoSchedule one is not placed there but not evicted either.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from controlplane.scheduler import terms

Obj = dict[str, Any]

NOT_READY: Final = "node.kubernetes.io/not-ready"
UNREACHABLE: Final = "node.kubernetes.io/unreachable"
DISK_PRESSURE: Final = "node.kubernetes.io/disk-pressure"
MEMORY_PRESSURE: Final = "node.kubernetes.io/memory-pressure"
PID_PRESSURE: Final = "node.kubernetes.io/pid-pressure"
UNSCHEDULABLE: Final = "node.kubernetes.io/unschedulable"
NETWORK_UNAVAILABLE: Final = "node.kubernetes.io/network-unavailable"

# No tolerationSeconds on the NoExecute ones: a daemon is never evicted for its node
# being down (admission's default 30 s tolerations are not added when these exist).
_AUTOMATIC: Final = (
    (NOT_READY, terms.NO_EXECUTE),
    (UNREACHABLE, terms.NO_EXECUTE),
    (DISK_PRESSURE, terms.NO_SCHEDULE),
    (MEMORY_PRESSURE, terms.NO_SCHEDULE),
    (PID_PRESSURE, terms.NO_SCHEDULE),
    (UNSCHEDULABLE, terms.NO_SCHEDULE),
)


@dataclass(frozen=True, slots=True)
class Placement:
    should_run: bool
    should_continue_running: bool


RUN: Final = Placement(True, True)
NOT_HERE: Final = Placement(False, False)


def daemon_tolerations(pod_spec: Mapping[str, Any]) -> list[Obj]:
    """The template's tolerations plus the automatic ones it does not already have (the
    same key and effect, operator Exists, replaces nothing the user wrote)."""
    result = [copy.deepcopy(t) for t in pod_spec.get("tolerations") or [] if isinstance(t, dict)]
    automatic = list(_AUTOMATIC)
    if pod_spec.get("hostNetwork"):
        automatic.append((NETWORK_UNAVAILABLE, terms.NO_SCHEDULE))
    for key, effect in automatic:
        if not any(t.get("key") == key and t.get("effect") == effect for t in result):
            result.append({"key": key, "operator": "Exists", "effect": effect})
    return result


def _required_affinity(pod_spec: Mapping[str, Any]) -> terms.NodeSelector | None:
    affinity = (pod_spec.get("affinity") or {}).get("nodeAffinity") or {}
    raw = affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if raw is None:
        return None
    return terms.parse_node_selector(raw, "spec.affinity.nodeAffinity.required")


def placement(pod_spec: Mapping[str, Any], node: Mapping[str, Any]) -> Placement:
    """Whether a daemon pod with ``pod_spec`` (the template's spec, before the
    automatic tolerations) belongs on ``node``. Raises ``terms.TermError`` for an
    affinity that cannot be read."""
    meta = node.get("metadata") or {}
    name = str(meta.get("name") or "")
    labels = meta.get("labels") or {}
    wanted_node = pod_spec.get("nodeName")
    if wanted_node and wanted_node != name:
        return NOT_HERE
    selector = pod_spec.get("nodeSelector") or {}
    if any(labels.get(k) != v for k, v in selector.items()):
        return NOT_HERE
    required = _required_affinity(pod_spec)
    if required is not None and not required.matches(name, labels):
        return NOT_HERE
    tolerations = terms.parse_tolerations(daemon_tolerations(pod_spec))
    taints = terms.parse_taints((node.get("spec") or {}).get("taints"))
    untolerated = [
        t
        for t in taints
        if t.effect in (terms.NO_SCHEDULE, terms.NO_EXECUTE) and not terms.tolerated(t, tolerations)
    ]
    if not untolerated:
        return RUN
    evicting = any(t.effect == terms.NO_EXECUTE for t in untolerated)
    return Placement(False, not evicting)
