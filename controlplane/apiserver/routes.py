"""Kubernetes REST paths, parsed into what a request is about.

/api/v1/<plural>[/<name>[/<sub>]]                                  core, cluster-wide
/api/v1/namespaces/<ns>/<plural>[/<name>[/<sub>]]                  core, namespaced
/apis/<group>/<version>/...                                        the same for groups
/api/v1/namespaces/<ns>/status|finalize                            namespace subresources
/api/v1/nodes/<name>/proxy/<path>                                  a node agent's endpoint
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from urllib.parse import unquote

from api import errors
from api.resources import Resource, by_plural


@dataclass(frozen=True, slots=True)
class Target:
    resource: Resource
    namespace: str | None  # None: all namespaces (or a cluster-scoped resource)
    name: str | None
    subresource: str | None
    proxy_path: str = ""  # nodes/<name>/proxy/<path>: the agent's path


@functools.lru_cache(maxsize=4096)
def parse(path: str) -> Target | None:
    """The resource a path names, None when it is not a resource path (discovery etc.).

    Raises NotFound for a path that looks like a resource path but names nothing served.
    Remembered: a client asks for the same collections and objects over and over.
    """
    parts = [unquote(p) for p in path.strip("/").split("/")]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if not rest or any(p == "" for p in rest):
        return None
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3 and group == "":
        candidate = by_plural(group, version, rest[2])
        if candidate is not None and candidate.namespaced:
            namespace, rest = rest[1], rest[2:]
        elif len(rest) == 3 and rest[2] in ("status", "finalize"):
            resource = by_plural("", "v1", "namespaces")
            assert resource is not None
            return Target(resource, None, rest[1], rest[2])
    elif rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource = by_plural(group, version, rest[0])
    if resource is not None and resource.kind == "Node" and rest[2:3] == ["proxy"]:
        return Target(resource, None, rest[1], "proxy", "/".join(rest[3:]))
    if resource is None or len(rest) > 3:
        raise errors.NotFound("the server could not find the requested resource")
    if namespace is not None and not resource.namespaced:
        raise errors.NotFound("the server could not find the requested resource")
    name = rest[1] if len(rest) >= 2 else None
    subresource = rest[2] if len(rest) == 3 else None
    if (
        subresource is not None
        and resource.subresource(subresource) is None
        and not (resource.kind == "Namespace" and subresource == "finalize")
    ):
        raise errors.NotFound("the server could not find the requested resource")
    return Target(resource, namespace, name, subresource)
