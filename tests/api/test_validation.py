"""Validation helpers return the causes, field paths and messages Kubernetes returns.

Expected messages are copied from Kubernetes (apimachinery util/validation, api/validation
and field/errors.go), double spaces before "or" included.
"""

from __future__ import annotations

from typing import Any

import pytest

from api import validation as v
from api.errors import Cause, invalid
from api.quantity import FORMAT_WRONG

SUBDOMAIN_RULE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
    r"used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
DNS_LABEL_RULE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_RULE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
QNAME_RULE = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
C_IDENTIFIER_RULE = (
    "a valid C identifier must start with alphabetic character or '_', followed by a string of "
    "alphanumeric characters or '_' (e.g. 'my_name',  or 'MY_NAME',  or 'MyName', regex used "
    "for validation is '[A-Za-z_][A-Za-z0-9_]*')"
)
ENV_RULE = (
    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', "
    "or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or "
    "'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"
)
QUALIFIED_RULE = (
    f"a qualified name {QNAME_RULE} with an optional DNS subdomain prefix and '/' "
    "(e.g. 'example.com/MyName')"
)
INT = "FieldValueInvalid"
F = "f"  # the field path in the simple tables


def bad(value: str, *messages: str, field: str = F) -> list[Cause]:
    """One Invalid cause per message, as Kubernetes reports a string's problems."""
    return [Cause(field, INT, f'Invalid value: "{value}": {m}') for m in messages]


def wrong_type(shown: str, detail: str, field: str = F) -> list[Cause]:
    return [Cause(field, "FieldValueTypeInvalid", f"Invalid value: {shown}: {detail}")]


@pytest.mark.parametrize(
    ("check", "value", "causes"),
    [
        pytest.param(v.dns1123_subdomain, "web-1.example.com", [], id="subdomain"),
        pytest.param(v.dns1123_subdomain, "Web_1", bad("Web_1", SUBDOMAIN_RULE),
                     id="subdomain-uppercase"),
        pytest.param(v.dns1123_subdomain, "", bad("", SUBDOMAIN_RULE), id="subdomain-empty"),
        pytest.param(v.dns1123_subdomain, "a" * 254,
                     bad("a" * 254, "must be no more than 253 characters"),
                     id="subdomain-too-long"),
        pytest.param(v.dns1123_label, "web-1", [], id="label"),
        pytest.param(v.dns1123_label, "-web", bad("-web", DNS_LABEL_RULE), id="label-dash"),
        pytest.param(v.dns1123_label, "a.b", bad("a.b", "must not contain dots"),
                     id="label-dots"),
        pytest.param(v.dns1123_label, "a" * 64,
                     bad("a" * 64, "must be no more than 63 characters"), id="label-too-long"),
        pytest.param(v.dns1123_label, "a." * 32 + "a",
                     bad("a." * 32 + "a", "must be no more than 63 characters",
                         "must not contain dots"), id="label-long-with-dots"),
        pytest.param(v.dns1123_label, "é", bad("é", DNS_LABEL_RULE), id="label-non-ascii"),
        pytest.param(v.c_identifier, "_ok1", [], id="c-identifier"),
        pytest.param(v.c_identifier, "1abc", bad("1abc", C_IDENTIFIER_RULE),
                     id="c-identifier-digit-first"),
        pytest.param(v.c_identifier, "a-b", bad("a-b", C_IDENTIFIER_RULE),
                     id="c-identifier-dash"),
        pytest.param(v.env_var_name, "MY.ENV-name_1", [], id="env"),
        pytest.param(v.env_var_name, "1X", bad("1X", ENV_RULE), id="env-digit-first"),
        pytest.param(v.env_var_name, "A=B", bad("A=B", ENV_RULE), id="env-equals"),
        pytest.param(v.env_var_name, ".", bad(".", "must not be '.'"), id="env-dot"),
        pytest.param(v.env_var_name, "..", bad("..", "must not be '..'"), id="env-dot-dot"),
        pytest.param(v.env_var_name, "..a", bad("..a", "must not start with '..'"),
                     id="env-dot-dot-prefix"),
        pytest.param(v.label_key, "app.kubernetes.io/name", [], id="key-prefixed"),
        pytest.param(v.label_key, "My_Key.1", [], id="key-mixed-case"),
        pytest.param(v.label_key, "a/b/c", bad("a/b/c", QUALIFIED_RULE), id="key-two-slashes"),
        pytest.param(v.label_key, "/name", bad("/name", "prefix part must be non-empty"),
                     id="key-empty-prefix"),
        pytest.param(v.label_key, "Example.com/x", bad("Example.com/x",
                     f"prefix part {SUBDOMAIN_RULE}"), id="key-uppercase-prefix"),
        pytest.param(v.label_key, "a/", bad("a/", "name part must be non-empty",
                     f"name part {QNAME_RULE}"), id="key-empty-name"),
        pytest.param(v.label_key, "", bad("", "name part must be non-empty",
                     f"name part {QNAME_RULE}"), id="key-empty"),
        pytest.param(v.label_key, "x" * 64, bad("x" * 64,
                     "name part must be no more than 63 characters"), id="key-too-long"),
        pytest.param(v.label_key, "app_", bad("app_", f"name part {QNAME_RULE}"),
                     id="key-trailing-underscore"),
        pytest.param(v.label_value, "", [], id="value-empty"),
        pytest.param(v.label_value, "v1.2_x-y", [], id="value"),
        pytest.param(v.label_value, "web app", bad("web app", LABEL_VALUE_RULE),
                     id="value-space"),
        pytest.param(v.label_value, "a" * 64,
                     bad("a" * 64, "must be no more than 63 characters"), id="value-too-long"),
        pytest.param(v.label_value, "é" * 32, bad("é" * 32, "must be no more than 63 characters",
                     LABEL_VALUE_RULE), id="value-length-counts-bytes"),
        pytest.param(v.label_key, 5, wrong_type("5", "must be a string"), id="key-not-a-string"),
        pytest.param(v.label_value, None, wrong_type("null", "must be a string"),
                     id="value-not-a-string"),
    ],
)  # fmt: skip
def test_string_checks(check: v.FieldCheck, value: object, causes: list[Cause]) -> None:
    assert check(value, F) == causes


@pytest.mark.parametrize(
    ("cause", "reason", "message"),
    [
        pytest.param(v.required(F), "FieldValueRequired", "Required value", id="required"),
        pytest.param(v.required(F, "name or generateName is required"), "FieldValueRequired",
                     "Required value: name or generateName is required", id="required-detail"),
        pytest.param(v.invalid_value(F, -1, detail="must be greater than or equal to 0"), INT,
                     "Invalid value: -1: must be greater than or equal to 0", id="invalid-int"),
        pytest.param(v.invalid_value(F, 'say "hi"\n', detail="x"), INT,
                     r'Invalid value: "say \"hi\"\n": x', id="invalid-quoted-as-go"),
        pytest.param(v.invalid_value(F, ["b", "a"], detail="x"), INT,
                     'Invalid value: ["b","a"]: x', id="invalid-list-as-json"),
        pytest.param(v.invalid_value(F, {"b": 1, "a": True}, detail="x"), INT,
                     'Invalid value: {"a":true,"b":1}: x', id="invalid-map-sorted-json"),
        pytest.param(v.invalid_value(F, 3.0, detail="x"), INT, "Invalid value: 3: x",
                     id="invalid-whole-float"),
        pytest.param(v.invalid_value(F, 0.5, detail="x"), INT, "Invalid value: 0.5: x",
                     id="invalid-float"),
        pytest.param(v.not_supported(F, "Sometimes", supported=["Always", "Never"]),
                     "FieldValueNotSupported",
                     'Unsupported value: "Sometimes": supported values: "Always", "Never"',
                     id="not-supported"),
        pytest.param(v.not_supported(F, "x", supported=[]), "FieldValueNotSupported",
                     'Unsupported value: "x"', id="not-supported-no-list"),
        pytest.param(v.duplicate(F, "web"), "FieldValueDuplicate", 'Duplicate value: "web"',
                     id="duplicate"),
        pytest.param(v.too_long(F, 262144), "FieldValueTooLong",
                     "Too long: may not be more than 262144 bytes", id="too-long"),
        pytest.param(v.too_long(F, 1), "FieldValueTooLong",
                     "Too long: may not be more than 1 byte", id="too-long-one"),
        pytest.param(v.forbidden(F, "not allowed on this type"), "FieldValueForbidden",
                     "Forbidden: not allowed on this type", id="forbidden"),
        pytest.param(v.type_invalid(F, True, detail="must be a string"),
                     "FieldValueTypeInvalid", "Invalid value: true: must be a string",
                     id="type-invalid"),
    ],
)  # fmt: skip
def test_cause_constructors(cause: Cause, reason: str, message: str) -> None:
    assert cause == Cause(F, reason, message)


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        pytest.param("plain", '"plain"', id="plain"),
        pytest.param('a"b\\c', r'"a\"b\\c"', id="quote-and-backslash"),
        pytest.param("\a\b\f\n\r\t\v", r'"\a\b\f\n\r\t\v"', id="c-escapes"),
        pytest.param("\x00\x1b\x7f", r'"\x00\x1b\x7f"', id="control-bytes"),
        pytest.param("héllo ✓", '"héllo ✓"', id="printable-unicode-kept"),
        pytest.param("\u200b", r'"\u200b"', id="format-char-escaped"),
        pytest.param("\U000e0001", r'"\U000e0001"', id="astral-non-printable"),
    ],
)
def test_quote_is_gos_percent_q(text: str, quoted: str) -> None:
    assert v.quote(text) == quoted


def test_regex_error_without_examples() -> None:
    assert v.regex_error("bad", "[a-z]+") == "bad (regex used for validation is '[a-z]+')"


@pytest.mark.parametrize(
    ("check", "value", "causes"),
    [
        pytest.param(v.labels, None, [], id="labels-absent"),
        pytest.param(v.labels, {"app": "web", "example.com/tier": ""}, [], id="labels"),
        pytest.param(v.labels, {"app_": "web"}, bad("app_", f"name part {QNAME_RULE}"),
                     id="labels-bad-key"),
        pytest.param(v.labels, {"app": "web app"}, bad("web app", LABEL_VALUE_RULE),
                     id="labels-bad-value"),
        pytest.param(v.labels, ["app"], wrong_type('["app"]', "must be an object"),
                     id="labels-not-a-map"),
        pytest.param(v.labels, {"app": 5},
                     wrong_type("5", "keys and values must be strings"),
                     id="labels-non-string-value"),
        pytest.param(v.annotations, {"Example.COM/Key": "any text at all"}, [],
                     id="annotations-case-insensitive"),
        pytest.param(v.annotations, {"a b": "x"}, bad("a b", f"name part {QNAME_RULE}"),
                     id="annotations-bad-key"),
        pytest.param(v.annotations, {"k": "x" * (256 * 1024 - 1)}, [], id="annotations-at-limit"),
        pytest.param(v.annotations, {"k": "x" * (256 * 1024)},
                     [Cause(F, "FieldValueTooLong", "Too long: may not be more than 262144 bytes")],
                     id="annotations-over-limit"),
        pytest.param(v.finalizers, ["kubernetes.io/pv-protection", "foregroundDeletion"], [],
                     id="finalizers"),
        pytest.param(v.finalizers, ["no spaces"], bad("no spaces", f"name part {QNAME_RULE}"),
                     id="finalizers-bad-name"),
        pytest.param(v.finalizers, ["orphan", "foregroundDeletion"],
                     [Cause(F, INT, 'Invalid value: ["orphan","foregroundDeletion"]: finalizer '
                            "orphan and foregroundDeletion cannot be both set")],
                     id="finalizers-orphan-and-foreground"),
        pytest.param(v.finalizers, "orphan", wrong_type('"orphan"', "must be an array"),
                     id="finalizers-not-a-list"),
        pytest.param(v.port_number, 80, [], id="port"),
        pytest.param(v.port_number, 65535, [], id="port-max"),
        pytest.param(v.port_number, 0, [Cause(F, INT, "Invalid value: 0: must be between 1 and "
                     "65535, inclusive")], id="port-zero"),
        pytest.param(v.port_number, 65536, [Cause(F, INT, "Invalid value: 65536: must be between "
                     "1 and 65535, inclusive")], id="port-too-big"),
        pytest.param(v.port_number, "80", wrong_type('"80"', "must be an integer"),
                     id="port-string"),
        pytest.param(v.port_number, True, wrong_type("true", "must be an integer"),
                     id="port-bool"),
        pytest.param(v.non_negative, 0, [], id="non-negative-zero"),
        pytest.param(v.non_negative, -1, [Cause(F, INT, "Invalid value: -1: must be greater "
                     "than or equal to 0")], id="negative"),
        pytest.param(v.non_negative, 1.5, wrong_type("1.5", "must be an integer"),
                     id="non-negative-float"),
        pytest.param(v.quantity, "500m", [], id="quantity"),
        pytest.param(v.quantity, " 1Gi ", [], id="quantity-trimmed-like-json"),
        pytest.param(v.quantity, 2, [], id="quantity-json-int"),
        pytest.param(v.quantity, 0.5, [], id="quantity-json-float"),
        pytest.param(v.quantity, "abc", bad("abc", FORMAT_WRONG), id="quantity-bad"),
        pytest.param(v.quantity, "-1", [Cause(F, INT, 'Invalid value: "-1": must be greater '
                     "than or equal to 0")], id="quantity-negative"),
        pytest.param(v.quantity, "-0.5", [Cause(F, INT, 'Invalid value: "-500m": must be '
                     "greater than or equal to 0")], id="quantity-negative-canonical"),
        pytest.param(v.quantity, False, wrong_type("false", "must be a string or a number"),
                     id="quantity-bool"),
    ],
)  # fmt: skip
def test_field_checks(check: v.FieldCheck, value: object, causes: list[Cause]) -> None:
    assert check(value, F) == causes


def test_quantity_may_allow_negative_values() -> None:
    assert v.quantity("-1", F, allow_negative=True) == []


REF = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "u-1"}
REFS = "metadata.ownerReferences"


@pytest.mark.parametrize(
    ("value", "causes"),
    [
        pytest.param(None, [], id="absent"),
        pytest.param([REF, {**REF, "apiVersion": "v1", "kind": "Node"}], [], id="valid"),
        pytest.param([{}], [
            Cause(f"{REFS}.apiVersion", INT, 'Invalid value: "": version must not be empty'),
            Cause(f"{REFS}.kind", INT, 'Invalid value: "": must not be empty'),
            Cause(f"{REFS}.name", INT, 'Invalid value: "": must not be empty'),
            Cause(f"{REFS}.uid", INT, 'Invalid value: "": must not be empty'),
        ], id="everything-missing-paths-without-index"),
        pytest.param([{**REF, "apiVersion": "apps/"}], [
            Cause(f"{REFS}.apiVersion", INT, 'Invalid value: "apps/": version must not be empty'),
        ], id="group-without-version"),
        pytest.param([{**REF, "apiVersion": "a/b/c"}], [
            Cause(f"{REFS}.apiVersion", INT, 'Invalid value: "a/b/c": version must not be empty'),
        ], id="unparsable-api-version"),
        pytest.param([{"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "u"}], [
            Cause(REFS, INT, 'Invalid value: {"apiVersion":"v1","kind":"Event","name":"e",'
                  '"uid":"u"}: /v1, Kind=Event is disallowed from being an owner'),
        ], id="event-cannot-own"),
        pytest.param([{**REF, "controller": True}, {**REF, "name": "web-2", "controller": True}], [
            Cause(REFS, INT, "Invalid value: " + '[{"apiVersion":"apps/v1","controller":true,'
                  '"kind":"ReplicaSet","name":"web-1","uid":"u-1"},{"apiVersion":"apps/v1",'
                  '"controller":true,"kind":"ReplicaSet","name":"web-2","uid":"u-1"}]: Only one '
                  'reference can have Controller set to true. Found "true" in references for '
                  "ReplicaSet/web-1 and ReplicaSet/web-2"),
        ], id="two-controllers"),
        pytest.param(["x"], wrong_type('"x"', "must be an object", field=REFS), id="not-an-object"),
        pytest.param({}, wrong_type("{}", "must be an array", field=REFS), id="not-a-list"),
    ],
)  # fmt: skip
def test_owner_references(value: object, causes: list[Cause]) -> None:
    assert v.owner_references(value, REFS) == causes


def named(field: str, value: str, *messages: str) -> list[Cause]:
    return bad(value, *messages, field=field)


@pytest.mark.parametrize(
    ("meta", "namespaced", "rule", "causes"),
    [
        pytest.param({"name": "web", "namespace": "default"}, True, None, [], id="namespaced"),
        pytest.param({"name": "node-1"}, False, None, [], id="cluster-scoped"),
        pytest.param({"generateName": "web-", "namespace": "default"}, True, None, [],
                     id="generate-name-trailing-dash"),
        pytest.param({}, True, None, [
            Cause("metadata.name", "FieldValueRequired",
                  "Required value: name or generateName is required"),
            Cause("metadata.namespace", "FieldValueRequired", "Required value"),
        ], id="nothing"),
        pytest.param(None, False, None, [
            Cause("metadata.name", "FieldValueRequired",
                  "Required value: name or generateName is required"),
        ], id="no-metadata"),
        pytest.param({"name": "Web_1", "namespace": "default"}, True, None,
                     named("metadata.name", "Web_1", SUBDOMAIN_RULE), id="bad-name"),
        pytest.param({"generateName": "Web-", "namespace": "d"}, True, None,
                     named("metadata.generateName", "Web-", SUBDOMAIN_RULE),
                     id="bad-generate-name"),
        pytest.param({"name": "n", "namespace": "default"}, False, None, [
            Cause("metadata.namespace", "FieldValueForbidden",
                  "Forbidden: not allowed on this type"),
        ], id="namespace-on-cluster-scoped"),
        pytest.param({"name": "web", "namespace": "Bad_NS"}, True, None,
                     named("metadata.namespace", "Bad_NS", DNS_LABEL_RULE), id="bad-namespace"),
        pytest.param({"name": "a.b"}, False, v.name_is_dns_label,
                     named("metadata.name", "a.b", "must not contain dots"), id="namespace-name"),
        pytest.param({"name": "1web", "namespace": "d"}, True, v.name_is_dns1035_label,
                     named("metadata.name", "1web", DNS1035_RULE), id="service-name"),
        pytest.param({"name": 7}, False, None,
                     wrong_type("7", "must be a string", field="metadata.name"),
                     id="name-not-a-string"),
        pytest.param({"name": "web", "generation": -1}, False, None, [
            Cause("metadata.generation", INT,
                  "Invalid value: -1: must be greater than or equal to 0"),
        ], id="negative-generation"),
        pytest.param({
            "name": "web", "namespace": "d", "labels": {"a": "b c"}, "annotations": {"/x": ""},
            "ownerReferences": [{**REF, "uid": ""}], "finalizers": ["a b"],
        }, True, None, [
            *named("metadata.labels", "b c", LABEL_VALUE_RULE),
            *named("metadata.annotations", "/x", "prefix part must be non-empty"),
            Cause("metadata.ownerReferences.uid", INT, 'Invalid value: "": must not be empty'),
            *named("metadata.finalizers", "a b", f"name part {QNAME_RULE}"),
        ], id="nested-fields-in-order"),
        pytest.param("web", True, None, wrong_type('"web"', "must be an object", field="metadata"),
                     id="not-an-object"),
    ],
)  # fmt: skip
def test_object_meta(
    meta: object, namespaced: bool, rule: v.NameValidator | None, causes: list[Cause]
) -> None:
    kwargs: dict[str, Any] = {"name_validator": rule} if rule else {}
    assert v.object_meta(meta, namespaced=namespaced, **kwargs) == causes


def test_object_meta_causes_make_kubectls_message() -> None:
    causes = v.object_meta({"name": "Web_1", "namespace": "default"}, namespaced=True)
    error = invalid("Pod", "Web_1", causes)
    assert error.message == (
        f'Pod "Web_1" is invalid: metadata.name: Invalid value: "Web_1": {SUBDOMAIN_RULE}'
    )
    assert error.status()["details"]["causes"][0]["reason"] == "FieldValueInvalid"


SEL = "spec.selector"
EXPR = f"{SEL}.matchExpressions[0]"


@pytest.mark.parametrize(
    ("value", "causes"),
    [
        pytest.param(None, [], id="nil-is-structurally-valid"),
        pytest.param({}, [], id="empty"),
        pytest.param({"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "gone", "operator": "DoesNotExist"},
        ]}, [], id="valid"),
        pytest.param({"matchLabels": {"app": "-web"}},
                     named(f"{SEL}.matchLabels", "-web", LABEL_VALUE_RULE), id="bad-match-label"),
        pytest.param({"matchExpressions": [{"key": "a", "operator": "In"}]}, [
            Cause(f"{EXPR}.values", "FieldValueRequired", "Required value: must be specified "
                  "when `operator` is 'In' or 'NotIn'"),
        ], id="in-without-values"),
        pytest.param({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}, [
            Cause(f"{EXPR}.values", "FieldValueForbidden", "Forbidden: may not be specified when "
                  "`operator` is 'Exists' or 'DoesNotExist'"),
        ], id="exists-with-values"),
        pytest.param({"matchExpressions": [{"key": "a_", "operator": "Gt", "values": ["x y"]}]}, [
            Cause(f"{EXPR}.operator", INT, 'Invalid value: "Gt": not a valid selector operator'),
            *named(f"{EXPR}.key", "a_", f"name part {QNAME_RULE}"),
            *named(f"{EXPR}.values[0]", "x y", LABEL_VALUE_RULE),
        ], id="bad-operator-key-and-value"),
        pytest.param({"matchExpressions": {}},
                     wrong_type("{}", "must be an array", field=f"{SEL}.matchExpressions"),
                     id="expressions-not-a-list"),
        pytest.param({"matchExpressions": ["x"]},
                     wrong_type('"x"', "must be an object", field=EXPR),
                     id="expression-not-an-object"),
        pytest.param("app=web", wrong_type('"app=web"', "must be an object", field=SEL),
                     id="string-selector"),
    ],
)  # fmt: skip
def test_label_selector(value: object, causes: list[Cause]) -> None:
    assert v.label_selector(value, SEL) == causes


def test_only_strings_as_short_as_real_names_are_remembered() -> None:
    # The checks are memoised; a client sending huge keys must not fill the memory.
    memo = v.is_qualified_name.memo
    memo.cache_clear()
    assert v.is_qualified_name("example.com/app") == []
    assert v.is_qualified_name("example.com/app") == []
    huge = "k" * 100_000
    assert v.is_qualified_name(huge) == ["name part must be no more than 63 characters"]
    assert v.is_qualified_name(huge + "x")  # another one, still refused
    info = memo.cache_info()
    assert (info.hits, info.currsize) == (1, 1)  # only the real name is kept
    result = v.is_qualified_name("example.com/app")
    result.append("a caller's own change")
    assert v.is_qualified_name("example.com/app") == []
