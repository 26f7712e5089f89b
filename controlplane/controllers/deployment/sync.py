"""One reconcile of one Deployment: its writes to ReplicaSets and to itself
(Kubernetes' deployment sync.go: getNewReplicaSet, scaleReplicaSet, cleanupDeployment,
the status writes).

Invariants:

* the Deployment and its ReplicaSets are copies taken for this reconcile; every write
  carries the resourceVersion they were read at, so a stale cache ends in a Conflict and
  a retry, never in a lost update;
* the new ReplicaSet's name is ``<deployment>-<hash>``: a create that finds the name
  taken by the same template under the same owner simply continues (the cache had not
  seen it yet); a different template bumps ``status.collisionCount`` and retries with
  another hash;
* this controller writes ReplicaSets' ``spec.replicas``, ``minReadySeconds`` and
  annotations, never pods.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from api import errors
from api.client import ApiClient
from api.resources import resource
from controlplane.controllers.deployment import revisions as rv
from controlplane.controllers.deployment import status as st
from controlplane.controllers.deployment.objects import (
    meta,
    replicas,
    spec_of,
    view,
)
from controlplane.controllers.deployment.rolling import max_surge, new_rs_new_replicas
from controlplane.controllers.owners import controller_ref

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
DEPLOYMENTS = resource("apps", "Deployment")
REPLICASETS = resource("apps", "ReplicaSet")
Recorder = Callable[[Obj, str, str, str], None]


class Requeue(Exception):
    """Try this Deployment again at once (a hash collision was just recorded)."""


class Sync:
    def __init__(
        self,
        client: ApiClient,
        deployment: Obj,
        replica_sets: list[Obj],
        *,
        record: Recorder,
        now: datetime,
    ) -> None:
        self.client = client
        self.d = copy.deepcopy(deployment)
        self.stored_status = copy.deepcopy(self.d.get("status") or {})
        self.rs_list = list(replica_sets)
        self.record = record
        self.now = now
        self.spec = spec_of(self.d)
        self.namespace = str(meta(self.d).get("namespace"))
        self.name = str(meta(self.d).get("name"))

    @property
    def status(self) -> Obj:
        found = self.d.setdefault("status", {})
        assert isinstance(found, dict)
        return found

    # --- writes -------------------------------------------------------------------------

    async def write_status(self) -> None:
        if self.status == self.stored_status:
            return
        written = await self.client.update(
            DEPLOYMENTS, self.namespace, self.name, self.d, subresource="status"
        )
        self.d = written
        self.stored_status = copy.deepcopy(written.get("status") or {})

    async def set_revision(self, revision: str) -> None:
        """The Deployment carries its new ReplicaSet's revision (SetDeploymentRevision)."""
        annotations = meta(self.d).setdefault("annotations", {})
        if annotations.get(rv.REVISION) == revision:
            return
        annotations[rv.REVISION] = revision
        status = self.status
        written = await self.client.update(DEPLOYMENTS, self.namespace, self.name, self.d)
        self.stored_status = copy.deepcopy(written.get("status") or {})
        written["status"] = status  # what this reconcile has decided so far stays
        self.d = written

    def _replace(self, rs: Obj) -> Obj:
        name = meta(rs).get("name")
        self.rs_list = [r for r in self.rs_list if meta(r).get("name") != name] + [rs]
        return rs

    async def update_rs(self, rs: Obj) -> Obj:
        written = await self.client.update(REPLICASETS, self.namespace, meta(rs)["name"], rs)
        return self._replace(written)

    async def scale(self, rs: Obj, size: int) -> bool:
        """Set a ReplicaSet's size and the Deployment's size annotations on it; whether
        the size changed (scaleReplicaSetAndRecordEvent)."""
        before = replicas(rs)
        most = self.spec.replicas + max_surge(self.spec)
        stale = rv.replicas_annotations_need_update(rv.annotations_of(rs), self.spec.replicas, most)
        if before == size and not stale:
            return False
        changed = copy.deepcopy(rs)
        changed.setdefault("spec", {})["replicas"] = size
        annotations = meta(changed).setdefault("annotations", {})
        annotations[rv.DESIRED_REPLICAS] = str(self.spec.replicas)
        annotations[rv.MAX_REPLICAS] = str(most)
        written = await self.update_rs(changed)
        if before == size:
            return False
        direction = "up" if size > before else "down"
        name = meta(written).get("name")
        message = f"Scaled {direction} replica set {name} from {before} to {size}"
        self.record(self.d, "Normal", "ScalingReplicaSet", message)
        logger.info("deployment=%s/%s %s", self.namespace, self.name, message)
        return True

    async def cleanup(self, old: list[Obj]) -> None:
        """Delete the oldest unused ReplicaSets beyond revisionHistoryLimit."""
        limit = (self.d.get("spec") or {}).get("revisionHistoryLimit")
        if not isinstance(limit, int):
            return
        for rs in rv.history_to_delete(old, limit):
            name = meta(rs)["name"]
            logger.info(
                "deployment=%s/%s deleting old replicaset=%s", self.namespace, self.name, name
            )
            with contextlib.suppress(errors.NotFound):  # already gone: fine
                await self.client.delete(REPLICASETS, self.namespace, name, uid=meta(rs).get("uid"))

    # --- the new ReplicaSet --------------------------------------------------------------

    def template(self) -> Obj:
        found = (self.d.get("spec") or {}).get("template")
        return found if isinstance(found, dict) else {}

    async def new_and_old(self, *, create: bool) -> tuple[Obj | None, list[Obj]]:
        """The new ReplicaSet (created if asked and missing) and the old ones, with the
        revision annotations brought up to date (getAllReplicaSetsAndSyncRevision)."""
        new = rv.find_new(self.template(), self.rs_list)
        old = [rs for rs in self.rs_list if rs is not new]
        revision = rv.max_revision(old) + 1
        if new is not None:
            return await self._existing(new, revision), old
        if not create:
            return None, old
        return await self._create(old, revision), old

    async def _existing(self, new: Obj, revision: int) -> Obj:
        changed = copy.deepcopy(new)
        annotations = meta(changed).setdefault("annotations", {})
        updated = rv.set_new_rs_annotations(self.d, annotations, revision)
        ready = (self.d.get("spec") or {}).get("minReadySeconds", 0)
        if updated or (changed.get("spec") or {}).get("minReadySeconds", 0) != ready:
            changed.setdefault("spec", {})["minReadySeconds"] = ready
            new = await self.update_rs(changed)
        await self.set_revision(rv.annotations_of(new).get(rv.REVISION, str(revision)))
        if (
            st.has_progress_deadline(self.d)
            and st.get_condition(self.status, st.PROGRESSING) is None
        ):
            message = f'Found new replica set "{meta(new).get("name")}"'
            cond = st.condition(st.PROGRESSING, "True", st.FOUND_NEW_RS, message, self.now)
            st.set_condition(self.status, cond)
            await self.write_status()
        return new

    def _blueprint(self) -> Obj:
        collisions = self.status.get("collisionCount")
        template = copy.deepcopy(self.template())
        pod_hash = rv.compute_hash(template, collisions if isinstance(collisions, int) else None)
        labels = {**((template.get("metadata") or {}).get("labels") or {}), rv.HASH_LABEL: pod_hash}
        template.setdefault("metadata", {})["labels"] = labels
        selector = copy.deepcopy((self.d.get("spec") or {}).get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), rv.HASH_LABEL: pod_hash}
        d_meta = meta(self.d)
        owner = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": self.name,
            "uid": d_meta.get("uid"),
            "controller": True,
            "blockOwnerDeletion": True,
        }
        spec = self.d.get("spec") or {}
        return {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{self.name}-{pod_hash}",
                "namespace": self.namespace,
                "labels": dict(labels),
                "ownerReferences": [owner],
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": spec.get("minReadySeconds", 0),
                "selector": selector,
                "template": template,
            },
        }

    async def _create(self, old: list[Obj], revision: int) -> Obj:
        rs = self._blueprint()
        name = rs["metadata"]["name"]
        size = new_rs_new_replicas(self.spec, [view(r) for r in old] + [view(rs)], view(rs))
        rs["spec"]["replicas"] = size
        annotations: dict[str, str] = {}
        rv.set_new_rs_annotations(self.d, annotations, revision)
        annotations[rv.DESIRED_REPLICAS] = str(self.spec.replicas)
        annotations[rv.MAX_REPLICAS] = str(self.spec.replicas + max_surge(self.spec))
        rs["metadata"]["annotations"] = annotations
        existed = False
        try:
            created = await self.client.create(REPLICASETS, self.namespace, rs)
        except errors.AlreadyExists:
            found = await self.client.get(REPLICASETS, self.namespace, name)
            ref = controller_ref(found)
            same = rv.equal_ignore_hash(
                (found.get("spec") or {}).get("template") or {}, self.template()
            )
            if ref is None or ref.get("uid") != meta(self.d).get("uid") or not same:
                await self._collision(name)
            created, existed = found, True
        except errors.ApiError as e:
            if st.has_progress_deadline(self.d):
                message = f'Failed to create new replica set "{name}": {e.message}'
                cond = st.condition(st.PROGRESSING, "False", st.RS_CREATE_ERROR, message, self.now)
                st.set_condition(self.status, cond)
                await self.write_status()
            self.record(
                self.d,
                "Warning",
                "FailedCreate",
                f"Failed to create new replica set {name}: {e.message}",
            )
            raise
        self._replace(created)
        if not existed:
            logger.info("deployment=%s/%s created replicaset=%s", self.namespace, self.name, name)
            if size > 0:
                message = f"Scaled up replica set {name} from 0 to {size}"
                self.record(self.d, "Normal", "ScalingReplicaSet", message)
        await self.set_revision(str(revision))
        if not existed and st.has_progress_deadline(self.d):
            message = f'Created new replica set "{name}"'
            cond = st.condition(st.PROGRESSING, "True", st.NEW_RS_CREATED, message, self.now)
            st.set_condition(self.status, cond)
            await self.write_status()
        return created

    async def _collision(self, name: str) -> None:
        count = int(self.status.get("collisionCount") or 0) + 1
        self.status["collisionCount"] = count
        logger.info(
            "deployment=%s/%s hash collision on replicaset=%s collisionCount=%d",
            self.namespace, self.name, name, count,
        )  # fmt: skip
        await self.write_status()
        raise Requeue(name)
