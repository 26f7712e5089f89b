"""The ConfigMaps and Secrets a pod references (the node authorizer's graph edges)."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.apiserver.auth.podrefs import pod_references

POD: dict[str, Any] = {
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "nodeName": "pi-1",
        "imagePullSecrets": [{"name": "registry"}],
        "volumes": [
            {"name": "a", "configMap": {"name": "vol-cm"}},
            {"name": "b", "secret": {"secretName": "vol-secret"}},
            {
                "name": "c",
                "projected": {
                    "sources": [
                        {"configMap": {"name": "proj-cm"}},
                        {"secret": {"name": "proj-secret"}},
                        {"downwardAPI": {"items": []}},
                    ]
                },
            },
            {"name": "d", "emptyDir": {}},
        ],
        "initContainers": [{"name": "init", "envFrom": [{"secretRef": {"name": "init-secret"}}]}],
        "containers": [
            {
                "name": "app",
                "env": [
                    {"name": "A", "value": "plain"},
                    {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "k"}}},
                    {
                        "name": "C",
                        "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "k"}},
                    },
                    {"name": "D", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                ],
                "envFrom": [{"configMapRef": {"name": "envfrom-cm"}}],
            }
        ],
        "ephemeralContainers": [
            {"name": "debug", "envFrom": [{"secretRef": {"name": "debug-secret"}}]}
        ],
    },
}


def test_every_kind_of_reference() -> None:
    assert pod_references(POD) == {
        ("secrets", "registry"),
        ("configmaps", "vol-cm"),
        ("secrets", "vol-secret"),
        ("configmaps", "proj-cm"),
        ("secrets", "proj-secret"),
        ("secrets", "init-secret"),
        ("configmaps", "env-cm"),
        ("secrets", "env-secret"),
        ("configmaps", "envfrom-cm"),
        ("secrets", "debug-secret"),
    }


@pytest.mark.parametrize(
    "pod",
    [
        {},
        {"spec": None},
        {"spec": "x"},
        {"spec": {"volumes": "x", "containers": [None, 5, {"env": "x"}]}},
        {"spec": {"volumes": [{"secret": {"secretName": 5}}, {"configMap": None}]}},
        {"spec": {"containers": [{"env": [{"valueFrom": {"secretKeyRef": {}}}]}]}},
    ],
)
def test_malformed_pods_reference_nothing(pod: dict[str, Any]) -> None:
    assert pod_references(pod) == frozenset()
