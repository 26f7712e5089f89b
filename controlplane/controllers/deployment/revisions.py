"""Revisions and templates, pure: the pod-template-hash that names a ReplicaSet, which
ReplicaSet is the new one, the revision annotations, and which old ReplicaSets the
history limit deletes (Kubernetes' deployment util).

Invariants:

* the hash is a stable function of the Deployment's pod template (its canonical JSON,
  FNV-32a as Kubernetes) and ``status.collisionCount``, encoded with Kubernetes'
  safe alphabet, so a name never depends on dict order or on the process;
* the new ReplicaSet is the oldest one whose template equals the Deployment's once the
  ``pod-template-hash`` label is ignored (a rollback makes an old one new again);
* a ReplicaSet's revision only goes up; when an old one becomes new again, its previous
  revision is kept in ``deployment.kubernetes.io/revision-history``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import orjson

Obj = dict[str, Any]

HASH_LABEL: Final = "pod-template-hash"
REVISION: Final = "deployment.kubernetes.io/revision"
REVISION_HISTORY: Final = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS: Final = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS: Final = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED: Final = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO: Final = "deprecated.deployment.rollback.to"
# Annotations of the Deployment that are its own, never copied to a ReplicaSet (and kept
# on the Deployment by `kubectl rollout undo`).
NOT_COPIED: Final = frozenset(
    {LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO}
)
HISTORY_CHARS: Final = 2000  # the controller's maxRevHistoryLengthInChars

_SAFE: Final = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery rand.SafeEncodeString


def _fnv32a(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def canonical(value: Any) -> Any:
    """A template as Go would compare it: nulls, empty maps and empty lists are the
    zero value, the same as absent (kubectl's `rollout undo` sends the template back
    with ``metadata.creationTimestamp: null``, which must not make it a new template)."""
    if isinstance(value, dict):
        kept = {k: canonical(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def compute_hash(template: Mapping[str, Any], collision_count: int | None) -> str:
    data = orjson.dumps(canonical(template), option=orjson.OPT_SORT_KEYS)
    if collision_count is not None:
        # As ComputeHash: an 8-byte buffer holding the little-endian uint32.
        data += (collision_count & 0xFFFFFFFF).to_bytes(4, "little") + bytes(4)
    return "".join(_SAFE[ord(c) % len(_SAFE)] for c in str(_fnv32a(data)))


def without_hash(template: Mapping[str, Any]) -> Obj:
    result = copy.deepcopy(dict(template))
    labels = (result.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    canon = canonical(result)
    assert isinstance(canon, dict)
    return canon


def equal_ignore_hash(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return without_hash(a) == without_hash(b)


def annotations_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    found = (obj.get("metadata") or {}).get("annotations")
    return found if isinstance(found, dict) else {}


def revision_of(obj: Mapping[str, Any]) -> int:
    """The revision annotation as a number; 0 when missing or malformed."""
    try:
        return int(annotations_of(obj).get(REVISION, "0"))
    except ValueError:
        return 0


def max_revision(objs: Iterable[Mapping[str, Any]]) -> int:
    return max((revision_of(o) for o in objs), default=0)


def created(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("creationTimestamp") or ""), str(meta.get("name") or "")


def find_new(template: Mapping[str, Any], replica_sets: Sequence[Obj]) -> Obj | None:
    """The oldest ReplicaSet whose template is the Deployment's (FindNewReplicaSet)."""
    for rs in sorted(replica_sets, key=created):
        if equal_ignore_hash((rs.get("spec") or {}).get("template") or {}, template):
            return rs
    return None


def set_new_rs_annotations(
    deployment: Mapping[str, Any], rs_annotations: dict[str, str], new_revision: int
) -> bool:
    """Copy the Deployment's own annotations onto the new ReplicaSet's and raise its
    revision to ``new_revision`` (keeping the one it had in the history); whether
    anything changed (SetNewReplicaSetAnnotations)."""
    changed = False
    for key, value in annotations_of(deployment).items():
        if key in NOT_COPIED or rs_annotations.get(key) == value:
            continue
        rs_annotations[key] = value
        changed = True
    old = rs_annotations.get(REVISION)
    try:
        old_revision = int(old) if old else 0
    except ValueError:
        return changed  # someone wrote garbage there: leave it, as Kubernetes does
    if old_revision < new_revision:
        rs_annotations[REVISION] = str(new_revision)
        changed = True
        if old is not None:
            history = _append_history(rs_annotations.get(REVISION_HISTORY, ""), old)
            if history is not None:
                rs_annotations[REVISION_HISTORY] = history
    return changed


def _append_history(history: str, revision: str) -> str | None:
    if not history:
        return revision
    revisions = history.split(",")
    total = len(history) + len(revision) + 1
    start = 0
    while total > HISTORY_CHARS and start < len(revisions):
        total -= len(revisions[start]) + 1
        start += 1
    if total > HISTORY_CHARS:
        return None
    return ",".join([*revisions[start:], revision])


def replicas_annotations_need_update(
    rs_annotations: Mapping[str, str], desired: int, most: int
) -> bool:
    return rs_annotations.get(DESIRED_REPLICAS) != str(desired) or rs_annotations.get(
        MAX_REPLICAS
    ) != str(most)


def int_annotation(obj: Mapping[str, Any], key: str) -> int | None:
    try:
        return int(annotations_of(obj)[key])
    except (KeyError, ValueError):
        return None


def history_to_delete(old: Sequence[Obj], limit: int) -> list[Obj]:
    """The old ReplicaSets beyond ``revisionHistoryLimit`` that may go: lowest revisions
    first, and only those with no replicas left, seen so by their controller, and not
    already being deleted (cleanupDeployment)."""
    alive = [rs for rs in old if not (rs.get("metadata") or {}).get("deletionTimestamp")]
    excess = len(alive) - limit
    if excess <= 0:
        return []
    ordered = sorted(alive, key=lambda rs: (revision_of(rs), created(rs)))
    chosen = []
    for rs in ordered[:excess]:
        spec, status = rs.get("spec") or {}, rs.get("status") or {}
        generation = int((rs.get("metadata") or {}).get("generation") or 0)
        if (
            status.get("replicas", 0) != 0
            or spec.get("replicas", 1) != 0
            or generation > int(status.get("observedGeneration") or 0)
        ):
            continue
        chosen.append(rs)
    return chosen
