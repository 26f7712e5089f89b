"""The pod writes a ReplicaSet makes (Kubernetes' ``RealPodControl`` and
``PodControllerRefManager``): create from the template in slow-start batches, delete,
adopt and release, each with the Event Kubernetes records.

Slow start (``slowStartBatch``): creations go out in batches of 1, 2, 4, ... and stop at
the first batch with a failure, so a template the apiserver refuses costs one request and
one FailedCreate event per attempt, not one per missing replica.

Adoption and release are JSON merge patches of ``ownerReferences`` that carry the pod's
resourceVersion: a pod that changed since the cache saw it gives a Conflict (retried)
rather than losing another writer's owner reference.
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

    async def adopt(self, pod: Obj, ref: Obj) -> Obj | None:
        """Add the controller reference; None if the pod is gone."""
        refs = [r for r in _refs(pod) if r.get("uid") != ref.get("uid")]
        return await self._patch_refs(pod, [*refs, ref])

    async def release(self, pod: Obj, uid: str) -> Obj | None:
        """Remove the reference to ``uid``; None if the pod is gone."""
        return await self._patch_refs(pod, [r for r in _refs(pod) if r.get("uid") != uid])

    async def _patch_refs(self, pod: Obj, refs: list[Obj]) -> Obj | None:
        meta = pods.meta(pod)
        patch = {
            "metadata": {
                "ownerReferences": refs or None,
                "resourceVersion": meta.get("resourceVersion"),
            }
        }
        try:
            return await self._client.patch(
                PODS, meta.get("namespace"), str(meta.get("name")), patch
            )
        except errors.NotFound:
            return None


def _refs(obj: Obj) -> list[Obj]:
    refs = pods.meta(obj).get("ownerReferences")
    return [r for r in refs if isinstance(r, dict)] if isinstance(refs, list) else []


async def gather_errors(calls: list[Awaitable[Exception | None]]) -> list[Exception]:
    results = await asyncio.gather(*calls)
    return [r for r in results if r is not None]
