"""``PodInfo``: a pod as the scheduler uses it, parsed once (k8s ``framework.PodInfo``).

Everything a plugin asks of a pod in the hot loop (its requests as integers, its
tolerations, its selectors compiled) is computed here when the pod enters the queue or
the cache, never per node. A pod whose terms cannot be read still gets a PodInfo: the
problem is kept in ``errors`` (field path and message) and the plugins that need the
broken part reject the pod with it, so one bad pod never stops the scheduler.

The raw object is shared with the informer's cache: never mutate ``pod``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from controlplane.scheduler import images, terms
from controlplane.scheduler.resources import ResourceError, Resources, pod_requests

Obj = dict[str, Any]

DEFAULT_SCHEDULER: Final = "default-scheduler"
_EMPTY: Final[Mapping[str, str]] = {}


def pod_key(pod: Mapping[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


@dataclass(slots=True, eq=False)
class PodInfo:
    pod: Obj
    key: str
    uid: str
    name: str
    namespace: str
    labels: Mapping[str, str]
    priority: int
    node_name: str
    requests: Resources
    non_zero_cpu: int
    non_zero_memory: int
    tolerations: tuple[terms.Toleration, ...] = ()
    node_selector: Mapping[str, str] = field(default_factory=dict)
    required_node_affinity: terms.NodeSelector | None = None
    preferred_node_affinity: tuple[terms.PreferredTerm, ...] = ()
    required_affinity: tuple[terms.AffinityTerm, ...] = ()
    required_anti_affinity: tuple[terms.AffinityTerm, ...] = ()
    preferred_affinity: tuple[terms.AffinityTerm, ...] = ()
    preferred_anti_affinity: tuple[terms.AffinityTerm, ...] = ()
    spread_constraints: tuple[terms.SpreadConstraint, ...] = ()
    images: tuple[str, ...] = ()  # normalized references, containers and init containers
    host_ports: tuple[tuple[str, str, int], ...] = ()  # (protocol, hostIP, port)
    owner_uid: str = ""  # the controller's uid, for the default spreading
    scheduling_gates: tuple[str, ...] = ()
    preemption_never: bool = False
    nominated_node: str = ""
    deleting: bool = False
    writes_local_storage: bool = False  # emptyDir on disk or ephemeral-storage requests
    created: str = ""
    errors: dict[str, str] = field(default_factory=dict)  # part -> "field: problem"

    @property
    def has_affinity(self) -> bool:
        return bool(
            self.required_affinity
            or self.required_anti_affinity
            or self.preferred_affinity
            or self.preferred_anti_affinity
        )

    @property
    def spec(self) -> Obj:
        spec: Obj = self.pod.get("spec") or {}
        return spec

    @property
    def scheduler_name(self) -> str:
        return str(self.spec.get("schedulerName") or DEFAULT_SCHEDULER)


def pod_info(pod: Obj) -> PodInfo:
    """Parse ``pod``; never raises (problems land in ``errors``)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    namespace = str(meta.get("namespace") or "")
    labels = meta.get("labels") or _EMPTY
    problems: dict[str, str] = {}
    try:
        req = pod_requests(spec)
        requests, nz_cpu, nz_mem = req.requests, req.non_zero_cpu, req.non_zero_memory
    except ResourceError as e:
        problems["resources"] = str(e)
        requests, nz_cpu, nz_mem = Resources(pods=1), 0, 0
    info = PodInfo(
        pod=pod,
        key=f"{namespace}/{meta.get('name') or ''}",
        uid=str(meta.get("uid") or ""),
        name=str(meta.get("name") or ""),
        namespace=namespace,
        labels=labels,
        priority=_int(spec.get("priority")),
        node_name=str(spec.get("nodeName") or ""),
        requests=requests,
        non_zero_cpu=nz_cpu,
        non_zero_memory=nz_mem,
        tolerations=terms.parse_tolerations(spec.get("tolerations")),
        node_selector=spec.get("nodeSelector") or _EMPTY,
        images=_images(spec),
        host_ports=_host_ports(spec),
        owner_uid=_controller_uid(meta),
        scheduling_gates=tuple(
            str(g.get("name")) for g in spec.get("schedulingGates") or [] if isinstance(g, dict)
        ),
        preemption_never=spec.get("preemptionPolicy") == "Never",
        nominated_node=str(status.get("nominatedNodeName") or ""),
        deleting=bool(meta.get("deletionTimestamp")),
        writes_local_storage=_writes_local_storage(spec, requests),
        created=str(meta.get("creationTimestamp") or ""),
        errors=problems,
    )
    _parse_affinity(info, spec.get("affinity"), namespace, labels)
    try:
        info.spread_constraints = terms.parse_spread_constraints(
            spec.get("topologySpreadConstraints"), "spec.topologySpreadConstraints", labels=labels
        )
    except terms.TermError as e:
        problems["topologySpreadConstraints"] = str(e)
    return info


def _parse_affinity(
    info: PodInfo, affinity: Any, namespace: str, labels: Mapping[str, str]
) -> None:
    if not isinstance(affinity, dict):
        return
    node = affinity.get("nodeAffinity")
    if isinstance(node, dict):
        path = "spec.affinity.nodeAffinity"
        try:
            required = node.get("requiredDuringSchedulingIgnoredDuringExecution")
            if required is not None:
                info.required_node_affinity = terms.parse_node_selector(
                    required, f"{path}.requiredDuringSchedulingIgnoredDuringExecution"
                )
            info.preferred_node_affinity = terms.parse_preferred_terms(
                node.get("preferredDuringSchedulingIgnoredDuringExecution"),
                f"{path}.preferredDuringSchedulingIgnoredDuringExecution",
            )
        except terms.TermError as e:
            info.errors["nodeAffinity"] = str(e)
    for kind in ("podAffinity", "podAntiAffinity"):
        section = affinity.get(kind)
        if not isinstance(section, dict):
            continue
        path = f"spec.affinity.{kind}"
        try:
            required = terms.parse_affinity_terms(
                section.get("requiredDuringSchedulingIgnoredDuringExecution"),
                f"{path}.requiredDuringSchedulingIgnoredDuringExecution",
                namespace=namespace, labels=labels, weighted=False,
            )  # fmt: skip
            preferred = terms.parse_affinity_terms(
                section.get("preferredDuringSchedulingIgnoredDuringExecution"),
                f"{path}.preferredDuringSchedulingIgnoredDuringExecution",
                namespace=namespace, labels=labels, weighted=True,
            )  # fmt: skip
        except terms.TermError as e:
            info.errors["podAffinity"] = str(e)
            continue
        if kind == "podAffinity":
            info.required_affinity, info.preferred_affinity = required, preferred
        else:
            info.required_anti_affinity, info.preferred_anti_affinity = required, preferred


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _images(spec: Obj) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for kind in ("initContainers", "containers"):
        for container in spec.get(kind) or []:
            image = container.get("image") if isinstance(container, dict) else None
            if isinstance(image, str) and image:
                seen[images.normalize(image)] = None
    return tuple(seen)


def _host_ports(spec: Obj) -> tuple[tuple[str, str, int], ...]:
    ports = []
    for kind in ("initContainers", "containers"):
        for container in spec.get(kind) or []:
            for port in (container or {}).get("ports") or []:
                host_port = port.get("hostPort") if isinstance(port, dict) else None
                if isinstance(host_port, int) and host_port > 0:
                    protocol = str(port.get("protocol") or "TCP")
                    ports.append((protocol, str(port.get("hostIP") or "0.0.0.0"), host_port))
    return tuple(ports)


def _controller_uid(meta: Obj) -> str:
    for ref in meta.get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return str(ref.get("uid") or "")
    return ""


def _writes_local_storage(spec: Obj, requests: Resources) -> bool:
    if requests.ephemeral:
        return True
    for volume in spec.get("volumes") or []:
        if isinstance(volume, dict) and "emptyDir" in volume:
            medium = (volume.get("emptyDir") or {}).get("medium")
            if medium != "Memory":
                return True
    return False
