"""Namespaces, ConfigMaps, Secrets, Leases, ControllerRevisions, and the NAME AGE table of
every other kind."""

from __future__ import annotations

import pytest

from controlplane.apiserver import tables
from tests.controlplane.apiserver.builders import NOW, Obj, meta


@pytest.mark.parametrize(
    ("group", "kind", "obj", "cells"),
    [
        pytest.param("", "Namespace", {"status": {"phase": "Active"}}, ["Active"], id="ns"),
        pytest.param(
            "", "Namespace", {"status": {"phase": "Terminating"}}, ["Terminating"], id="ns-deleting"
        ),
        pytest.param(
            "",
            "ConfigMap",
            {"data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}},
            [3],
            id="configmap-counts-binary-data",
        ),
        pytest.param("", "ConfigMap", {}, [0], id="configmap-empty"),
        pytest.param(
            "",
            "Secret",
            {"type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}},
            ["kubernetes.io/tls", 2],
            id="secret",
        ),
        pytest.param(
            "",
            "Secret",
            {"data": {"a": ""}, "stringData": {"a": "x", "b": "y"}},
            ["Opaque", 2],
            id="secret-default-type-counts-string-data",
        ),
        pytest.param(
            "coordination.k8s.io",
            "Lease",
            {"spec": {"holderIdentity": "pi-1"}},
            ["pi-1"],
            id="lease",
        ),
        pytest.param("coordination.k8s.io", "Lease", {"spec": {}}, [""], id="lease-released"),
        pytest.param(
            "apps",
            "ControllerRevision",
            {
                "metadata": meta(
                    ownerReferences=[
                        {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "1"},
                        {
                            "apiVersion": "apps/v1",
                            "kind": "DaemonSet",
                            "name": "agent",
                            "uid": "2",
                            "controller": True,
                        },
                    ]
                ),
                "revision": 3,
            },
            ["daemonset.apps/agent", 3],
            id="controllerrevision",
        ),
        pytest.param(
            "apps",
            "ControllerRevision",
            {
                "metadata": meta(
                    ownerReferences=[
                        {
                            "apiVersion": "v1",
                            "kind": "Pod",
                            "name": "p",
                            "uid": "1",
                            "controller": False,
                        }
                    ]
                )
            },
            ["<none>", 0],
            id="controllerrevision-orphan",
        ),
        pytest.param("metrics.k8s.io", "NodeMetrics", {"usage": {"cpu": "1"}}, [], id="metrics"),
        pytest.param("example.com", "Widget", {"spec": {}}, [], id="unknown-kind"),
    ],
)
def test_cells(group: str, kind: str, obj: Obj, cells: list[tables.Cell]) -> None:
    assert tables.row(group, kind, {"metadata": meta(), **obj}, now=NOW) == ["x", *cells, "5m"]


def test_controllerrevision_columns_are_kubernetes() -> None:
    columns = tables.columns("apps", "ControllerRevision")
    assert [(c.name, c.type) for c in columns] == [
        ("Name", "string"), ("Controller", "string"), ("Revision", "number"), ("Age", "string"),
    ]  # fmt: skip


def test_namespace_phase_reads_as_active_when_unset() -> None:
    assert tables.row("", "Namespace", {"metadata": meta()}, now=NOW) == ["x", "Active", "5m"]
