"""The ``fieldValidation`` query parameter: what to do about unknown and duplicate fields.

Kubernetes' three directives: ``Strict`` refuses the request (400, ``... strict decoding
error: unknown field "spec.foo"``), ``Warn`` accepts it with one ``Warning: 299 - "..."``
header per field, ``Ignore`` says nothing. Without the parameter Kubernetes (1.27 and
later) warns; kubectl sends ``Strict`` unless told ``--validate=warn|false``. Any other
value is refused as an invalid CreateOptions/UpdateOptions/PatchOptions (422).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Literal

from api import errors
from api import validation as v
from api.resources import Resource
from controlplane.apiserver.schema.fields import duplicate_fields, unknown_fields_of

Verb = Literal["create", "update", "patch"]

_OPTIONS: Final = {"create": "CreateOptions", "update": "UpdateOptions", "patch": "PatchOptions"}


class FieldValidation(enum.StrEnum):
    IGNORE = "Ignore"
    WARN = "Warn"
    STRICT = "Strict"


DEFAULT: Final = FieldValidation.WARN  # Kubernetes' default when the parameter is absent


def warning_header(text: str) -> str:
    """A ``Warning`` header value as Kubernetes writes it (RFC 7234, agent ``-``)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    printable = "".join(ch if ch.isprintable() or ch == "\t" else " " for ch in escaped)
    return f'299 - "{printable}"'


@dataclass(frozen=True, slots=True)
class FieldValidator:
    """The directive of one request, ready to check its body."""

    mode: FieldValidation
    verb: Verb

    def check(
        self,
        resource: Resource,
        obj: object,
        *,
        raw: bytes | None = None,
        body_kind: tuple[str, str] | None = None,
    ) -> list[str]:
        """Check a decoded body (before any defaulting). Strict: raise BadRequest naming
        every problem. Warn: return the ``Warning`` header values to send. Ignore: [].

        ``raw`` is the body as received, ``obj`` exactly what it decodes to; give it to
        report duplicate JSON keys too. For a
        patch, pass the patched object (what the patch makes of the stored one). A body
        that is not the resource's kind names its own: ``body_kind=("autoscaling/v1",
        "Scale")`` for ``/scale``, ``("v1", "Binding")``, ``("policy/v1", "Eviction")``."""
        if self.mode is FieldValidation.IGNORE:
            return []
        api_version, kind = body_kind or (resource.api_version, resource.kind)
        problems = [f'duplicate field "{p}"' for p in duplicate_fields(raw, obj)] if raw else []
        problems += [f'unknown field "{p}"' for p in unknown_fields_of(api_version, kind, obj)]
        if not problems:
            return []
        if self.mode is FieldValidation.STRICT:
            version = api_version.rpartition("/")[2]
            raise errors.BadRequest(self.strict_message(kind, version, problems))
        return [warning_header(p) for p in problems]

    def strict_message(self, kind: str, version: str, problems: list[str]) -> str:
        """Kubernetes' words: a body that fails strict decoding "cannot be handled"; a
        patch reports the decoding error alone."""
        error = "strict decoding error: " + ", ".join(problems)
        if self.verb == "patch":
            return error
        return f'{kind} in version "{version}" cannot be handled as a {kind}: {error}'


def field_validation(value: str | None, *, verb: Verb = "create") -> FieldValidator:
    """The request's directive from its ``fieldValidation`` parameter (None or "" when
    absent); raises Invalid (422) for an unknown value, as Kubernetes does."""
    if not value:
        return FieldValidator(DEFAULT, verb)
    try:
        return FieldValidator(FieldValidation(value), verb)
    except ValueError:
        pass
    options = _OPTIONS[verb]
    supported = ["", *sorted(m.value for m in FieldValidation)]
    cause = v.not_supported("fieldValidation", value, supported=supported)
    raise errors.Invalid(
        f'{options}.meta.k8s.io "" is invalid: fieldValidation: {cause.message}',
        name="",
        group="meta.k8s.io",
        kind=options,
        causes=[cause],
    ) from None
