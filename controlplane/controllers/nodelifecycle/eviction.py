"""What happens to the pods of one node (Kubernetes' taint eviction controller, and
MarkPodsNotReady): evicted when a NoExecute taint is not tolerated or its
tolerationSeconds ran out, force-deleted when their node is unreachable and their
deletion grace period is over (their agent can never confirm), marked not ready while
their node is unreachable (with a Warning event NodeNotReady, as Kubernetes does).

State kept between reconciles, all of it safe to lose on a restart: the exact moment
this controller added each NoExecute taint (timeAdded has whole seconds), when it first
saw one without timeAdded, and the pods it deleted but the cache does not show deleted
yet (so that one eviction is not recorded twice).
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final

from api import errors
from api.client import ApiClient
from api.resources import resource
from controlplane.controllers.nodelifecycle import health as hl
from controlplane.controllers.nodelifecycle import taints as tn

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
Recorder = Callable[[Obj, str, str, str], None]

PODS = resource("", "Pod")
NODE_UNREACHABLE: Final = "NodeUnreachable"  # the Ready reason of pods we marked


def _pod_key(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


class PodEvictor:
    def __init__(self, client: ApiClient, record: Recorder) -> None:
        self._client = client
        self._record = record
        # (node, taint key) -> when this controller added, or first saw, a NoExecute taint
        self._added: dict[tuple[str, str], datetime] = {}
        self._first_seen: dict[tuple[str, str], datetime] = {}
        self._evicting: set[str] = set()  # pod uids deleted, until the cache shows it

    def taint_added(self, node: str, key: str, now: datetime) -> None:
        self._added[(node, key)] = now

    def pod_deleted(self, pod: Obj) -> None:
        self._evicting.discard(str((pod.get("metadata") or {}).get("uid")))

    def forget(self, node: str) -> None:
        for times in (self._added, self._first_seen):
            for stale in [k for k in times if k[0] == node]:
                del times[stale]

    async def sync(
        self, node: Obj, pods: list[Obj], health: hl.Health, *, evicting: bool, now: datetime
    ) -> list[datetime]:
        """Evict, force-delete and mark not ready the node's pods; returns when to look
        again."""
        name = str(node["metadata"]["name"])
        present = {str(t.get("key")) for t in tn.no_execute_taints(node)}
        for times in (self._added, self._first_seen):
            for gone in [k for k in times if k[0] == name and k[1] not in present]:
                del times[gone]  # a taint that comes back starts a new clock
        no_execute = [
            (
                taint,
                tn.taint_started(
                    taint,
                    added_here=self._added.get((name, str(taint.get("key")))),
                    first_seen=self._first_seen.setdefault((name, str(taint.get("key"))), now),
                ),
            )
            for taint in tn.no_execute_taints(node)
        ]
        deadlines: list[datetime] = []
        for pod in pods:
            meta = pod.get("metadata") or {}
            uid = str(meta.get("uid") or "")
            phase = (pod.get("status") or {}).get("phase")
            deleting = tn.parse_time(meta.get("deletionTimestamp"))
            try:
                if deleting is not None:
                    self._evicting.discard(uid)  # the cache has caught up
                    if health is hl.Health.UNREACHABLE:
                        if deleting <= now:
                            await self._force_delete(pod, name)
                        else:
                            deadlines.append(deleting)
                    continue
                if phase in ("Succeeded", "Failed"):
                    continue  # nothing runs: pod GC's business
                if health is not hl.Health.NOT_READY:
                    await self._set_ready(pod, name, ready=health is hl.Health.READY, now=now)
                if not no_execute or not evicting or uid in self._evicting:
                    continue
                tolerations = (pod.get("spec") or {}).get("tolerations") or []
                at = tn.eviction_time(tolerations, no_execute)
                if at is None:
                    continue
                if at > now:
                    deadlines.append(at)
                    continue
                await self._evict(pod, name)
            except errors.ApiError as e:
                # One pod's failed write does not hold up the others; look again soon.
                logger.info("pod=%s node=%s write failed: %s", _pod_key(pod), name, e.message)
                deadlines.append(now + timedelta(seconds=1))
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                # A malformed pod is skipped, and said so, without holding up the others.
                logger.warning("pod=%s node=%s unreadable: %r", _pod_key(pod), name, e)
                self._record(pod, "Warning", "EvictionSkipped", f"Cannot read the pod: {e!r}")
        return deadlines

    async def _evict(self, pod: Obj, node: str) -> None:
        meta = pod["metadata"]
        logger.info("evicting pod=%s node=%s", _pod_key(pod), node)
        self._record(
            pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {_pod_key(pod)}"
        )
        self._evicting.add(str(meta.get("uid")))
        # NotFound: gone already; Conflict: the name is another pod's now.
        with contextlib.suppress(errors.NotFound, errors.Conflict):
            await self._client.delete(PODS, meta["namespace"], meta["name"], uid=meta.get("uid"))

    async def _force_delete(self, pod: Obj, node: str) -> None:
        meta = pod["metadata"]
        logger.info("force-deleting pod=%s node=%s (node unreachable)", _pod_key(pod), node)
        with contextlib.suppress(errors.NotFound, errors.Conflict):
            await self._client.delete(
                PODS, meta["namespace"], meta["name"], grace_period=0, uid=meta.get("uid")
            )

    async def _set_ready(self, pod: Obj, node: str, *, ready: bool, now: datetime) -> None:
        """Kubernetes' MarkPodsNotReady (Ready True -> False, here with a reason of our
        own), and its undoing when the node is back: only a False with our reason turns
        True again. The agent writes a pod's status only when its own view changes, so
        without this a pod would stay unready after a long blip and its Service would
        lose it for good; a pod that really turned unready meanwhile is written by its
        agent, whose view then changed."""
        conditions = (pod.get("status") or {}).get("conditions") or []

        def stale(c: object) -> bool:
            if not isinstance(c, dict) or c.get("type") != "Ready":
                return False
            if ready:
                return c.get("status") == "False" and c.get("reason") == NODE_UNREACHABLE
            return c.get("status") == "True"

        if not any(stale(c) for c in conditions):
            return  # the common case, decided without copying the pod
        wanted = "True" if ready else "False"
        fresh = copy.deepcopy(pod)
        for c in fresh["status"]["conditions"]:
            if not stale(c):
                continue
            c.update(status=wanted, lastTransitionTime=tn.stamp(now))
            if ready:
                c.pop("reason", None)
                c.pop("message", None)
            else:
                c.update(reason=NODE_UNREACHABLE, message=f"Node {node} stopped renewing its lease")
        logger.info("pod=%s node=%s ready=%s", _pod_key(pod), node, wanted)
        meta = fresh["metadata"]
        try:
            await self._client.update(
                PODS, meta["namespace"], meta["name"], fresh, subresource="status"
            )
        except errors.NotFound:
            return
        if not ready:  # after the write, as Kubernetes: the pod still exists
            self._record(pod, "Warning", "NodeNotReady", "Node is not ready")
