"""The control plane's store: desired and observed state as a revisioned key-value log.

Owns: the Store protocol (interface.py), its closed error set (errors.py), the backends
(sqlite/, the embedded default; etcd/, for a real etcd cluster), store URLs (url.py) and
periodic compaction (compactor.py).

Invariants: one global revision, which is the API's resourceVersion; a write is durable
before it is acknowledged; a watch delivers every change after its start revision in
order, with no gap and no duplicate, or fails with Expired. Only the apiserver uses the
store.

Concurrency: every backend is used from one asyncio event loop. The SQLite backend
keeps its blocking work on its own threads (one writer, a few readers); the etcd backend
is plain asyncio HTTP.
"""

from __future__ import annotations

from pathlib import Path

from controlplane.store.errors import (
    AlreadyExists,
    Conflict,
    Expired,
    InvalidArgument,
    NotFound,
    StoreError,
    StoreUnusable,
    Unavailable,
)
from controlplane.store.interface import (
    MAX_VALUE_BYTES,
    Event,
    EventType,
    KeyValue,
    ListResult,
    Store,
    WatchStream,
)

__all__ = [
    "MAX_VALUE_BYTES",
    "AlreadyExists",
    "Conflict",
    "Event",
    "EventType",
    "Expired",
    "InvalidArgument",
    "KeyValue",
    "ListResult",
    "NotFound",
    "Store",
    "StoreError",
    "StoreUnusable",
    "Unavailable",
    "WatchStream",
    "default_url",
    "open_store",
]


def default_url(data_dir: Path) -> str:
    """The embedded default: one SQLite file in the data directory."""
    return f"sqlite://{(data_dir / 'state.db').absolute()}"


async def open_store(url: str) -> Store:
    """Open the store a URL names (see url.py). Raises StoreUnusable or Unavailable.

    Backends are imported here, lazily: a SQLite store never loads aiohttp for etcd.
    """
    import asyncio

    from controlplane.store import url as urls

    # Parsing may read a password file: keep that off the event loop.
    location = await asyncio.to_thread(urls.parse, url)
    if isinstance(location, urls.SqliteLocation):
        from controlplane.store.sqlite.store import SqliteStore

        return await SqliteStore.open(location.path)
    from controlplane.store.etcd.store import EtcdStore

    return await EtcdStore.open(location)
