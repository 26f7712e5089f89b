"""The cluster CA shared through the store (auth/bootstrap.py), on a real store (SQLite
and a real etcd): the first server publishes it, a second adopts it and issues its own
leaf certificates from it, and a data directory of another cluster is refused."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bramble.server import ServerError, _cluster_pki
from controlplane.apiserver.auth import bootstrap
from controlplane.apiserver.auth import pki as pkis
from controlplane.store import NotFound, Store, open_store
from tests.controlplane.store.conftest import etcd_server, store_url

__all__ = ["etcd_server", "store_url"]


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """The store, without a cluster CA (the etcd one is shared by the session)."""
    s = await open_store(store_url)
    try:
        with contextlib.suppress(NotFound):
            await s.delete(bootstrap.CA_KEY)
        yield s
        with contextlib.suppress(NotFound):
            await s.delete(bootstrap.CA_KEY)
    finally:
        await s.close()


async def test_a_second_server_adopts_the_first_ones_ca(store: Store, tmp_path: Path) -> None:
    first = await _cluster_pki(tmp_path / "first", store)
    kept = await bootstrap.stored_ca(store)
    assert kept is not None
    assert kept.cert_pem == first.ca_pem

    second = await _cluster_pki(tmp_path / "second", store)
    assert second.ca_pem == first.ca_pem
    assert "ca" not in second.issued  # adopted, not created
    assert {"serving", "client"} <= set(second.issued)
    # The second server's own certificates chain to the shared CA.
    second.serving_cert.verify_directly_issued_by(first.ca_cert)
    # A restart changes nothing.
    again = await _cluster_pki(tmp_path / "second", store)
    assert again.ca_pem == first.ca_pem
    assert again.issued == ()


async def test_a_data_dir_of_another_cluster_is_refused(store: Store, tmp_path: Path) -> None:
    await _cluster_pki(tmp_path / "first", store)
    other = tmp_path / "other"
    await asyncio.to_thread(pkis.ensure_cluster_pki, other, hostnames=["other"], ips=["127.0.0.1"])
    with pytest.raises(ServerError, match="another cluster's CA than the one in the store"):
        await _cluster_pki(other, store)


async def test_an_unreadable_stored_ca_names_the_fix(store: Store, tmp_path: Path) -> None:
    await store.create(bootstrap.CA_KEY, b"not json")
    with pytest.raises(ServerError, match="restore the store from a backup"):
        await _cluster_pki(tmp_path / "first", store)
