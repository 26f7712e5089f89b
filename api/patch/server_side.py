"""Server-side apply (``application/apply-patch+yaml``), the part kubectl needs.

``kubectl apply --server-side`` sends the whole manifest and expects an upsert: the
object is created when it does not exist (the apiserver answers 201), otherwise the
applied configuration is merged onto the live object (200). The merge is the strategic
merge of the applied object as a patch: fields it sets win, fields it leaves out are
kept, lists with a merge key (containers, env, ports, ...) merge by that key, and an
explicit ``null`` removes a field.

Out of scope, and what it costs: real server-side apply records which field manager
owns each field (``metadata.managedFields``) so that it can remove the fields a manager
stopped applying and report conflicts between managers (409, overridden by
``force=true``). Here nothing is tracked: a field an applier drops from its manifest is
kept (remove it with an explicit ``null`` or another patch type), and no conflict is
ever reported.
"""

from __future__ import annotations

from api import errors
from api.patch.jsonvalue import JsonObject, JsonValue, check_depth, describe
from api.patch.merge_keys import GroupKind
from api.patch.strategic import is_directive, strategic_merge_patch


def apply_patch(original: JsonObject | None, applied: JsonObject) -> JsonObject:
    """The object after applying ``applied``: a copy of it when ``original`` is None
    (create), else ``applied`` merged onto ``original``.

    ``applied`` must be a whole object with ``apiVersion`` and ``kind`` (which choose
    the merge keys) and no strategic-merge-patch directives; a live ``original`` that
    declares its kind must be of the same group and kind. Raises BadRequest when it is
    not, and whatever :func:`~api.patch.strategic_merge_patch` raises. Neither argument
    is modified.
    """
    if not isinstance(applied, dict):
        raise errors.BadRequest(
            f"an apply configuration must be an object, not {describe(applied)}"
        )
    check_depth(applied, "the apply configuration")
    kind = group_kind(applied, "the apply configuration")
    _refuse_directives(applied)
    if original is None:
        # Merging onto nothing drops the nulls, which mean "absent" in a new object.
        return strategic_merge_patch({}, applied, kind=kind)
    live = _declared_kind(original)
    if live is not None and live != kind:
        raise errors.BadRequest(
            f"the apply configuration is a {_name(kind)}, but the object it would change "
            f"is a {_name(live)}"
        )
    return strategic_merge_patch(original, applied, kind=kind)


def group_kind(obj: JsonObject, what: str) -> GroupKind:
    """``(group, kind)`` from an object's ``apiVersion`` and ``kind``."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not api_version or not isinstance(kind, str) or not kind:
        raise errors.BadRequest(
            f"{what} must set apiVersion and kind (for example apiVersion: apps/v1, "
            "kind: Deployment)"
        )
    group, _, _version = api_version.rpartition("/")
    return (group, kind)


def _declared_kind(obj: object) -> GroupKind | None:
    """The live object's ``(group, kind)``, None when it does not say (is not an object,
    or its apiVersion/kind are not stored)."""
    if not isinstance(obj, dict):
        return None
    try:
        return group_kind(obj, "the live object")
    except errors.BadRequest:
        return None


def _name(kind: GroupKind) -> str:
    group, name = kind
    return f"{name}.{group}" if group else name


def _refuse_directives(value: JsonValue) -> None:
    """Server-side apply takes an object, not a patch: its directives have no meaning
    there (the apiserver refuses them as unknown fields under strict validation)."""
    stack: list[JsonValue] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if is_directive(key):
                    raise errors.BadRequest(
                        f'the apply configuration contains "{key}", a strategic merge '
                        "patch directive; send a plain object (or use "
                        "application/strategic-merge-patch+json)"
                    )
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)
