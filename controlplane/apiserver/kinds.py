"""Per-kind strategy: defaulting on create/update and validation, as Kubernetes does.

Each kind may register ``prepare_create``, ``prepare_update`` and ``validate`` functions.
The kinds with real rules live in ``controlplane/apiserver/strategies/``; this module is
the dispatch table plus the rules every kind shares (metadata validation).
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


def validate(resource: Resource, obj: Obj, old: Obj | None) -> list[Cause]:
    from controlplane.apiserver.strategies import common

    causes = common.validate_metadata(resource, obj, old)
    s = _strategy(resource)
    if s is not None and s.validate is not None:
        causes += s.validate(obj, old)
    return causes
