"""JSON merge patch, RFC 7386 (``application/merge-patch+json``).

The whole algorithm (RFC 7386, section 2): if the patch is an object, each of its
members is merged into the target (which becomes ``{}`` if it was not an object) and a
``null`` member deletes the target's member; any other patch replaces the target.
Arrays are never merged: they replace. kubectl sends these for ``label``, ``annotate``,
``scale`` and ``patch --type=merge``.
"""

from __future__ import annotations

from api.patch.jsonvalue import JsonValue, check_depth, clone


def json_merge_patch(target: JsonValue, patch: JsonValue) -> JsonValue:
    """``target`` with the RFC 7386 ``patch`` applied, as a new value.

    Any JSON is accepted, as the RFC says (a non-object patch replaces the target);
    :func:`api.patch.apply` is what insists on an object. Neither argument is modified
    and the result shares nothing with them. Raises BadRequest only for values nested
    more than ``MAX_DEPTH`` levels.
    """
    check_depth(target, "the object")
    check_depth(patch, "the patch")
    return _merge(clone(target), patch)


def _merge(target: JsonValue, patch: JsonValue) -> JsonValue:
    """Merge ``patch`` into ``target``, which this owns and may modify."""
    if not isinstance(patch, dict):
        return clone(patch)
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _merge(target.get(key), value)
    return target
