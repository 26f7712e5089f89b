"""Label and field selectors parse, print, match and fail as the Kubernetes apiserver does.

The expected error strings are Kubernetes' own (apimachinery labels/selector.go and
fields/selector.go), so kubectl shows the same message against bramble.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.errors import BadRequest, Invalid
from api.selectors import FieldRequirement, FieldSelector, LabelSelector, Operator, Requirement

QNAME_RULE = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
OPERATORS = "in, notin, =, ==, !=, gt, lt"

# --- label selectors: parse and print ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        pytest.param("", "", id="empty"),
        pytest.param("   ", "", id="only-blanks"),
        pytest.param("a=b", "a=b", id="equals"),
        pytest.param("a==b", "a==b", id="double-equals-kept"),
        pytest.param("a!=b", "a!=b", id="not-equals"),
        pytest.param("a=", "a=", id="equals-empty-value"),
        pytest.param("a=,b", "a=,b", id="empty-value-then-comma"),
        pytest.param("x", "x", id="exists"),
        pytest.param("!x", "!x", id="does-not-exist"),
        pytest.param("x in (b,a)", "x in (a,b)", id="in-values-sorted"),
        pytest.param("x notin (a,a)", "x notin (a)", id="notin-values-deduplicated"),
        pytest.param("x in ()", "x in ()", id="in-empty-parens-is-empty-string"),
        pytest.param("x in (,a)", "x in (,a)", id="in-leading-empty"),
        pytest.param("x in (a,)", "x in (,a)", id="in-trailing-empty"),
        pytest.param("x in (a,,b)", "x in (,a,b)", id="in-double-comma"),
        pytest.param("x>5", "x>5", id="greater-than"),
        pytest.param("x<007", "x<007", id="less-than-keeps-text"),
        pytest.param("b=1,a=2,a!=3", "a=2,a!=3,b=1", id="sorted-by-key-stably"),
        pytest.param(" a = b ,\tc\n", "a=b,c", id="blanks-between-tokens"),
        pytest.param("in in (in,notin)", "in in (in,notin)", id="keywords-as-key-and-values"),
        pytest.param("example.com/app=web", "example.com/app=web", id="prefixed-key"),
        pytest.param("a=b,\x00c", "a=b,c", id="nul-ends-a-token-as-in-go"),
    ],
)
def test_label_selector_parses_to_canonical_string(text: str, canonical: str) -> None:
    assert str(LabelSelector.parse(text)) == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("a b", f"unable to parse requirement: found 'b', expected: {OPERATORS}",
                     id="missing-operator"),
        pytest.param("a!b", f"unable to parse requirement: found '!', expected: {OPERATORS}",
                     id="bang-is-not-binary"),
        pytest.param("a=b c", "found 'c', expected: ',' or 'end of string'", id="two-values"),
        pytest.param("!a=b", "found '=', expected: ',' or 'end of string'", id="not-with-value"),
        pytest.param("a,", "found '', expected: identifier after ','", id="trailing-comma"),
        pytest.param("a=b,,c", "found ',', expected: identifier after ','", id="double-comma"),
        pytest.param(",a", "found ',', expected: !, identifier, or 'end of string'",
                     id="leading-comma"),
        pytest.param("=a", "found '=', expected: !, identifier, or 'end of string'",
                     id="no-key"),
        pytest.param("!", "unable to parse requirement: found '', expected: identifier",
                     id="bang-alone"),
        pytest.param("a=(b", "unable to parse requirement: found '(', expected: identifier",
                     id="paren-as-value"),
        pytest.param("x in a", "unable to parse requirement: found 'a' expected: '('",
                     id="in-without-parens"),
        pytest.param("x in (a", "unable to parse requirement: found '', expected: ',' or ')'",
                     id="unclosed-set"),
        pytest.param("x in (a,",
                     "unable to parse requirement: found '', expected: ',', or identifier",
                     id="unclosed-set-after-comma"),
        pytest.param("x in (a b)",
                     "unable to parse requirement: found 'b', expected: ',' or ')'",
                     id="set-missing-comma"),
        pytest.param("x in =",
                     "unable to parse requirement: found '=' expected: '('", id="in-then-equals"),
        pytest.param("app:web", f'unable to parse requirement: <nil>: Invalid value: "app:web": '
                     f"name part {QNAME_RULE}", id="colon-instead-of-equals"),
        pytest.param("Foo_=bar", f'unable to parse requirement: <nil>: Invalid value: "Foo_": '
                     f"name part {QNAME_RULE}", id="bad-key"),
        pytest.param("a=b_", f'unable to parse requirement: values[0][a]: Invalid value: "b_": '
                     f"{LABEL_VALUE_RULE}", id="bad-value"),
        pytest.param("x in (_a,_b)",
                     f'unable to parse requirement: [values[0][x]: Invalid value: "_a": '
                     f'{LABEL_VALUE_RULE}, values[1][x]: Invalid value: "_b": {LABEL_VALUE_RULE}]',
                     id="bad-values-aggregated"),
        pytest.param("x>a", "unable to parse requirement: values[0]: Invalid value: \"a\": "
                     "for 'Gt', 'Lt' operators, the value must be an integer", id="gt-not-int"),
        pytest.param("x<", "unable to parse requirement: values[0]: Invalid value: \"\": "
                     "for 'Gt', 'Lt' operators, the value must be an integer", id="lt-no-value"),
    ],
)  # fmt: skip
def test_label_selector_rejects_bad_syntax_with_the_apiservers_message(
    text: str, message: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        LabelSelector.parse(text)
    assert caught.value.message == message
    assert caught.value.status()["code"] == 400


def test_label_selector_rejects_a_key_with_two_slashes() -> None:
    with pytest.raises(BadRequest, match=r'<nil>: Invalid value: "a/b/c": a qualified name '):
        LabelSelector.parse("a/b/c=d")


# --- label selectors: matching -----------------------------------------------------------

WEB = {"app": "web", "tier": "frontend", "replicas": "3"}


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        pytest.param("", {}, True, id="empty-matches-no-labels"),
        pytest.param("", WEB, True, id="empty-matches-anything"),
        pytest.param("app=web", WEB, True, id="equals"),
        pytest.param("app==web", WEB, True, id="double-equals"),
        pytest.param("app=db", WEB, False, id="equals-other-value"),
        pytest.param("missing=", WEB, False, id="equals-empty-needs-the-key"),
        pytest.param("missing=", {"missing": ""}, True, id="equals-empty-value"),
        pytest.param("app!=db", WEB, True, id="not-equals"),
        pytest.param("app!=web", WEB, False, id="not-equals-same"),
        pytest.param("missing!=x", WEB, True, id="not-equals-absent-key"),
        pytest.param("app in (db,web)", WEB, True, id="in"),
        pytest.param("app in (db)", WEB, False, id="in-miss"),
        pytest.param("missing in (x)", WEB, False, id="in-absent-key"),
        pytest.param("app notin (web)", WEB, False, id="notin-hit"),
        pytest.param("missing notin (x)", WEB, True, id="notin-absent-key"),
        pytest.param("app", WEB, True, id="exists"),
        pytest.param("missing", WEB, False, id="exists-absent"),
        pytest.param("!missing", WEB, True, id="does-not-exist"),
        pytest.param("!app", WEB, False, id="does-not-exist-present"),
        pytest.param("replicas>2", WEB, True, id="gt"),
        pytest.param("replicas>3", WEB, False, id="gt-equal"),
        pytest.param("replicas<4", WEB, True, id="lt"),
        pytest.param("app>1", WEB, False, id="gt-non-integer-label"),
        pytest.param("missing<9", WEB, False, id="lt-absent-key"),
        pytest.param("app=web,tier=frontend", WEB, True, id="and-both"),
        pytest.param("app=web,tier=backend", WEB, False, id="and-one-fails"),
    ],
)
def test_label_selector_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert LabelSelector.parse(text).matches(labels) is expected


def test_nothing_selector_matches_nothing_and_is_not_empty() -> None:
    nothing = LabelSelector.nothing()
    assert not nothing.matches({})
    assert not nothing.empty
    assert LabelSelector.everything().empty
    assert str(nothing) == ""  # as Go's: test selects_nothing before querying with it


@pytest.mark.parametrize(
    ("operator", "values"),
    [
        pytest.param(Operator.EQUALS, (), id="equals-without-value"),
        pytest.param(Operator.NOT_EQUALS, ("a", "b"), id="not-equals-two-values"),
        pytest.param(Operator.IN, (), id="in-without-values"),
        pytest.param(Operator.EXISTS, ("a",), id="exists-with-value"),
        pytest.param(Operator.GREATER_THAN, (), id="gt-without-value"),
    ],
)
def test_requirement_refuses_the_wrong_number_of_values(
    operator: Operator, values: tuple[str, ...]
) -> None:
    with pytest.raises(ValueError, match="cannot take"):
        Requirement("a", operator, values)


def test_from_set_requires_every_label() -> None:
    sel = LabelSelector.from_set({"tier": "web", "app": "shop"})
    assert str(sel) == "app=shop,tier=web"
    assert sel.matches({"app": "shop", "tier": "web", "extra": "x"})
    assert not sel.matches({"app": "shop"})


# --- label selectors: the structured form -------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "canonical", "labels", "expected"),
    [
        pytest.param(None, "", WEB, False, id="nil-selects-nothing"),
        pytest.param({}, "", WEB, True, id="empty-selects-everything"),
        pytest.param({"matchLabels": {}, "matchExpressions": []}, "", {}, True,
                     id="empty-lists-select-everything"),
        pytest.param({"matchLabels": {"tier": "frontend", "app": "web"}},
                     "app=web,tier=frontend", WEB, True, id="match-labels"),
        pytest.param({"matchExpressions": [
                        {"key": "app", "operator": "In", "values": ["web", "db"]},
                        {"key": "gone", "operator": "DoesNotExist"},
                     ]}, "app in (db,web),!gone", WEB, True, id="expressions"),
        pytest.param({"matchLabels": {"app": "web"}, "matchExpressions": [
                        {"key": "tier", "operator": "NotIn", "values": ["frontend"]}]},
                     "app=web,tier notin (frontend)", WEB, False, id="labels-and-expressions"),
        pytest.param({"matchExpressions": [{"key": "app", "operator": "Exists", "values": []}]},
                     "app", WEB, True, id="exists-with-empty-values"),
    ],
)  # fmt: skip
def test_from_object(
    obj: dict[str, Any] | None, canonical: str, labels: dict[str, str], expected: bool
) -> None:
    sel = LabelSelector.from_object(obj)
    assert str(sel) == canonical
    assert sel.matches(labels) is expected


@pytest.mark.parametrize(
    ("obj", "fields"),
    [
        pytest.param({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
                     ["spec.selector.matchExpressions[0].operator"], id="gt-not-structured"),
        pytest.param({"matchExpressions": [{"key": "a", "operator": "In"}]},
                     ["spec.selector.matchExpressions[0].values"], id="in-without-values"),
        pytest.param({"matchLabels": {"a": "b_"}}, ["spec.selector.matchLabels"],
                     id="bad-label-value"),
    ],
)  # fmt: skip
def test_from_object_raises_invalid_with_causes(obj: dict[str, Any], fields: list[str]) -> None:
    with pytest.raises(Invalid) as caught:
        LabelSelector.from_object(obj, field="spec.selector")
    assert [c.field for c in caught.value.causes] == fields
    assert caught.value.message.startswith(f"invalid label selector: {fields[0]}: ")


# --- field selectors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        pytest.param("", "", id="empty"),
        pytest.param("metadata.name=web", "metadata.name=web", id="equals"),
        pytest.param("metadata.name==web", "metadata.name=web", id="double-equals-as-equals"),
        pytest.param("status.phase!=Failed", "status.phase!=Failed", id="not-equals"),
        pytest.param("spec.nodeName=", "spec.nodeName=", id="empty-value"),
        pytest.param("b=1,a=2", "a=2,b=1", id="sorted"),
        pytest.param("a=1,", "a=1", id="trailing-comma-ignored"),
        pytest.param(r"a=x\,y", r"a=x\,y", id="escaped-comma"),
        pytest.param(r"a=x\=y\\z", r"a=x\=y\\z", id="escaped-equals-and-backslash"),
        pytest.param("a=!b", "a=!b", id="bang-in-value"),
        pytest.param("a = b", "a = b", id="blanks-kept-in-field-and-value"),
    ],
)
def test_field_selector_parses_to_canonical_string(text: str, canonical: str) -> None:
    assert str(FieldSelector.parse(text)) == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("a", "invalid selector: 'a'; can't understand 'a'", id="no-operator"),
        pytest.param(" ", "invalid selector: ' '; can't understand ' '", id="blank"),
        pytest.param("b=x=y,a", "invalid selector: 'b=x=y,a'; can't understand 'a'",
                     id="terms-checked-in-sorted-order"),
        pytest.param("a=b=c", "invalid field selector: unescaped character in value: 61",
                     id="unescaped-equals"),
        pytest.param("a=b!=c", "invalid field selector: unescaped character in value: 61",
                     id="second-operator"),
        pytest.param(r"a=b\x", r"invalid field selector: invalid escape sequence: \x",
                     id="unknown-escape"),
        pytest.param("a=b\\", "invalid field selector: invalid escape sequence: \\",
                     id="trailing-backslash"),
    ],
)  # fmt: skip
def test_field_selector_rejects_bad_syntax(text: str, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        FieldSelector.parse(text)
    assert caught.value.message == message


POD = {"metadata.name": "web", "spec.nodeName": "", "status.phase": "Running"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", True, id="empty"),
        pytest.param("metadata.name=web", True, id="equals"),
        pytest.param("metadata.name=db", False, id="equals-miss"),
        pytest.param("spec.nodeName=", True, id="unscheduled"),
        pytest.param("metadata.namespace=", True, id="missing-field-reads-empty"),
        pytest.param("metadata.namespace!=default", True, id="missing-field-not-equals"),
        pytest.param("status.phase!=Succeeded,status.phase!=Failed", True, id="kubectl-node"),
        pytest.param("status.phase!=Running", False, id="not-equals-miss"),
    ],
)
def test_field_selector_matches(text: str, expected: bool) -> None:
    assert FieldSelector.parse(text).matches(POD.get) is expected


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        pytest.param("spec.nodeName=pi-3", "spec.nodeName", "pi-3", id="pinned"),
        pytest.param("spec.nodeName==pi-3", "spec.nodeName", "pi-3", id="double-equals"),
        pytest.param("involvedObject.namespace=", "involvedObject.namespace", "",
                     id="pinned-to-empty"),
        pytest.param("spec.nodeName!=pi-3", "spec.nodeName", None, id="not-equals-pins-nothing"),
        pytest.param("metadata.name=web", "spec.nodeName", None, id="other-field"),
        pytest.param("", "metadata.name", None, id="empty"),
    ],
)  # fmt: skip
def test_field_selector_value_for(text: str, field: str, value: str | None) -> None:
    assert FieldSelector.parse(text).value_for(field) == value


def test_field_selector_fields_lists_every_field() -> None:
    sel = FieldSelector.parse("involvedObject.uid=u,involvedObject.name=n,status.phase!=x")
    assert sel.fields() == {"involvedObject.uid", "involvedObject.name", "status.phase"}


def test_field_requirement_takes_only_equality_operators() -> None:
    assert FieldRequirement("a", Operator.DOUBLE_EQUALS, "b").operator is Operator.EQUALS
    with pytest.raises(ValueError, match="cannot use"):
        FieldRequirement("a", Operator.IN, "b")


# --- properties ---------------------------------------------------------------------------

_SEGMENT = r"[a-z0-9]([-a-z0-9]{0,6}[a-z0-9])?"
_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,10}[A-Za-z0-9])?"
keys = st.from_regex(rf"({_SEGMENT}(\.{_SEGMENT}){{0,2}}/)?{_NAME}", fullmatch=True)
values = st.from_regex(rf"({_NAME})?", fullmatch=True)
integers = st.integers(min_value=0, max_value=10**6).map(str)


@st.composite
def requirements(draw: st.DrawFn) -> Requirement:
    key, op = draw(keys), draw(st.sampled_from(list(Operator)))
    if op in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
        return Requirement(key, op)
    if op in (Operator.IN, Operator.NOT_IN):
        return Requirement(key, op, tuple(draw(st.lists(values, min_size=1, max_size=3))))
    if op in (Operator.GREATER_THAN, Operator.LESS_THAN):
        return Requirement(key, op, (draw(integers),))
    return Requirement(key, op, (draw(values),))


label_selectors = st.lists(requirements(), max_size=5).map(lambda r: LabelSelector(tuple(r)))
# Arbitrary text, and text made of selector tokens, which reaches deeper into the parser.
selector_text = st.one_of(
    st.text(),
    st.lists(st.sampled_from([*"ab1_-./=!(),<> \t\0", "in", "notin", "A"])).map("".join),
)


@given(label_selectors)
def test_label_selector_round_trips_through_its_string(sel: LabelSelector) -> None:
    assert LabelSelector.parse(str(sel)) == sel


@given(selector_text)
def test_label_selector_parse_raises_only_bad_request(text: str) -> None:
    try:
        sel = LabelSelector.parse(text)
    except BadRequest:
        return
    assert LabelSelector.parse(str(sel)) == sel


field_names = st.from_regex(r"[A-Za-z0-9._-]{0,16}", fullmatch=True)
field_selectors = st.lists(
    st.builds(
        FieldRequirement,
        field_names,
        st.sampled_from([Operator.EQUALS, Operator.NOT_EQUALS]),
        st.text(),
    ),
    max_size=5,
).map(lambda r: FieldSelector(tuple(r)))


@given(field_selectors)
def test_field_selector_round_trips_through_its_string(sel: FieldSelector) -> None:
    assert FieldSelector.parse(str(sel)) == sel


@given(st.one_of(st.text(), st.lists(st.sampled_from([*"ab.=!,\\ ", "\\,"])).map("".join)))
def test_field_selector_parse_raises_only_bad_request(text: str) -> None:
    try:
        sel = FieldSelector.parse(text)
    except BadRequest:
        return
    assert FieldSelector.parse(str(sel)) == sel
