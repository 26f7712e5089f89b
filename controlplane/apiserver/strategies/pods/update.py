"""What an update may change in a pod, as k8s ``ValidatePodUpdate``.

A pod's spec is immutable but for its containers' images, ``activeDeadlineSeconds``
(set, or lowered), additions to ``tolerations`` (an existing one may change only its
``tolerationSeconds``), removals of ``schedulingGates`` (and, while gated, additions to
``nodeSelector``) and a negative ``terminationGracePeriodSeconds`` set to 1. Anything
else is refused with Kubernetes' message, followed by the changed fields, one ``-``/``+``
pair per field, where Kubernetes prints a Go diff of the spec. ``spec.nodeName`` in
particular changes only through the binding subresource, which does not come here.

Specs are compared as Kubernetes compares them, after defaulting and with nulls and
empty lists or maps equal to missing ones.
"""

from __future__ import annotations

import copy
from typing import Final

from api import validation as v
from api.errors import Cause
from controlplane.apiserver.strategies import formats
from controlplane.apiserver.strategies.common import (
    Obj,
    freeze,
    get_list,
    get_map,
    is_int,
    normalized,
    same,
)
from controlplane.apiserver.strategies.pods.containers import MAX_ID

UPDATABLE_FIELDS: Final = (
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
)
IMMUTABLE_MESSAGE: Final = "pod updates may not change fields other than " + ",".join(
    UPDATABLE_FIELDS
)
MIRROR: Final = "kubernetes.io/config.mirror"


def validate_pod_update(new: Obj, old: Obj) -> list[Cause]:
    causes = _annotation_updates(new, old)
    spec, old_spec = get_map(new, "spec"), get_map(old, "spec")
    for kind in ("containers", "initContainers"):
        containers, old_containers = get_list(spec, kind), get_list(old_spec, kind)
        if len(containers) != len(old_containers):
            detail = "pod updates may not add or remove containers"
            return [*causes, v.forbidden(f"spec.{kind}", detail)]
        for i, container in enumerate(containers):
            image = container.get("image") if isinstance(container, dict) else None
            if not image:
                causes.append(v.required(f"spec.{kind}[{i}].image"))
            elif isinstance(image, str) and image != image.strip():
                detail = "must not have leading or trailing whitespace"
                causes.append(v.invalid_value(f"spec.{kind}[{i}].image", image, detail=detail))
    deadline_causes = _deadline(
        spec.get("activeDeadlineSeconds"), old_spec.get("activeDeadlineSeconds")
    )
    causes += deadline_causes
    causes += _only_added_tolerations(
        get_list(spec, "tolerations"), get_list(old_spec, "tolerations")
    )
    causes += _only_removed_gates(
        get_list(spec, "schedulingGates"), get_list(old_spec, "schedulingGates")
    )
    if same(spec, old_spec):
        return causes
    munged = _munge(spec, old_spec)
    if get_list(old_spec, "schedulingGates"):
        causes += _node_selector_additions(munged, old_spec)
    if not same(munged, old_spec):
        diff = "\n".join(_diff(normalized(old_spec), normalized(munged), "spec"))
        causes.append(v.forbidden("spec", f"{IMMUTABLE_MESSAGE}\n{diff}"))
    return causes


def _deadline(new: object, old: object) -> list[Cause]:
    """Two changes are allowed: from unset to a value, and to a lower value."""
    path = "spec.activeDeadlineSeconds"
    if new is not None:
        if not is_int(new) or not 0 <= new <= MAX_ID:
            return [v.invalid_value(path, new, detail=formats.inclusive_range(0, MAX_ID))]
        if is_int(old) and old < new:
            return [
                v.invalid_value(path, new, detail="must be less than or equal to previous value")
            ]
    elif old is not None:
        return [
            v.invalid_value(
                path, None, detail="must not update from a positive integer to nil value"
            )
        ]
    return []


def _without_seconds(toleration: object) -> object:
    if not isinstance(toleration, dict):
        return toleration
    return normalized({k: x for k, x in toleration.items() if k != "tolerationSeconds"})


def _only_added_tolerations(new: list[object], old: list[object]) -> list[Cause]:
    candidates = [_without_seconds(t) for t in new]
    for toleration in old:
        if _without_seconds(toleration) not in candidates:
            detail = "existing toleration can not be modified except its tolerationSeconds"
            return [v.forbidden("spec.tolerations", detail)]
    return []


def _only_removed_gates(new: list[object], old: list[object]) -> list[Cause]:
    old_names = {freeze(g.get("name")) for g in old if isinstance(g, dict)}
    causes: list[Cause] = []
    for i, gate in enumerate(new):
        name = gate.get("name") if isinstance(gate, dict) else None
        if freeze(name) not in old_names:
            detail = f"only deletion is allowed, but found new scheduling gate '{name}'"
            causes.append(v.forbidden(f"spec.schedulingGates[{i}].name", detail))
    return causes


def _munge(spec: Obj, old_spec: Obj) -> Obj:
    """``spec`` with the fields an update may change put back to their old values."""
    munged = copy.deepcopy(spec)
    for kind in ("containers", "initContainers"):
        for container, old_container in zip(
            get_list(munged, kind), get_list(old_spec, kind), strict=True
        ):
            if isinstance(container, dict) and isinstance(old_container, dict):
                container["image"] = old_container.get("image")
    for key in ("activeDeadlineSeconds", "schedulingGates", "tolerations"):
        if key in old_spec:
            munged[key] = old_spec[key]
        else:
            munged.pop(key, None)
    old_grace = old_spec.get("terminationGracePeriodSeconds")
    if is_int(old_grace) and old_grace < 0 and munged.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    return munged


def _node_selector_additions(munged: Obj, old_spec: Obj) -> list[Cause]:
    """A gated pod may gain node selector labels, never lose or change one."""
    new, old = get_map(munged, "nodeSelector"), get_map(old_spec, "nodeSelector")
    if new == old:
        return []
    if "nodeSelector" in old_spec:
        munged["nodeSelector"] = old_spec["nodeSelector"]
    else:
        munged.pop("nodeSelector", None)
    if all(new.get(k) == x for k, x in old.items()):
        return []
    detail = "only additions to spec.nodeSelector are allowed (no mutations or deletions)"
    return [v.invalid_value("spec.nodeSelector", new, detail=detail)]


def _diff(old: object, new: object, path: str) -> list[str]:
    """``-``/``+`` lines for each field that differs, by JSON path."""
    if isinstance(old, dict) and isinstance(new, dict):
        lines: list[str] = []
        for key in list(old) + [k for k in new if k not in old]:
            lines += _diff(old.get(key), new.get(key), f"{path}.{key}")
        return lines
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        lines = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            lines += _diff(a, b, f"{path}[{i}]")
        return lines
    if old == new:
        return []
    lines = [] if old is None else [f"- {path}: {v.format_value(old)}"]
    return lines + ([] if new is None else [f"+ {path}: {v.format_value(new)}"])


def _annotation_updates(new: Obj, old: Obj) -> list[Cause]:
    """The mirror pod annotation may be neither added nor changed nor removed."""
    annotations = get_map(get_map(new, "metadata"), "annotations")
    old_annotations = get_map(get_map(old, "metadata"), "annotations")
    path = f"metadata.annotations[{MIRROR}]"
    if MIRROR in old_annotations and annotations.get(MIRROR) != old_annotations[MIRROR]:
        return [v.forbidden(path, "may not remove or update mirror pod annotation")]
    if MIRROR in annotations and MIRROR not in old_annotations:
        return [v.forbidden(path, "may not add mirror pod annotation")]
    return []
