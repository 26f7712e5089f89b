"""Label and field selectors, parsed and matched as the Kubernetes apiserver does.

``LabelSelector.parse`` is apimachinery's ``labels.Parse`` (a lexer and a recursive-descent
parser, ported token for token so that odd input fails with the same message):
``=``/``==``/``!=``, ``in (a,b)``, ``notin (a,b)``, ``key``, ``!key``, ``key>1``/``key<1``,
commas for AND, blanks between tokens, and the empty string, which selects everything.
``str(selector)`` is ``Selector.String()``: requirements sorted (stably) by key, values
sorted, so ``LabelSelector.parse(str(s)) == s``.

``LabelSelector.from_object`` is ``metav1.LabelSelectorAsSelector`` for the structured
form in specs. Nil and empty differ, as in Kubernetes: ``from_object(None)`` selects
nothing (a controller whose selector is missing owns no pods) while ``from_object({})``
selects everything. Kinds that require a selector (Deployment, ReplicaSet) say so in their
validator, with ``api.validation.label_selector`` plus their own Required/empty check. Note
that the nothing selector prints as "" like Go's, which as a query string means everything:
test ``selects_nothing`` before sending a selector to the server.

``FieldSelector.parse`` is ``fields.ParseSelector``: ``=``/``==``/``!=``, commas for AND,
and ``\\,``, ``\\=``, ``\\\\`` escapes in values. Field names are not escaped, and no blanks
are trimmed ("a = b" names the field "a "), exactly as Kubernetes.

Errors: parse raises ``api.errors.BadRequest`` with the apiserver's message, e.g.
``unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt``;
``from_object`` raises ``api.errors.Invalid`` whose causes are those of
``api.validation.label_selector``. Nothing else escapes, whatever the input.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from api import validation
from api.errors import BadRequest, Invalid


class Operator(enum.StrEnum):
    """k8s ``selection.Operator``: the values are Kubernetes' own strings."""

    IN = "in"
    NOT_IN = "notin"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


_EXACT: Final = frozenset({Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS})
_SETS: Final = frozenset({Operator.IN, Operator.NOT_IN})
_UNARY: Final = frozenset({Operator.EXISTS, Operator.DOES_NOT_EXIST})
_ORDER: Final = frozenset({Operator.GREATER_THAN, Operator.LESS_THAN})
_STRUCTURED: Final = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
}


@dataclass(frozen=True, slots=True)
class Requirement:
    """One label requirement; ``values`` are stored sorted and without duplicates."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        op = Operator(self.operator)
        object.__setattr__(self, "operator", op)
        object.__setattr__(self, "values", tuple(sorted(set(self.values))))
        n = len(self.values)
        if not (n > 0 if op in _SETS else n == 0 if op in _UNARY else n == 1):
            raise ValueError(f"operator {op.value!r} cannot take {n} values")

    def matches(self, labels: Mapping[str, str]) -> bool:
        op, present = self.operator, self.key in labels
        if op in (Operator.IN, Operator.EQUALS, Operator.DOUBLE_EQUALS):
            return present and labels[self.key] in self.values
        if op in (Operator.NOT_IN, Operator.NOT_EQUALS):
            return not present or labels[self.key] not in self.values
        if op is Operator.EXISTS:
            return present
        if op is Operator.DOES_NOT_EXIST:
            return not present
        have = _parse_int64(labels[self.key]) if present else None
        want = _parse_int64(self.values[0])
        if have is None or want is None:
            return False
        return have > want if op is Operator.GREATER_THAN else have < want

    def __str__(self) -> str:
        op = self.operator
        if op in _UNARY:
            return f"!{self.key}" if op is Operator.DOES_NOT_EXIST else self.key
        if op in _SETS:
            return f"{self.key} {op.value} ({','.join(self.values)})"
        symbol = {Operator.GREATER_THAN: ">", Operator.LESS_THAN: "<"}.get(op, op.value)
        return f"{self.key}{symbol}{self.values[0]}"


def _parse_int64(text: str) -> int | None:
    """Go ``strconv.ParseInt(text, 10, 64)``: ASCII digits and an optional sign, no more."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not (digits.isascii() and digits.isdigit()) or len(digits.lstrip("0")) > 19:
        return None  # isdigit() is False for ""; 20 significant digits overflow anyway
    value = int(digits.lstrip("0") or "0") * (-1 if text[0] == "-" else 1)
    return value if -(2**63) <= value < 2**63 else None


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """AND of requirements, kept sorted by key; ``LabelSelector()`` selects everything."""

    requirements: tuple[Requirement, ...] = ()
    selects_nothing: bool = False

    def __post_init__(self) -> None:
        if self.selects_nothing and self.requirements:
            raise ValueError("the nothing selector has no requirements")
        ordered = tuple(sorted(self.requirements, key=lambda r: r.key))
        object.__setattr__(self, "requirements", ordered)

    @classmethod
    def everything(cls) -> LabelSelector:
        return cls()

    @classmethod
    def nothing(cls) -> LabelSelector:
        return cls(selects_nothing=True)

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        """A ``labelSelector`` query parameter; raises ``BadRequest``."""
        return cls(tuple(_Parser(text).parse()))

    @classmethod
    def from_set(cls, labels: Mapping[str, str]) -> LabelSelector:
        """Every label must equal (k8s ``SelectorFromSet``; a Service's ``spec.selector``)."""
        return cls(tuple(Requirement(k, Operator.EQUALS, (v,)) for k, v in labels.items()))

    @classmethod
    def from_object(
        cls, sel: Mapping[str, Any] | None, *, field: str = "selector"
    ) -> LabelSelector:
        """The structured form (``matchLabels``, ``matchExpressions``); ``None`` selects
        nothing, ``{}`` everything. Raises ``Invalid`` with causes under ``field``."""
        if sel is None:
            return cls.nothing()
        causes = validation.label_selector(sel, field)
        if causes:
            summary = "; ".join(f"{c.field}: {c.message}" for c in causes)
            raise Invalid(f"invalid label selector: {summary}", causes=causes)
        match_labels: Mapping[str, str] = sel.get("matchLabels") or {}
        reqs = [Requirement(k, Operator.EQUALS, (v,)) for k, v in match_labels.items()]
        for expr in sel.get("matchExpressions") or []:
            values = tuple(expr.get("values") or ())
            reqs.append(Requirement(expr["key"], _STRUCTURED[expr["operator"]], values))
        return cls(tuple(reqs))

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict anything (k8s ``Selector.Empty``)."""
        return not self.requirements and not self.selects_nothing

    def matches(self, labels: Mapping[str, str]) -> bool:
        return not self.selects_nothing and all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


# --- the label selector lexer and parser (k8s labels/selector.go) ----------------------


# A token is (kind, literal). The kind of a symbol or keyword is its own text ("!=", "in");
# the other kinds are these three.
_IDENT: Final = "identifier"
_END: Final = "end of string"
_ERROR: Final = "error"
_LITERALS: Final = frozenset({")", ",", "!", "==", "=", ">", "in", "<", "!=", "notin", "("})
_OPERATORS: Final = {op.value: op for op in (*_SETS, *_EXACT)} | {
    ">": Operator.GREATER_THAN,
    "<": Operator.LESS_THAN,
}
_BLANK: Final = frozenset(" \t\r\n")
_SPECIAL: Final = frozenset("=!(),><")
_EOF: Final = "\0"  # Go's lexer reads NUL for the end, so a NUL byte also ends a token


def _lex(text: str) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    pos = 0

    def read() -> str:
        nonlocal pos
        if pos < len(text):
            pos += 1
            return text[pos - 1]
        return _EOF

    while True:
        ch = read()
        while ch in _BLANK:
            ch = read()
        if ch == _EOF:
            items.append((_END, ""))
            return items
        pos -= 1
        buffer = ""
        if ch in _SPECIAL:  # the longest run of symbols that is a token: "!=" before "!"
            last: tuple[str, str] | None = None
            while (ch := read()) != _EOF:
                if ch not in _SPECIAL:
                    pos -= 1
                    break
                buffer += ch
                if buffer in _LITERALS:
                    last = (buffer, buffer)
                elif last is not None:
                    pos -= 1
                    break
            items.append(last or (_ERROR, f"error expected: keyword found '{buffer}'"))
        else:
            while (ch := read()) != _EOF:
                if ch in _SPECIAL or ch in _BLANK:
                    pos -= 1
                    break
                buffer += ch
            items.append((buffer if buffer in _LITERALS else _IDENT, buffer))


class _Parser:
    """Ported from k8s ``labels.Parser``; the error strings are Kubernetes' own."""

    def __init__(self, text: str) -> None:
        self._items = _lex(text)
        self._pos = 0

    def _peek(self, *, values: bool = True) -> tuple[str, str]:
        tok, lit = self._items[self._pos]
        # In a values context "in" and "notin" are plain identifiers: "in in (in)".
        return (_IDENT if values and tok in ("in", "notin") else tok), lit

    def _next(self, *, values: bool = True) -> tuple[str, str]:
        item = self._peek(values=values)
        self._pos += 1
        return item

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            tok, lit = self._peek()
            if tok == _END:
                return requirements
            if tok not in (_IDENT, "!"):
                raise BadRequest(f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self._requirement())
            except _SyntaxError as e:
                raise BadRequest(f"unable to parse requirement: {e}") from None
            tok, lit = self._next()
            if tok == _END:
                return requirements
            if tok != ",":
                raise BadRequest(f"found '{lit}', expected: ',' or 'end of string'")
            tok, lit = self._peek()
            if tok not in (_IDENT, "!"):
                raise BadRequest(f"found '{lit}', expected: identifier after ','")

    def _requirement(self) -> Requirement:
        tok, key = self._next()
        negated = tok == "!"
        if negated:
            tok, key = self._next()
        if tok != _IDENT:
            raise _SyntaxError(f"found '{key}', expected: identifier")
        if errs := validation.is_qualified_name(key):
            raise _SyntaxError(_field_error("<nil>", key, detail="; ".join(errs)))
        if negated or self._peek()[0] in (_END, ","):
            # "!key=value" stops here too: the caller then fails on the "=".
            return Requirement(key, Operator.DOES_NOT_EXIST if negated else Operator.EXISTS)
        tok, lit = self._next(values=False)
        if tok not in _OPERATORS:
            raise _SyntaxError(f"found '{lit}', expected: in, notin, =, ==, !=, gt, lt")
        op = _OPERATORS[tok]
        values = self._value_set() if op in _SETS else self._exact_value()
        _check_values(key, op, values=values)
        return Requirement(key, op, tuple(values))

    def _value_set(self) -> list[str]:
        tok, lit = self._next()
        if tok != "(":
            raise _SyntaxError(f"found '{lit}' expected: '('")
        tok, lit = self._peek()
        if tok == ")":  # "()" is the set holding the empty string
            self._next()
            return [""]
        if tok not in (_IDENT, ","):
            raise _SyntaxError(f"found '{lit}', expected: ',', ')' or identifier")
        values = self._identifiers()
        if self._next()[0] != ")":
            raise _SyntaxError(f"found '{lit}', expected: ')'")  # sic: the earlier literal
        return sorted(set(values))

    def _identifiers(self) -> list[str]:
        values: list[str] = []
        while True:
            tok, lit = self._next()
            if tok == _IDENT:
                values.append(lit)
                tok, lit = self._peek()
                if tok == ")":
                    return values
                if tok != ",":
                    raise _SyntaxError(f"found '{lit}', expected: ',' or ')'")
            elif tok == ",":  # an empty slot: "(,a)", "(a,,b)", "(a,)"
                if not values:
                    values.append("")
                after = self._peek()[0]
                if after == ")":
                    values.append("")
                    return values
                if after == ",":
                    self._next()
                    values.append("")
            else:
                raise _SyntaxError(f"found '{lit}', expected: ',', or identifier")

    def _exact_value(self) -> list[str]:
        if self._peek()[0] in (_END, ","):
            return [""]
        tok, lit = self._next()
        if tok != _IDENT:
            raise _SyntaxError(f"found '{lit}', expected: identifier")
        return [lit]


class _SyntaxError(Exception):
    """A requirement the parser cannot accept; wrapped as "unable to parse requirement"."""


def _field_error(path: str, value: str, *, detail: str) -> str:
    cause = validation.invalid_value(path, value, detail=detail)
    return f"{cause.field}: {cause.message}"


def _check_values(key: str, op: Operator, *, values: list[str]) -> None:
    """The value checks of k8s ``NewRequirement``, aggregated as Go's ``utilerrors``."""
    errors: list[str] = []
    if op in _ORDER:
        detail = "for 'Gt', 'Lt' operators, the value must be an integer"
        errors += [
            _field_error(f"values[{i}]", v, detail=detail)
            for i, v in enumerate(values)
            if _parse_int64(v) is None
        ]
    for i, v in enumerate(values):
        if errs := validation.is_valid_label_value(v):
            errors.append(_field_error(f"values[{i}][{key}]", v, detail="; ".join(errs)))
    if len(errors) == 1:
        raise _SyntaxError(errors[0])
    if errors:
        raise _SyntaxError("[" + ", ".join(dict.fromkeys(errors)) + "]")


# --- field selectors (k8s fields/selector.go) ------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    """``field=value`` or ``field!=value`` ("==" is stored as "=", as Kubernetes does)."""

    field: str
    operator: Operator
    value: str

    def __post_init__(self) -> None:
        op = Operator(self.operator)
        if op not in _EXACT:
            raise ValueError(f"a field selector cannot use {op.value!r}")
        # "==" is stored as "=", as Kubernetes does.
        object.__setattr__(self, "operator", Operator.EQUALS if op == "==" else op)

    def matches(self, get: Callable[[str], str | None]) -> bool:
        # A field the object lacks reads as "", as in k8s' fields.Set: "spec.nodeName="
        # selects unscheduled pods.
        equal = (get(self.field) or "") == self.value
        return equal if self.operator is Operator.EQUALS else not equal

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
        return f"{self.field}{self.operator.value}{escaped}"


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """AND of field requirements, kept sorted by their string form.

    Kubernetes sorts the raw terms instead; the two orders differ only when the input used
    "==", and order never changes what matches.
    """

    requirements: tuple[FieldRequirement, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "requirements", tuple(sorted(self.requirements, key=str)))

    @classmethod
    def everything(cls) -> FieldSelector:
        return cls()

    @classmethod
    def parse(cls, text: str) -> FieldSelector:
        """A ``fieldSelector`` query parameter; raises ``BadRequest``."""
        requirements: list[FieldRequirement] = []
        # Sorted before parsing, as Kubernetes does, so the same term is reported first.
        for term in sorted(_split_terms(text)):
            if not term:
                continue
            lhs, op, rhs = _split_term(term, text)
            requirements.append(FieldRequirement(lhs, op, _unescape(rhs)))
        return cls(tuple(requirements))

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, get: Callable[[str], str | None]) -> bool:
        """``get(field)`` reads a field of the object (``None`` when it has none)."""
        return all(r.matches(get) for r in self.requirements)

    def fields(self) -> set[str]:
        """The field names used, so the server can reject unsupported ones."""
        return {r.field for r in self.requirements}

    def value_for(self, field: str) -> str | None:
        """The value ``field`` must equal, if a requirement pins it (k8s RequiresExactMatch)."""
        for r in self.requirements:
            if r.field == field and r.operator is Operator.EQUALS:
                return r.value
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not escaped; escapes stay in the terms."""
    terms, start, escaped = [], 0, False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str, text: str) -> tuple[str, Operator, str]:
    """At the first operator; "!=" and "==" are tried before "=" at each position."""
    for i in range(len(term)):
        for op in (Operator.NOT_EQUALS, Operator.DOUBLE_EQUALS, Operator.EQUALS):
            if term.startswith(op.value, i):
                return term[:i], op, term[i + len(op.value) :]
    raise BadRequest(f"invalid selector: '{text}'; can't understand '{term}'")


def _unescape(value: str) -> str:
    out: list[str] = []
    escaped = False
    for ch in value:
        if escaped:
            if ch not in "\\,=":
                raise BadRequest(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            # Go prints the rune with %v, which is its number: "=" is 61.
            raise BadRequest(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if escaped:
        raise BadRequest("invalid field selector: invalid escape sequence: \\")
    return "".join(out)
