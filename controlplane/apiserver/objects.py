"""The object lifecycle, independent of HTTP: create, read, update, delete.

Reads come from the watch cache. Writes go to the store with a compare-and-swap on the
object's revision, and return only once the watch cache has seen them, so that a client
reads its own writes from any cached list or watch. ``guaranteed_update`` re-reads and
retries when a write loses a race and the caller did not pin a resourceVersion (as
Kubernetes' GuaranteedUpdate does).

Deletion follows Kubernetes: an object with finalizers, or a pod bound to a node with a
grace period, first gets ``deletionTimestamp``; it leaves the store when the last
finalizer is removed or (pods) when its node confirms with grace period 0.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from api import errors
from api.resources import Resource, by_kind
from controlplane import store as st
from controlplane.apiserver import admission, storage
from controlplane.apiserver.cache import Entry, WatchCache

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
Clock = Callable[[], datetime]

# A write is answered when the cache has it; if the cache is unhealthy, do not wait long.
_CACHE_WAIT = 5.0
_MAX_RETRIES = 16
# A deletion deadline further away than this is as good as never; datetime stops at
# year 9999, and a client may ask for any grace period up to 2**63 - 1 seconds.
_LONGEST_GRACE = 100 * 365 * 86400

NAMESPACES = by_kind("", "Namespace")
assert NAMESPACES is not None


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class DeleteOptions:
    grace_period_seconds: int | None = None
    propagation_policy: str | None = None  # Background, Foreground, Orphan
    precondition_uid: str | None = None
    precondition_resource_version: str | None = None
    dry_run: bool = False


class Objects:
    def __init__(self, store: st.Store, cache: WatchCache, *, clock: Clock = utcnow) -> None:
        self.store = store
        self.cache = cache
        self.clock = clock

    # --- reads ------------------------------------------------------------------------

    def get(self, resource: Resource, namespace: str | None, name: str) -> Entry:
        entry = self.cache.resource(resource).objects.get(storage.key(resource, namespace, name))
        if entry is None:
            raise _not_found(resource, name)
        return entry

    # --- create -----------------------------------------------------------------------

    async def create(
        self, resource: Resource, namespace: str | None, obj: Obj, *, dry_run: bool = False
    ) -> Obj:
        admission.prepare_create(resource, obj, namespace=namespace, now=self.clock())
        admission.validate(resource, obj)
        if resource.namespaced:
            self._check_namespace(resource, str(namespace), obj)
        name = obj["metadata"]["name"]
        if dry_run:
            if self.cache.resource(resource).objects.get(storage.key(resource, namespace, name)):
                raise _exists(resource, name)
            return obj
        try:
            kv = await self.store.create(
                storage.key(resource, namespace, name), storage.encode(obj)
            )
        except st.StoreError as e:
            raise storage.translate(e, resource, name) from e
        await self._settle(kv.mod_revision)
        obj["metadata"]["resourceVersion"] = str(kv.mod_revision)
        return obj

    def _check_namespace(self, resource: Resource, namespace: str, obj: Obj) -> None:
        assert NAMESPACES is not None
        ns = self.cache.resource(NAMESPACES).objects.get(storage.key(NAMESPACES, None, namespace))
        if ns is None:
            raise errors.NotFound(
                f'namespaces "{namespace}" not found', name=namespace, kind="namespaces"
            )
        if ns.deleting and resource.kind != "Event":
            raise errors.Forbidden(
                f'{resource.plural} "{obj["metadata"].get("name", "")}" is forbidden: unable to '
                f"create new content in namespace {namespace} because it is being terminated",
                name=str(obj["metadata"].get("name", "")),
                group=resource.group,
                kind=resource.plural,
            )

    # --- update -----------------------------------------------------------------------

    async def update(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        obj: Obj,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """PUT: replace the object (or its status). A resourceVersion in the body is a
        precondition; without one the update is unconditional."""
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        assert isinstance(meta, dict)
        if meta.get("name") not in (None, "", name):
            raise errors.BadRequest(
                f"the name of the object ({meta.get('name')}) does not match the name on the "
                f"URL ({name})"
            )
        meta["name"] = name
        obj["metadata"] = meta
        pinned = _revision_of(meta.get("resourceVersion"))

        def mutate(current: Obj) -> Obj:
            return _copy(obj)

        return await self.guaranteed_update(
            resource, namespace, name, mutate, subresource=subresource, pinned=pinned,
            dry_run=dry_run,
        )  # fmt: skip

    async def guaranteed_update(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        mutate: Callable[[Obj], Obj],
        *,
        subresource: str | None = None,
        pinned: int | None = None,
        dry_run: bool = False,
        admit: bool = True,
    ) -> Obj:
        """Read, ``mutate`` (which returns the desired object), admit, CAS; retry on a
        lost race unless the caller pinned a revision (then 409). ``admit=False`` is for
        the server's own metadata changes (deletion), which clients may not make."""
        key = storage.key(resource, namespace, name)
        # Each call decodes a fresh copy of the object as stored: ``current`` stays as it
        # is for the comparisons, ``mutate`` gets one of its own to change.
        fresh: Callable[[], Obj] = self.get(resource, namespace, name).obj
        current = fresh()
        revision = int(current["metadata"]["resourceVersion"])
        for _ in range(_MAX_RETRIES):
            if pinned is not None and pinned != revision:
                raise storage.translate(
                    st.Conflict(key, expected=pinned, current=st.KeyValue(key, b"", 0, revision)),
                    resource,
                    name,
                )
            new = mutate(fresh())
            if admit:
                new = admission.prepare_update(
                    resource, new, current, subresource=subresource, now=self.clock()
                )
                admission.validate(resource, new, current)
            meta = new["metadata"]
            meta.pop("resourceVersion", None)
            if _same(new, current):
                return current  # nothing changed: no write, no new revision
            if dry_run:
                meta["resourceVersion"] = str(revision)
                return new
            try:
                if _deletion_complete(resource, new):
                    return await self._remove(resource, key, name, revision, new)
                kv = await self.store.update(key, storage.encode(new), expected_revision=revision)
            except st.Conflict as e:
                fresh = functools.partial(storage.decode, e.current.value, e.current.mod_revision)
                current = fresh()
                revision = e.current.mod_revision
                continue
            except st.StoreError as e:
                raise storage.translate(e, resource, name) from e
            await self._settle(kv.mod_revision)
            meta["resourceVersion"] = str(kv.mod_revision)
            return new
        raise errors.Conflict(
            f'{resource.qualified} "{name}": too many concurrent updates; try again',
            name=name,
            group=resource.group,
            kind=resource.plural,
        )

    # --- delete -----------------------------------------------------------------------

    async def delete(
        self, resource: Resource, namespace: str | None, name: str, options: DeleteOptions
    ) -> tuple[Obj, bool]:
        """Delete or start a graceful deletion. Returns (object, removed now). A write
        that lands between the read and the delete (a status update) does not fail it:
        the decision is taken again on the object as it now is, as Kubernetes'
        conditional delete does; only the caller's own preconditions give 409."""
        current = self.get(resource, namespace, name).obj()
        for _ in range(_MAX_RETRIES):
            try:
                return await self._delete(resource, namespace, name, options, current)
            except st.Conflict as e:
                current = storage.decode(e.current.value, e.current.mod_revision)
        raise errors.Conflict(
            f'{resource.qualified} "{name}": too many concurrent updates; try again',
            name=name, group=resource.group, kind=resource.plural,
        )  # fmt: skip

    async def _delete(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        options: DeleteOptions,
        current: Obj,
    ) -> tuple[Obj, bool]:
        meta = current["metadata"]
        if options.precondition_uid and options.precondition_uid != meta.get("uid"):
            raise errors.Conflict(
                f"Precondition failed: UID in precondition: {options.precondition_uid}, "
                f"UID in object meta: {meta.get('uid')}",
                name=name, group=resource.group, kind=resource.plural,
            )  # fmt: skip
        if (
            options.precondition_resource_version
            and options.precondition_resource_version != meta.get("resourceVersion")
        ):
            raise errors.Conflict(
                "Precondition failed: ResourceVersion in precondition: "
                f"{options.precondition_resource_version}, ResourceVersion in object meta: "
                f"{meta.get('resourceVersion')}",
                name=name, group=resource.group, kind=resource.plural,
            )  # fmt: skip
        grace = self._grace_period(resource, current, options)
        finalizers = list(meta.get("finalizers") or [])
        if options.propagation_policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        if options.propagation_policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        if resource.kind == "Namespace" and resource.group == "":
            return await self._mark_deleted(
                resource, namespace, name, 0, finalizers, options
            ), False
        if finalizers or grace > 0:
            return (
                await self._mark_deleted(resource, namespace, name, grace, finalizers, options),
                False,
            )
        if options.dry_run:
            return current, False
        key = storage.key(resource, namespace, name)
        last = await self._remove(resource, key, name, int(meta["resourceVersion"]), current)
        return last, True

    def _grace_period(self, resource: Resource, obj: Obj, options: DeleteOptions) -> int:
        if resource.kind != "Pod" or resource.group != "":
            return 0
        if options.grace_period_seconds is not None:
            return max(0, options.grace_period_seconds)
        spec = obj.get("spec") or {}
        phase = (obj.get("status") or {}).get("phase")
        # An unscheduled pod, or one that has finished, has nothing to stop.
        if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
            return 0
        value = spec.get("terminationGracePeriodSeconds", 30)
        return value if isinstance(value, int) and value >= 0 else 30

    async def _mark_deleted(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        grace: int,
        finalizers: list[str],
        options: DeleteOptions,
    ) -> Obj:
        now = self.clock()

        def mutate(obj: Obj) -> Obj:
            meta = obj["metadata"]
            meta["finalizers"] = finalizers or meta.get("finalizers") or []
            if not meta["finalizers"]:
                meta.pop("finalizers")
            deadline = now + timedelta(seconds=min(grace, _LONGEST_GRACE))
            existing = _parse_time(meta.get("deletionTimestamp"))
            if existing is None or deadline < existing:
                # A shorter grace period may cut a pending one short, never lengthen it.
                meta["deletionTimestamp"] = admission.timestamp(deadline)
                meta["deletionGracePeriodSeconds"] = grace
            if resource.kind == "Namespace":
                obj.setdefault("status", {})["phase"] = "Terminating"
            return obj

        return await self.guaranteed_update(
            resource, namespace, name, mutate, dry_run=options.dry_run, admit=False
        )

    async def _remove(
        self, resource: Resource, key: str, name: str, revision: int, last: Obj
    ) -> Obj:
        """Delete the object at ``revision``; a write since raises st.Conflict (the
        caller decides again), any other store error its API error."""
        try:
            kv = await self.store.delete(key, expected_revision=revision)
        except st.Conflict:
            raise
        except st.StoreError as e:
            raise storage.translate(e, resource, name) from e
        await self._settle(kv.mod_revision)
        last["metadata"]["resourceVersion"] = str(kv.mod_revision)
        return last

    # --- internals --------------------------------------------------------------------

    async def _settle(self, revision: int) -> None:
        """Answer a write only once the watch cache has it (read-your-writes)."""
        if self.cache.healthy and not await self.cache.wait_for(revision, _CACHE_WAIT):
            logger.warning("watch cache did not see revision=%d in time", revision)


def _deletion_complete(resource: Resource, obj: Obj) -> bool:
    meta = obj["metadata"]
    if not meta.get("deletionTimestamp") or meta.get("finalizers"):
        return False
    if resource.kind == "Namespace" and resource.group == "":
        return not (obj.get("spec") or {}).get("finalizers")
    if resource.kind == "Pod" and resource.group == "":
        # A pod leaves when its node confirms the containers are gone (grace 0).
        return bool(meta.get("deletionGracePeriodSeconds") == 0)
    return True


def _same(new: Obj, old: Obj) -> bool:
    old_cmp = {
        **old,
        "metadata": {k: v for k, v in old["metadata"].items() if k != "resourceVersion"},
    }
    return new == old_cmp


def _copy(obj: Obj) -> Obj:
    copied: Obj = orjson.loads(orjson.dumps(obj))
    return copied


def _revision_of(value: object) -> int | None:
    if value in (None, ""):
        return None
    try:
        revision = int(str(value))
    except ValueError:
        raise errors.BadRequest(f"invalid resourceVersion {value!r}") from None
    if revision < 0:
        raise errors.BadRequest(f"invalid resourceVersion {value!r}")
    return revision


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _not_found(resource: Resource, name: str) -> errors.NotFound:
    return errors.NotFound(
        f'{resource.qualified} "{name}" not found', name=name, group=resource.group,
        kind=resource.plural,
    )  # fmt: skip


def _exists(resource: Resource, name: str) -> errors.AlreadyExists:
    return errors.AlreadyExists(
        f'{resource.qualified} "{name}" already exists', name=name, group=resource.group,
        kind=resource.plural,
    )  # fmt: skip
