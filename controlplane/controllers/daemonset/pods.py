"""A DaemonSet's pods: the template hash that names a revision, the pod made for a node,
and what the controller reads back from pods (their node, readiness, revision).

Placement goes through the scheduler, as Kubernetes does since 1.12: the pod gets a
required node affinity on ``metadata.name`` (``matchFields``) for its node, which
bramble's NodeAffinity plugin enforces, so resources, ports and the scheduler's other
filters apply to daemons too. The pod's target node is that field (or
``spec.nodeName`` once bound), so an unbound daemon pod already counts for its node and
is never created twice.

The hash is Kubernetes' recipe in spirit (fnv-1a 32 of the template and the collision
count, digits mapped to consonants and digits so it never spells a word); it is stable
across processes because it hashes canonical JSON.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

import orjson

from api.resources import resource
from controlplane.controllers.claims import owner_reference
from controlplane.controllers.daemonset.eligibility import daemon_tolerations

Obj = dict[str, Any]

DAEMONSETS: Final = resource("apps", "DaemonSet")
REVISION_HASH: Final = "controller-revision-hash"
TEMPLATE_GENERATION: Final = "pod-template-generation"
_SAFE: Final = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery rand.SafeEncodeString


def template_hash(template: Mapping[str, Any], collision_count: int = 0) -> str:
    data = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    value = 0x811C9DC5
    for byte in data + (str(collision_count).encode() if collision_count else b""):
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_SAFE[b % len(_SAFE)] for b in str(value).encode())


def target_node(pod: Mapping[str, Any]) -> str | None:
    """Kubernetes' ``GetTargetNodeName``: the bound node, else the single node name of
    the required ``matchFields`` affinity the controller wrote."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    for term in required.get("nodeSelectorTerms") or []:
        for field in (term or {}).get("matchFields") or []:
            values = field.get("values") or []
            key, operator = field.get("key"), field.get("operator")
            if key == "metadata.name" and operator == "In" and len(values) == 1:
                return str(values[0])
    return None


def _node_affinity(affinity: Obj | None, node: str) -> Obj:
    """Kubernetes' ``ReplaceDaemonSetPodNodeNameNodeAffinity``: every required term gets
    ``metadata.name In [node]`` as its only field (label expressions kept)."""
    affinity = copy.deepcopy(affinity) if affinity else {}
    field = {"key": "metadata.name", "operator": "In", "values": [node]}
    node_affinity = affinity.setdefault("nodeAffinity", {})
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    selector_terms = [t for t in required.get("nodeSelectorTerms") or [] if isinstance(t, dict)]
    if not selector_terms:
        selector_terms = [{}]
    for term in selector_terms:
        term["matchFields"] = [field]
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
        "nodeSelectorTerms": selector_terms
    }
    return affinity


def new_pod(daemon_set: Mapping[str, Any], node: str, revision_hash: str) -> Obj:
    """The pod to create for ``node``: the template, owned by the DaemonSet, labelled
    with its revision, placed on the node through the scheduler."""
    meta = daemon_set["metadata"]
    template = daemon_set["spec"]["template"]
    template_meta = template.get("metadata") or {}
    labels = dict(template_meta.get("labels") or {})
    labels[REVISION_HASH] = revision_hash
    labels[TEMPLATE_GENERATION] = str(meta.get("generation") or 1)
    spec = copy.deepcopy(template.get("spec") or {})
    spec["affinity"] = _node_affinity(spec.get("affinity"), node)
    spec["tolerations"] = daemon_tolerations(spec)
    pod_meta: Obj = {
        "generateName": f"{meta['name']}-",
        "namespace": meta["namespace"],
        "labels": labels,
        "ownerReferences": [owner_reference(daemon_set, DAEMONSETS)],
    }
    if template_meta.get("annotations"):
        pod_meta["annotations"] = dict(template_meta["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


def is_updated(pod: Mapping[str, Any], revision_hash: str, generation: int | None) -> bool:
    """Kubernetes' ``IsPodUpdated``: the template generation or the hash matches."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    if generation is not None and labels.get(TEMPLATE_GENERATION) == str(generation):
        return True
    return bool(revision_hash) and labels.get(REVISION_HASH) == revision_hash


def _ready_condition(pod: Mapping[str, Any]) -> Obj | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == "Ready":
            return condition
    return None


def is_ready(pod: Mapping[str, Any]) -> bool:
    condition = _ready_condition(pod)
    return condition is not None and condition.get("status") == "True"


def _parse_time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def available_in(pod: Mapping[str, Any], min_ready_seconds: int, now: datetime) -> float | None:
    """Seconds until the pod counts as available (0: it is; None: it is not ready).
    A ready pod without a transition time has been ready for long (as Kubernetes reads
    a zero time)."""
    condition = _ready_condition(pod)
    if condition is None or condition.get("status") != "True":
        return None
    since = _parse_time(condition.get("lastTransitionTime"))
    if not min_ready_seconds or since is None:
        return 0.0
    remaining = (since + timedelta(seconds=min_ready_seconds) - now).total_seconds()
    return max(remaining, 0.0)


def is_available(pod: Mapping[str, Any], min_ready_seconds: int, now: datetime) -> bool:
    return available_in(pod, min_ready_seconds, now) == 0.0


def is_active(pod: Mapping[str, Any]) -> bool:
    """Not being deleted and not finished."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def creation_order(pod: Mapping[str, Any]) -> tuple[int, str, str]:
    """Kubernetes' ``podByCreationTimestampAndPhase``: running before pending, then the
    oldest first."""
    meta = pod.get("metadata") or {}
    pending = (pod.get("status") or {}).get("phase") != "Running"
    return (int(pending), str(meta.get("creationTimestamp") or ""), str(meta.get("name") or ""))
