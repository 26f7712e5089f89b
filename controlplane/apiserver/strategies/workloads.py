"""What Deployments, ReplicaSets, DaemonSets and Jobs share: a label selector that must
select the pod template, a pod template, int-or-percent fields and status reset on create.

Messages and paths are Kubernetes' (pkg/apis/apps/validation, pkg/apis/batch/validation),
quirks included: a ReplicaSet's empty selector is "invalid for deployment", and a
Deployment's template is checked with the ReplicaSet's words.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from api import validation as v
from api.errors import Cause, Invalid
from api.selectors import LabelSelector
from controlplane.apiserver.strategies import formats
from controlplane.apiserver.strategies.common import (
    Obj,
    get_map,
    go_int_or_string,
    go_label_selector,
    go_string_map,
    immutable,
    invalid_shown,
    is_int,
    mapping,
)
from controlplane.apiserver.strategies.pods import default_pod_spec, validate_template

SELECTOR_MISMATCH: Final = "`selector` does not match template `labels`"


def default_template(spec: Obj) -> None:
    """Default the pod template's spec (a Go value struct, so it always exists)."""
    template = mapping(spec, "template")
    default_pod_spec(mapping(template, "spec"))


def clear_status(obj: Obj, now: datetime, *, counters: tuple[str, ...] = ()) -> None:
    """A client cannot create a workload with a status of its choosing. ``counters`` are
    the status fields Go serializes even when zero (not omitempty): clients such as the
    Python client require them."""
    obj["status"] = dict.fromkeys(counters, 0)


def zero_counters(obj: Obj, counters: tuple[str, ...]) -> None:
    """Fill in the counters a status write left out, as Go would read them back."""
    status = mapping(obj, "status")
    for key in counters:
        status.setdefault(key, 0)


def template_labels(spec: Obj) -> object:
    return get_map(get_map(spec, "template"), "metadata").get("labels")


def selector_matches(spec: Obj, path: str) -> tuple[bool, list[Cause]]:
    """Whether the selector parses, and the mismatch cause if it does not select the
    template's labels (a missing selector selects nothing, as in Kubernetes)."""
    selector = spec.get("selector")
    try:
        parsed = LabelSelector.from_object(selector if isinstance(selector, dict) else None)
    except Invalid:
        return False, []
    labels = template_labels(spec)
    string_labels = {str(k): str(x) for k, x in labels.items()} if isinstance(labels, dict) else {}
    if parsed.empty or parsed.matches(string_labels):
        return True, []
    field = f"{path}.template.metadata.labels"
    return True, [invalid_shown(field, go_string_map(labels), SELECTOR_MISMATCH)]


def required_selector(spec: Obj, path: str, *, kind: str) -> list[Cause]:
    """A selector that must be present and not empty (Deployment, ReplicaSet)."""
    selector = spec.get("selector")
    if selector is None:
        return [v.required(f"{path}.selector")]
    causes = v.label_selector(selector, f"{path}.selector")
    if isinstance(selector, dict) and not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        detail = f"empty selector is invalid for {kind}"
        causes.append(invalid_shown(f"{path}.selector", go_label_selector(selector), detail))
    return causes


def always_template(spec: Obj, path: str, *, kind: str) -> list[Cause]:
    """The template of a long-running workload: valid, restartPolicy Always, no
    activeDeadlineSeconds (``ValidatePodTemplateSpecForReplicaSet``)."""
    template = spec.get("template")
    causes = validate_template(template, f"{path}.template")
    pod_spec = get_map(template, "spec")
    policy = pod_spec.get("restartPolicy")
    if policy != "Always":
        field = f"{path}.template.spec.restartPolicy"
        causes.append(
            v.not_supported(field, policy if policy is not None else "", supported=["Always"])
        )
    if pod_spec.get("activeDeadlineSeconds") is not None:
        detail = f"activeDeadlineSeconds in {kind} is not Supported"
        causes.append(v.forbidden(f"{path}.template.spec.activeDeadlineSeconds", detail))
    return causes


def immutable_selector(spec: Obj, old: Obj | None, path: str) -> list[Cause]:
    """apps/v1 selectors never change (the registry's rule, not ValidateDeploymentUpdate)."""
    if old is None:
        return []
    new_selector, old_selector = spec.get("selector"), get_map(old, "spec").get("selector")
    shown = go_label_selector(new_selector) if isinstance(new_selector, dict) else "null"
    return immutable(f"{path}.selector", new_selector, old_selector, shown=shown)


# --- int or percent (maxSurge, maxUnavailable) ----------------------------------------


def int_or_percent(value: object, path: str) -> list[Cause]:
    """k8s ``ValidatePositiveIntOrPercent``."""
    if isinstance(value, str):
        shown = go_int_or_string(value)
        return [invalid_shown(path, shown, m) for m in formats.is_percent(value)]
    if is_int(value):
        return v.non_negative(value, path)
    if value is None:
        return []
    return [v.type_invalid(path, value, detail="must be an integer or percentage (e.g '5%')")]


def int_or_percent_value(value: object) -> int:
    """k8s ``getIntOrPercentValue``: the number, percent or not; 0 for anything else."""
    if isinstance(value, str):
        digits = value[:-1] if value.endswith("%") else value
        return int(digits) if digits.isascii() and digits.isdigit() else 0
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def not_over_100(value: object, path: str) -> list[Cause]:
    if isinstance(value, str) and not formats.is_percent(value) and int(value[:-1]) > 100:
        return [invalid_shown(path, go_int_or_string(value), "must not be greater than 100%")]
    return []
