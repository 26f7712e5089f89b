"""Whatever JSON a client sends, defaulting and validation answer with causes (or a
Forbidden from admission), never with an exception: a crash here would be a 500.

Hypothesis puts arbitrary JSON values at arbitrary places of valid objects of every kind
and runs them through create, update and status update."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api import errors
from tests.controlplane.apiserver.strategies.helpers import (
    container,
    create,
    pod,
    service,
    update,
    workload,
)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(["", "None", "10.0.0.1", "25%", "1Gi", "Always"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _node() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "n"},
        "spec": {"taints": [{"key": "a", "effect": "NoSchedule"}], "podCIDR": "10.0.0.0/24"},
        "status": {
            "capacity": {"cpu": "4"},
            "addresses": [{"type": "InternalIP", "address": "10.0.0.2"}],
        },
    }


BASES = {
    "Pod": pod(
        containers=[
            container(
                ports=[{"containerPort": 80}],
                env=[{"name": "A", "value": "1"}],
                livenessProbe={"httpGet": {"port": 80}},
                resources={"limits": {"cpu": "1"}},
            )
        ],
        volumes=[{"name": "v", "configMap": {"name": "c"}}],
        tolerations=[{"key": "a", "operator": "Exists"}],
        affinity={
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "a", "operator": "In", "values": ["b"]}]}
                    ]
                }
            }
        },
    ),
    "Deployment": workload("Deployment"),
    "DaemonSet": workload("DaemonSet"),
    "ReplicaSet": workload("ReplicaSet"),
    "Job": workload("Job"),
    "Service": service(clusterIP="10.96.0.10", sessionAffinity="ClientIP"),
    "Node": _node(),
    "Namespace": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}},
    "Secret": {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "YQ==", "tls.key": "YQ=="},
    },
    "ConfigMap": {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"a": "b"},
        "binaryData": {"c": "YQ=="},
    },
    "Endpoints": {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "e"},
        "subsets": [{"addresses": [{"ip": "10.0.0.7"}], "ports": [{"port": 80}]}],
    },
    "Event": {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "e"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
    },
    "Lease": {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "l"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 10},
    },
}


def _paths(value: object, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            if (*path, key) not in (("kind",), ("apiVersion",), ("metadata", "name")):
                found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*path, i))
    return found


def _set(obj: dict[str, Any], path: tuple[Any, ...], value: object) -> None:
    target: Any = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


def _survives(action: Any) -> None:
    with contextlib.suppress(errors.ApiError):  # an answer, not a crash
        action()


@pytest.mark.parametrize("kind", sorted(BASES))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_json_gets_an_answer(kind: str, data: st.DataObject) -> None:
    body = copy.deepcopy(BASES[kind])
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(body)))
        _set(body, path, data.draw(JSON))
    _survives(lambda: create(body))
    stored = create(BASES[kind])
    new = {**copy.deepcopy(body), "metadata": stored["metadata"]}
    _survives(lambda: update(new, stored))
    _survives(lambda: update(new, stored, subresource="status"))
