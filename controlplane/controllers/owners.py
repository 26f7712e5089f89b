"""An object's controlling owner: the one ownerReference with ``controller: true``
(the apiserver allows at most one), as every controller finds it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Obj = dict[str, Any]


def controller_ref(obj: Mapping[str, Any]) -> Obj | None:
    """The ownerReference with ``controller: true``, if any."""
    meta = obj.get("metadata")
    refs = meta.get("ownerReferences") if isinstance(meta, dict) else None
    for ref in refs if isinstance(refs, list) else []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            return ref
    return None


def controller_uid(obj: Mapping[str, Any]) -> list[str]:
    """Index function: the uid of the object's controller, if any."""
    ref = controller_ref(obj)
    uid = ref.get("uid") if ref else None
    return [uid] if isinstance(uid, str) and uid else []


def controller_key(obj: Mapping[str, Any], kind: str) -> str | None:
    """``namespace/name`` of the object's controller when it is a ``kind``."""
    ref = controller_ref(obj)
    if ref is None or ref.get("kind") != kind:
        return None
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace')}/{ref.get('name')}"
