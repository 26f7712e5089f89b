"""The controller manager: every controller in one process, running only while it holds
the Lease ``kube-system/bramble-controller-manager``, so that a second ``bramble
server`` on the same store stands by and takes over when the first dies (as
kube-controller-manager does).

Each term of leadership starts from scratch: fresh informers, fresh queues, fresh
expectations. A replica that lost the lease and wins it back must not act on caches
that went stale while another replica was writing.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import socket
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final

from api.client import ApiClient
from api.events import EventRecorder
from api.leaderelection import ElectionConfig, LeaderElector
from controlplane.controllers.base import COMPONENT, Context, Controller, SharedInformers
from controlplane.controllers.settings import ControllerSettings

logger = logging.getLogger(__name__)

LEASE_NAMESPACE: Final = "kube-system"
LEASE_NAME: Final = "bramble-controller-manager"

# name -> "module:Class"; imported when enabled, so a controller's module costs nothing
# when it is switched off.
CONTROLLERS: Final[dict[str, str]] = {
    "daemonset": "controlplane.controllers.daemonset:DaemonSetController",
    "job": "controlplane.controllers.job:JobController",
    "ttlafterfinished": "controlplane.controllers.ttlafterfinished:TTLAfterFinishedController",
    "replicaset": "controlplane.controllers.replicaset:ReplicaSetController",
    "deployment": "controlplane.controllers.deployment:DeploymentController",
    "garbagecollector": "controlplane.controllers.garbagecollector:GarbageCollector",
    "nodelifecycle": "controlplane.controllers.nodelifecycle:NodeLifecycleController",
    "podgc": "controlplane.controllers.podgc:PodGC",
}


class UnknownController(ValueError):
    pass


def controller_classes(names: Iterable[str] | None = None) -> list[type[Controller]]:
    chosen = list(CONTROLLERS) if names is None else list(names)
    classes: list[type[Controller]] = []
    for name in chosen:
        target = CONTROLLERS.get(name)
        if target is None:
            known = ", ".join(sorted(CONTROLLERS))
            raise UnknownController(f'unknown controller "{name}" (known: {known})')
        module, _, attribute = target.partition(":")
        cls = getattr(importlib.import_module(module), attribute)
        assert isinstance(cls, type)
        assert issubclass(cls, Controller)
        classes.append(cls)
    return classes


@dataclass(frozen=True, slots=True)
class ManagerConfig:
    controllers: tuple[str, ...] | None = None  # None: all of them
    leader_elect: bool = True
    lease_duration: float = 15.0  # kube-controller-manager's defaults
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    settings: ControllerSettings = field(default_factory=ControllerSettings)


async def run_controllers(
    client: ApiClient,
    classes: list[type[Controller]],
    *,
    identity: str,
    ready: asyncio.Event | None = None,
    settings: ControllerSettings | None = None,
    clock: Callable[[], datetime] | None = None,
) -> None:
    """One term: informers, controllers, workers, until cancelled. ``clock``: the
    controllers' ``Context.now`` (tests inject one)."""
    informers = SharedInformers(client)
    recorder = EventRecorder(client, instance=identity, component=COMPONENT, action="Reconcile")
    ctx = Context(
        client=client, informers=informers, recorder=recorder,
        settings=settings or ControllerSettings(),
    )  # fmt: skip
    if clock is not None:
        ctx.now = clock
    controllers = [cls(ctx) for cls in classes]
    informers.start()
    tasks = [asyncio.create_task(recorder.run(), name="controller-events")]
    try:
        await informers.wait_synced()
        tasks += [asyncio.create_task(c.run(), name=f"controller-{c.name}") for c in controllers]
        logger.info("controllers running: %s", " ".join(c.name for c in controllers))
        if ready is not None:
            ready.set()
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(recorder.flush(), 1)
        await informers.stop()


async def run_manager(
    kubeconfig: Path,
    *,
    config: ManagerConfig | None = None,
    identity: str | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Run the controllers while leading, until cancelled; the lease is released on the
    way out so that a standby takes over at once."""
    config = config or ManagerConfig()
    identity = identity or f"{socket.gethostname()}_{uuid.uuid4()}"
    classes = controller_classes(config.controllers)
    client = await ApiClient.from_kubeconfig(kubeconfig)
    try:

        async def lead() -> None:
            await run_controllers(
                client, classes, identity=identity, ready=ready, settings=config.settings
            )

        if not config.leader_elect:
            await lead()
            return
        elector = LeaderElector(
            client,
            ElectionConfig(
                namespace=LEASE_NAMESPACE,
                name=LEASE_NAME,
                identity=identity,
                lease_duration=config.lease_duration,
                renew_deadline=config.renew_deadline,
                retry_period=config.retry_period,
            ),
        )
        logger.info(
            "controller manager waiting for lease=%s/%s identity=%s",
            LEASE_NAMESPACE, LEASE_NAME, identity,
        )  # fmt: skip
        await elector.run(lead)
    finally:
        await client.close()
