"""Which fields each kind can be selected by (``?fieldSelector=``), and their values.

The same sets the Kubernetes apiserver supports (its ``GetAttrs`` / ``SelectableFields``
per kind); any other field in a selector is refused with 400, as there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]


def _s(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _get(obj: Obj, *path: str) -> object:
    cur: object = obj
    for p in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


def _pod(obj: Obj) -> dict[str, str]:
    return {
        "spec.nodeName": _s(_get(obj, "spec", "nodeName")),
        "spec.restartPolicy": _s(_get(obj, "spec", "restartPolicy")),
        "spec.schedulerName": _s(_get(obj, "spec", "schedulerName")),
        "spec.serviceAccountName": _s(_get(obj, "spec", "serviceAccountName")),
        "spec.hostNetwork": _s(bool(_get(obj, "spec", "hostNetwork"))),
        "status.phase": _s(_get(obj, "status", "phase")),
        "status.podIP": _s(_get(obj, "status", "podIP")),
        "status.nominatedNodeName": _s(_get(obj, "status", "nominatedNodeName")),
    }


def _event(obj: Obj) -> dict[str, str]:
    involved = obj.get("involvedObject") or {}
    source = obj.get("source") or {}
    return {
        "involvedObject.kind": _s(involved.get("kind")),
        "involvedObject.namespace": _s(involved.get("namespace")),
        "involvedObject.name": _s(involved.get("name")),
        "involvedObject.uid": _s(involved.get("uid")),
        "involvedObject.apiVersion": _s(involved.get("apiVersion")),
        "involvedObject.resourceVersion": _s(involved.get("resourceVersion")),
        "involvedObject.fieldPath": _s(involved.get("fieldPath")),
        "reason": _s(obj.get("reason")),
        "reportingComponent": _s(obj.get("reportingComponent")),
        "source": _s(source.get("component")),
        "type": _s(obj.get("type")),
    }


_BY_KIND: dict[tuple[str, str], Callable[[Obj], dict[str, str]]] = {
    ("", "Pod"): _pod,
    ("", "Event"): _event,
    ("", "Node"): lambda o: {"spec.unschedulable": _s(bool(_get(o, "spec", "unschedulable")))},
    ("", "Namespace"): lambda o: {"status.phase": _s(_get(o, "status", "phase"))},
    ("", "Secret"): lambda o: {"type": _s(o.get("type"))},
    ("apps", "ReplicaSet"): lambda o: {"status.replicas": _s(_get(o, "status", "replicas"))},
    ("batch", "Job"): lambda o: {"status.successful": _s(_get(o, "status", "succeeded") or 0)},
}


def selectable(group: str, kind: str, obj: Obj, *, namespaced: bool) -> dict[str, str]:
    """Every selectable field of ``obj`` with its value as a selector compares it."""
    meta = obj.get("metadata") or {}
    fields = {"metadata.name": _s(meta.get("name"))}
    if namespaced:
        fields["metadata.namespace"] = _s(meta.get("namespace"))
    extra = _BY_KIND.get((group, kind))
    if extra is not None:
        fields.update(extra(obj))
    return fields
