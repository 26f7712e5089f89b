"""Kubernetes strategic merge patch (``application/strategic-merge-patch+json``).

A port of the apply half of k8s.io/apimachinery ``strategicpatch/patch.go`` with the
options the apiserver uses (``MergeParallelList``, ``IgnoreUnmatchedNulls``). The
merge-key knowledge is the table in :mod:`api.patch.merge_keys`.

* **Objects** merge key by key; ``null`` deletes a key; anything else replaces.
* **Lists** the table marks ``merge``: a list of objects merges item by item, matched by
  the merge key (a new item is added, a matched one merged recursively, an item the
  patch does not mention is kept); a list of scalars is a set union. **Every other list
  is replaced whole.** An empty patch list leaves a merging list as it was.
* **Order** of a merged list, as the apiserver computes it: items the patch mentions
  follow the patch's order, the others keep the live order, interleaved by live
  position; an item new to the list goes before the live items it cannot be compared
  with (so a new container lands first unless ``$setElementOrder`` says otherwise).
* **Directives**:
  ``{"$patch": "replace", ...}`` in an object makes it exactly the rest of that object;
  ``{"$patch": "delete"}`` makes it ``{}``. In a merging list, the item
  ``{"$patch": "delete", <mergeKey>: v}`` removes the items whose key is ``v``, and the
  item ``{"$patch": "replace"}`` makes the list exactly the patch's other items.
  ``$patch: merge`` (the default) is accepted and changes nothing (the apiserver rejects
  it; accepting it breaks no client). ``$retainKeys: [names]`` clears every field the
  list does not name before merging. ``$setElementOrder/<list>: [...]`` sets the final
  order of ``<list>`` (ignored on an atomic list, which the patch replaces anyway).
  ``$deleteFromPrimitiveList/<list>: [...]`` removes those values from a list of
  scalars, after the merge (the apiserver's order between the two is random; kubectl
  never sends a value to both).
* **No directive survives.** Where the live object has no value for a key (or one of
  another type), the patch value is merged onto an empty value, so its directives are
  obeyed and dropped. (The apiserver drops such a value outright when it carries
  ``$patch``, so a new ``{"$patch": "replace", ...}`` object vanishes there; here it
  gives what the same patch gives on an empty live value.) A replaced (atomic) list
  takes the patch's items with directives removed as the apiserver's
  ``removeDirectives`` does: an object carrying ``$patch`` is dropped, other directive
  keys and ``null`` members are removed. Keys that merely start with ``$`` (``$ref`` and
  ``$schema`` in a CRD's schema) are data and are kept.

Errors: a malformed directive, a patch list item without its merge key, a list mixing
objects and scalars, a patch that is not an object: :class:`~api.errors.BadRequest`
(the apiserver answers 400 for most of these and 500 for the rest; 400 says whose fault
it is). A list of lists: :class:`~api.errors.Invalid` (422), as the apiserver does.
A stored object that is not an object: :class:`~api.errors.InternalError`.
"""

from __future__ import annotations

from itertools import chain
from typing import Final

from api import errors
from api.patch.jsonvalue import (
    JsonObject,
    JsonValue,
    check_depth,
    clone_object,
    describe,
    identity,
)
from api.patch.merge_keys import Field, GroupKind, field, root_type

PATCH: Final = "$patch"
RETAIN_KEYS: Final = "$retainKeys"
SET_ORDER: Final = "$setElementOrder/"
DELETE_FROM: Final = "$deleteFromPrimitiveList/"

Identity = tuple[str, object]


def is_directive(key: str) -> bool:
    """Whether ``key`` is a strategic-merge-patch directive (never stored)."""
    return key in (PATCH, RETAIN_KEYS) or key.startswith((SET_ORDER, DELETE_FROM))


def strategic_merge_patch(
    original: JsonObject, patch: JsonObject, *, kind: GroupKind
) -> JsonObject:
    """``original`` with the strategic merge ``patch`` applied, for an object of ``kind``.

    Returns a new object; neither argument is modified, and the result shares nothing
    with them. Raises BadRequest, Invalid or InternalError (see the module docstring).
    """
    if not isinstance(original, dict):
        raise errors.InternalError("cannot patch: the stored object is not a JSON object")
    if not isinstance(patch, dict):
        raise errors.BadRequest(
            f"a strategic merge patch must be a JSON object, not {describe(patch)}"
        )
    check_depth(original, "the object")
    check_depth(patch, "the patch")
    return _merge_map(clone_object(original), patch, root_type(kind), "")


def _merge_map(
    original: JsonObject, patch: JsonObject, type_: str | None, where: str
) -> JsonObject:
    """Merge ``patch`` into ``original``, which this owns and modifies; ``patch`` is only
    read. ``type_`` names the object's type in the merge-key table (None: unknown)."""
    if PATCH in patch:
        directive = patch[PATCH]
        if directive == "replace":
            rest = {k: v for k, v in patch.items() if k != PATCH}
            return _merge_map({}, rest, type_, where)
        if directive == "delete":
            return {}
        if directive != "merge":
            raise _bad(
                where,
                f'unknown directive "$patch": {describe(directive)} in an object '
                '(use "replace" or "delete")',
            )
    if RETAIN_KEYS in patch:
        _retain_keys(original, patch, where)
    ordered = _set_element_orders(original, patch, type_, where)
    for key, value in patch.items():
        if is_directive(key) or key in ordered:
            continue
        if value is None:
            original.pop(key, None)
            continue
        original[key] = _merge_value(original.get(key), value, field(type_, key), _at(where, key))
    for key, value in patch.items():
        if key.startswith(DELETE_FROM):
            _delete_from_list(original, key.removeprefix(DELETE_FROM), value, where)
    return original


def _merge_value(current: JsonValue, value: JsonValue, rule: Field | None, where: str) -> JsonValue:
    if isinstance(value, dict):
        base = current if isinstance(current, dict) else {}
        return _merge_map(base, value, rule.type if rule else None, where)
    if isinstance(value, list):
        if rule is not None and rule.merge:
            return _merge_list(current if isinstance(current, list) else [], value, rule, where)
        return [_plain(item) for item in value if not _marks(item)]
    return value


def _merge_list(
    original: list[JsonValue], patch: list[JsonValue], rule: Field, where: str
) -> list[JsonValue]:
    """Merge a patch list into a live list (owned) of a field whose strategy is merge."""
    return _merge_list_and_trace(original, patch, rule, where)[0]


def _merge_list_and_trace(
    original: list[JsonValue], patch: list[JsonValue], rule: Field, where: str
) -> tuple[list[JsonValue], list[JsonValue]]:
    """The merged list, and the live order ``$setElementOrder`` must interleave by.

    That order is not the live list itself. The apiserver merges in place in the live
    list's backing array (Go's ``append(s[:i], s[i+1:]...)`` and ``append``), and its
    ``$setElementOrder`` step then reads that same array: the live items that survived
    the deletions, followed by as many new items as the deletions freed slots. The
    trace reproduces it, so that orders match the apiserver's exactly (apimachinery's
    patch_test.go, "add map and delete map from merging list with conflict").
    """
    if not original and not patch:
        return [], []
    if not _holds_objects(original, patch, where):
        return _normalize(_dedupe(original + patch), patch, original, None), original
    key = rule.key
    if key is None:
        raise _bad(where, "this list has no merge key, so a patch cannot merge objects into it")
    slots = len(original)
    items: list[JsonObject] = []
    replace = False
    for item in patch:
        assert isinstance(item, dict)  # _holds_objects checked it
        if PATCH not in item:
            items.append(item)
        elif item[PATCH] == "delete":
            gone = _key_of(item, key, where)
            original = [o for o in original if _key_of(o, key, None) != gone]
        elif item[PATCH] == "replace":
            replace = True
        elif item[PATCH] != "merge":
            raise _bad(
                where,
                f'unknown directive "$patch": {describe(item[PATCH])} in a list item '
                '(use "replace" or "delete")',
            )
    if replace:
        for item in items:
            _key_of(item, key, where)
        return [_merge_map({}, item, rule.type, where) for item in items], original

    survivors = list(original)
    position: dict[Identity, int] = {}
    for i, live in enumerate(original):
        position.setdefault(_key_of(live, key, None), i)
    for item in items:
        ident = _key_of(item, key, where)
        at = position.get(ident)
        if at is None:
            position[ident] = len(original)
            original.append(_merge_map({}, item, rule.type, where))
        else:
            live = original[at]
            assert isinstance(live, dict)
            original[at] = _merge_map(live, item, rule.type, where)
    return _normalize(original, list(items), survivors, key), original[:slots]


def _normalize(
    merged: list[JsonValue],
    patch_order: list[JsonValue],
    live_order: list[JsonValue],
    key: str | None,
) -> list[JsonValue]:
    """The apiserver's ``normalizeElementOrder``: items named in ``patch_order`` take that
    order, the others the live order, and the two runs are interleaved by live position.
    """

    def ident(item: JsonValue) -> Identity:
        return _key_of(item, key, None) if key else identity(item)

    in_patch: dict[Identity, int] = {}
    for i, item in enumerate(patch_order):
        in_patch.setdefault(ident(item), i)
    in_live: dict[Identity, int] = {}
    for i, item in enumerate(live_order):
        in_live.setdefault(ident(item), i)

    patched = sorted(
        (m for m in merged if ident(m) in in_patch),
        key=lambda m: in_patch[ident(m)],
    )
    live_only = sorted(
        (m for m in merged if ident(m) not in in_patch),
        key=lambda m: in_live.get(ident(m), len(live_order)),
    )
    result: list[JsonValue] = []
    i = j = 0
    while i < len(live_only) and j < len(patched):
        left, right = in_live.get(ident(live_only[i])), in_live.get(ident(patched[j]))
        if left is not None and right is not None and left < right:
            result.append(live_only[i])
            i += 1
        else:
            result.append(patched[j])
            j += 1
    return result + live_only[i:] + patched[j:]


def _set_element_orders(
    original: JsonObject, patch: JsonObject, type_: str | None, where: str
) -> set[str]:
    """Apply every ``$setElementOrder/<list>`` of ``patch`` (merging ``<list>`` on the
    way); return the names of the lists done, which the main loop then skips."""
    done: set[str] = set()
    for directive, order in patch.items():
        if not directive.startswith(SET_ORDER):
            continue
        name = directive.removeprefix(SET_ORDER)
        at = _at(where, name)
        if not name:
            raise _bad(where, f'"{directive}" names no list')
        if not isinstance(order, list):
            raise _bad(at, f'"{directive}" must be a list, not {describe(order)}')
        rule = field(type_, name)
        if rule is None or not rule.merge:
            continue  # an atomic list is replaced in the main loop; it has no order to set
        patch_list = patch.get(name)
        if name in patch and not isinstance(patch_list, list):
            raise _bad(at, f'"{directive}" goes with a list, not {describe(patch_list)}')
        current = original.get(name)
        live = current if isinstance(current, list) else None
        if live is None and patch_list is None:
            continue
        _check_order(patch_list or [], order, rule.key, at)
        if patch_list is None:
            assert live is not None
            merged, live_order = live, live
        else:
            merged, live_order = _merge_list_and_trace(list(live or []), patch_list, rule, at)
        original[name] = _normalize(merged, order, live_order, rule.key)
        done.add(name)
    return done


def _check_order(
    items: list[JsonValue], order: list[JsonValue], key: str | None, where: str
) -> None:
    """The patch's items (deletions aside) must appear in ``order``, in the same order."""
    wanted = [_order_identity(o, key, where) for o in order]
    position = 0
    for item in items:
        if isinstance(item, dict) and PATCH in item:
            continue
        ident = _order_identity(item, key, where)
        while position < len(wanted) and wanted[position] != ident:
            position += 1
        if position == len(wanted):
            raise _bad(
                where,
                f"the patch's list item {describe(item)} is missing from, or out of order "
                "in, its $setElementOrder list",
            )
        position += 1


def _order_identity(item: JsonValue, key: str | None, where: str) -> Identity:
    if key is not None:
        return _key_of(item, key, where)
    if isinstance(item, dict | list):
        raise _bad(where, f"a list of scalars cannot be ordered by {describe(item)}")
    return identity(item)


def _retain_keys(original: JsonObject, patch: JsonObject, where: str) -> None:
    keep = patch[RETAIN_KEYS]
    if not isinstance(keep, list) or not all(isinstance(k, str) for k in keep):
        raise _bad(where, f'"$retainKeys" must be a list of field names, not {describe(keep)}')
    allowed = set(keep)
    for key, value in patch.items():
        if value is not None and not is_directive(key) and key not in allowed:
            raise _bad(where, f'the patch sets "{key}", which its "$retainKeys" list omits')
    for key in [k for k in original if k not in allowed]:
        del original[key]


def _delete_from_list(original: JsonObject, name: str, values: JsonValue, where: str) -> None:
    at = _at(where, name)
    if not name:
        raise _bad(where, f'"{DELETE_FROM}" names no list')
    if not isinstance(values, list):
        raise _bad(at, f'"{DELETE_FROM}{name}" must be a list, not {describe(values)}')
    current = original.get(name)
    if isinstance(current, list):
        gone = {identity(v) for v in values}
        original[name] = [v for v in current if identity(v) not in gone]


def _holds_objects(original: list[JsonValue], patch: list[JsonValue], where: str) -> bool:
    """Whether the items are objects (else scalars); mixed items cannot be merged."""
    kinds = set()
    for item in chain(original, patch):
        if isinstance(item, list):
            raise errors.Invalid(
                f"strategic merge patch, at {where}: lists of lists cannot be merged"
            )
        kinds.add("object" if isinstance(item, dict) else "scalar")
    if len(kinds) > 1:
        raise _bad(where, "the list mixes objects and scalars, so it cannot be merged")
    return kinds == {"object"}


def _key_of(item: JsonValue, key: str, where: str | None) -> Identity:
    """The identity of ``item``'s merge-key value. A patch item (``where`` given) must
    have one; a live item without one matches nothing."""
    if isinstance(item, dict) and key in item:
        return identity(item[key])
    if where is None:
        return ("no merge key", id(item))
    raise _bad(where, f'the list item {describe(item)} lacks its merge key "{key}"')


def _dedupe(values: list[JsonValue]) -> list[JsonValue]:
    seen: set[Identity] = set()
    result: list[JsonValue] = []
    for v in values:
        if (ident := identity(v)) not in seen:
            seen.add(ident)
            result.append(v)
    return result


def _marks(item: JsonValue) -> bool:
    """Whether ``item`` is an object carrying ``$patch`` (dropped from atomic values)."""
    return isinstance(item, dict) and PATCH in item


def _plain(value: JsonValue) -> JsonValue:
    """A copy of ``value`` without directives and null members (the apiserver's
    ``removeDirectives`` and ``discardNullValuesFromPatch``)."""
    if isinstance(value, dict):
        return {
            k: _plain(v)
            for k, v in value.items()
            if v is not None and not is_directive(k) and not _marks(v)
        }
    if isinstance(value, list):
        return [_plain(v) for v in value if not _marks(v)]
    return value


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _bad(where: str, message: str) -> errors.BadRequest:
    place = f", at {where}" if where else ""
    return errors.BadRequest(f"invalid strategic merge patch{place}: {message}")
