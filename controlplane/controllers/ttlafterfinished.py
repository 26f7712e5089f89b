"""The TTL-after-finished controller: a Job that finished (Complete or Failed) more than
``spec.ttlSecondsAfterFinished`` seconds ago is deleted with Background propagation,
so the garbage collector then deletes its pods (Kubernetes' ttlafterfinished
controller).

The finish time is ``status.completionTime``, else the finishing condition's
``lastTransitionTime``. Before deleting, the Job is read fresh from the API: the cache
may predate a change of the TTL, and the delete carries the uid precondition so a new
Job of the same name is never deleted in its place.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, ClassVar

from api import errors
from api.resources import resource
from controlplane.controllers.base import Context, Controller, Obj, Result
from controlplane.controllers.job.plan import parse_time

logger = logging.getLogger(__name__)

JOBS = resource("batch", "Job")


def expires_at(job: dict[str, Any]) -> datetime | None:
    """When the Job may be deleted; None when it has no TTL or has not finished."""
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 0:
        return None
    status = job.get("status") or {}
    finished = None
    for condition in status.get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            finished = parse_time(condition.get("lastTransitionTime"))
            break
    else:
        return None
    finished = parse_time(status.get("completionTime")) or finished
    return None if finished is None else finished + timedelta(seconds=ttl)


class TTLAfterFinishedController(Controller):
    name: ClassVar[str] = "ttlafterfinished"
    component: ClassVar[str] = "ttl-after-finished-controller"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.jobs = self.informer(JOBS)
        self.jobs.add_handlers(on_add=self.enqueue, on_update=lambda _old, new: self.enqueue(new))

    async def reconcile(self, key: str) -> Result | None:
        job = self.jobs.get(key)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return None
        due = self._due(job)
        if due is None:
            return None
        if due > 0:
            return Result(requeue_after=due)
        meta = job["metadata"]
        try:
            fresh = await self.ctx.client.get(JOBS, meta["namespace"], meta["name"])
        except errors.NotFound:
            return None
        due = self._due(fresh)
        if due is None or fresh["metadata"].get("deletionTimestamp"):
            return None
        if due > 0:
            return Result(requeue_after=due)
        try:
            await self.ctx.client.delete(
                JOBS, meta["namespace"], meta["name"],
                propagation_policy="Background", uid=fresh["metadata"]["uid"],
            )  # fmt: skip
        except (errors.NotFound, errors.Conflict):
            return None  # gone already, or the name belongs to a new Job now
        logger.info("job=%s deleted ttlSecondsAfterFinished expired", key)
        return None

    def _due(self, job: Obj) -> float | None:
        expiry = expires_at(job)
        if expiry is None:
            return None
        return max((expiry - self.ctx.now()).total_seconds(), 0.0)
