"""A DaemonSet's revision history as pure decisions (Kubernetes' ``constructHistory``,
``snapshot``, ``dedupCurHistories`` and ``cleanupHistory`` in pkg/controller/daemon/
update.go), so they are tested as tables.

Each template the DaemonSet has had is a ControllerRevision named ``<ds>-<hash>``: its
``data`` is the patch that restores the template (``{"spec": {"template": {...,
"$patch": "replace"}}}``, what ``kubectl rollout undo`` sends back), its ``revision`` a
number, its labels the template's plus ``controller-revision-hash``, the hash the
DaemonSet's pods of that template carry.

Invariants: the current template's revision has the highest number; when a template
comes back (an undo), its old revision is renumbered to the newest rather than copied,
so a template has one revision; of the other revisions at most ``revisionHistoryLimit``
are kept, the oldest deleted first, never one whose hash a pod still carries.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from api.resources import resource
from controlplane.controllers.claims import owner_reference
from controlplane.controllers.daemonset.pods import REVISION_HASH, template_hash

Obj = dict[str, Any]

DAEMONSETS: Final = resource("apps", "DaemonSet")
CONTROLLER_REVISIONS: Final = resource("apps", "ControllerRevision")
DEFAULT_HISTORY_LIMIT: Final = 10


def _sorted(value: Any) -> Any:
    """Keys in Go's order (sorted), so the stored bytes are those Go's ``json.Marshal``
    writes: kubectl compares a revision's data with the DaemonSet's patch byte for byte
    to say that an undo is already done."""
    return orjson.loads(orjson.dumps(value, option=orjson.OPT_SORT_KEYS))


def patch_of(daemon_set: Mapping[str, Any]) -> Obj:
    """Kubernetes' ``getPatch``: the patch that makes a DaemonSet's template this one,
    as Go writes it from the typed template: with ``metadata.creationTimestamp: null``
    (a struct field Go always writes), which the patch's replace then drops again."""
    template = copy.deepcopy((daemon_set.get("spec") or {}).get("template") or {})
    metadata = template.get("metadata")
    template["metadata"] = {"creationTimestamp": None, **(metadata or {})}
    template["$patch"] = "replace"
    return {"spec": {"template": _sorted(template)}}


def template_of(revision: Mapping[str, Any]) -> Obj | None:
    """The template a revision restores (as the patch leaves it), None if its data
    holds none."""
    data = revision.get("data")
    spec = data.get("spec") if isinstance(data, dict) else None
    template = spec.get("template") if isinstance(spec, dict) else None
    if not isinstance(template, dict):
        return None
    return _restored(template)


def _restored(template: Mapping[str, Any]) -> Obj:
    """What ``{"$patch": "replace", ...}`` leaves: the directive and nulls gone."""
    out: Obj = {}
    for key, value in template.items():
        if value is None or key == "$patch":
            continue
        out[key] = _restored(value) if isinstance(value, dict) else value
    return out


def matches(daemon_set: Mapping[str, Any], revision: Mapping[str, Any]) -> bool:
    """Kubernetes' ``Match``: the revision restores the DaemonSet's current template."""
    current = (daemon_set.get("spec") or {}).get("template") or {}
    return template_of(revision) == _restored(current)


def number(revision: Mapping[str, Any]) -> int:
    value = revision.get("revision")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def revision_hash(revision: Mapping[str, Any]) -> str:
    """The hash pods of this revision carry: the label, else the name (how Kubernetes
    labels a revision that lost it)."""
    labels = (revision.get("metadata") or {}).get("labels") or {}
    return str(labels.get(REVISION_HASH) or (revision.get("metadata") or {}).get("name") or "")


def collision_count(daemon_set: Mapping[str, Any]) -> int:
    return int((daemon_set.get("status") or {}).get("collisionCount") or 0)


def snapshot(daemon_set: Mapping[str, Any], revision: int) -> Obj:
    """Kubernetes' ``snapshot``: the ControllerRevision of the current template, to
    create with number ``revision``. Its annotations are the DaemonSet's, so kubectl's
    CHANGE-CAUSE (``kubernetes.io/change-cause``) is kept per revision."""
    meta = daemon_set["metadata"]
    template = (daemon_set.get("spec") or {}).get("template") or {}
    hashed = template_hash(template, collision_count(daemon_set))
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    labels[REVISION_HASH] = hashed
    revision_meta: Obj = {
        "name": f"{meta['name']}-{hashed}",
        "namespace": meta["namespace"],
        "labels": labels,
        "ownerReferences": [owner_reference(daemon_set, DAEMONSETS)],
    }
    if meta.get("annotations"):
        revision_meta["annotations"] = dict(meta["annotations"])
    return {
        "apiVersion": CONTROLLER_REVISIONS.api_version,
        "kind": CONTROLLER_REVISIONS.kind,
        "metadata": revision_meta,
        "data": patch_of(daemon_set),
        "revision": revision,
    }


@dataclass(frozen=True, slots=True)
class HistoryPlan:
    """What ``construct`` decided. ``current``: the revision of the current template
    (None: create ``snapshot(ds, next_revision)``); ``renumber``: give ``current`` the
    number ``next_revision``; ``duplicates``: other revisions of the current template,
    to delete (their pods relabelled to ``current``'s hash first); ``old``: the rest."""

    current: Obj | None
    next_revision: int
    renumber: bool
    duplicates: tuple[Obj, ...]
    old: tuple[Obj, ...]


def construct(daemon_set: Mapping[str, Any], revisions: Sequence[Obj]) -> HistoryPlan:
    """Kubernetes' ``constructHistory`` with ``dedupCurHistories``: the revisions of the
    current template and the others; the current one should be numbered one past the
    newest other, so an undo's template becomes the newest revision again."""
    current = [r for r in revisions if matches(daemon_set, r)]
    old = tuple(r for r in revisions if not matches(daemon_set, r))
    next_revision = max((number(r) for r in old), default=0) + 1
    if not current:
        return HistoryPlan(None, next_revision, False, (), old)
    # The highest numbered one wins (the last of equals, as Kubernetes' >= does).
    keep = current[0]
    for candidate in current[1:]:
        if number(candidate) >= number(keep):
            keep = candidate
    duplicates = tuple(r for r in current if r is not keep)
    return HistoryPlan(keep, next_revision, number(keep) < next_revision, duplicates, old)


def to_delete(old: Sequence[Obj], *, limit: int, live_hashes: Collection[str]) -> list[Obj]:
    """Kubernetes' ``cleanupHistory``: beyond ``limit`` old revisions, the oldest go
    first, skipping any whose hash a pod still carries (the pod may be an old one an
    OnDelete or paused update keeps, and ``rollout undo`` would need it)."""
    excess = len(old) - max(limit, 0)
    doomed: list[Obj] = []
    for revision in sorted(old, key=number):
        if excess <= 0:
            break
        if revision_hash(revision) in live_hashes:
            continue
        doomed.append(revision)
        excess -= 1
    return doomed


def history_limit(daemon_set: Mapping[str, Any]) -> int:
    value = (daemon_set.get("spec") or {}).get("revisionHistoryLimit")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return DEFAULT_HISTORY_LIMIT
