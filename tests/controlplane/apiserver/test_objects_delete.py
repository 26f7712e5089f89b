"""A DELETE that races another write of the same object (a node's status update, a
controller's patch) is decided again on the object as it now is, as Kubernetes'
conditional delete does: it succeeds, or starts a graceful deletion, instead of a 409
the client never asked for. Only the client's own preconditions give 409.

Real SQLite store and watch cache; the race is made exact by a store that lets one
other write land just before the delete's compare-and-swap."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from api import errors
from api.resources import resource
from controlplane import store as st
from controlplane.apiserver import storage
from controlplane.apiserver.cache import WatchCache
from controlplane.apiserver.objects import DeleteOptions, Objects
from controlplane.store.sqlite.store import SqliteStore

NODES = resource("", "Node")
PODS = resource("", "Pod")
NAMESPACES = resource("", "Namespace")


class Racing:
    """The store, except that before the next ``racing`` deletes, ``write`` lands first."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self.races = 0
        self.write: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def delete(self, key: str, *, expected_revision: int) -> st.KeyValue:
        if self.races > 0:
            self.races -= 1
            await self.write(key)
        return await self._store.delete(key, expected_revision=expected_revision)


@pytest.fixture
async def objects(tmp_path: Path) -> AsyncIterator[tuple[Objects, Racing]]:
    store = await SqliteStore.open(tmp_path / "state.db")
    racing = Racing(store)
    cache = WatchCache(racing, [NODES, PODS, NAMESPACES])  # type: ignore[arg-type]
    await cache.start()
    objects = Objects(racing, cache)  # type: ignore[arg-type]
    try:
        yield objects, racing
    finally:
        await cache.stop()
        await store.close()


def bump(racing: Racing, field: str) -> Any:
    """A write of the stored object that sets ``metadata.labels[field]``, as another
    client's update would."""

    async def write(key: str) -> None:
        kv = await racing._store.get(key)
        assert kv is not None
        obj = storage.decode(kv.value, kv.mod_revision)
        obj["metadata"].pop("resourceVersion", None)
        obj["metadata"].setdefault("labels", {})[field] = "x"
        await racing._store.update(key, storage.encode(obj), expected_revision=kv.mod_revision)

    return write


async def test_a_delete_racing_a_status_update_still_deletes(
    objects: tuple[Objects, Racing],
) -> None:
    api, racing = objects
    await api.create(NODES, None, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "pi"}})
    racing.write, racing.races = bump(racing, "heartbeat"), 2  # two writes in a row
    last, removed = await api.delete(NODES, None, "pi", DeleteOptions())
    assert removed
    assert last["metadata"]["labels"] == {"heartbeat": "x"}  # what was deleted: the newest
    with pytest.raises(errors.NotFound):
        api.get(NODES, None, "pi")


async def test_the_clients_own_precondition_still_gives_409(
    objects: tuple[Objects, Racing],
) -> None:
    api, racing = objects
    created = await api.create(
        NODES, None, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "pi"}}
    )
    racing.write, racing.races = bump(racing, "heartbeat"), 1
    stale = created["metadata"]["resourceVersion"]
    with pytest.raises(errors.Conflict):
        await api.delete(NODES, None, "pi", DeleteOptions(precondition_resource_version=stale))
    # the race happened after the check: the second time round, the precondition fails
    assert api.get(NODES, None, "pi").obj()["metadata"]["labels"] == {"heartbeat": "x"}
