"""Pods: Kubernetes' defaults (pkg/apis/core/v1/defaults.go) and the checks that keep the
agent from being handed something it cannot run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from api import validation
from api.errors import Cause
from controlplane.apiserver import kinds
from controlplane.apiserver.strategies.common import mapping

Obj = dict[str, Any]

# Admission adds these (Kubernetes' DefaultTolerationSeconds plugin uses 300 s; bramble's
# home-lab default is shorter, see docs/operations.md).
DEFAULT_TOLERATION_SECONDS = 30
_DEFAULT_TOLERATIONS = (
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
)


def default_pod_spec(spec: Obj) -> None:
    """Defaults of a PodSpec (also used for templates of workloads)."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    for field in ("containers", "initContainers"):
        containers = spec.get(field)
        if not isinstance(containers, list):
            continue
        for c in containers:
            if not isinstance(c, dict):
                continue
            image = str(c.get("image") or "")
            tag = image.rsplit("/", 1)[-1]
            latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
            c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("resources", {})
            for port in c.get("ports") or []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")


def _add_default_tolerations(spec: Obj) -> None:
    tolerations = spec.get("tolerations")
    if not isinstance(tolerations, list):
        tolerations = []
    for key, effect in _DEFAULT_TOLERATIONS:
        if not any(isinstance(t, dict) and t.get("key") == key for t in tolerations):
            tolerations.append(
                {
                    "key": key,
                    "operator": "Exists",
                    "effect": effect,
                    "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
                }
            )
    spec["tolerations"] = tolerations


def prepare_create(obj: Obj, now: datetime) -> None:
    spec = mapping(obj, "spec")
    default_pod_spec(spec)
    _add_default_tolerations(spec)
    spec.setdefault("priority", 0)
    obj["status"] = {"phase": "Pending", "qosClass": _qos_class(spec)}


def prepare_update(new: Obj, old: Obj, now: datetime) -> None:
    spec = new.get("spec")
    if isinstance(spec, dict):
        default_pod_spec(spec)


def _qos_class(spec: Obj) -> str:
    requests_all, limits_all, any_set = True, True, False
    for c in spec.get("containers") or []:
        resources = c.get("resources") or {} if isinstance(c, dict) else {}
        requests = resources.get("requests") or {}
        limits = resources.get("limits") or {}
        any_set = any_set or bool(requests) or bool(limits)
        for r in ("cpu", "memory"):
            if r not in limits:
                limits_all = False
            if requests.get(r, limits.get(r)) != limits.get(r):
                requests_all = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if limits_all and requests_all else "Burstable"


def validate_pod_spec(spec: object, field: str) -> list[Cause]:
    if not isinstance(spec, dict):
        return [Cause(field, "FieldValueRequired", "Required value")]
    causes: list[Cause] = []
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        causes.append(Cause(f"{field}.containers", "FieldValueRequired", "Required value"))
        containers = []
    seen: set[str] = set()
    for kind in ("initContainers", "containers"):
        items = spec.get(kind) or []
        if not isinstance(items, list):
            causes.append(Cause(f"{field}.{kind}", "FieldValueInvalid", "must be a list"))
            continue
        for i, c in enumerate(items):
            path = f"{field}.{kind}[{i}]"
            if not isinstance(c, dict):
                causes.append(Cause(path, "FieldValueInvalid", "must be an object"))
                continue
            name = c.get("name")
            if not isinstance(name, str) or not name:
                causes.append(Cause(f"{path}.name", "FieldValueRequired", "Required value"))
            else:
                causes += validation.dns1123_label(name, f"{path}.name")
                if name in seen:
                    causes.append(
                        Cause(f"{path}.name", "FieldValueDuplicate", f'Duplicate value: "{name}"')
                    )
                seen.add(name)
            if not isinstance(c.get("image"), str) or not c.get("image", "").strip():
                causes.append(Cause(f"{path}.image", "FieldValueRequired", "Required value"))
            for j, port in enumerate(c.get("ports") or []):
                if isinstance(port, dict):
                    causes += validation.port_number(
                        port.get("containerPort"), f"{path}.ports[{j}].containerPort"
                    )
    policy = spec.get("restartPolicy")
    if policy not in (None, "Always", "OnFailure", "Never"):
        causes.append(
            Cause(
                f"{field}.restartPolicy",
                "FieldValueNotSupported",
                f'Unsupported value: "{policy}": supported values: "Always", "OnFailure", "Never"',
            )
        )
    return causes


def validate(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = validate_pod_spec(obj.get("spec"), "spec")
    if old is not None:
        old_spec, new_spec = old.get("spec") or {}, obj.get("spec") or {}
        bound = old_spec.get("nodeName")
        if bound and new_spec.get("nodeName") != bound:
            causes.append(
                Cause("spec.nodeName", "FieldValueInvalid", "field is immutable once bound")
            )
    return causes


def register() -> None:
    kinds.register("", "Pod", kinds.Strategy(prepare_create, prepare_update, validate))
