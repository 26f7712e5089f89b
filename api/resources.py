"""The resource registry: every kind bramble serves, in one table.

One entry per resource drives discovery (names, scope, verbs, short names, categories,
subresources), routing (group/version/plural in URLs), storage keys and the kind names in
lists and errors. Clients use it too, to turn a kind into a URL.
"""

from __future__ import annotations

from dataclasses import dataclass

READ_VERBS = ("get", "list", "watch")
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True)
class Subresource:
    name: str  # "status", "scale", "log", ...
    kind: str  # the kind it accepts/returns
    verbs: tuple[str, ...]
    group: str = ""  # of that kind, when it differs from the parent's
    version: str = "v1"


@dataclass(frozen=True, slots=True)
class Resource:
    group: str  # "" is the core group
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[Subresource, ...] = ()
    has_status: bool = True  # spec/status split: status only through /status

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def qualified(self) -> str:
        """``pods`` or ``deployments.apps``: how errors name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def subresource(self, name: str) -> Subresource | None:
        for sub in self.subresources:
            if sub.name == name:
                return sub
        return None


def _status(kind: str) -> Subresource:
    return Subresource("status", kind, ("get", "patch", "update"))


def _scale() -> Subresource:
    return Subresource("scale", "Scale", ("get", "patch", "update"), group="autoscaling")


RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "Namespace", "namespaces", False, ("ns",),
             subresources=(_status("Namespace"),)),
    Resource("", "v1", "Node", "nodes", False, ("no",),
             subresources=(_status("Node"), Subresource("proxy", "NodeProxyOptions", ("get",)))),
    Resource(
        "", "v1", "Pod", "pods", True, ("po",), ("all",),
        subresources=(
            _status("Pod"),
            Subresource("log", "Pod", ("get",)),
            Subresource("exec", "PodExecOptions", ("create", "get")),
            Subresource("eviction", "Eviction", ("create",), group="policy"),
            Subresource("binding", "Binding", ("create",)),
        ),
    ),
    Resource("", "v1", "Event", "events", True, ("ev",), has_status=False),
    Resource("", "v1", "ConfigMap", "configmaps", True, ("cm",), has_status=False),
    Resource("", "v1", "Secret", "secrets", True, has_status=False),
    Resource("", "v1", "Service", "services", True, ("svc",), ("all",),
             subresources=(_status("Service"),)),
    Resource("", "v1", "Endpoints", "endpoints", True, ("ep",), has_status=False),
    Resource("apps", "v1", "ControllerRevision", "controllerrevisions", True, has_status=False),
    Resource("apps", "v1", "Deployment", "deployments", True, ("deploy",), ("all",),
             subresources=(_status("Deployment"), _scale())),
    Resource("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), ("all",),
             subresources=(_status("ReplicaSet"), _scale())),
    Resource("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), ("all",),
             subresources=(_status("DaemonSet"),)),
    Resource("batch", "v1", "Job", "jobs", True, (), ("all",), subresources=(_status("Job"),)),
    Resource("coordination.k8s.io", "v1", "Lease", "leases", True, has_status=False),
    Resource("metrics.k8s.io", "v1beta1", "NodeMetrics", "nodes", False, verbs=READ_VERBS,
             has_status=False),
    Resource("metrics.k8s.io", "v1beta1", "PodMetrics", "pods", True, verbs=READ_VERBS,
             has_status=False),
)  # fmt: skip

_BY_PLURAL = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_KIND = {(r.group, r.kind): r for r in RESOURCES}


def by_plural(group: str, version: str, plural: str) -> Resource | None:
    return _BY_PLURAL.get((group, version, plural))


def by_kind(group: str, kind: str) -> Resource | None:
    return _BY_KIND.get((group, kind))


def by_api_version(api_version: str, kind: str) -> Resource | None:
    group, _, version = api_version.rpartition("/")
    resource = _BY_KIND.get((group, kind))
    return resource if resource is not None and resource.version == version else None


def group_versions() -> list[tuple[str, str]]:
    """Every (group, version) served, core first, in registry order."""
    seen: list[tuple[str, str]] = []
    for r in RESOURCES:
        if (r.group, r.version) not in seen:
            seen.append((r.group, r.version))
    return seen


def resource(group: str, kind: str) -> Resource:
    """A resource the registry is known to hold (for module constants)."""
    found = _BY_KIND.get((group, kind))
    if found is None:
        raise KeyError(f"no resource for {group or 'core'}/{kind}")
    return found
