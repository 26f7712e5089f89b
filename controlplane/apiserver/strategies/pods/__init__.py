"""Pods: defaults, admission, validation and update rules, as the Kubernetes apiserver
applies them to ``v1/Pod``.

On create a pod is defaulted (``defaults``), gets the default NoExecute tolerations and
its priority (``admission``) and a fresh status ``{phase: Pending, qosClass}``; it is then
validated as a PodSpec (``spec``). On update it is defaulted again, keeps its priority and
status, and must also pass the update rules (``update``). Through ``/status`` only the
status changes, the QoS class stays what it was.

Everything here is synchronous and pure: functions of the objects they are given.
"""

from __future__ import annotations

from datetime import datetime

from api import validation as v
from api.errors import Cause
from controlplane.apiserver import kinds
from controlplane.apiserver.strategies import formats
from controlplane.apiserver.strategies.common import (
    Obj,
    get_list,
    get_map,
    get_str,
    immutable,
    items,
    mapping,
)
from controlplane.apiserver.strategies.pods.admission import (
    DEFAULT_TOLERATION_SECONDS,
    add_default_tolerations,
    keep_priority,
    set_priority,
)
from controlplane.apiserver.strategies.pods.defaults import default_pod, default_pod_spec
from controlplane.apiserver.strategies.pods.qos import qos_class
from controlplane.apiserver.strategies.pods.spec import validate_pod_spec, validate_template
from controlplane.apiserver.strategies.pods.update import MIRROR, validate_pod_update

__all__ = [
    "DEFAULT_TOLERATION_SECONDS",
    "default_pod_spec",
    "register",
    "validate_template",
]

_SYSTEM_CONDITIONS = ("PodScheduled", "Ready", "Initialized")


def prepare_create(pod: Obj, now: datetime) -> None:
    spec = mapping(pod, "spec")
    default_pod_spec(spec)
    default_pod(spec)
    add_default_tolerations(spec)
    set_priority(pod)
    pod["status"] = {"phase": "Pending", "qosClass": qos_class(spec)}


def prepare_update(pod: Obj, old: Obj, now: datetime) -> None:
    spec = mapping(pod, "spec")
    default_pod_spec(spec)
    default_pod(spec)
    add_default_tolerations(spec)
    keep_priority(spec, get_map(old, "spec"))


def validate(pod: Obj, old: Obj | None) -> list[Cause]:
    spec = pod.get("spec")
    causes = validate_pod_spec(spec, "spec", pod=True)
    annotations = get_map(get_map(pod, "metadata"), "annotations")
    if MIRROR in annotations and not get_str(spec, "nodeName"):
        detail = "must set spec.nodeName if mirror pod annotation is set"
        causes.append(
            v.invalid_value(f"metadata.annotations[{MIRROR}]", annotations[MIRROR], detail=detail)
        )
    cost = annotations.get(DELETION_COST)
    if cost is not None and not _int32(cost):
        causes.append(
            v.invalid_value(
                f"metadata.annotations[{DELETION_COST}]", cost, detail="must be a 32bit integer"
            )
        )
    if old is None:
        if get_list(spec, "ephemeralContainers"):
            causes.append(v.forbidden("spec.ephemeralContainers", "cannot be set on create"))
        return causes
    return causes + validate_pod_update(pod, old)


# A ReplicaSet scaling down deletes pods of lower cost first (Kubernetes' annotation).
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


def _int32(value: object) -> bool:
    """Go's strconv.ParseInt(value, 10, 32)."""
    if not isinstance(value, str) or not value.isascii():
        return False
    digits = value[1:] if value[:1] in ("+", "-") else value
    return digits.isdigit() and -(2**31) <= int(value) < 2**31


def prepare_status(pod: Obj, old: Obj, now: datetime) -> None:
    """Kubernetes backfills the QoS class that old kubelets dropped from the status."""
    status = mapping(pod, "status")
    if not status.get("qosClass") and get_map(old, "status").get("qosClass"):
        status["qosClass"] = old["status"]["qosClass"]


def validate_status(pod: Obj, old: Obj) -> list[Cause]:
    """k8s ``ValidatePodStatusUpdate``: the QoS class is immutable, IPs are IPs, custom
    condition types are qualified names."""
    status, old_status = get_map(pod, "status"), get_map(old, "status")
    causes = immutable(
        "status.qosClass", status.get("qosClass", ""), old_status.get("qosClass", "")
    )
    for i, condition in enumerate(get_list(status, "conditions")):
        kind = get_str(condition, "type")
        if kind not in _SYSTEM_CONDITIONS:
            causes += v.qualified_name(kind, f"metadata.conditions[{i}].Type")
    for key in ("podIPs", "hostIPs"):
        for item_path, address in items(status, key, f"status.{key}"):
            causes += formats.ip(address.get("ip", ""), item_path)
    host_ips = get_list(status, "hostIPs")
    if host_ips and isinstance(host_ips[0], dict) and host_ips[0].get("ip") != status.get("hostIP"):
        shown = host_ips[0].get("ip")
        causes.append(
            v.invalid_value("status.hostIPs[0].ip", shown, detail="must be equal to `hostIP`")
        )
    return causes


def register() -> None:
    strategy = kinds.Strategy(
        prepare_create,
        prepare_update,
        validate,
        prepare_status=prepare_status,
        validate_status=validate_status,
    )
    kinds.register("", "Pod", strategy)
