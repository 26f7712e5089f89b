"""Events: validation, as Kubernetes' ``legacyValidateEvent`` (core/v1 events).

The involved object's namespace must be the event's; an event with an ``eventTime`` (the
new style) needs a reporting controller and instance, an action and a reason, with
Kubernetes' length limits. bramble also asks for what Kubernetes checks only for
events.k8s.io events, because its own components always send them: an
``involvedObject``, a type of Normal or Warning, and a count that is not negative.
"""

from __future__ import annotations

from typing import Final

from api import validation as v
from api.errors import Cause
from controlplane.apiserver import kinds
from controlplane.apiserver.strategies.common import (
    Obj,
    expect_map,
    get_map,
    get_str,
    non_negative,
)

EVENT_TYPES: Final = ("Normal", "Warning")
_LIMITS: Final = (("reportingInstance", 128), ("action", 128), ("reason", 128), ("message", 1024))


def validate_event(event: Obj, old: Obj | None) -> list[Cause]:
    if not isinstance(event.get("involvedObject"), dict):
        return [v.required("involvedObject")]
    causes = expect_map(event, "involvedObject", "involvedObject")
    namespace = get_str(get_map(event, "metadata"), "namespace")
    involved = get_str(get_map(event, "involvedObject"), "namespace")
    mismatch = "does not match event.namespace"
    if not event.get("eventTime"):
        if (not involved and namespace not in ("", "default")) or (
            involved and involved != namespace
        ):
            causes.append(v.invalid_value("involvedObject.namespace", involved, detail=mismatch))
    else:
        if not involved and namespace not in ("default", "kube-system"):
            causes.append(v.invalid_value("involvedObject.namespace", involved, detail=mismatch))
        controller = get_str(event, "reportingComponent") or get_str(event, "reportingController")
        if not controller:
            causes.append(v.required("reportingController"))
        causes += v.qualified_name(controller, "reportingController")
        for key, limit in _LIMITS:
            value = get_str(event, key)
            if not value and key != "message":
                causes.append(v.required(key))
            if len(value) > limit:
                detail = f"can have at most {limit} characters"
                causes.append(v.invalid_value(key, "", detail=detail))
    kind = event.get("type")
    if kind not in (None, "") and kind not in EVENT_TYPES:
        causes.append(v.invalid_value("type", "", detail=f"has invalid value: {kind}"))
    return causes + non_negative(event, "count", "count")


def register() -> None:
    kinds.register("", "Event", kinds.Strategy(validate=validate_event))
