from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from controlplane.store import Store, open_store
from tests.support.etcd import EtcdCluster
from tests.support.real import require_binary


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    """One real single-member etcd for the session; tests isolate by key prefix."""
    require_binary("etcd", package="etcd-server")
    cluster = EtcdCluster(tmp_path_factory.mktemp("etcd"), size=1)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "etcd"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'state.db'}"
    cluster: EtcdCluster = request.getfixturevalue("etcd_server")
    return cluster.url()


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    s = await open_store(store_url)
    yield s
    await s.close()


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test's own (the etcd server is shared by the session)."""
    return f"/t/{uuid.uuid4().hex[:10]}/"
