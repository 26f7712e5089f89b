"""Object validation helpers that word their findings as the Kubernetes apiserver does.

``is_*`` predicates (k8s ``util/validation``) take a string and return its problems, as
Kubernetes words them. Field helpers (k8s ``api/validation``) take a value and its field
path and return ``list[Cause]`` for ``api.errors.invalid(kind, name, causes)``. Both return
an empty list for a valid value. The cause constructors (``required``, ``invalid_value``,
...) are k8s' ``field.Required``, ``field.Invalid``, ...: a cause's message is what
``ErrorBody()`` prints, e.g. ``Invalid value: "Web_1": a lowercase RFC 1123 subdomain ...``.

Values come from JSON, so a wrong type is reported (FieldValueTypeInvalid), never raised.
Field paths are Kubernetes', quirks included, because users and tests compare them: label
and annotation errors name the map (``metadata.labels``), and owner reference errors carry
no index (``metadata.ownerReferences.uid``).
"""

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from api.errors import Cause
from api.quantity import QuantityError, parse_quantity

REQUIRED: Final = "FieldValueRequired"
INVALID: Final = "FieldValueInvalid"
NOT_SUPPORTED: Final = "FieldValueNotSupported"
DUPLICATE: Final = "FieldValueDuplicate"
TOO_LONG: Final = "FieldValueTooLong"
FORBIDDEN: Final = "FieldValueForbidden"
TYPE_INVALID: Final = "FieldValueTypeInvalid"

TOTAL_ANNOTATION_SIZE_LIMIT: Final = 256 * 1024  # bytes of keys plus values, as k8s
NEGATIVE_MESSAGE: Final = "must be greater than or equal to 0"

#: A name rule: ``(name, prefix)`` -> problems. ``prefix`` is true for ``generateName``,
#: which may end in a dash because the server appends a random suffix.
NameValidator = Callable[[str, bool], list[str]]

# --- message formatting ---------------------------------------------------------------

_GO_ESCAPES: Final = {
    "\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t",
    "\v": r"\v", "\\": r"\\", '"': r"\"",
}  # fmt: skip


def quote(text: str) -> str:
    """``text`` as Go's ``%q`` (``strconv.Quote``) prints it: how k8s shows a bad value."""
    out = ['"']
    for ch in text:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def format_value(value: object) -> str:
    """A bad value as ``field.Error.ErrorBody`` prints it: strings quoted, the rest JSON."""
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))  # Go prints float64(3) as 3
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


# --- cause constructors (k8s field.Required, field.Invalid, ...) -----------------------


def required(field: str, detail: str = "") -> Cause:
    return Cause(field, REQUIRED, _body("Required value", detail))


def invalid_value(field: str, value: object, *, detail: str) -> Cause:
    return Cause(field, INVALID, _body(f"Invalid value: {format_value(value)}", detail))


def not_supported(field: str, value: object, *, supported: Sequence[str]) -> Cause:
    detail = "supported values: " + ", ".join(quote(s) for s in supported) if supported else ""
    return Cause(field, NOT_SUPPORTED, _body(f"Unsupported value: {format_value(value)}", detail))


def duplicate(field: str, value: object) -> Cause:
    return Cause(field, DUPLICATE, f"Duplicate value: {format_value(value)}")


def too_long(field: str, max_bytes: int) -> Cause:
    unit = "byte" if max_bytes == 1 else "bytes"
    return Cause(field, TOO_LONG, f"Too long: may not be more than {max_bytes} {unit}")


def forbidden(field: str, detail: str) -> Cause:
    return Cause(field, FORBIDDEN, _body("Forbidden", detail))


def type_invalid(field: str, value: object, *, detail: str) -> Cause:
    return Cause(field, TYPE_INVALID, _body(f"Invalid value: {format_value(value)}", detail))


def _body(head: str, detail: str) -> str:
    return f"{head}: {detail}" if detail else head


# --- string predicates (k8s util/validation) -------------------------------------------


def regex_error(message: str, fmt: str, *examples: str) -> str:
    """k8s ``RegexError``, double spaces before "or" included."""
    shown = "".join(f"{' or ' if i else ''}'{e}', " for i, e in enumerate(examples))
    prefix = f" (e.g. {shown}" if examples else " ("
    return f"{message}{prefix}regex used for validation is '{fmt}')"


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


@dataclass(frozen=True, slots=True)
class _Pattern:
    """A k8s validation regex, with the message and examples its ``RegexError`` shows."""

    fmt: str
    message: str
    examples: tuple[str, ...]

    def matches(self, value: str) -> bool:
        return re.fullmatch(self.fmt, value) is not None  # re caches the compiled pattern

    def error(self) -> str:
        return regex_error(self.message, self.fmt, *self.examples)


_QNAME = _Pattern(
    "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]",
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character",
    ("MyName", "my.name", "123-abc"),
)
_LABEL_VALUE = _Pattern(
    f"({_QNAME.fmt})?",
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character",
    ("MyValue", "my_value", "12345"),
)
_DNS1123_LABEL = _Pattern(
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?",
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character",
    ("my-name", "123-abc"),
)
_DNS1123_SUBDOMAIN = _Pattern(
    _DNS1123_LABEL.fmt + r"(\." + _DNS1123_LABEL.fmt + ")*",
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character",
    ("example.com",),
)
_DNS1035_LABEL = _Pattern(
    "[a-z]([-a-z0-9]*[a-z0-9])?",
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
    "start with an alphabetic character, and end with an alphanumeric character",
    ("my-name", "abc-123"),
)
_C_IDENTIFIER = _Pattern(
    "[A-Za-z_][A-Za-z0-9_]*",
    "a valid C identifier must start with alphabetic character or '_', "
    "followed by a string of alphanumeric characters or '_'",
    ("my_name", "MY_NAME", "MyName"),
)
_ENV_VAR = _Pattern(
    "[-._a-zA-Z][-._a-zA-Z0-9]*",
    "a valid environment variable name must consist of alphabetic characters, digits, "
    "'_', '-', or '.', and must not start with a digit",
    ("my.env-name", "MY_ENV.NAME", "MyEnvName1"),
)


def _byte_len(value: str) -> int:
    # Go's len() counts UTF-8 bytes; surrogatepass keeps lone surrogates from raising.
    return len(value.encode("utf-8", "surrogatepass"))


def _check(value: str, pattern: _Pattern, *, max_len: int | None = None) -> list[str]:
    errs = [max_len_error(max_len)] if max_len and _byte_len(value) > max_len else []
    return errs if pattern.matches(value) else [*errs, pattern.error()]


# The checks of names, keys and label values are remembered (a few thousand strings): the
# same few names and label keys come back in every object. Callers get their own list.
# Only strings of a plausible length are remembered: a client sending megabyte-long keys
# must not make the server keep thousands of them.
_MEMO_MAX_LEN: Final = 320  # a 253-character prefix, a slash and a 63-character name


class _Remembered:
    """A check of a string, remembered for the strings short enough to be real names."""

    def __init__(self, check: Callable[[str], tuple[str, ...]]) -> None:
        self._check = check
        self.memo = functools.lru_cache(maxsize=4096)(check)
        self.__doc__ = check.__doc__

    def __call__(self, value: str) -> list[str]:
        if len(value) <= _MEMO_MAX_LEN:
            return list(self.memo(value))
        return list(self._check(value))


def _dns1123_label(value: str) -> tuple[str, ...]:
    errs = _check(value, _DNS1123_LABEL, max_len=63)
    if _DNS1123_SUBDOMAIN.matches(value) and not _DNS1123_LABEL.matches(value):
        errs[-1] = "must not contain dots"  # a subdomain but not a label: it is the dots
    return tuple(errs)


is_dns1123_label = _Remembered(_dns1123_label)


def _dns1123_subdomain(value: str) -> tuple[str, ...]:
    return tuple(_check(value, _DNS1123_SUBDOMAIN, max_len=253))


is_dns1123_subdomain = _Remembered(_dns1123_subdomain)


def is_dns1035_label(value: str) -> list[str]:
    return _check(value, _DNS1035_LABEL, max_len=63)


def _qualified_name(value: str) -> tuple[str, ...]:
    """A label, annotation or finalizer key: ``[dns-subdomain/]name``, name at most 63."""
    parts = value.split("/")
    if len(parts) > 2:
        return (
            f"a qualified name {_QNAME.error()} with an optional DNS subdomain prefix "
            "and '/' (e.g. 'example.com/MyName')",
        )
    errs: list[str] = []
    if len(parts) == 2 and not parts[0]:
        errs.append("prefix part must be non-empty")
    elif len(parts) == 2:
        errs += ["prefix part " + m for m in is_dns1123_subdomain(parts[0])]
    name = parts[-1]
    if not name:
        errs.append("name part must be non-empty")
    return (*errs, *("name part " + m for m in _check(name, _QNAME, max_len=63)))


is_qualified_name = _Remembered(_qualified_name)


def _label_value(value: str) -> tuple[str, ...]:
    return tuple(_check(value, _LABEL_VALUE, max_len=63))


is_valid_label_value = _Remembered(_label_value)


def is_c_identifier(value: str) -> list[str]:
    return _check(value, _C_IDENTIFIER)


def is_env_var_name(value: str) -> list[str]:
    """k8s' strict ``IsEnvVarName`` (not the relaxed any-printable-but-'=' rule of 1.32+)."""
    errs = _check(value, _ENV_VAR)
    if value in (".", ".."):
        errs.append(f"must not be '{value}'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def _mask_trailing_dash(name: str) -> str:
    # k8s' maskTrailingDash, quirk kept: it drops two characters, not one, before the "a".
    return name[:-2] + "a" if len(name) > 1 and name.endswith("-") else name


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    """Most kinds' names (Pod, Node, Deployment, ConfigMap, ...)."""
    return is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool) -> list[str]:
    """Namespace names (and namespaces of namespaced objects)."""
    return is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool) -> list[str]:
    """Service names."""
    return is_dns1035_label(_mask_trailing_dash(name) if prefix else name)


# --- field helpers ---------------------------------------------------------------------


FieldCheck = Callable[[object, str], list[Cause]]


def _field_check(check: Callable[[str], list[str]]) -> FieldCheck:
    """A predicate as a field helper: each problem becomes an Invalid cause at ``field``."""

    def field_check(value: object, field: str) -> list[Cause]:
        if not isinstance(value, str):
            return [type_invalid(field, value, detail="must be a string")]
        return [invalid_value(field, value, detail=m) for m in check(value)]

    return field_check


dns1123_subdomain: Final = _field_check(is_dns1123_subdomain)
dns1123_label: Final = _field_check(is_dns1123_label)
c_identifier: Final = _field_check(is_c_identifier)
env_var_name: Final = _field_check(is_env_var_name)
qualified_name: Final = _field_check(is_qualified_name)  # finalizers, annotation keys
label_key: Final = qualified_name
label_value: Final = _field_check(is_valid_label_value)


def _string_map(value: object, field: str) -> tuple[dict[str, str], list[Cause]]:
    """``value`` as a str -> str mapping, and causes for anything that is not one."""
    if value is None:
        return {}, []
    if not isinstance(value, Mapping):
        return {}, [type_invalid(field, value, detail="must be an object")]
    good: dict[str, str] = {}
    causes: list[Cause] = []
    for k, v in value.items():
        if isinstance(k, str) and isinstance(v, str):
            good[k] = v
        else:
            causes.append(type_invalid(field, v, detail="keys and values must be strings"))
    return good, causes


def labels(mapping: object, field: str) -> list[Cause]:
    """A labels map: keys are qualified names, values label values (errors name the map)."""
    good, causes = _string_map(mapping, field)
    for k, v in good.items():
        causes += label_key(k, field) + label_value(v, field)
    return causes


def annotations(mapping: object, field: str) -> list[Cause]:
    """Keys are qualified names (case-insensitively); keys plus values total 256 KiB."""
    good, causes = _string_map(mapping, field)
    for k in good:
        causes += [invalid_value(field, k, detail=m) for m in is_qualified_name(k.lower())]
    if sum(_byte_len(k) + _byte_len(v) for k, v in good.items()) > TOTAL_ANNOTATION_SIZE_LIMIT:
        causes.append(too_long(field, TOTAL_ANNOTATION_SIZE_LIMIT))
    return causes


def finalizers(value: object, field: str) -> list[Cause]:
    if value is None:
        return []
    if not isinstance(value, list):
        return [type_invalid(field, value, detail="must be an array")]
    causes: list[Cause] = []
    for item in value:
        causes += qualified_name(item, field)
    if "orphan" in value and "foregroundDeletion" in value:
        detail = "finalizer orphan and foregroundDeletion cannot be both set"
        causes.append(invalid_value(field, value, detail=detail))
    return causes


def owner_references(value: object, field: str) -> list[Cause]:
    """apiVersion (with a version), kind, name and uid are required; one controller at most."""
    if value is None:
        return []
    if not isinstance(value, list):
        return [type_invalid(field, value, detail="must be an array")]
    causes: list[Cause] = []
    controller = ""
    for ref in value:
        if not isinstance(ref, Mapping):
            causes.append(type_invalid(field, ref, detail="must be an object"))
            continue
        causes += _owner_reference(ref, field)
        if ref.get("controller") is True:
            current = f"{ref.get('kind', '')}/{ref.get('name', '')}"
            if controller:
                detail = (
                    'Only one reference can have Controller set to true. Found "true" in '
                    f"references for {controller} and {current}"
                )
                causes.append(invalid_value(field, value, detail=detail))
            else:
                controller = current
    return causes


def _owner_reference(ref: Mapping[str, object], field: str) -> list[Cause]:
    causes: list[Cause] = []
    api_version, kind = ref.get("apiVersion", ""), ref.get("kind", "")
    group, version = _group_version(api_version)
    if not version:
        detail = "version must not be empty"
        causes.append(invalid_value(f"{field}.apiVersion", api_version, detail=detail))
    for key in ("kind", "name", "uid"):
        if not ref.get(key):
            causes.append(
                invalid_value(f"{field}.{key}", ref.get(key, ""), detail="must not be empty")
            )
    if (group, version, kind) == ("", "v1", "Event"):
        detail = "/v1, Kind=Event is disallowed from being an owner"
        causes.append(invalid_value(field, dict(ref), detail=detail))
    return causes


def _group_version(api_version: object) -> tuple[str, str]:
    """k8s ``schema.ParseGroupVersion``; anything unparsable has no version."""
    if not isinstance(api_version, str) or api_version.count("/") > 1:
        return "", ""
    group, _, version = api_version.rpartition("/")
    return group, version


def port_number(value: object, field: str) -> list[Cause]:
    if not isinstance(value, int) or isinstance(value, bool):
        return [type_invalid(field, value, detail="must be an integer")]
    if 1 <= value <= 65535:
        return []
    return [invalid_value(field, value, detail="must be between 1 and 65535, inclusive")]


def non_negative(value: object, field: str) -> list[Cause]:
    if not isinstance(value, int) or isinstance(value, bool):
        return [type_invalid(field, value, detail="must be an integer")]
    return [invalid_value(field, value, detail=NEGATIVE_MESSAGE)] if value < 0 else []


def quantity(value: object, field: str, *, allow_negative: bool = False) -> list[Cause]:
    """A resource quantity: a string ("500m") or a JSON number, as k8s decodes one."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return [type_invalid(field, value, detail="must be a string or a number")]
    try:
        # Quantity.UnmarshalJSON trims whitespace and takes a number's JSON text.
        parsed = parse_quantity(value.strip() if isinstance(value, str) else repr(value))
    except QuantityError as e:
        return [invalid_value(field, value, detail=str(e))]
    if parsed.nanos < 0 and not allow_negative:
        return [invalid_value(field, str(parsed), detail=NEGATIVE_MESSAGE)]
    return []


def object_meta(
    meta: object,
    *,
    namespaced: bool,
    name_validator: NameValidator = name_is_dns_subdomain,
    field: str = "metadata",
) -> list[Cause]:
    """k8s ``ValidateObjectMeta`` for a create or update.

    A name is required unless ``generateName`` is set, so this accepts an object both
    before and after the server has generated its name (Kubernetes generates it first).
    """
    if meta is None:
        meta = {}
    if not isinstance(meta, Mapping):
        return [type_invalid(field, meta, detail="must be an object")]
    causes: list[Cause] = []
    name, generate_name = meta.get("name") or "", meta.get("generateName") or ""
    if generate_name:
        causes += _name_causes(
            generate_name, f"{field}.generateName", rule=name_validator, prefix=True
        )
    if name:
        causes += _name_causes(name, f"{field}.name", rule=name_validator, prefix=False)
    elif not generate_name:
        causes.append(required(f"{field}.name", "name or generateName is required"))
    namespace = meta.get("namespace") or ""
    if namespaced and not namespace:
        causes.append(required(f"{field}.namespace"))
    elif namespaced:
        causes += _name_causes(
            namespace, f"{field}.namespace", rule=name_is_dns_label, prefix=False
        )
    elif namespace:
        causes.append(forbidden(f"{field}.namespace", "not allowed on this type"))
    if meta.get("generation") is not None:
        causes += non_negative(meta["generation"], f"{field}.generation")
    causes += labels(meta.get("labels"), f"{field}.labels")
    causes += annotations(meta.get("annotations"), f"{field}.annotations")
    causes += owner_references(meta.get("ownerReferences"), f"{field}.ownerReferences")
    causes += finalizers(meta.get("finalizers"), f"{field}.finalizers")
    return causes


def _name_causes(value: object, field: str, *, rule: NameValidator, prefix: bool) -> list[Cause]:
    if not isinstance(value, str):
        return [type_invalid(field, value, detail="must be a string")]
    return [invalid_value(field, value, detail=m) for m in rule(value, prefix)]


_SELECTOR_OPERATORS: Final = ("In", "NotIn", "Exists", "DoesNotExist")


def label_selector(value: object, field: str) -> list[Cause]:
    """A structured selector (``matchLabels`` + ``matchExpressions``), as k8s
    ``ValidateLabelSelector``. ``None`` is valid here: whether a kind requires a selector
    (Deployment and ReplicaSet do, and reject an empty one) is the kind's rule."""
    if value is None:
        return []
    if not isinstance(value, Mapping):
        return [type_invalid(field, value, detail="must be an object")]
    causes = labels(value.get("matchLabels"), f"{field}.matchLabels")
    expressions = value.get("matchExpressions")
    expressions = [] if expressions is None else expressions
    if not isinstance(expressions, list):
        path = f"{field}.matchExpressions"
        return [*causes, type_invalid(path, expressions, detail="must be an array")]
    for i, expr in enumerate(expressions):
        causes += _selector_requirement(expr, f"{field}.matchExpressions[{i}]")
    return causes


def _selector_requirement(expr: object, path: str) -> list[Cause]:
    if not isinstance(expr, Mapping):
        return [type_invalid(path, expr, detail="must be an object")]
    operator, values = expr.get("operator", ""), expr.get("values")
    values = [] if values is None else values
    if not isinstance(values, list):
        return [type_invalid(f"{path}.values", values, detail="must be an array")]
    causes: list[Cause] = []
    if operator in ("In", "NotIn") and not values:
        detail = "must be specified when `operator` is 'In' or 'NotIn'"
        causes.append(required(f"{path}.values", detail))
    elif operator in ("Exists", "DoesNotExist") and values:
        detail = "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
        causes.append(forbidden(f"{path}.values", detail))
    elif operator not in _SELECTOR_OPERATORS:
        detail = "not a valid selector operator"
        causes.append(invalid_value(f"{path}.operator", operator, detail=detail))
    causes += label_key(expr.get("key", ""), f"{path}.key")
    for i, v in enumerate(values):
        causes += label_value(v, f"{path}.values[{i}]")
    return causes
