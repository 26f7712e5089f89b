"""The four Kubernetes patch types, applied to plain JSON objects as the apiserver does.

Owns: turning ``PATCH`` request bodies into new objects, for every ``Content-Type``
real kubectl and the official Python client send (kubectl-surface.md, section 7):

================================================  ===============================  =========
Content-Type                                      semantics                        module
================================================  ===============================  =========
``application/strategic-merge-patch+json``        Kubernetes strategic merge       strategic
``application/merge-patch+json``                  JSON merge patch, RFC 7386       rfc7386
``application/json-patch+json``                   JSON patch, RFC 6902             rfc6902
``application/apply-patch+yaml``                  server-side apply, minimal       server_side
================================================  ===============================  =========

The strategic merge needs to know, per kind, which lists merge and by which key; that
knowledge is one data table, :data:`merge_keys.FIELDS`, keyed by ``"<GoType>.<field>"``
and transcribed from k8s.io/api's ``patchStrategy``/``patchMergeKey`` struct tags.

Errors, all :class:`api.errors.ApiError` (no other exception escapes, whatever the
input):

* ``UnsupportedMediaType`` (415): any other Content-Type; the message lists these four.
* ``BadRequest`` (400): a body that is not UTF-8, not JSON (YAML for apply), empty, not
  an object (a JSON patch: not an array of objects), nested over ``MAX_DEPTH`` levels;
  a malformed strategic-merge directive; an apply configuration without
  apiVersion/kind, of another kind, or carrying directives.
* ``Invalid`` (422): a JSON patch that cannot be applied (failed ``test``, missing
  path, unknown op, ...) or that leaves something other than an object; a strategic
  merge of lists of lists.
* ``RequestEntityTooLarge`` (413): a JSON patch of more than 10 000 operations.
* ``NotFound`` (404): a patch other than apply for an object that does not exist.

Invariants: pure and synchronous, so safe from any thread or task; inputs are never
modified and results share no structure with them (callers may modify a result
freely, including one derived from an informer's cached object); no strategic-merge
directive (``$patch``, ``$retainKeys``, ``$setElementOrder/…``,
``$deleteFromPrimitiveList/…``) is ever left in a result.
"""

from __future__ import annotations

from typing import Final

from api import errors
from api.patch.body import parse_json, parse_yaml
from api.patch.jsonvalue import MAX_DEPTH, JsonObject, JsonValue
from api.patch.merge_keys import GroupKind
from api.patch.rfc6902 import json_patch
from api.patch.rfc7386 import json_merge_patch
from api.patch.server_side import apply_patch, group_kind
from api.patch.strategic import strategic_merge_patch

__all__ = [
    "APPLY_PATCH",
    "JSON_PATCH",
    "MAX_DEPTH",
    "MERGE_PATCH",
    "STRATEGIC_MERGE_PATCH",
    "SUPPORTED_MEDIA_TYPES",
    "GroupKind",
    "JsonObject",
    "JsonValue",
    "apply",
    "apply_patch",
    "json_merge_patch",
    "json_patch",
    "media_type",
    "strategic_merge_patch",
]

JSON_PATCH: Final = "application/json-patch+json"
MERGE_PATCH: Final = "application/merge-patch+json"
APPLY_PATCH: Final = "application/apply-patch+yaml"
STRATEGIC_MERGE_PATCH: Final = "application/strategic-merge-patch+json"
# In the order the apiserver lists them in its 415 message.
SUPPORTED_MEDIA_TYPES: Final = (JSON_PATCH, MERGE_PATCH, APPLY_PATCH, STRATEGIC_MERGE_PATCH)


def media_type(content_type: str) -> str:
    """The bare, lower-case media type of a Content-Type header (parameters dropped)."""
    return content_type.split(";", 1)[0].strip().lower()


def apply(
    content_type: str, original: JsonObject | None, body: bytes, *, kind: GroupKind
) -> JsonObject:
    """The object that results from a ``PATCH`` with ``body`` sent as ``content_type``.

    ``original`` is the live object, or None if it does not exist (only an apply patch
    can then create it); ``kind`` is its ``(group, kind)``, e.g. ``("apps",
    "Deployment")``, which selects the strategic-merge rules and which an apply
    configuration must match. Raises only :class:`api.errors.ApiError` subclasses (see
    the package docstring).
    """
    media = media_type(content_type)
    if media not in SUPPORTED_MEDIA_TYPES:
        raise errors.UnsupportedMediaType(
            "the body of the request was in an unknown format - accepted media types "
            f"include: {', '.join(SUPPORTED_MEDIA_TYPES)} (got {media or 'none'!r})"
        )
    if media == APPLY_PATCH:
        applied = parse_yaml(body, "a YAML or JSON object (an apply configuration)")
        if not isinstance(applied, dict):
            raise errors.BadRequest("an apply configuration must be a single YAML or JSON object")
        if group_kind(applied, "the apply configuration") != kind:
            group, name = kind
            raise errors.BadRequest(
                f"the apply configuration's apiVersion/kind ({applied.get('apiVersion')}/"
                f"{applied.get('kind')}) do not match the resource it was sent to "
                f"({name}{'.' + group if group else ''})"
            )
        return apply_patch(original, applied)
    if original is None:
        raise errors.NotFound(
            "the object to patch does not exist; only server-side apply "
            f"({APPLY_PATCH}) creates objects"
        )
    if media == JSON_PATCH:
        operations = parse_json(body, "a JSON array of operations (a JSON patch)")
        result = json_patch(original, operations)
        if not isinstance(result, dict):
            raise errors.Invalid("the JSON patch replaces the object with something else")
        return result
    if media == MERGE_PATCH:
        patch = _object(parse_json(body, "a JSON object (a JSON merge patch)"), "a merge patch")
        merged = json_merge_patch(original, patch)
        assert isinstance(merged, dict)  # an object patch always yields an object
        return merged
    patch = _object(parse_json(body, "a JSON object (a strategic merge patch)"), "a patch")
    return strategic_merge_patch(original, patch, kind=kind)


def _object(value: JsonValue, what: str) -> JsonObject:
    if not isinstance(value, dict):
        raise errors.BadRequest(f'{what} must be a JSON object, such as {{"spec": {{...}}}}')
    return value
