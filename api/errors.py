"""The API's closed set of errors and the one table that maps them to HTTP.

Every error a client can see is one of these; the apiserver turns it into a Kubernetes
``Status`` object with the right code and reason, and the API client turns a ``Status``
back into the same class::

    ApiError                          code  reason
    ├── BadRequest                     400  BadRequest
    ├── Unauthorized                   401  Unauthorized
    ├── Forbidden                      403  Forbidden
    ├── NotFound                       404  NotFound
    ├── MethodNotAllowed               405  MethodNotAllowed
    ├── NotAcceptable                  406  NotAcceptable
    ├── AlreadyExists                  409  AlreadyExists
    ├── Conflict                       409  Conflict
    ├── Expired                        410  Expired   (too old resourceVersion)
    ├── RequestEntityTooLarge          413  RequestEntityTooLarge
    ├── UnsupportedMediaType           415  UnsupportedMediaType
    ├── Invalid                        422  Invalid   (with causes: field, reason, message)
    ├── TooManyRequests                429  TooManyRequests (with Retry-After)
    ├── InternalError                  500  InternalError
    ├── ServiceUnavailable             503  ServiceUnavailable
    └── Timeout                        504  Timeout

``details`` carries the object's name, group and kind (the resource's plural, as the real
apiserver does), which is what kubectl prints back: ``pods "web" not found``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class Cause:
    """One reason an object is invalid (``details.causes[]`` of a Status)."""

    field: str
    reason: str  # FieldValueRequired, FieldValueInvalid, FieldValueNotSupported, ...
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}


class ApiError(Exception):
    code: ClassVar[int] = 500
    reason: ClassVar[str] = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        name: str | None = None,
        group: str | None = None,
        kind: str | None = None,
        causes: list[Cause] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.name = name
        self.group = group
        self.kind = kind
        self.causes = causes or []
        self.retry_after = retry_after

    def status(self) -> dict[str, Any]:
        """The Kubernetes ``Status`` object for this error."""
        details: dict[str, Any] = {}
        if self.name is not None:
            details["name"] = self.name
        if self.group is not None:
            details["group"] = self.group
        if self.kind is not None:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [c.as_dict() for c in self.causes]
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if details:
            body["details"] = details
        return body


class BadRequest(ApiError):
    code, reason = 400, "BadRequest"


class Unauthorized(ApiError):
    code, reason = 401, "Unauthorized"


class Forbidden(ApiError):
    code, reason = 403, "Forbidden"


class NotFound(ApiError):
    code, reason = 404, "NotFound"


class MethodNotAllowed(ApiError):
    code, reason = 405, "MethodNotAllowed"


class NotAcceptable(ApiError):
    code, reason = 406, "NotAcceptable"


class AlreadyExists(ApiError):
    code, reason = 409, "AlreadyExists"


class Conflict(ApiError):
    code, reason = 409, "Conflict"


class Expired(ApiError):
    code, reason = 410, "Expired"


class RequestEntityTooLarge(ApiError):
    code, reason = 413, "RequestEntityTooLarge"


class UnsupportedMediaType(ApiError):
    code, reason = 415, "UnsupportedMediaType"


class Invalid(ApiError):
    code, reason = 422, "Invalid"


class TooManyRequests(ApiError):
    code, reason = 429, "TooManyRequests"


class InternalError(ApiError):
    code, reason = 500, "InternalError"


class ServiceUnavailable(ApiError):
    code, reason = 503, "ServiceUnavailable"


class Timeout(ApiError):
    code, reason = 504, "Timeout"


_BY_REASON: dict[str, type[ApiError]] = {
    cls.reason: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        NotAcceptable,
        AlreadyExists,
        Conflict,
        Expired,
        RequestEntityTooLarge,
        UnsupportedMediaType,
        Invalid,
        TooManyRequests,
        InternalError,
        ServiceUnavailable,
        Timeout,
    )
}
_BY_CODE: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    406: NotAcceptable,
    409: Conflict,
    410: Expired,
    413: RequestEntityTooLarge,
    415: UnsupportedMediaType,
    422: Invalid,
    429: TooManyRequests,
    500: InternalError,
    503: ServiceUnavailable,
    504: Timeout,
}


def from_status(status: dict[str, Any], *, http_code: int) -> ApiError:
    """The error a Status object (or a bare HTTP code) stands for."""
    reason = status.get("reason")
    cls = _BY_REASON.get(reason) if isinstance(reason, str) else None
    if cls is None:
        cls = _BY_CODE.get(http_code, InternalError)
    details = status.get("details") or {}
    causes = [
        Cause(str(c.get("field", "")), str(c.get("reason", "")), str(c.get("message", "")))
        for c in details.get("causes", [])
        if isinstance(c, dict)
    ]
    retry = details.get("retryAfterSeconds")
    return cls(
        str(status.get("message") or f"HTTP {http_code}"),
        name=details.get("name"),
        group=details.get("group"),
        kind=details.get("kind"),
        causes=causes,
        retry_after=retry if isinstance(retry, int) else None,
    )


def invalid(kind: str, name: str, causes: list[Cause], *, group: str = "") -> Invalid:
    """422 in the form kubectl rebuilds: ``The Pod "web" is invalid: spec.x: ...``."""
    summary = (
        "; ".join(f"{c.field}: {c.message}" if c.field else c.message for c in causes)
        or "invalid object"
    )
    qualified = f"{kind}.{group}" if group else kind  # as Kubernetes: Deployment.apps
    return Invalid(
        f'{qualified} "{name}" is invalid: {summary}',
        name=name,
        group=group,
        kind=kind,
        causes=causes,
    )
