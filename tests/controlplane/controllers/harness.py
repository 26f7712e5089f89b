"""A real ``bramble server`` without its own scheduler and controllers, and the
controllers under test running in the test's event loop against it, through the same
manager code as in production (``run_controllers``): shared informers, work queues,
events. Tests play the scheduler and the kubelets by writing bindings and pod status
through the API, so each controller is tested on its own, with real API semantics
(resourceVersions, conflicts, selectors, owner references, finalizers).

Waiting is on watches with deadlines (tests/support/waiting.py), never by sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from api.client import ApiClient
from api.resources import resource
from controlplane.controllers.base import Controller
from controlplane.controllers.manager import run_controllers
from controlplane.controllers.settings import ControllerSettings
from tests.support.cluster import BrambleServer, unique
from tests.support.waiting import new_namespace

PODS = resource("", "Pod")
NODES = resource("", "Node")
EVENTS = resource("", "Event")
REPLICASETS = resource("apps", "ReplicaSet")
DEPLOYMENTS = resource("apps", "Deployment")
DAEMONSETS = resource("apps", "DaemonSet")
JOBS = resource("batch", "Job")
LEASES = resource("coordination.k8s.io", "Lease")
CONFIGMAPS = resource("", "ConfigMap")

Obj = dict[str, Any]


def start_server(data_dir: Path) -> BrambleServer:
    return BrambleServer.start(data_dir, "--no-scheduler", "--no-controllers")


def stop_server(server: BrambleServer) -> None:
    """Stop it, and fail the test if it logged a traceback or an error."""
    code = server.stop()
    log = server.log.text()
    assert code == 0, log[-3000:]
    assert "Traceback" not in log, log[-5000:]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrambleServer]:
    srv = start_server(tmp_path_factory.mktemp("controllers") / "data")
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture
async def client(server: BrambleServer) -> AsyncIterator[ApiClient]:
    api = await ApiClient.from_kubeconfig(server.kubeconfig)
    try:
        yield api
    finally:
        await api.close()


@pytest.fixture
async def namespace(client: ApiClient) -> str:
    name = unique("ctl")
    await new_namespace(client, name)
    return name


@contextlib.asynccontextmanager
async def running(
    client: ApiClient,
    controllers: Sequence[type[Controller]],
    *,
    settings: ControllerSettings | None = None,
    clock: Callable[[], datetime] | None = None,
) -> AsyncIterator[None]:
    """The controllers running (caches synced, workers started) for the block, with
    ``settings`` (default: the production ones) and ``clock`` as ``Context.now``."""
    ready = asyncio.Event()
    task = asyncio.create_task(
        run_controllers(
            client,
            list(controllers),
            identity=unique("test"),
            ready=ready,
            settings=settings,
            clock=clock,
        )
    )
    waiter = asyncio.create_task(ready.wait())
    try:
        done, _ = await asyncio.wait({task, waiter}, timeout=30, return_when="FIRST_COMPLETED")
        if task in done:
            task.result()  # raises what stopped it
            raise AssertionError("the controllers stopped before they were ready")
        assert waiter in done, "the controllers' caches did not sync within 30s"
        yield
    finally:
        waiter.cancel()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def container(name: str = "app", image: str = "localhost/busybox") -> Obj:
    return {"name": name, "image": image, "command": ["sleep", "3600"]}


def pod_template(labels: dict[str, str], **spec: Any) -> Obj:
    return {"metadata": {"labels": labels}, "spec": {"containers": [container()], **spec}}


async def set_pod_phase(client: ApiClient, pod: Obj, phase: str, *, ready: bool) -> Obj:
    """Play the kubelet: write the pod's status as an agent would."""
    current = await client.get(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])
    status = current.get("status") or {}
    status["phase"] = phase
    flag = "True" if ready else "False"
    status["conditions"] = [
        {"type": t, "status": flag} for t in ("Initialized", "ContainersReady", "Ready")
    ] + [{"type": "PodScheduled", "status": "True"}]
    current["status"] = status
    ns, name = current["metadata"]["namespace"], current["metadata"]["name"]
    return await client.update(PODS, ns, name, current, subresource="status")
