"""JSON patch, RFC 6902 (``application/json-patch+json``), applied by ``jsonpatch``.

A JSON patch is an array of operations (``add``, ``remove``, ``replace``, ``move``,
``copy``, ``test``) applied in order; if one fails, nothing is applied. kubectl sends
these for ``patch --type=json``, the Python client when the patch body is a list.

Status codes follow the apiserver (``endpoints/handlers/patch.go``):

==========================================================  ================================
the operations are not an array of objects                  BadRequest (400), as its decode
more than 10 000 operations                                 RequestEntityTooLarge (413)
anything else: unknown op, missing member, bad pointer,      Invalid (422), as its apply
missing path, failed ``test``, copies over the size limit
==========================================================  ================================
"""

from __future__ import annotations

from typing import Any, Final

import jsonpatch
import jsonpointer
import orjson

from api import errors
from api.patch.jsonvalue import JsonValue, check_depth, clone, depth_exceeds, describe

# The apiserver's maxJSONPatchOperations (the fix for CVE-2019-1002100).
MAX_OPERATIONS: Final = 10_000
# Each ``copy`` can double a document, so 10 000 of them could exhaust memory from a
# tiny body. Like json-patch's AccumulatedCopySizeLimit, cap what copies may add in
# total; 3 MiB is the apiserver's default request body limit.
MAX_COPIED_BYTES: Final = 3 * 1024 * 1024


def json_patch(target: JsonValue, operations: JsonValue) -> JsonValue:
    """``target`` with the RFC 6902 ``operations`` applied, as a new value.

    Raises only BadRequest, RequestEntityTooLarge or Invalid (see the module docstring),
    whatever the input. Neither argument is modified; the result shares nothing with
    them. The result may be any JSON value (``add`` at path ``""`` replaces the
    document); :func:`api.patch.apply` is what insists on an object.
    """
    if not isinstance(operations, list):
        raise errors.BadRequest(
            f"a JSON patch must be a JSON array of operations, not {describe(operations)}"
        )
    ops: list[dict[str, Any]] = []
    for i, op in enumerate(operations):
        if not isinstance(op, dict):
            raise errors.BadRequest(
                f"JSON patch operation {i} must be an object such as "
                f'{{"op": "replace", "path": "/spec/replicas", "value": 3}}, '
                f"not {describe(op)}"
            )
        ops.append(op)
    if len(ops) > MAX_OPERATIONS:
        raise errors.RequestEntityTooLarge(
            f"The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {len(ops)}"
        )
    check_depth(target, "the object")
    check_depth(operations, "the patch")

    document = clone(target)
    copied = 0
    for i, op in enumerate(ops):
        if op.get("op") == "copy":
            copied += _source_size(document, op.get("from"))
            if copied > MAX_COPIED_BYTES:
                raise _failed(i, op, f"copies add more than {MAX_COPIED_BYTES} bytes in total")
        document = _apply_one(document, i, op)
    if depth_exceeds(document):
        raise errors.Invalid("the JSON patch nests the object too deeply to be stored")
    return document


def _apply_one(document: JsonValue, index: int, op: dict[str, Any]) -> JsonValue:
    try:
        result: JsonValue = jsonpatch.JsonPatch([op]).apply(document, in_place=True)
    except jsonpatch.JsonPatchTestFailed as e:
        raise _failed(index, op, f"test failed: {e}") from e
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as e:
        raise _failed(index, op, str(e)) from e
    # jsonpatch documents only the two exceptions above; these are what an unforeseen
    # input shape would raise from inside it. The promise is "ApiError, nothing else".
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, RecursionError) as e:
        raise _failed(index, op, f"cannot be applied ({type(e).__name__}: {e})") from e
    return result


def _source_size(document: JsonValue, pointer: object) -> int:
    """The size in bytes of what ``from`` points at, 0 if it points at nothing (the
    operation then fails with jsonpatch's own message)."""
    if not isinstance(pointer, str):
        return 0
    try:
        value = jsonpointer.resolve_pointer(document, pointer)
        return len(orjson.dumps(value))
    except (jsonpointer.JsonPointerException, TypeError, ValueError, KeyError, IndexError):
        return 0


def _failed(index: int, op: dict[str, Any], reason: str) -> errors.Invalid:
    name, path = op.get("op"), op.get("path")
    what = f"{name} {path}" if isinstance(name, str) and isinstance(path, str) else describe(op)
    return errors.Invalid(f"the JSON patch cannot be applied: operation {index} ({what}): {reason}")
