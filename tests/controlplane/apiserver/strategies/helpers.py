"""Running objects through admission as the apiserver does, and valid objects to break.

``create``/``update`` go through ``admission`` (generic metadata, then the kind's
strategy), so a test sees exactly what a client would: the stored object, or the causes
of the 422. Builders return minimal valid objects; tests mutate them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from api import errors
from api.errors import Cause
from api.resources import Resource, by_kind
from controlplane.apiserver import admission

Obj = dict[str, Any]
Mutation = Callable[[Obj], object]
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
_GROUPS = {"Deployment": "apps", "ReplicaSet": "apps", "DaemonSet": "apps", "Job": "batch",
           "ControllerRevision": "apps", "Lease": "coordination.k8s.io"}  # fmt: skip


def resource(kind: str) -> Resource:
    found = by_kind(_GROUPS.get(kind, ""), kind)
    assert found is not None, kind
    return found


def create(obj: Obj, *, namespace: str = "default") -> Obj:
    """The object as stored after a create; raises Invalid (or Forbidden) as the server."""
    r = resource(obj["kind"])
    obj = copy.deepcopy(obj)
    admission.prepare_create(r, obj, namespace=namespace if r.namespaced else None, now=NOW)
    admission.validate(r, obj)
    return obj


def update(new: Obj, old: Obj, *, subresource: str | None = None) -> Obj:
    """The object as stored after ``new`` replaces the stored ``old``."""
    r = resource(old["kind"])
    result = admission.prepare_update(
        r, copy.deepcopy(new), copy.deepcopy(old), subresource=subresource, now=NOW
    )
    admission.validate(r, result, old)
    return result


def causes(action: Callable[[], object]) -> list[Cause]:
    """The causes of the Invalid that ``action`` raises ([] when it succeeds)."""
    try:
        action()
    except errors.Invalid as e:
        return e.causes
    return []


def create_causes(obj: Obj, mutate: Mutation | None = None) -> list[Cause]:
    obj = copy.deepcopy(obj)
    if mutate is not None:
        mutate(obj)
    return causes(lambda: create(obj))


def update_causes(old: Obj, mutate: Mutation) -> list[Cause]:
    """Create ``old``, then update it with a mutated copy of what was stored."""
    stored = create(old)
    new = copy.deepcopy(stored)
    mutate(new)
    return causes(lambda: update(new, stored))


def fields(found: list[Cause]) -> list[tuple[str, str]]:
    return [(c.field, c.reason) for c in found]


# --- valid objects ---------------------------------------------------------------------


def container(name: str = "app", image: str = "nginx:1.27", **extra: Any) -> Obj:
    return {"name": name, "image": image, **extra}


def pod(name: str = "web", **spec: Any) -> Obj:
    body = {"containers": [container()], **spec}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": body}


def template(labels: dict[str, str] | None = None, **spec: Any) -> Obj:
    return {
        "metadata": {"labels": labels if labels is not None else {"app": "web"}},
        "spec": {"containers": [container()], **spec},
    }


def workload(kind: str, name: str = "web", **spec: Any) -> Obj:
    body: Obj = {"selector": {"matchLabels": {"app": "web"}}, "template": template(), **spec}
    api_version = "batch/v1" if kind == "Job" else "apps/v1"
    if kind == "Job":
        if "selector" not in spec:
            body.pop("selector")  # generated from the Job's uid
        body["template"] = template(restartPolicy="Never")
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, "spec": body}


def service(name: str = "web", **spec: Any) -> Obj:
    body = {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": body}
