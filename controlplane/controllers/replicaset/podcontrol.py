"""The pod writes a ReplicaSet makes (Kubernetes' ``RealPodControl``): create from the
template in slow-start batches and delete, each with the Event Kubernetes records.
(Adoption and release are ``controllers.claims``, shared with the DaemonSet and Job.)

Slow start (``slowStartBatch``): creations go out in batches of 1, 2, 4, ... and stop at
the first batch with a failure, so a template the apiserver refuses costs one request and
one FailedCreate event per attempt, not one per missing replica.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from api import errors
from api.client import ApiClient
from api.resources import resource
from controlplane.controllers.replicaset import pods

logger = logging.getLogger(__name__)

PODS: Final = resource("", "Pod")
Obj = dict[str, Any]
Recorder = Callable[[Obj, str, str, str], None]


class PodControl:
    def __init__(self, client: ApiClient, record: Recorder) -> None:
        self._client = client
        self._record = record

    async def create_batches(
        self, owner: Obj, pod: Obj, count: int
    ) -> tuple[int, Exception | None]:
        """Create ``count`` copies of ``pod``: (how many were created, the first error)."""
        created = 0
        batch = 1
        while created < count:
            size = min(batch, count - created)
            results = await asyncio.gather(
                *(self._create(owner, pod) for _ in range(size)), return_exceptions=True
            )
            failures = [r for r in results if isinstance(r, BaseException)]
            created += size - len(failures)
            for failure in failures:
                if not isinstance(failure, Exception):
                    raise failure  # a cancellation
            if failures:
                first = failures[0]
                assert isinstance(first, Exception)
                return created, first
            batch *= 2
        return created, None

    async def _create(self, owner: Obj, pod: Obj) -> None:
        namespace = pods.meta(owner).get("namespace")
        try:
            made = await self._client.create(PODS, namespace, pod)
        except errors.ApiError as e:
            self._record(owner, "Warning", "FailedCreate", f"Error creating: {e.message}")
            raise
        name = pods.meta(made).get("name")
        logger.info(
            "replicaset=%s/%s created pod=%s", namespace, pods.meta(owner).get("name"), name
        )
        self._record(owner, "Normal", "SuccessfulCreate", f"Created pod: {name}")

    async def delete(self, owner: Obj, pod: Obj) -> Exception | None:
        """Delete one pod; an error is returned (NotFound is success: it is gone)."""
        meta = pods.meta(pod)
        namespace, name = meta.get("namespace"), str(meta.get("name"))
        try:
            await self._client.delete(PODS, namespace, name, uid=meta.get("uid"))
        except (errors.NotFound, errors.Conflict):
            return None  # gone, or the name now belongs to another pod
        except errors.ApiError as e:
            self._record(owner, "Warning", "FailedDelete", f"Error deleting: {e.message}")
            return e
        self._record(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")
        return None


async def gather_errors(calls: list[Awaitable[Exception | None]]) -> list[Exception]:
    results = await asyncio.gather(*calls)
    return [r for r in results if r is not None]
