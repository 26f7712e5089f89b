"""A pod's QoS class, as k8s ``qos.ComputePodQOS`` derives it from cpu and memory.

Guaranteed: every container (init containers included) has cpu and memory limits, and
the pod's summed requests equal its summed limits. BestEffort: no positive cpu or memory
request or limit anywhere. Burstable: anything else. Run after defaulting, which copies
limits into missing requests.
"""

from __future__ import annotations

from typing import Final

from api.quantity import Quantity, QuantityError, parse_quantity
from controlplane.apiserver.strategies.common import Obj, get_list, get_map

_COMPUTE: Final = ("cpu", "memory")


def _positive(value: object) -> Quantity | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        q = parse_quantity(value.strip() if isinstance(value, str) else repr(value))
    except QuantityError:
        return None
    return q if q.nanos > 0 else None


def _add(total: dict[str, Quantity], name: str, q: Quantity) -> None:
    total[name] = total[name] + q if name in total else q


def qos_class(spec: Obj) -> str:
    requests: dict[str, Quantity] = {}
    limits: dict[str, Quantity] = {}
    guaranteed = True
    for container in get_list(spec, "containers") + get_list(spec, "initContainers"):
        resources = get_map(container, "resources")
        for name, value in get_map(resources, "requests").items():
            q = _positive(value)
            if name in _COMPUTE and q is not None:
                _add(requests, name, q)
        found = set()
        for name, value in get_map(resources, "limits").items():
            q = _positive(value)
            if name in _COMPUTE and q is not None:
                found.add(name)
                _add(limits, name, q)
        if not found.issuperset(_COMPUTE):
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    equal = all(limits.get(n) == q for n, q in requests.items())
    if guaranteed and equal and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"
