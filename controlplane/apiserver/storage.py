"""Objects in the store: key layout, encoding, and store errors as API errors.

Keys follow the Kubernetes apiserver's etcd layout, with the group spelled out::

    /registry/<group or "core">/<plural>/<namespace>/<name>     namespaced
    /registry/<group or "core">/<plural>/<name>                 cluster-scoped

Objects are stored as JSON without ``metadata.resourceVersion``: the store's revision of
the key *is* the resourceVersion, set on the way out (as Kubernetes does with etcd).
"""

from __future__ import annotations

from typing import Any

import orjson

from api import errors
from api.resources import Resource
from controlplane import store as st

ROOT = "/registry/"

Obj = dict[str, Any]


def group_segment(group: str) -> str:
    return group or "core"


def prefix(resource: Resource, namespace: str | None = None) -> str:
    base = f"{ROOT}{group_segment(resource.group)}/{resource.plural}/"
    return f"{base}{namespace}/" if namespace and resource.namespaced else base


def key(resource: Resource, namespace: str | None, name: str) -> str:
    if resource.namespaced:
        return f"{ROOT}{group_segment(resource.group)}/{resource.plural}/{namespace}/{name}"
    return f"{ROOT}{group_segment(resource.group)}/{resource.plural}/{name}"


def parse_key(k: str) -> tuple[str, str, str | None, str] | None:
    """(group, plural, namespace or None, name) of a key, or None if it is not one of ours."""
    if not k.startswith(ROOT):
        return None
    parts = k[len(ROOT) :].split("/")
    group = "" if parts[0] == "core" else parts[0]
    if len(parts) == 4:
        return group, parts[1], parts[2], parts[3]
    if len(parts) == 3:
        return group, parts[1], None, parts[2]
    return None


def encode(obj: Obj) -> bytes:
    """The stored form: everything but metadata.resourceVersion."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "resourceVersion" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
    return orjson.dumps(obj)


def decode(value: bytes, revision: int) -> Obj:
    obj: Obj = orjson.loads(value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
    return obj


def translate(e: st.StoreError, resource: Resource, name: str = "") -> errors.ApiError:
    """A store error as the API error a client should see."""
    kind, group = resource.plural, resource.group
    if isinstance(e, st.NotFound):
        return errors.NotFound(
            f'{resource.qualified} "{name}" not found', name=name, group=group, kind=kind
        )
    if isinstance(e, st.AlreadyExists):
        return errors.AlreadyExists(
            f'{resource.qualified} "{name}" already exists', name=name, group=group, kind=kind
        )
    if isinstance(e, st.Conflict):
        return errors.Conflict(
            f'Operation cannot be fulfilled on {resource.qualified} "{name}": the object has '
            "been modified; please apply your changes to the latest version and try again",
            name=name,
            group=group,
            kind=kind,
        )
    if isinstance(e, st.Expired):
        return errors.Expired(str(e))
    if isinstance(e, st.InvalidArgument):
        return errors.BadRequest(str(e))
    if isinstance(e, st.Unavailable):
        return errors.ServiceUnavailable(f"the store is unavailable: {e}", retry_after=1)
    return errors.InternalError(f"the store failed: {e}")
