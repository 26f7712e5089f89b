"""ControllerRevisions (apps/v1): validation, as Kubernetes' ``ValidateControllerRevision``
and ``ValidateControllerRevisionUpdate``.

A revision is a snapshot a controller keeps of its template: ``data`` (a raw object,
for a DaemonSet the patch that restores its template) and ``revision`` (its number).
``data`` is required and never changes; ``revision`` is not negative and may change,
because a controller renumbers a revision whose template comes back (``kubectl rollout
undo``) to the newest number. As in Kubernetes, whose v1 field is a plain int64, a
revision sent without a number is revision 0.
"""

from __future__ import annotations

from datetime import datetime

from api import validation as v
from api.errors import Cause
from controlplane.apiserver import kinds
from controlplane.apiserver.strategies.common import IMMUTABLE, Obj, invalid_shown


def default_revision(revision: Obj, now: datetime) -> None:
    """Go decodes a missing ``revision`` as 0 and always writes it back."""
    if revision.get("revision") is None:
        revision["revision"] = 0


def update_revision(revision: Obj, old: Obj, now: datetime) -> None:
    default_revision(revision, now)


def validate_revision(revision: Obj, old: Obj | None) -> list[Cause]:
    causes: list[Cause] = []
    if revision.get("data") is None:
        causes.append(v.required("data", "data is mandatory"))
    number = revision.get("revision")
    if number is None:
        causes.append(v.required("revision"))
    else:
        causes += v.non_negative(number, "revision")
    if old is not None and revision.get("data") != old.get("data"):
        # Exact equality, not ``same``: the bytes of a raw object are what is kept.
        shown = v.format_value(revision.get("data"))
        causes.append(invalid_shown("data", shown, IMMUTABLE))
    return causes


def register() -> None:
    strategy = kinds.Strategy(default_revision, update_revision, validate_revision)
    kinds.register("apps", "ControllerRevision", strategy)
