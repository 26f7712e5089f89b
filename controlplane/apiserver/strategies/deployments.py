"""Deployments and ReplicaSets (apps/v1): defaults and validation, as Kubernetes'
``SetDefaults_Deployment``/``SetDefaults_ReplicaSet`` and ``ValidateDeploymentSpec``/
``ValidateReplicaSetSpec``, with the apps/v1 rule that a selector never changes.

Defaults: one replica; for a Deployment the RollingUpdate strategy with 25% surge and
25% unavailable, a history of 10 revisions and a 600 s progress deadline.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from api import validation as v
from api.errors import Cause
from controlplane.apiserver import kinds
from controlplane.apiserver.strategies.common import (
    Obj,
    get_map,
    go_int_or_string,
    go_label_selector,
    invalid_shown,
    is_int,
    mapping,
    non_negative,
    not_supported_shown,
)
from controlplane.apiserver.strategies.workloads import (
    always_template,
    clear_status,
    default_template,
    immutable_selector,
    int_or_percent,
    int_or_percent_value,
    not_over_100,
    required_selector,
    selector_matches,
    zero_counters,
)

STRATEGY_TYPES: Final = ("Recreate", "RollingUpdate")
REPLICA_SET_COUNTERS: Final = ("replicas",)  # the status fields without omitempty


def default_deployment(deployment: Obj) -> None:
    spec = mapping(deployment, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = mapping(spec, "strategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = mapping(strategy, "rollingUpdate")
        if rolling.get("maxUnavailable") is None:
            rolling["maxUnavailable"] = "25%"
        if rolling.get("maxSurge") is None:
            rolling["maxSurge"] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    default_template(spec)


def default_replica_set(replica_set: Obj) -> None:
    spec = mapping(replica_set, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    default_template(spec)


def _replicated(spec: Obj, path: str) -> list[Cause]:
    """What ValidateReplicaSetSpec and ValidateDeploymentSpec share."""
    causes = non_negative(spec, "replicas", f"{path}.replicas")
    causes += required_selector(spec, path, kind="deployment")
    parses, mismatch = selector_matches(spec, path)
    if not parses:
        shown = go_label_selector(spec.get("selector"))
        causes.append(invalid_shown(f"{path}.selector", shown, "invalid label selector"))
    causes += mismatch + always_template(spec, path, kind="ReplicaSet")
    return causes + non_negative(spec, "minReadySeconds", f"{path}.minReadySeconds")


def validate_deployment(deployment: Obj, old: Obj | None) -> list[Cause]:
    spec = get_map(deployment, "spec")
    causes = _replicated(spec, "spec") + _strategy(get_map(spec, "strategy"), "spec.strategy")
    causes += non_negative(spec, "revisionHistoryLimit", "spec.revisionHistoryLimit")
    deadline = spec.get("progressDeadlineSeconds")
    if deadline is not None:
        causes += v.non_negative(deadline, "spec.progressDeadlineSeconds")
        ready = spec.get("minReadySeconds") or 0
        if is_int(deadline) and is_int(ready) and deadline <= ready:
            detail = "must be greater than minReadySeconds"
            causes.append(v.invalid_value("spec.progressDeadlineSeconds", deadline, detail=detail))
    return causes + immutable_selector(spec, old, "spec")


def _strategy(strategy: Obj, path: str) -> list[Cause]:
    kind, rolling = strategy.get("type"), strategy.get("rollingUpdate")
    if kind == "Recreate":
        if rolling is not None:
            detail = "may not be specified when strategy `type` is 'Recreate'"
            return [v.forbidden(f"{path}.rollingUpdate", detail)]
        return []
    if kind == "RollingUpdate":
        if not isinstance(rolling, dict):
            return [
                v.required(f"{path}.rollingUpdate", "this should be defaulted and never be nil")
            ]
        return _rolling_update(rolling, f"{path}.rollingUpdate")
    shown = (
        f"apps.DeploymentStrategy{{Type:{v.quote(str(kind or ''))}, "
        "RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}"
        if rolling is None
        else v.format_value(strategy)
    )
    return [not_supported_shown(path, shown, STRATEGY_TYPES)]


def _rolling_update(rolling: Obj, path: str) -> list[Cause]:
    """k8s ``ValidateRollingUpdateDeployment``: both ints or percents, not both zero."""
    unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    causes = int_or_percent(unavailable, f"{path}.maxUnavailable")
    causes += int_or_percent(surge, f"{path}.maxSurge")
    if int_or_percent_value(unavailable) == 0 and int_or_percent_value(surge) == 0:
        shown = go_int_or_string(unavailable)
        causes.append(
            invalid_shown(f"{path}.maxUnavailable", shown, "may not be 0 when `maxSurge` is 0")
        )
    return causes + not_over_100(unavailable, f"{path}.maxUnavailable")


def validate_replica_set(replica_set: Obj, old: Obj | None) -> list[Cause]:
    spec = get_map(replica_set, "spec")
    return _replicated(spec, "spec") + immutable_selector(spec, old, "spec")


def create_deployment(deployment: Obj, now: datetime) -> None:
    default_deployment(deployment)
    clear_status(deployment, now)


def update_deployment(deployment: Obj, old: Obj, now: datetime) -> None:
    default_deployment(deployment)


def create_replica_set(replica_set: Obj, now: datetime) -> None:
    default_replica_set(replica_set)
    clear_status(replica_set, now, counters=REPLICA_SET_COUNTERS)


def status_replica_set(replica_set: Obj, old: Obj, now: datetime) -> None:
    zero_counters(replica_set, REPLICA_SET_COUNTERS)


def update_replica_set(replica_set: Obj, old: Obj, now: datetime) -> None:
    default_replica_set(replica_set)


def register() -> None:
    strategy = kinds.Strategy(create_deployment, update_deployment, validate_deployment)
    kinds.register("apps", "Deployment", strategy)
    strategy = kinds.Strategy(
        create_replica_set,
        update_replica_set,
        validate_replica_set,
        prepare_status=status_replica_set,
    )
    kinds.register("apps", "ReplicaSet", strategy)
