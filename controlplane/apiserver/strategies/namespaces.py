"""Namespaces: defaults and validation, as Kubernetes' namespace strategy.

A new namespace is Active, carries the ``kubernetes`` finalizer in ``spec.finalizers``
(which the namespace finalizer removes once the namespace is empty, outside admission)
and the ``kubernetes.io/metadata.name`` label. An update cannot change the finalizers or
the status. Names are DNS labels (``common.name_rule``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from api import validation as v
from api.errors import Cause
from controlplane.apiserver import kinds
from controlplane.apiserver.strategies.common import (
    Obj,
    expect_list,
    get_list,
    get_map,
    get_str,
    kube_finalizer_names,
    mapping,
)

NAME_LABEL: Final = "kubernetes.io/metadata.name"
FINALIZER: Final = "kubernetes"


def _name_label(namespace: Obj) -> None:
    name = get_str(get_map(namespace, "metadata"), "name")
    if name:
        mapping(mapping(namespace, "metadata"), "labels")[NAME_LABEL] = name


def prepare_create(namespace: Obj, now: datetime) -> None:
    _name_label(namespace)
    spec = mapping(namespace, "spec")
    finalizers = spec.get("finalizers")
    if not isinstance(finalizers, list):
        finalizers = []
    if FINALIZER not in finalizers:
        finalizers.append(FINALIZER)
    spec["finalizers"] = finalizers
    namespace["status"] = {"phase": "Active"}


def prepare_update(namespace: Obj, old: Obj, now: datetime) -> None:
    _name_label(namespace)
    old_spec = get_map(old, "spec")
    spec = mapping(namespace, "spec")
    if "finalizers" in old_spec:
        spec["finalizers"] = old_spec["finalizers"]
    else:
        spec.pop("finalizers", None)


def validate(namespace: Obj, old: Obj | None) -> list[Cause]:
    spec = get_map(namespace, "spec")
    causes = expect_list(spec, "finalizers", "spec.finalizers", of=str)
    for name in get_list(spec, "finalizers"):
        # Kubernetes names the list, not the item, for a namespace's finalizers.
        causes += v.qualified_name(name, "spec.finalizers")
    return causes + kube_finalizer_names(
        get_list(spec, "finalizers"), "spec.finalizers", indexed=False
    )


def prepare_status(namespace: Obj, old: Obj, now: datetime) -> None:
    status = mapping(namespace, "status")
    if not status.get("phase"):
        status["phase"] = "Active"  # SetDefaults_NamespaceStatus


def validate_status(namespace: Obj, old: Obj) -> list[Cause]:
    """k8s ``ValidateNamespaceStatusUpdate``: Active until deleted, then Terminating."""
    phase = get_map(namespace, "status").get("phase")
    if get_map(namespace, "metadata").get("deletionTimestamp"):
        if phase != "Terminating":
            detail = "may only be 'Terminating' if `deletionTimestamp` is not empty"
            return [v.invalid_value("status.Phase", phase or "", detail=detail)]
    elif phase != "Active":
        detail = "may only be 'Active' if `deletionTimestamp` is empty"
        return [v.invalid_value("status.Phase", phase or "", detail=detail)]
    return []


def register() -> None:
    strategy = kinds.Strategy(
        prepare_create,
        prepare_update,
        validate,
        prepare_status=prepare_status,
        validate_status=validate_status,
    )
    kinds.register("", "Namespace", strategy)
