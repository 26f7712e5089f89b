"""The Job controller's reconcile: read the Job and its pods from the caches, let
``plan_job`` decide, then apply in the order that never loses a count: the status
first (counts, conditions, and the uids of newly finished pods), then the pods'
``counted`` marks, then deletions, then creations.

Pods are the Job's when their controller ownerReference carries its uid (an owner
index); orphans its selector matches are adopted and its pods that no longer match
released (``claims``; with the generated selector only a ``manualSelector`` Job can
meet an orphan). Creations and deletions are expected (``Expectations``) until the
cache shows them, so a lagging cache never starts more than ``parallelism`` pods; until
then the Job is only looked at again. The failure back-off lives in memory per Job, as
Kubernetes' backoffRecord: a new leader starts it from zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from typing import ClassVar

from api import errors
from api.resources import resource
from controlplane.controllers.base import (
    Context,
    Controller,
    Expectations,
    Obj,
    Result,
    watch_owned_pods,
)
from controlplane.controllers.claims import PodClaims, owner_reference, selector_of
from controlplane.controllers.job.plan import Backoff, JobPlan, plan_job
from controlplane.controllers.job.tracking import COUNTED

logger = logging.getLogger(__name__)

JOBS = resource("batch", "Job")
PODS = resource("", "Pod")


def new_pod(job: Obj) -> Obj:
    meta = job["metadata"]
    template = job["spec"]["template"]
    template_meta = template.get("metadata") or {}
    pod_meta: Obj = {
        "generateName": f"{meta['name']}-",
        "namespace": meta["namespace"],
        "labels": dict(template_meta.get("labels") or {}),
        "ownerReferences": [owner_reference(job, JOBS)],
    }
    if template_meta.get("annotations"):
        pod_meta["annotations"] = dict(template_meta["annotations"])
    spec = copy.deepcopy(template.get("spec") or {})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


class JobController(Controller):
    name: ClassVar[str] = "job"
    # Kubernetes' DefaultJobPodFailureBackOff and MaxJobPodFailureBackOff; tests shorten.
    BACKOFF_BASE: ClassVar[float] = 10.0
    BACKOFF_MAX: ClassVar[float] = 360.0

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.jobs = self.informer(JOBS)
        self.pods = self.informer(PODS)
        self.claims = PodClaims(ctx.client, pods=self.pods, owners=self.jobs, enqueue=self.enqueue)
        self.expectations = Expectations()
        self._backoff: dict[str, Backoff] = {}
        self.jobs.add_handlers(
            on_add=self.enqueue,
            on_update=lambda _old, new: self.enqueue(new),
            on_delete=self.enqueue,
        )
        watch_owned_pods(self.pods, self.queue, self.expectations, owner_kind="Job")

    async def reconcile(self, key: str) -> Result | None:
        job = self.jobs.get(key)
        if job is None:
            self.expectations.forget(key)
            self._backoff.pop(key, None)
            return None
        if job["metadata"].get("deletionTimestamp") or not self.expectations.satisfied(key):
            return None
        try:
            selector = selector_of(job)
        except errors.ApiError as e:
            self.record(job, "Warning", "InvalidSelector", f"Invalid selector: {e.message}")
            logger.warning("job=%s invalid selector: %s", key, e.message)
            return None
        pods = await self.claims.claim(job, selector)
        try:
            plan = plan_job(
                job, pods, now=self.ctx.now(), backoff=self._backoff.get(key, Backoff()),
                backoff_base=self.BACKOFF_BASE, backoff_max=self.BACKOFF_MAX,
            )  # fmt: skip
        except (TypeError, ValueError, KeyError) as e:
            self.record(job, "Warning", "InvalidSpec", f"cannot run this Job: {e}")
            logger.warning("job=%s invalid: %s", key, e)
            return None
        await self._apply(key, job, plan, pods)
        return Result(requeue_after=plan.requeue_after) if plan.requeue_after else None

    async def _apply(self, key: str, job: Obj, plan: JobPlan, pods: list[Obj]) -> None:
        meta = job["metadata"]
        namespace = meta["namespace"]
        if plan.status != (job.get("status") or {}):
            updated = copy.deepcopy(job)
            updated["status"] = plan.status
            await self.ctx.client.update(
                JOBS, namespace, meta["name"], updated, subresource="status"
            )
        if plan.counted_new:  # only once the uids are recorded in the Job
            self._backoff[key] = plan.backoff
        for event in plan.events:
            self.record(job, event.kind, event.reason, event.message)
        marks = {"metadata": {"annotations": {COUNTED: ""}}}
        await asyncio.gather(*(self._mark(namespace, name, marks) for name in plan.mark))
        if plan.delete or plan.create:
            self.expectations.expect(key, creations=plan.create, deletions=len(plan.delete))
        by_name = {p["metadata"]["name"]: p for p in pods}
        await asyncio.gather(
            *(self._delete(key, job, by_name[name]) for name in plan.delete),
            *(self._create(key, job) for _ in range(plan.create)),
        )

    async def _mark(self, namespace: str, name: str, patch: Obj) -> None:
        # A pod already gone is fine: its uid is recorded, and a missing pod settles too.
        with contextlib.suppress(errors.NotFound):
            await self.ctx.client.patch(PODS, namespace, name, patch)

    async def _create(self, key: str, job: Obj) -> None:
        try:
            created = await self.ctx.client.create(PODS, job["metadata"]["namespace"], new_pod(job))
        except errors.ApiError as e:
            self.expectations.created(key)
            self.record(job, "Warning", "FailedCreate", f"Error creating: {e.message}")
            logger.warning("job=%s create failed: %s", key, e.message)
            return
        name = created["metadata"]["name"]
        logger.info("job=%s created pod=%s", key, name)
        self.record(job, "Normal", "SuccessfulCreate", f"Created pod: {name}")

    async def _delete(self, key: str, job: Obj, pod: Obj) -> None:
        meta = pod["metadata"]
        try:
            await self.ctx.client.delete(PODS, meta["namespace"], meta["name"], uid=meta["uid"])
        except errors.NotFound:
            self.expectations.deleted(key)
            return
        except errors.ApiError as e:
            self.expectations.deleted(key)
            self.record(job, "Warning", "FailedDelete", f"Error deleting: {e.message}")
            logger.warning("job=%s pod=%s delete failed: %s", key, meta["name"], e.message)
            return
        logger.info("job=%s deleted pod=%s", key, meta["name"])
        self.record(job, "Normal", "SuccessfulDelete", f"Deleted pod: {meta['name']}")
