"""Admission: what the apiserver sets and checks on every object before it is stored.

Generic rules, as the Kubernetes apiserver applies them to every kind:

* on create: ``uid``, ``creationTimestamp``, a name from ``generateName``, ``generation``
  1 for kinds with a spec, no ``deletionTimestamp``, status reset where the kind's
  strategy resets it (a client cannot create an object with a forged status);
* on update: the immutable metadata (uid, creationTimestamp, deletion fields, generation)
  comes from the stored object; the main resource cannot change status and the status
  subresource cannot change anything else; ``generation`` goes up when the spec changes;
* validation of metadata (names, labels, annotations, finalizers, owner references), then
  the kind's own defaulting and validation (``kinds.py``); a write through ``/status`` gets
  the kind's status preparation and is validated as a status update.

Everything here is synchronous and pure given ``now``.
"""

from __future__ import annotations

import functools
import math
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from api import errors
from api.resources import Resource
from controlplane.apiserver import kinds
from controlplane.apiserver.strategies.common import same

Obj = dict[str, Any]

# Kubernetes' generateName alphabet: no vowels (no words), no look-alike characters.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def timestamp(now: datetime) -> str:
    """RFC 3339 at second precision, as Kubernetes writes metav1.Time."""
    return _second(math.floor(now.timestamp()))


@functools.lru_cache(maxsize=8)
def _second(epoch: int) -> str:
    # Formatted once a second, not for every object written in it.
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def generate_name(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))


def _meta(obj: Obj) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        obj["metadata"] = meta
    return meta


def check_type(resource: Resource, obj: Obj) -> None:
    """The body's apiVersion/kind, when given, must be the URL's resource."""
    kind = obj.get("kind")
    api_version = obj.get("apiVersion")
    if kind not in (None, "", resource.kind) or api_version not in (
        None,
        "",
        resource.api_version,
    ):
        raise errors.BadRequest(
            f"the object's kind {api_version or '?'}/{kind or '?'} does not match the "
            f"resource {resource.qualified} ({resource.api_version}/{resource.kind})"
        )
    obj["kind"] = resource.kind
    obj["apiVersion"] = resource.api_version
    # Before any defaulting, which would paper over a spec that is not an object.
    from controlplane.apiserver.strategies import common

    causes = common.validate_shape(obj)
    if causes:
        name = str(_meta(obj).get("name") or _meta(obj).get("generateName") or "")
        raise errors.invalid(resource.kind, name, causes, group=resource.group)


def prepare_create(resource: Resource, obj: Obj, *, namespace: str | None, now: datetime) -> None:
    check_type(resource, obj)
    meta = _meta(obj)
    if resource.namespaced:
        given = meta.get("namespace")
        if given not in (None, "", namespace):
            raise errors.BadRequest(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    if not meta.get("name") and isinstance(meta.get("generateName"), str) and meta["generateName"]:
        meta["name"] = generate_name(meta["generateName"])
    meta["uid"] = str(uuid.uuid4())
    meta["creationTimestamp"] = timestamp(now)
    for gone in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
        meta.pop(gone, None)
    if resource.has_status:
        meta["generation"] = 1
    else:
        meta.pop("generation", None)
    kinds.prepare_create(resource, obj, now=now)


def validate(resource: Resource, obj: Obj, old: Obj | None = None) -> None:
    """Raise Invalid (422, with causes) unless the object is acceptable."""
    causes = kinds.validate(resource, obj, old)
    if causes:
        name = str(_meta(obj).get("name") or _meta(obj).get("generateName") or "")
        raise errors.invalid(resource.kind, name, causes, group=resource.group)


_IMMUTABLE_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")


def prepare_update(
    resource: Resource, new: Obj, old: Obj, *, subresource: str | None, now: datetime
) -> Obj:
    """The object to store when ``new`` replaces ``old`` through the main resource or a
    subresource ("status"). Returns the object (possibly ``new`` itself, adjusted)."""
    check_type(resource, new)
    old_meta = _meta(old)
    if subresource == "status":
        # Only status changes; everything else is the stored object's.
        result = {**old, "status": new.get("status", {})}
        result["metadata"] = dict(old_meta)
        kinds.prepare_status_update(resource, result, old, now=now)
        return result
    meta = _meta(new)
    for field in _IMMUTABLE_META:
        if field in old_meta:
            meta[field] = old_meta[field]
        else:
            meta.pop(field, None)
    if resource.namespaced:
        meta["namespace"] = old_meta.get("namespace")
    if meta.get("name") != old_meta.get("name"):
        raise errors.BadRequest(
            f"the name of the object ({meta.get('name')}) does not match the name on the "
            f"URL ({old_meta.get('name')})"
        )
    # Default first: a manifest that leaves out what defaulting fills in has not changed
    # the spec, and must not bump the generation.
    kinds.prepare_update(resource, new, old, now=now)
    if resource.has_status:
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)
        generation = int(old_meta.get("generation") or 1)
        if not same(new.get("spec"), old.get("spec")):
            generation += 1
        meta["generation"] = generation
    return new
