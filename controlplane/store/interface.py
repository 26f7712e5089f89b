"""The Store contract every backend implements (DESIGN.md section 3).

The store is a key-value log with one global revision:

* every successful write (create, update, delete) moves the store to a new revision and
  stamps the key with it (``mod_revision``); the revision is what the API calls
  ``resourceVersion``;
* ``update`` and ``delete`` compare-and-swap on the key's ``mod_revision``;
* ``watch(prefix, from_revision=R)`` delivers every change under ``prefix`` with a
  revision greater than ``R``, in revision order, with no gap and no duplicate;
* ``compact(R)`` forgets history before ``R``; a read or watch that needs it raises
  :class:`~controlplane.store.errors.Expired`.

A write is acknowledged (its coroutine returns) only once it is durable.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self

from controlplane.store.errors import InvalidArgument

# Values larger than this are refused with InvalidArgument. etcd refuses requests above
# 1.5 MiB (its --max-request-bytes default), and one limit for every backend keeps the
# backends interchangeable; Kubernetes objects are bounded by the same figure.
MAX_VALUE_BYTES = 1_500_000


@dataclass(frozen=True, slots=True)
class KeyValue:
    """A key's value as of ``mod_revision``; it was created at ``create_revision``."""

    key: str
    value: bytes
    create_revision: int
    mod_revision: int


class EventType(enum.Enum):
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"


@dataclass(frozen=True, slots=True)
class Event:
    """One change. For DELETE, ``kv.value`` is the key's last value and
    ``kv.mod_revision`` the revision of the deletion."""

    type: EventType
    kv: KeyValue

    @property
    def revision(self) -> int:
        return self.kv.mod_revision


@dataclass(frozen=True, slots=True)
class ListResult:
    """One page of a prefix list, read at ``revision``.

    ``continue_token`` is set when more keys remain; passing it back reads the next
    page at the same revision.
    """

    items: list[KeyValue]
    revision: int
    continue_token: str | None = None


class WatchStream(Protocol):
    """An ordered stream of events; close it (or leave its ``async with``) when done.

    Iteration raises Expired if the stream falls below the compacted revision and
    Unavailable if the backend is lost; the caller resumes from the last revision it saw.
    """

    def __aiter__(self) -> AsyncIterator[Event]: ...

    async def __anext__(self) -> Event: ...

    def ready(self) -> list[Event]:
        """The events the stream already holds, taken without waiting (those the next
        ``__anext__`` calls would return at once; none is returned twice). Lets a
        consumer catch up with a write it has just seen acknowledged: the embedded store
        publishes a write's event before acknowledging it, so none of it is late."""
        ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class Store(Protocol):
    """The control plane's state. Only the apiserver talks to it."""

    @property
    def description(self) -> str:
        """Where the state lives, for logs (never includes credentials)."""
        ...

    async def current_revision(self) -> int:
        """The revision of the latest acknowledged write (0 for an empty store)."""
        ...

    async def get(self, key: str, *, revision: int | None = None) -> KeyValue:
        """The key's value now, or as of ``revision``. Raises NotFound, Expired."""
        ...

    async def list(
        self,
        prefix: str,
        *,
        revision: int | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> ListResult:
        """Keys under ``prefix`` in key order, now or as of ``revision``.

        ``limit`` bounds the page; ``continue_token`` (from a previous page) continues
        at that page's revision. Raises Expired, InvalidArgument.
        """
        ...

    async def create(self, key: str, value: bytes) -> KeyValue:
        """Create the key. Raises AlreadyExists."""
        ...

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> KeyValue:
        """Replace the value if the key is still at ``expected_revision``.

        Raises NotFound, Conflict (carrying the current value).
        """
        ...

    async def delete(self, key: str, *, expected_revision: int | None = None) -> KeyValue:
        """Delete the key (if still at ``expected_revision`` when given).

        Returns the last value, with ``mod_revision`` set to the deletion's revision.
        Raises NotFound, Conflict.
        """
        ...

    async def watch(self, prefix: str, *, from_revision: int) -> WatchStream:
        """Changes under ``prefix`` after ``from_revision``. Raises Expired at once if
        that history is gone."""
        ...

    async def compact(self, revision: int) -> None:
        """Forget history before ``revision`` (idempotent; a lower revision is a no-op)."""
        ...

    async def close(self) -> None:
        """Finish in-flight writes and release the backend."""
        ...


def encode_key(key: str, *, prefix: bool = False) -> bytes:
    """A key (or, with ``prefix``, a key prefix, which may be empty) as the bytes the
    backends store. Raises InvalidArgument for an empty key and for text that is not
    valid Unicode (a lone surrogate such as ``"\\udc80"``), which has no UTF-8 form:
    checked before anything reaches a backend, so such a key never writes anything."""
    if not key and not prefix:
        raise InvalidArgument("the key must not be empty")
    try:
        return key.encode()
    except UnicodeEncodeError as e:
        what = "key prefix" if prefix else "key"
        raise InvalidArgument(
            f"the {what} {key!r} is not valid Unicode text ({e.reason} at position {e.start}); "
            "use a name made of valid characters"
        ) from e


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (as etcd's
    ``range_end``); None when there is none (empty prefix or all 0xff bytes)."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return None


class _AsyncContext:
    """Gives a WatchStream implementation ``async with`` through its ``close``, and a
    ``ready`` that holds nothing back: for a stream that never holds events between
    two ``__anext__`` calls."""

    def ready(self) -> list[Event]:
        return []

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


WatchBase = _AsyncContext
