"""The DaemonSet controller's writes of ControllerRevisions: find or create the current
template's revision, renumber it, drop duplicates and old revisions, as ``history``
decides.

Which revisions are a DaemonSet's: those whose controller ownerReference carries its uid
(an owner index on the shared informer), plus orphans its selector matches, which it
adopts, minus owned ones that no longer match, which it releases (Kubernetes'
``ControllerRevisionControllerRefManager``). Every write carries the resourceVersion the
cache showed, so a revision changed meanwhile gives a Conflict and the reconcile is
retried from fresh caches; a create racing a lagging cache finds the revision with
AlreadyExists and takes it when it holds the same template. A different template under
the same name is a hash collision: the DaemonSet's ``status.collisionCount`` goes up and
the next reconcile hashes again (``snapshot``). Concurrency: called from the reconcile,
one worker per DaemonSet key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from api import errors
from api.client import ApiClient
from api.informer import Informer, key_of
from api.selectors import LabelSelector
from controlplane.controllers.claims import (
    BY_NAMESPACE,
    PODS,
    PodClaims,
    namespace_of,
    owner_reference,
)
from controlplane.controllers.daemonset import history
from controlplane.controllers.daemonset.history import CONTROLLER_REVISIONS, DAEMONSETS
from controlplane.controllers.daemonset.pods import REVISION_HASH
from controlplane.controllers.owners import controller_key, controller_ref, controller_uid

logger = logging.getLogger(__name__)

BY_CONTROLLER: Final = "daemonset/revisions-by-controller-uid"
ORPHANS: Final = "daemonset/orphan-revisions-by-namespace"

Obj = dict[str, Any]


class HashCollision(errors.Conflict):
    """A revision of another template already has this template's name; the
    DaemonSet's collision count was raised. A Conflict: the reconcile is retried once
    the cache shows the new count, as after any write the cache has not caught up with."""


def _orphan_namespace(revision: Mapping[str, Any]) -> list[str]:
    return [] if controller_ref(revision) else namespace_of(revision)


def _labels(obj: Mapping[str, Any]) -> dict[str, str]:
    labels = (obj.get("metadata") or {}).get("labels")
    return labels if isinstance(labels, dict) else {}


class Histories:
    """The revisions of the DaemonSets in ``daemon_sets``, kept in ``revisions``;
    ``enqueue`` queues a DaemonSet for its reconcile."""

    def __init__(
        self,
        client: ApiClient,
        *,
        revisions: Informer,
        daemon_sets: Informer,
        claims: PodClaims,
        enqueue: Callable[[Obj], None],
        enqueue_key: Callable[[str], None],
    ) -> None:
        self._client = client
        self._revisions = revisions
        self._daemon_sets = daemon_sets
        self._claims = claims
        self._enqueue = enqueue
        self._enqueue_key = enqueue_key
        revisions.add_index(BY_CONTROLLER, controller_uid)
        revisions.add_index(ORPHANS, _orphan_namespace)
        daemon_sets.add_index(BY_NAMESPACE, namespace_of)  # the claims' own: a rebuild
        revisions.add_handlers(
            on_add=self._changed,
            on_update=self._updated,
            on_delete=self._changed,
        )

    # --- handlers: enqueue only -------------------------------------------------------

    def _updated(self, old: Obj, new: Obj) -> None:
        self._changed(new)
        if controller_ref(old) != controller_ref(new):
            self._changed(old)  # released: its former owner looks again

    def _changed(self, revision: Obj) -> None:
        """The owner of a revision looks again (a revision deleted by hand is made
        again); an orphan may be adopted by the DaemonSets it matches."""
        key = controller_key(revision, DAEMONSETS.kind)
        if key is not None:
            self._enqueue_key(key)
            return
        if controller_ref(revision) is not None:
            return
        labels = _labels(revision)
        for ns in namespace_of(revision):
            for daemon_set in self._daemon_sets.by_index(BY_NAMESPACE, ns):
                spec = daemon_set.get("spec") or {}
                try:
                    selector = LabelSelector.from_object(spec.get("selector"))
                except (errors.ApiError, ValueError, KeyError, TypeError):
                    continue
                if not selector.empty and selector.matches(labels):
                    self._enqueue(daemon_set)

    # --- the claim --------------------------------------------------------------------

    async def claim(self, daemon_set: Obj, selector: LabelSelector) -> list[Obj]:
        meta = daemon_set["metadata"]
        uid = str(meta.get("uid"))
        claimed: list[Obj] = []
        for revision in self._revisions.by_index(BY_CONTROLLER, uid):
            if selector.matches(_labels(revision)):
                claimed.append(revision)
            else:
                logger.info("daemonset=%s releasing revision=%s", key_of(daemon_set),
                            key_of(revision))  # fmt: skip
                refs = [r for r in _refs(revision) if r.get("uid") != uid]
                await self._patch_refs(revision, refs)
        orphans = [
            r
            for r in self._revisions.by_index(ORPHANS, str(meta.get("namespace")))
            if not (r.get("metadata") or {}).get("deletionTimestamp")
            and selector.matches(_labels(r))
        ]
        if orphans and not selector.empty and await self._claims.can_adopt(daemon_set):
            ref = owner_reference(daemon_set, DAEMONSETS)
            for revision in orphans:
                logger.info("daemonset=%s adopting revision=%s", key_of(daemon_set),
                            key_of(revision))  # fmt: skip
                refs = [r for r in _refs(revision) if r.get("uid") != ref["uid"]]
                adopted = await self._patch_refs(revision, [*refs, ref])
                if adopted is not None:
                    claimed.append(adopted)
        return claimed

    async def _patch_refs(self, revision: Obj, refs: Iterable[Obj]) -> Obj | None:
        meta = revision["metadata"]
        patch = {
            "metadata": {
                "ownerReferences": list(refs) or None,
                "resourceVersion": meta.get("resourceVersion"),
            }
        }
        try:
            return await self._client.patch(
                CONTROLLER_REVISIONS, meta["namespace"], meta["name"], patch
            )
        except errors.NotFound:
            return None

    # --- construct and clean up -------------------------------------------------------

    async def construct(
        self, daemon_set: Obj, selector: LabelSelector, pods: list[Obj]
    ) -> tuple[Obj, tuple[Obj, ...]]:
        """The current template's revision (made or renumbered as needed) and the
        DaemonSet's other revisions. ``pods``: its pods, relabelled when a duplicate
        revision of the current template goes."""
        revisions = await self.claim(daemon_set, selector)
        plan = history.construct(daemon_set, revisions)
        if plan.current is None:
            current = await self._snapshot(daemon_set, plan.next_revision)
        else:
            current = plan.current
            for duplicate in plan.duplicates:
                await self._dedup(daemon_set, current, duplicate, pods)
            if plan.renumber:
                current = await self._renumber(current, plan.next_revision)
        return current, plan.old

    async def _snapshot(self, daemon_set: Obj, number: int) -> Obj:
        wanted = history.snapshot(daemon_set, number)
        meta = wanted["metadata"]
        try:
            created = await self._client.create(CONTROLLER_REVISIONS, meta["namespace"], wanted)
        except errors.AlreadyExists:
            existing = await self._client.get(CONTROLLER_REVISIONS, meta["namespace"], meta["name"])
            if history.matches(daemon_set, existing):
                return existing  # made by an earlier reconcile the cache has not shown yet
            await self._bump_collision_count(daemon_set)
            raise HashCollision(f"revision {meta['name']} holds another template") from None
        logger.info("daemonset=%s created revision=%s number=%d", key_of(daemon_set),
                    meta["name"], number)  # fmt: skip
        return created

    async def _bump_collision_count(self, daemon_set: Obj) -> None:
        """Raise ``status.collisionCount`` on the DaemonSet as the API has it, unless the
        count this reconcile hashed with is stale (then a retry hashes with the new one)."""
        meta = daemon_set["metadata"]
        fresh = await self._client.get(DAEMONSETS, meta["namespace"], meta["name"])
        if history.collision_count(fresh) != history.collision_count(daemon_set):
            return
        status = fresh.setdefault("status", {})
        status["collisionCount"] = history.collision_count(fresh) + 1
        await self._client.update(
            DAEMONSETS, meta["namespace"], meta["name"], fresh, subresource="status"
        )
        logger.warning("daemonset=%s hash collision: collisionCount=%d", key_of(daemon_set),
                       status["collisionCount"])  # fmt: skip

    async def _renumber(self, revision: Obj, number: int) -> Obj:
        meta = revision["metadata"]
        updated = {**revision, "revision": number}
        logger.info("daemonset revision=%s/%s renumbered %d -> %d", meta["namespace"],
                    meta["name"], history.number(revision), number)  # fmt: skip
        result: Obj = await self._client.update(
            CONTROLLER_REVISIONS, meta["namespace"], meta["name"], updated
        )
        return result

    async def _dedup(self, daemon_set: Obj, keep: Obj, duplicate: Obj, pods: list[Obj]) -> None:
        """Kubernetes' ``dedupCurHistories``: the pods of the duplicate take the kept
        revision's hash (so they stay up to date), then the duplicate goes. Only the
        duplicate's pods are relabelled: a pod of an older template must stay old."""
        kept_hash = history.revision_hash(keep)
        gone_hash = history.revision_hash(duplicate)
        for pod in pods:
            if _labels(pod).get(REVISION_HASH) != gone_hash:
                continue
            meta = pod["metadata"]
            patch = {"metadata": {"labels": {REVISION_HASH: kept_hash}}}
            try:
                await self._client.patch(PODS, meta["namespace"], meta["name"], patch)
            except errors.NotFound:
                continue
        await self._delete(duplicate)

    async def cleanup(self, daemon_set: Obj, old: Iterable[Obj], pods: Iterable[Obj]) -> None:
        """Delete the old revisions beyond the history limit that no pod carries."""
        live = {h for p in pods if (h := _labels(p).get(REVISION_HASH))}
        doomed = history.to_delete(
            list(old), limit=history.history_limit(daemon_set), live_hashes=live
        )
        for revision in doomed:
            await self._delete(revision)

    async def _delete(self, revision: Obj) -> None:
        meta = revision["metadata"]
        try:
            await self._client.delete(
                CONTROLLER_REVISIONS, meta["namespace"], meta["name"], uid=meta.get("uid")
            )
        except errors.NotFound:
            return
        logger.info("daemonset revision=%s/%s deleted", meta["namespace"], meta["name"])


def _refs(obj: Mapping[str, Any]) -> list[Obj]:
    refs = (obj.get("metadata") or {}).get("ownerReferences")
    return [r for r in refs if isinstance(r, dict)] if isinstance(refs, list) else []
