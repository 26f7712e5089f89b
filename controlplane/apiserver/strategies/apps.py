"""Workloads (Deployment, ReplicaSet, DaemonSet, Job): defaults and the checks Kubernetes
makes (a selector that matches the template's labels, a valid pod template)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from api.errors import Cause
from controlplane.apiserver import kinds
from controlplane.apiserver.strategies.common import mapping
from controlplane.apiserver.strategies.pods import default_pod_spec, validate_pod_spec

Obj = dict[str, Any]


def _default_template(spec: Obj) -> None:
    template = spec.get("template")
    if isinstance(template, dict):
        pod_spec = template.get("spec")
        if isinstance(pod_spec, dict):
            default_pod_spec(pod_spec)


def _deployment_defaults(obj: Obj, now: datetime) -> None:
    spec = mapping(obj, "spec")
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = mapping(spec, "strategy")
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = mapping(strategy, "rollingUpdate")
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    _default_template(spec)


def _replicaset_defaults(obj: Obj, now: datetime) -> None:
    spec = mapping(obj, "spec")
    spec.setdefault("replicas", 1)
    _default_template(spec)


def _daemonset_defaults(obj: Obj, now: datetime) -> None:
    spec = mapping(obj, "spec")
    spec.setdefault("revisionHistoryLimit", 10)
    strategy = mapping(spec, "updateStrategy")
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = mapping(strategy, "rollingUpdate")
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)
    _default_template(spec)


def _job_defaults(obj: Obj, now: datetime) -> None:
    spec = mapping(obj, "spec")
    spec.setdefault("parallelism", 1)
    spec.setdefault("completions", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    template = mapping(spec, "template")
    pod_spec = mapping(template, "spec")
    pod_spec.setdefault("restartPolicy", "Never")
    _default_template(spec)


def _on_create(defaults: Any) -> Any:
    def prepare(obj: Obj, now: datetime) -> None:
        defaults(obj, now)
        obj["status"] = {}

    return prepare


def _on_update(defaults: Any) -> Any:
    def prepare(new: Obj, old: Obj, now: datetime) -> None:
        defaults(new, now)

    return prepare


def _validate_workload(obj: Obj, old: Obj | None, *, needs_selector: bool = True) -> list[Cause]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [Cause("spec", "FieldValueRequired", "Required value")]
    causes: list[Cause] = []
    template = spec.get("template")
    if not isinstance(template, dict):
        return [Cause("spec.template", "FieldValueRequired", "Required value")]
    selector = spec.get("selector")
    labels = (template.get("metadata") or {}).get("labels") or {}
    if needs_selector:
        if not isinstance(selector, dict) or not (
            selector.get("matchLabels") or selector.get("matchExpressions")
        ):
            causes.append(Cause("spec.selector", "FieldValueRequired", "Required value"))
        else:
            wanted = selector.get("matchLabels") or {}
            if any(labels.get(k) != v for k, v in wanted.items()):
                causes.append(
                    Cause(
                        "spec.template.metadata.labels",
                        "FieldValueInvalid",
                        f"Invalid value: {labels}: `selector` does not match template `labels`",
                    )
                )
        old_spec = old.get("spec") if old is not None else None
        if isinstance(old_spec, dict) and old_spec.get("selector") != selector:
            causes.append(Cause("spec.selector", "FieldValueInvalid", "field is immutable"))
    for field in ("replicas", "minReadySeconds", "revisionHistoryLimit"):
        value = spec.get(field)
        if value is not None and (not isinstance(value, int) or value < 0):
            causes.append(
                Cause(
                    f"spec.{field}",
                    "FieldValueInvalid",
                    f"Invalid value: {value}: must be greater than or equal to 0",
                )
            )
    causes += validate_pod_spec(template.get("spec"), "spec.template.spec")
    return causes


def _validate_job(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = _validate_workload(obj, old, needs_selector=False)
    policy = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
        "restartPolicy"
    )
    if policy not in ("Never", "OnFailure"):
        causes.append(
            Cause(
                "spec.template.spec.restartPolicy",
                "FieldValueNotSupported",
                f'Unsupported value: "{policy}": supported values: "OnFailure", "Never"',
            )
        )
    return causes


def register() -> None:
    for kind, defaults in (
        ("Deployment", _deployment_defaults),
        ("ReplicaSet", _replicaset_defaults),
        ("DaemonSet", _daemonset_defaults),
    ):
        strategy = kinds.Strategy(_on_create(defaults), _on_update(defaults), _validate_workload)
        kinds.register("apps", kind, strategy)
    job = kinds.Strategy(_on_create(_job_defaults), _on_update(_job_defaults), _validate_job)
    kinds.register("batch", "Job", job)
