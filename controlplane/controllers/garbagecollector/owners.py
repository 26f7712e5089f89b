"""Looking up an owner reference: the informer cache first, and a live GET whenever the
cache does not show the owner with the same uid.

Why live: a cache that lags (an owner created a moment before its dependent, a relist in
progress) must never make a live object look gone; a dependent is deleted only on the
apiserver's word that its owner is absent. What the apiserver said is absent is
remembered by uid (uids are never reused), as Kubernetes' ``absentOwnerCache`` does, so
a thousand pods of one deleted ReplicaSet cost one GET, not a thousand.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final

from api import errors
from api.client import ApiClient
from api.informer import Informer
from api.resources import Resource, by_kind
from controlplane.controllers.garbagecollector.decide import Owner, owner_state

ABSENT_LIMIT: Final = 10000

Obj = dict[str, Any]


def owner_resource(ref: Mapping[str, Any]) -> Resource | None:
    """The resource an owner reference names (by group and kind, as Kubernetes' REST
    mapper does: the version does not matter)."""
    api_version, kind = ref.get("apiVersion"), ref.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return None
    group = api_version.rpartition("/")[0]
    return by_kind(group, kind)


def object_key(resource: Resource, namespace: str | None, name: str) -> str:
    return f"{namespace}/{name}" if resource.namespaced and namespace else name


class Owners:
    def __init__(self, client: ApiClient, informers: Mapping[Resource, Informer]) -> None:
        self._client = client
        self._informers = informers
        self._absent: OrderedDict[str, None] = OrderedDict()

    def cached(self, ref: Mapping[str, Any], namespace: str | None) -> tuple[Resource, str] | None:
        """Where the owner would be cached: (resource, key), or None if unresolvable."""
        resource = owner_resource(ref)
        name = ref.get("name")
        if resource is None or not isinstance(name, str):
            return None
        if resource.namespaced and not namespace:
            return None  # a cluster-scoped object cannot have a namespaced owner
        return resource, object_key(resource, namespace, name)

    async def state(self, ref: Mapping[str, Any], namespace: str | None) -> Owner:
        uid = ref.get("uid")
        where = self.cached(ref, namespace)
        if where is None or not isinstance(uid, str):
            return Owner.UNRESOLVABLE
        if uid in self._absent:
            return Owner.DANGLING
        resource, key = where
        informer = self._informers.get(resource)
        owner = informer.get(key) if informer is not None else None
        if owner is not None and (owner.get("metadata") or {}).get("uid") == uid:
            return owner_state(owner, uid=uid)
        try:
            owner = await self._client.get(
                resource, namespace if resource.namespaced else None, str(ref.get("name"))
            )
        except errors.NotFound:
            owner = None
        found = owner_state(owner, uid=uid)
        if found is Owner.DANGLING:
            self._absent[uid] = None
            if len(self._absent) > ABSENT_LIMIT:
                self._absent.popitem(last=False)
        return found
