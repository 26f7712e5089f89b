"""Which ConfigMaps and Secrets a pod references: the edges of Kubernetes' node
authorizer graph that bramble needs.

The apiserver answers ``authz.Fact.REFERENCED_BY_NODE`` for a node's read of
``<namespace>/<name>`` with::

    any(("secrets", name) in pod_references(pod)
        for pod in pods in <namespace> with spec.nodeName == node)

A pod references a ConfigMap or Secret through its volumes (``configMap``, ``secret``,
``projected`` sources), its containers' ``env[].valueFrom`` and ``envFrom`` (init and
ephemeral containers too), and ``imagePullSecrets``. A malformed pod references nothing
rather than raising.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


def pod_references(pod: Mapping[str, Any]) -> frozenset[tuple[str, str]]:
    """``{("configmaps" | "secrets", name)}`` for every object ``pod`` refers to."""
    spec = _map(pod.get("spec"))
    return frozenset(ref for ref in _refs(spec) if ref[1])


def _refs(spec: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for volume in _maps(spec.get("volumes")):
        yield "configmaps", _name(volume.get("configMap"), "name")
        yield "secrets", _name(volume.get("secret"), "secretName")
        for source in _maps(_map(volume.get("projected")).get("sources")):
            yield "configmaps", _name(source.get("configMap"), "name")
            yield "secrets", _name(source.get("secret"), "name")
    for pull in _maps(spec.get("imagePullSecrets")):
        yield "secrets", _name(pull, "name")
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for container in _maps(spec.get(kind)):
            for env in _maps(container.get("env")):
                value_from = _map(env.get("valueFrom"))
                yield "configmaps", _name(value_from.get("configMapKeyRef"), "name")
                yield "secrets", _name(value_from.get("secretKeyRef"), "name")
            for env_from in _maps(container.get("envFrom")):
                yield "configmaps", _name(env_from.get("configMapRef"), "name")
                yield "secrets", _name(env_from.get("secretRef"), "name")


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _maps(value: object) -> Iterator[Mapping[str, Any]]:
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, Mapping))


def _name(ref: object, key: str) -> str:
    value = _map(ref).get(key)
    return value if isinstance(value, str) else ""
