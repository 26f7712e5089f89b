"""Running the scheduler as a component: an API client from a kubeconfig, leader
election through the Lease ``kube-system/bramble-scheduler`` (so that of two servers only
one schedules), and a fresh ``Scheduler`` for every term of leadership: a replica that
lost the lease and wins it again starts from what the API says then, never from a cache
that went stale while another replica was binding pods.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from pathlib import Path

from api.client import ApiClient
from api.leaderelection import ElectionConfig, LeaderElector
from controlplane.scheduler.config import SchedulerConfig
from controlplane.scheduler.scheduler import Scheduler

logger = logging.getLogger(__name__)


def default_identity() -> str:
    """As kube-scheduler: the hostname and a unique suffix per process."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


async def run_scheduler(
    kubeconfig: Path,
    *,
    config: SchedulerConfig | None = None,
    identity: str | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Schedule (while leading) until cancelled; the lease is released on the way out."""
    config = config or SchedulerConfig()
    identity = identity or default_identity()
    client = await ApiClient.from_kubeconfig(kubeconfig)
    try:

        async def lead() -> None:
            await Scheduler(client, config, identity=identity).run(ready=ready)

        election = config.leader_election
        if not election.leader_elect:
            await lead()
            return
        elector = LeaderElector(
            client,
            ElectionConfig(
                namespace=election.namespace,
                name=election.name,
                identity=identity,
                lease_duration=election.lease_duration,
                renew_deadline=election.renew_deadline,
                retry_period=election.retry_period,
            ),
        )
        logger.info(
            "scheduler waiting for lease=%s/%s identity=%s",
            election.namespace, election.name, identity,
        )  # fmt: skip
        await elector.run(lead)
    finally:
        await client.close()
