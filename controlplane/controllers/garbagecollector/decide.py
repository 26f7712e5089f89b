"""What the garbage collector does with one object, given what became of its owners
(Kubernetes' ``attemptToDeleteItem`` and ``classifyReferences``), as a pure function so
that the rules read as a table.

An owner reference is, once looked up:

* ``SOLID``: the owner exists and is not being deleted in the foreground;
* ``DANGLING``: the owner is gone (404, or the name now belongs to another uid);
* ``WAITING``: the owner is being deleted in the foreground (``foregroundDeletion``
  finalizer) and waits for its dependents;
* ``UNRESOLVABLE``: a kind bramble does not serve, or a namespaced owner of a
  cluster-scoped object (invalid): treated as solid, because collecting on a reference we
  cannot check could delete a live object.

Then: with at least one solid owner the object stays, and only references to dangling or
waiting owners are removed; with none, it is deleted, in the foreground when an owner waits
for it and it has dependents of its own (so its dependents go first), otherwise with the
policy its own finalizers ask for (orphan, foreground) or in the background.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

ORPHAN: Final = "orphan"
FOREGROUND: Final = "foregroundDeletion"


class Owner(enum.Enum):
    SOLID = "solid"
    DANGLING = "dangling"
    WAITING = "waiting"
    UNRESOLVABLE = "unresolvable"


@dataclass(frozen=True, slots=True)
class Keep:
    pass


@dataclass(frozen=True, slots=True)
class RemoveReferences:
    uids: frozenset[str]


@dataclass(frozen=True, slots=True)
class Delete:
    policy: str  # Background, Foreground, Orphan


Action = Keep | RemoveReferences | Delete


def finalizers(obj: Mapping[str, Any]) -> list[str]:
    meta = obj.get("metadata")
    value = meta.get("finalizers") if isinstance(meta, dict) else None
    return [f for f in value if isinstance(f, str)] if isinstance(value, list) else []


def owner_state(owner: Mapping[str, Any] | None, *, uid: str) -> Owner:
    """The state of a reference to ``uid`` given the owner found under its name (None:
    not found by a live read)."""
    if owner is None:
        return Owner.DANGLING
    meta = owner.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    if meta.get("uid") != uid:
        return Owner.DANGLING
    if meta.get("deletionTimestamp") and FOREGROUND in finalizers(owner):
        return Owner.WAITING
    return Owner.SOLID


def decide(
    item: Mapping[str, Any], owners: Iterable[tuple[str, Owner]], *, has_dependents: bool
) -> Action:
    """``owners``: (uid, state) for each of the item's owner references."""
    states = list(owners)
    if not states:
        return Keep()
    solid = [u for u, s in states if s in (Owner.SOLID, Owner.UNRESOLVABLE)]
    gone = frozenset(u for u, s in states if s in (Owner.DANGLING, Owner.WAITING))
    if solid:
        return RemoveReferences(gone) if gone else Keep()
    if any(s is Owner.WAITING for _, s in states) and has_dependents:
        return Delete("Foreground")
    own = finalizers(item)
    if ORPHAN in own:
        return Delete("Orphan")
    if FOREGROUND in own:
        return Delete("Foreground")
    return Delete("Background")
