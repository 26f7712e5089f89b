"""The store's closed set of errors.

Every backend raises only these, so the apiserver can map them to HTTP with one table
(NotFound -> 404, AlreadyExists -> 409, Conflict -> 409, Expired -> 410,
InvalidArgument -> 400, Unavailable -> 503, StoreUnusable -> 500 and a refusal to start)::

    StoreError
    ├── NotFound          the key does not exist (at the revision asked for)
    ├── AlreadyExists     create() of a key that exists
    ├── Conflict          update()/delete() whose expected revision is not the key's
    ├── Expired           a list, get or watch below the compacted revision
    ├── InvalidArgument   a malformed request: bad continue token, value too large
    ├── Unavailable       the backend cannot answer now (etcd unreachable, no quorum,
    │                     deadline passed, store closed); retrying later may succeed
    └── StoreUnusable     the store cannot be used as configured or as found (bad URL,
                          corrupt or foreign database file, newer schema, locked by
                          another process, credentials refused); a person must act

Messages are sentences that name the cause and, where there is one, what to do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from controlplane.store.interface import KeyValue


class StoreError(Exception):
    """Base of every error the store raises."""


class NotFound(StoreError):
    """The key does not exist."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key {key!r} not found")
        self.key = key


class AlreadyExists(StoreError):
    """create() of a key that already exists."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key {key!r} already exists")
        self.key = key


class Conflict(StoreError):
    """A compare-and-swap whose expected revision is not the key's current one.

    `current` is the key's current value, so that a caller can retry without another
    read (as Kubernetes' GuaranteedUpdate does).
    """

    def __init__(self, key: str, *, expected: int, current: KeyValue) -> None:
        super().__init__(
            f"key {key!r} was modified: expected revision {expected}, "
            f"it is at {current.mod_revision}"
        )
        self.key = key
        self.expected = expected
        self.current = current


class Expired(StoreError):
    """The revision asked for has been compacted away (HTTP 410 Gone)."""

    def __init__(
        self, revision: int, *, compacted: int | None = None, current: int | None = None
    ) -> None:
        detail = f"too old resource version: {revision}"
        if current is not None:
            detail += f" ({current})"
        if compacted is not None:
            detail += f"; history before revision {compacted} was compacted"
        super().__init__(detail)
        self.revision = revision
        self.compacted = compacted
        self.current = current


class InvalidArgument(StoreError):
    """A malformed request that no retry can fix."""


class Unavailable(StoreError):
    """The backend cannot serve the request now; it may later."""


class StoreUnusable(StoreError):
    """The store cannot be opened or used as configured; a person has to act."""
