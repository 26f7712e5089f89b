"""DaemonSets (apps/v1): defaults and validation, as Kubernetes' ``SetDefaults_DaemonSet``
and ``ValidateDaemonSetSpec``, with the apps/v1 rule that a selector never changes.

Defaults: the RollingUpdate strategy with one unavailable pod and no surge, and a history
of 10 revisions. As in Kubernetes a missing selector is not reported as required: it
selects nothing, so the template's labels "do not match".
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
    selector_matches,
    zero_counters,
)

UPDATE_STRATEGIES: Final = ("RollingUpdate", "OnDelete")
# The status fields without omitempty: Go always serializes them, zero or not.
DAEMON_SET_COUNTERS: Final = (
    "currentNumberScheduled",
    "numberMisscheduled",
    "desiredNumberScheduled",
    "numberReady",
)


def default_daemon_set(daemon_set: Obj) -> None:
    spec = mapping(daemon_set, "spec")
    strategy = mapping(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = mapping(strategy, "rollingUpdate")
        if rolling.get("maxUnavailable") is None:
            rolling["maxUnavailable"] = 1
        if rolling.get("maxSurge") is None:
            rolling["maxSurge"] = 0
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    default_template(spec)


def validate_daemon_set(daemon_set: Obj, old: Obj | None) -> list[Cause]:
    spec = get_map(daemon_set, "spec")
    selector = spec.get("selector")
    causes = v.label_selector(selector, "spec.selector")
    causes += selector_matches(spec, "spec")[1]
    if isinstance(selector, dict) and not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        shown = go_label_selector(selector)
        causes.append(
            invalid_shown("spec.selector", shown, "empty selector is invalid for daemonset")
        )
    causes += always_template(spec, "spec", kind="DaemonSet")
    causes += non_negative(spec, "minReadySeconds", "spec.minReadySeconds")
    causes += _update_strategy(get_map(spec, "updateStrategy"), "spec.updateStrategy")
    causes += non_negative(spec, "revisionHistoryLimit", "spec.revisionHistoryLimit")
    return causes + immutable_selector(spec, old, "spec")


def _update_strategy(strategy: Obj, path: str) -> list[Cause]:
    kind = strategy.get("type")
    if kind == "OnDelete":
        return []
    rolling = strategy.get("rollingUpdate")
    if kind != "RollingUpdate":
        shown = (
            f"apps.DaemonSetUpdateStrategy{{Type:{v.quote(str(kind or ''))}, "
            "RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}"
            if rolling is None
            else v.format_value(strategy)
        )
        return [not_supported_shown(path, shown, UPDATE_STRATEGIES)]
    if not isinstance(rolling, dict):
        return [v.required(f"{path}.rollingUpdate")]
    return _rolling_update(rolling, f"{path}.rollingUpdate")


def _rolling_update(rolling: Obj, path: str) -> list[Cause]:
    """k8s ``ValidateRollingUpdateDaemonSet``: exactly one of maxSurge and
    maxUnavailable is non-zero."""
    unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    causes = int_or_percent(unavailable, f"{path}.maxUnavailable")
    causes += int_or_percent(surge, f"{path}.maxSurge")
    causes += not_over_100(unavailable, f"{path}.maxUnavailable")
    causes += not_over_100(surge, f"{path}.maxSurge")
    has_unavailable = int_or_percent_value(unavailable) != 0
    has_surge = int_or_percent_value(surge) != 0
    if has_unavailable and has_surge:
        detail = "may not be set when maxUnavailable is non-zero"
        causes.append(invalid_shown(f"{path}.maxSurge", go_int_or_string(surge), detail))
    elif not has_unavailable and not has_surge:
        causes.append(v.required(f"{path}.maxUnavailable", "cannot be 0 when maxSurge is 0"))
    return causes


def create_daemon_set(daemon_set: Obj, now: datetime) -> None:
    default_daemon_set(daemon_set)
    clear_status(daemon_set, now, counters=DAEMON_SET_COUNTERS)


def status_daemon_set(daemon_set: Obj, old: Obj, now: datetime) -> None:
    zero_counters(daemon_set, DAEMON_SET_COUNTERS)


def update_daemon_set(daemon_set: Obj, old: Obj, now: datetime) -> None:
    default_daemon_set(daemon_set)


def register() -> None:
    strategy = kinds.Strategy(
        create_daemon_set,
        update_daemon_set,
        validate_daemon_set,
        prepare_status=status_daemon_set,
    )
    kinds.register("apps", "DaemonSet", strategy)
