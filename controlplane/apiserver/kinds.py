"""Per-kind strategy: defaulting on create and update, and validation, as Kubernetes does.

Each kind registers a ``Strategy`` (``controlplane/apiserver/strategies/`` holds them):

* ``prepare_create(obj, now)`` and ``prepare_update(new, old, now)`` default the object
  and reset what a client may not set (status on create); they may raise an ApiError
  (a pod naming an unknown PriorityClass is Forbidden, as in Kubernetes);
* ``validate(obj, old)`` returns the causes of a 422 (``old`` is None on create);
* ``prepare_status(new, old, now)`` and ``validate_status(new, old)`` do the same for a
  write through the ``status`` subresource.

An update that changes nothing but the status is validated as a status update: the main
resource cannot change status (admission keeps the stored one), so only ``/status``
produces one. Every kind's metadata is checked here, with the kind's name rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api.errors import Cause
from api.resources import Resource

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Strategy:
    prepare_create: Callable[[Obj, datetime], None] | None = None
    prepare_update: Callable[[Obj, Obj, datetime], None] | None = None
    validate: Callable[[Obj, Obj | None], list[Cause]] | None = None
    prepare_status: Callable[[Obj, Obj, datetime], None] | None = None
    validate_status: Callable[[Obj, Obj], list[Cause]] | None = None
    # A DELETE that names no propagationPolicy: Kubernetes' DefaultGarbageCollectionPolicy
    # (None: Background), and the Warning header it answers with.
    default_propagation: tuple[str, str] | None = None


_STRATEGIES: dict[tuple[str, str], Strategy] = {}


def register(group: str, kind: str, strategy: Strategy) -> None:
    _STRATEGIES[(group, kind)] = strategy


def _strategy(resource: Resource) -> Strategy | None:
    if not _STRATEGIES:
        from controlplane.apiserver import strategies

        strategies.register_all()
    return _STRATEGIES.get((resource.group, resource.kind))


def prepare_create(resource: Resource, obj: Obj, *, now: datetime) -> None:
    s = _strategy(resource)
    if s is not None and s.prepare_create is not None:
        s.prepare_create(obj, now)


def prepare_update(resource: Resource, new: Obj, old: Obj, *, now: datetime) -> None:
    s = _strategy(resource)
    if s is not None and s.prepare_update is not None:
        s.prepare_update(new, old, now)


def prepare_status_update(resource: Resource, new: Obj, old: Obj, *, now: datetime) -> None:
    s = _strategy(resource)
    if s is not None and s.prepare_status is not None:
        s.prepare_status(new, old, now)


def status_only(new: Obj, old: Obj) -> bool:
    """True when ``new`` differs from ``old`` in its status at most."""

    def rest(obj: Obj) -> Obj:
        meta = {k: x for k, x in (obj.get("metadata") or {}).items() if k != "resourceVersion"}
        return {**{k: x for k, x in obj.items() if k != "status"}, "metadata": meta}

    return rest(new) == rest(old)


def validate(resource: Resource, obj: Obj, old: Obj | None) -> list[Cause]:
    from controlplane.apiserver.strategies import common

    causes = common.validate_metadata(resource, obj, old) + common.validate_shape(obj)
    if causes:
        return causes  # the kind's rules expect the shape right
    s = _strategy(resource)
    if s is None:
        pass
    elif old is not None and status_only(obj, old):
        if s.validate_status is not None:
            causes += s.validate_status(obj, old)
    elif s.validate is not None:
        causes += s.validate(obj, old)
    # Kubernetes reports a problem found by two checks once (ErrorList.ToAggregate).
    return list(dict.fromkeys(causes))


def default_propagation(resource: Resource) -> tuple[str, str] | None:
    """(policy, warning) for a DELETE of ``resource`` that names no propagationPolicy,
    when it is not Background."""
    s = _strategy(resource)
    return s.default_propagation if s is not None else None
