"""Resource amounts as integers: what a pod requests and what a node can give.

CPU is counted in millicores, memory and ephemeral storage in bytes, pods one by one,
anything else (``nvidia.com/gpu``, ``hugepages-2Mi``) by its integer value, as k8s
``framework.Resource`` does. Quantities are parsed once, when a pod or node enters the
scheduler, so filtering compares integers only.

A pod's request is Kubernetes' ``resourcehelper.PodRequests``: the sum of its containers,
at least the largest init container (restartable "sidecar" init containers run
alongside the others and are added), plus ``spec.overhead``. A container that states
only a limit requests that limit (the apiserver defaults it so; an older object may not
have been). The *non-zero* request counts a container without cpu or memory requests as
100m / 200Mi, so that scoring does not pile request-less pods onto one node.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from api.quantity import QuantityError, parse_quantity

CPU: Final = "cpu"
MEMORY: Final = "memory"
EPHEMERAL_STORAGE: Final = "ephemeral-storage"
PODS: Final = "pods"

DEFAULT_MILLI_CPU_REQUEST: Final = 100  # k8s schedutil.DefaultMilliCPURequest
DEFAULT_MEMORY_REQUEST: Final = 200 * 1024 * 1024  # k8s schedutil.DefaultMemoryRequest


class ResourceError(ValueError):
    """A quantity that cannot be read; the message names the field."""


@dataclass(slots=True)
class Resources:
    milli_cpu: int = 0
    memory: int = 0
    ephemeral: int = 0
    pods: int = 0
    scalar: dict[str, int] = field(default_factory=dict)

    def add(self, other: Resources) -> None:
        self.milli_cpu += other.milli_cpu
        self.memory += other.memory
        self.ephemeral += other.ephemeral
        self.pods += other.pods
        for name, value in other.scalar.items():
            self.scalar[name] = self.scalar.get(name, 0) + value

    def subtract(self, other: Resources) -> None:
        self.milli_cpu -= other.milli_cpu
        self.memory -= other.memory
        self.ephemeral -= other.ephemeral
        self.pods -= other.pods
        for name, value in other.scalar.items():
            self.scalar[name] = self.scalar.get(name, 0) - value

    def key(self) -> tuple[int, int, int, int, tuple[tuple[str, int], ...]]:
        """The amounts as a hashable value (a pod signature's part)."""
        scalar = tuple(sorted(self.scalar.items())) if self.scalar else ()
        return (self.milli_cpu, self.memory, self.ephemeral, self.pods, scalar)

    def copy(self) -> Resources:
        return Resources(self.milli_cpu, self.memory, self.ephemeral, self.pods, dict(self.scalar))

    def get(self, name: str) -> int:
        if name == CPU:
            return self.milli_cpu
        if name == MEMORY:
            return self.memory
        if name == EPHEMERAL_STORAGE:
            return self.ephemeral
        if name == PODS:
            return self.pods
        return self.scalar.get(name, 0)

    def set_max(self, other: Resources) -> None:
        self.milli_cpu = max(self.milli_cpu, other.milli_cpu)
        self.memory = max(self.memory, other.memory)
        self.ephemeral = max(self.ephemeral, other.ephemeral)
        for name, value in other.scalar.items():
            self.scalar[name] = max(self.scalar.get(name, 0), value)

    def names(self) -> Iterable[str]:
        """The resources this amount mentions (the standard ones always)."""
        yield from (CPU, MEMORY, EPHEMERAL_STORAGE)
        yield from self.scalar


def from_list(amounts: Mapping[str, Any] | None, *, where: str) -> Resources:
    """A ``ResourceList`` (``{"cpu": "500m", "memory": "1Gi"}``) as integers; ``pods``
    is read too (allocatable has it). Raises ResourceError."""
    result = Resources()
    for name, raw in (amounts or {}).items():
        try:
            quantity = parse_quantity(str(raw))
        except QuantityError as e:
            raise ResourceError(f"{where}[{name}]: {raw!r}: {e}") from e
        if name == CPU:
            result.milli_cpu = quantity.milli_value()
        elif name == MEMORY:
            result.memory = quantity.value()
        elif name == EPHEMERAL_STORAGE:
            result.ephemeral = quantity.value()
        elif name == PODS:
            result.pods = quantity.value()
        else:
            result.scalar[name] = quantity.value()
    return result


def _container_requests(container: Mapping[str, Any], where: str) -> tuple[Resources, bool, bool]:
    """(requests, has a cpu request, has a memory request)."""
    res = container.get("resources") or {}
    requests = dict(res.get("limits") or {})
    requests.update(res.get("requests") or {})
    amounts = from_list(requests, where=where)
    return amounts, CPU in requests, MEMORY in requests


@dataclass(frozen=True, slots=True)
class PodRequests:
    requests: Resources  # what the pod asks for (pods == 1)
    non_zero_cpu: int  # millicores, with the defaults for request-less containers
    non_zero_memory: int


def pod_requests(spec: Mapping[str, Any]) -> PodRequests:
    """k8s ``PodRequests`` and its non-zero variant; raises ResourceError."""
    total = Resources()
    nz_cpu = nz_mem = 0
    for i, container in enumerate(spec.get("containers") or []):
        amounts, has_cpu, has_mem = _container_requests(container, f"spec.containers[{i}]")
        total.add(amounts)
        nz_cpu += amounts.milli_cpu if has_cpu else DEFAULT_MILLI_CPU_REQUEST
        nz_mem += amounts.memory if has_mem else DEFAULT_MEMORY_REQUEST
    sidecars = Resources()
    init_max = Resources()
    nz_init_cpu = nz_init_mem = nz_side_cpu = nz_side_mem = 0
    for i, container in enumerate(spec.get("initContainers") or []):
        amounts, has_cpu, has_mem = _container_requests(container, f"spec.initContainers[{i}]")
        cpu = amounts.milli_cpu if has_cpu else DEFAULT_MILLI_CPU_REQUEST
        mem = amounts.memory if has_mem else DEFAULT_MEMORY_REQUEST
        if container.get("restartPolicy") == "Always":  # a sidecar runs with the others
            total.add(amounts)
            sidecars.add(amounts)
            nz_cpu += cpu
            nz_mem += mem
            nz_side_cpu += cpu
            nz_side_mem += mem
            init_max.set_max(sidecars)
            nz_init_cpu = max(nz_init_cpu, nz_side_cpu)
            nz_init_mem = max(nz_init_mem, nz_side_mem)
        else:
            during = amounts.copy()
            during.add(sidecars)
            init_max.set_max(during)
            nz_init_cpu = max(nz_init_cpu, cpu + nz_side_cpu)
            nz_init_mem = max(nz_init_mem, mem + nz_side_mem)
    total.set_max(init_max)
    nz_cpu = max(nz_cpu, nz_init_cpu)
    nz_mem = max(nz_mem, nz_init_mem)
    overhead = spec.get("overhead")
    if overhead:
        extra = from_list(overhead, where="spec.overhead")
        total.add(extra)
        nz_cpu += extra.milli_cpu
        nz_mem += extra.memory
    total.pods = 1
    return PodRequests(total, nz_cpu, nz_mem)
