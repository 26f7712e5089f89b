"""What every kind's rules share: reading JSON safely, Go-formatted values, metadata checks.

The kinds' validators read objects straight from JSON, so any field may have any type.
The ``get_*`` readers return an empty value of the expected type for a missing field and
the ``expect_*`` checks turn a wrong type into a FieldValueTypeInvalid cause (Kubernetes
would fail to decode such a body; bramble reports it as a cause and carries on).

Kubernetes prints a bad value that is a Go struct or map with ``%#v``, and some of those
messages are the ones users meet most (``spec.selector: Invalid value:
v1.LabelSelector{...}: field is immutable``), so the ``go_*`` functions print the few
shapes that matter exactly as Go does; everything else goes through
``api.validation.format_value``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, Final, TypeGuard

from api import validation as v
from api.errors import Cause
from api.resources import Resource

Obj = dict[str, Any]

NOT_FOUND: Final = "FieldValueNotFound"
IMMUTABLE: Final = "field is immutable"
# k8s helper.IsStandardFinalizerName: a finalizer without a domain must be one of these.
STANDARD_FINALIZERS: Final = frozenset({"kubernetes", "orphan", "foregroundDeletion"})

_NAME_RULES: Final[dict[tuple[str, str], v.NameValidator]] = {
    ("", "Namespace"): v.name_is_dns_label,
    ("", "Service"): v.name_is_dns1035_label,
}


# --- reading JSON ----------------------------------------------------------------------


def mapping(obj: Obj, key: str) -> dict[str, Any]:
    """``obj[key]`` as a dict, created empty if missing or not a dict (for defaulting)."""
    value = obj.get(key)
    if not isinstance(value, dict):
        value = {}
        obj[key] = value
    return value


def get_map(obj: object, key: str) -> dict[str, Any]:
    """``obj[key]`` if it is a dict, else an empty dict (never stored)."""
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else {}


def get_list(obj: object, key: str) -> list[Any]:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, list) else []


def get_str(obj: object, key: str) -> str:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, str) else ""


def is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def items(obj: object, key: str, path: str) -> Iterator[tuple[str, Obj]]:
    """``(path[i], item)`` for each object in the list ``obj[key]``; wrong types are
    skipped here and reported by ``expect_list``."""
    for i, item in enumerate(get_list(obj, key)):
        if isinstance(item, dict):
            yield f"{path}[{i}]", item


def expect_list(obj: object, key: str, path: str, *, of: type = dict) -> list[Cause]:
    """``obj[key]`` must be absent or an array of ``of`` (objects, or strings)."""
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None:
        return []
    if not isinstance(value, list):
        return [v.type_invalid(path, value, detail="must be an array")]
    detail = "must be an object" if of is dict else "must be a string"
    return [
        v.type_invalid(f"{path}[{i}]", item, detail=detail)
        for i, item in enumerate(value)
        if not isinstance(item, of)
    ]


def expect_map(obj: object, key: str, path: str) -> list[Cause]:
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None or isinstance(value, dict):
        return []
    return [v.type_invalid(path, value, detail="must be an object")]


def expect_bool(obj: object, key: str, path: str) -> list[Cause]:
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None or isinstance(value, bool):
        return []
    return [v.type_invalid(path, value, detail="must be a boolean")]


# --- checks Kubernetes repeats everywhere ----------------------------------------------


def non_negative(obj: object, key: str, path: str) -> list[Cause]:
    """k8s ``ValidateNonnegativeField`` for an optional integer field."""
    value = obj.get(key) if isinstance(obj, dict) else None
    return [] if value is None else v.non_negative(value, path)


def one_of(obj: object, key: str, path: str, supported: tuple[str, ...]) -> list[Cause]:
    """An enum field: Required when empty, NotSupported when unknown (as k8s writes most)."""
    value = obj.get(key) if isinstance(obj, dict) else None
    if value in (None, ""):
        return [v.required(path)]
    if value not in supported:
        return [v.not_supported(path, value, supported=supported)]
    return []


def optional_one_of(obj: object, key: str, path: str, supported: tuple[str, ...]) -> list[Cause]:
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None or value in supported:
        return []
    return [v.not_supported(path, value, supported=supported)]


def not_found(field: str, value: object) -> Cause:
    """k8s ``field.NotFound``."""
    return Cause(field, NOT_FOUND, f"Not found: {v.format_value(value)}")


def invalid_shown(field: str, shown: str, detail: str) -> Cause:
    """An Invalid cause whose value is already printed (e.g. by a ``go_*`` function)."""
    return Cause(field, v.INVALID, f"Invalid value: {shown}: {detail}")


def not_supported_shown(field: str, shown: str, supported: tuple[str, ...]) -> Cause:
    """A NotSupported cause whose value is already printed."""
    values = ", ".join(v.quote(s) for s in supported)
    return Cause(field, v.NOT_SUPPORTED, f"Unsupported value: {shown}: supported values: {values}")


def immutable(field: str, new: object, old: object, *, shown: str | None = None) -> list[Cause]:
    """k8s ``ValidateImmutableField``: no cause unless ``new`` differs from ``old``."""
    if same(new, old):
        return []
    return [invalid_shown(field, shown if shown is not None else v.format_value(new), IMMUTABLE)]


def freeze(value: object) -> object:
    """``value`` as something hashable, for set membership of JSON values."""
    if value is None or isinstance(value, str | int | float):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def normalized(value: object) -> object:
    """``value`` with nulls and empty lists and maps dropped, recursively: how Kubernetes'
    semantic equality sees JSON (a nil slice equals an empty one)."""
    if isinstance(value, dict):
        out = {k: normalized(x) for k, x in value.items()}
        return {k: x for k, x in out.items() if x is not None and x != [] and x != {}}
    if isinstance(value, list):
        return [normalized(x) for x in value]
    return value


def same(a: object, b: object) -> bool:
    return normalized(a) == normalized(b)


# --- Go's %#v for the values users see most --------------------------------------------


def go_string_map(value: object) -> str:
    """A ``map[string]string`` as ``%#v`` prints it (keys sorted, as Go's fmt does)."""
    if not isinstance(value, Mapping):
        return "map[string]string(nil)"
    pairs = ", ".join(f"{v.quote(str(k))}:{v.quote(str(x))}" for k, x in sorted(value.items()))
    return f"map[string]string{{{pairs}}}"


def go_string_slice(value: object) -> str:
    if not isinstance(value, list):
        return "[]string(nil)"
    return "[]string{" + ", ".join(v.quote(str(x)) for x in value) + "}"


def go_label_selector(value: object) -> str:
    """A ``metav1.LabelSelector`` as ``%#v``: how k8s prints a bad or changed selector."""
    sel = value if isinstance(value, Mapping) else {}
    labels = go_string_map(sel.get("matchLabels"))
    expressions = sel.get("matchExpressions")
    if isinstance(expressions, list):
        shown = ", ".join(
            "v1.LabelSelectorRequirement{"
            f"Key:{v.quote(str(e.get('key', '')))}, "
            f"Operator:{v.quote(str(e.get('operator', '')))}, "
            f"Values:{go_string_slice(e.get('values'))}}}"
            for e in expressions
            if isinstance(e, Mapping)
        )
        exprs = f"[]v1.LabelSelectorRequirement{{{shown}}}"
    else:
        exprs = "[]v1.LabelSelectorRequirement(nil)"
    return f"v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{exprs}}}"


def go_int_or_string(value: object) -> str:
    """An ``intstr.IntOrString`` as ``%#v`` (its String method takes a pointer, so Go
    prints the struct)."""
    if isinstance(value, str):
        return f"intstr.IntOrString{{Type:1, IntVal:0, StrVal:{v.quote(value)}}}"
    number = value if is_int(value) else 0
    return f'intstr.IntOrString{{Type:0, IntVal:{number}, StrVal:""}}'


# --- metadata --------------------------------------------------------------------------


def name_rule(resource: Resource) -> v.NameValidator:
    """The kind's name rule: DNS label for namespaces, DNS-1035 label for services, DNS
    subdomain for everything else."""
    return _NAME_RULES.get((resource.group, resource.kind), v.name_is_dns_subdomain)


def validate_shape(obj: Obj) -> list[Cause]:
    """``spec`` and ``status``, when present, are objects: anything else could be stored
    but no typed client could read it back."""
    causes = []
    for field in ("spec", "status"):
        value = obj.get(field)
        if value is not None and not isinstance(value, dict):
            causes.append(v.type_invalid(field, value, detail="must be an object"))
    spec = obj.get("spec")
    if isinstance(spec, dict) and obj.get("kind") == "Namespace":
        finalizers = spec.get("finalizers")
        if finalizers is not None and not (
            isinstance(finalizers, list) and all(isinstance(f, str) for f in finalizers)
        ):
            causes.append(
                v.type_invalid("spec.finalizers", finalizers, detail="must be a list of strings")
            )
    return causes


def validate_metadata(resource: Resource, obj: Obj, old: Obj | None) -> list[Cause]:
    """k8s ``ValidateObjectMeta`` with the kind's name rule, plus core's check that a
    finalizer without a domain is a standard one (``metadata.finalizers[i]``)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return [v.required("metadata")]
    causes = v.object_meta(meta, namespaced=resource.namespaced, name_validator=name_rule(resource))
    causes += kube_finalizer_names(meta.get("finalizers"), "metadata.finalizers", indexed=True)
    return causes


def kube_finalizer_names(value: object, path: str, *, indexed: bool) -> list[Cause]:
    """k8s ``validateKubeFinalizerName``: ``name is neither a standard finalizer name nor
    is it fully qualified``."""
    causes: list[Cause] = []
    for i, name in enumerate(value if isinstance(value, list) else []):
        if isinstance(name, str) and "/" not in name and name not in STANDARD_FINALIZERS:
            detail = "name is neither a standard finalizer name nor is it fully qualified"
            causes.append(v.invalid_value(f"{path}[{i}]" if indexed else path, name, detail=detail))
    return causes
