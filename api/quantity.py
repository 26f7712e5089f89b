"""Kubernetes resource quantities ("500m", "1.5Gi", "1e3"), as apimachinery's ``resource.Quantity``.

Grammar (k8s ``resource/quantity.go``)::

    <quantity> ::= <sign>? <digits>? ["." <digits>?] <suffix>
    <suffix>   ::= n | u | m | "" | k | M | G | T | P | E      (decimal SI)
                 | Ki | Mi | Gi | Ti | Pi | Ei                 (binary SI)
                 | ("e" | "E") <sign>? <digits>                (decimal exponent)

Parsing follows Kubernetes exactly, quirks included: "+5", "05", ".", "-" and "Ki" all
parse ("-" is zero); a value finer than a nano rounds away from zero ("0.1n" -> "1n"); a
binary-SI value is silently capped at 2**63-1 ("8Ei"); a binary-SI value between 0 and 1 is
reformatted as decimal SI; an exponent wraps as Go's int32 does.

A ``Quantity`` is held exactly, as an integer count of nanos (every parsed quantity is a
whole number of nanos), plus the ``Format`` to print it in; arithmetic and comparison are
exact integer operations and ``amount`` gives the value as a ``Fraction``.

Errors: ``QuantityError`` (a ``ValueError``, never an ``api.errors.ApiError``) carries
Kubernetes' message, e.g. ``quantities must match the regular expression '...'``, so a
validator can turn it into a Cause (``api.validation.quantity`` does). One deliberate
difference: bramble rejects magnitudes of 1e1000 and more, and more than 1000 significant
digits, where Kubernetes would build numbers of unbounded size ("1e999999999" is 12 bytes).

Printing (``format_quantity``/``str``) gives Kubernetes' canonical form: the largest suffix
that loses nothing ("1024Mi" -> "1Gi", "0.5" -> "500m", "1000" -> "1k", "1.5Gi" ->
"1536Mi"). Kubernetes echoes some inputs verbatim instead ("+1k", "05", "1E3"); bramble
always prints the canonical form.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from fractions import Fraction
from typing import Final


class Format(enum.StrEnum):
    DECIMAL_SI = "DecimalSI"  # 12M = 12 * 10**6
    BINARY_SI = "BinarySI"  # 12Mi = 12 * 2**20
    DECIMAL_EXPONENT = "DecimalExponent"  # 12e6


class QuantityError(ValueError):
    """The text is not a quantity; ``str(e)`` is Kubernetes' message for it."""


FORMAT_WRONG: Final = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
BAD_SUFFIX: Final = "unable to parse quantity's suffix"
MAX_DIGITS: Final = 1000
OUT_OF_RANGE: Final = (
    f"quantities must be smaller than 1e{MAX_DIGITS} and have at most {MAX_DIGITS} "
    "significant digits"
)

_NANO: Final = 10**9
_MAX_BINARY_NANOS: Final = (2**63 - 1) * _NANO
_SI_PREFIXES: Final = ("n", "u", "m", "", "k", "M", "G", "T", "P", "E")  # 10**-9 .. 10**18
_DECIMAL: Final = dict(zip(_SI_PREFIXES, range(-9, 19, 3), strict=True))
_BINARY: Final = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_SUFFIX: Final = {e: s for s, e in _DECIMAL.items()}
_BINARY_SUFFIX: Final = {e // 10: s for s, e in _BINARY.items()} | {0: ""}
_DIGITS: Final = frozenset("0123456789")
_SUFFIX_CHARS: Final = frozenset("eEinumkKMGTP")


@dataclass(frozen=True, slots=True, eq=False)
class Quantity:
    """An exact quantity: ``nanos`` * 10**-9, printed in ``format``.

    Equality, hashing and ordering compare values only, as k8s ``Quantity.Cmp`` does:
    ``parse_quantity("1Gi") == parse_quantity("1073741824")``.
    """

    nanos: int
    format: Format = Format.DECIMAL_SI

    @classmethod
    def from_int(cls, value: int, fmt: Format = Format.DECIMAL_SI) -> Quantity:
        """k8s ``NewQuantity``: e.g. a node's memory in bytes, with ``Format.BINARY_SI``."""
        return cls(value * _NANO, fmt)

    @classmethod
    def from_milli(cls, value: int, fmt: Format = Format.DECIMAL_SI) -> Quantity:
        """k8s ``NewMilliQuantity``: e.g. CPU in millicores."""
        return cls(value * 10**6, fmt)

    @property
    def amount(self) -> Fraction:
        return Fraction(self.nanos, _NANO)

    def value(self) -> int:
        """The value rounded to an integer away from zero (k8s ``Value``, without overflow)."""
        return _divide_away_from_zero(self.nanos, _NANO)

    def milli_value(self) -> int:
        """The value in thousandths, rounded away from zero (k8s ``MilliValue``)."""
        return _divide_away_from_zero(self.nanos, 10**6)

    def is_zero(self) -> bool:
        return self.nanos == 0

    def __str__(self) -> str:
        return format_quantity(self)

    def __repr__(self) -> str:
        return f"Quantity({str(self)!r}, {self.format.value})"

    def __hash__(self) -> int:
        return hash(self.nanos)

    def __eq__(self, other: object) -> bool:
        return self.nanos == other.nanos if isinstance(other, Quantity) else NotImplemented

    def __lt__(self, other: Quantity) -> bool:
        return self.nanos < other.nanos

    def __le__(self, other: Quantity) -> bool:
        return self.nanos <= other.nanos

    def __gt__(self, other: Quantity) -> bool:
        return self.nanos > other.nanos

    def __ge__(self, other: Quantity) -> bool:
        return self.nanos >= other.nanos

    # As k8s Add/Sub: the result keeps the left operand's format, unless that is zero.
    def __add__(self, other: Quantity) -> Quantity:
        return Quantity(self.nanos + other.nanos, other.format if not self.nanos else self.format)

    def __sub__(self, other: Quantity) -> Quantity:
        return Quantity(self.nanos - other.nanos, other.format if not self.nanos else self.format)

    def __neg__(self) -> Quantity:
        return Quantity(-self.nanos, self.format)


def _divide_away_from_zero(n: int, d: int) -> int:
    q = -(-abs(n) // d)
    return q if n >= 0 else -q


@functools.lru_cache(maxsize=1024)
def parse_quantity(text: str) -> Quantity:
    """Parse a quantity as k8s ``ParseQuantity`` does; raises ``QuantityError``.

    Remembered (quantities are immutable): the apiserver, the scheduler and the
    controllers parse the same few strings ("100m", "512Mi") for every pod."""
    if not text:
        raise QuantityError(FORMAT_WRONG)
    if text == "0":
        return Quantity(0)
    positive, num, denom, suffix = _scan(text)
    base, exponent, fmt = _interpret(suffix)
    nanos = _nanos(num, denom, base=base, exponent=exponent)
    if fmt is Format.BINARY_SI:
        nanos = min(nanos, _MAX_BINARY_NANOS)
        if 0 < nanos < _NANO:
            fmt = Format.DECIMAL_SI  # "avoids rounding and hopefully confusion, too"
    return Quantity(nanos if positive else -nanos, fmt)


def _scan(text: str) -> tuple[bool, str, str, str]:
    """k8s ``parseQuantityString``: sign, integer digits, fraction digits, suffix."""
    end = len(text)
    pos = 1 if text[0] in "+-" else 0
    positive = text[0] != "-"
    while pos < end and text[pos] == "0":
        pos += 1
    start = pos
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    num, denom = text[start:pos] or "0", ""
    if pos < end and text[pos] == ".":
        start = pos = pos + 1
        while pos < end and text[pos] in _DIGITS:
            pos += 1
        denom = text[start:pos]
    start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise QuantityError(FORMAT_WRONG)
    return positive, num, denom, text[start:]


def _interpret(suffix: str) -> tuple[int, int, Format]:
    """Base, exponent and format of a suffix (k8s ``suffixHandler.interpret``)."""
    if suffix in _DECIMAL:
        return 10, _DECIMAL[suffix], Format.DECIMAL_SI
    if suffix in _BINARY:
        return 2, _BINARY[suffix], Format.BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        exponent = _parse_int64(suffix[1:])
        if exponent is not None:
            # Go converts the int64 to int32, wrapping: "1e4294967296" is 1.
            return 10, (exponent + 2**31) % 2**32 - 2**31, Format.DECIMAL_EXPONENT
    raise QuantityError(BAD_SUFFIX)


def _parse_int64(text: str) -> int | None:
    """Go ``strconv.ParseInt(text, 10, 64)``: ASCII digits and an optional sign, no more."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not (digits.isascii() and digits.isdigit()) or len(digits.lstrip("0")) > 19:
        return None  # isdigit() is False for ""; 20 significant digits overflow anyway
    value = int(digits.lstrip("0") or "0") * (-1 if text[0] == "-" else 1)
    return value if -(2**63) <= value < 2**63 else None


def _nanos(num: str, denom: str, *, base: int, exponent: int) -> int:
    """The magnitude ``num.denom * base**exponent`` in nanos, rounded up."""
    digits = (num + denom).lstrip("0")
    significant = digits.rstrip("0")
    if not significant:
        return 0
    # value = significant * 10**e10 * 2**e2
    e10 = (exponent if base == 10 else 0) - len(denom) + len(digits) - len(significant)
    e2 = exponent if base == 2 else 0
    magnitude = len(significant) + e10  # value < 10**magnitude * 2**e2
    if len(significant) > MAX_DIGITS or magnitude > MAX_DIGITS:
        raise QuantityError(OUT_OF_RANGE)
    if magnitude <= -28:  # below 10**-28 * 2**60 < 1n: rounds up to 1n, no need to compute
        return 1
    scaled = int(significant) << e2
    shift = e10 + 9
    factor: int = 10 ** abs(shift)
    return scaled * factor if shift >= 0 else -(-scaled // factor)


def format_quantity(q: Quantity, style: Format | None = None) -> str:
    """The canonical string of ``q`` in ``style`` (default ``q.format``), as k8s prints it.

    Binary SI falls back to decimal SI for values under 1024 or with a fraction; decimal SI
    falls back to an exponent above "E" (10**18), as current Kubernetes does.
    """
    fmt = style or q.format
    nanos = q.nanos
    if nanos == 0:
        return "0"
    sign = "-" if nanos < 0 else ""
    magnitude = abs(nanos)
    if fmt is Format.BINARY_SI and magnitude >= 1024 * _NANO and magnitude % _NANO == 0:
        mantissa, power = _remove_factors(magnitude // _NANO, 1024, limit=6)
        return f"{sign}{mantissa}{_BINARY_SUFFIX[power]}"  # past Ei Go prints no suffix at all
    mantissa, power = _remove_factors(magnitude, 10, limit=None)
    exponent = power - 9
    mantissa *= 10 ** (exponent % 3)  # lower the exponent to a multiple of 3
    exponent -= exponent % 3
    if fmt is not Format.DECIMAL_EXPONENT and exponent in _DECIMAL_SUFFIX:
        return f"{sign}{mantissa}{_DECIMAL_SUFFIX[exponent]}"
    return f"{sign}{mantissa}e{exponent}" if exponent else f"{sign}{mantissa}"


def _remove_factors(value: int, base: int, *, limit: int | None) -> tuple[int, int]:
    times = 0
    while value % base == 0 and (limit is None or times < limit):
        value //= base
        times += 1
    return value, times
