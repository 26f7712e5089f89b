"""The meta.k8s.io/v1 Table document, and the columns of every kind bramble serves.

kubectl cannot print a Table without a server, so the expectations are what the real
apiserver sends: columns and cells as Kubernetes' printers (pkg/printers/internalversion)
define them, rows' objects as its handlers build them (kubectl-surface.md section 6).
The per-kind cell tests live in printers/.
"""

from __future__ import annotations

import copy

import orjson
import pytest

from api.errors import BadRequest
from controlplane.apiserver import tables
from tests.controlplane.apiserver.builders import NOW, Obj, ago, meta, pod, running, terminated

KINDS = [
    ("", "Pod"),
    ("", "Node"),
    ("", "Namespace"),
    ("", "Service"),
    ("", "Endpoints"),
    ("", "ConfigMap"),
    ("", "Secret"),
    ("", "Event"),
    ("apps", "Deployment"),
    ("apps", "ReplicaSet"),
    ("apps", "DaemonSet"),
    ("batch", "Job"),
    ("coordination.k8s.io", "Lease"),
    ("metrics.k8s.io", "NodeMetrics"),
    ("metrics.k8s.io", "PodMetrics"),
]


@pytest.mark.parametrize(("group", "kind"), [pytest.param(g, k, id=k) for g, k in KINDS])
def test_every_kind_prints_one_cell_per_column_even_for_an_empty_object(
    group: str, kind: str
) -> None:
    columns = tables.columns(group, kind)
    assert len(tables.row(group, kind, {}, now=NOW)) == len(columns)
    assert [c.name for c in columns if c.format == "name"] == ["Name"]
    assert {c.type for c in columns} <= {"string", "integer"}
    assert all(c.description for c in columns)


@pytest.mark.parametrize(
    ("group", "kind", "normal", "wide"),
    [
        pytest.param(
            "",
            "Pod",
            ["Name", "Ready", "Status", "Restarts", "Age"],
            ["IP", "Node", "Nominated Node", "Readiness Gates"],
            id="Pod",
        ),
        pytest.param(
            "",
            "Node",
            ["Name", "Status", "Roles", "Age", "Version"],
            ["Internal-IP", "External-IP", "OS-Image", "Kernel-Version", "Container-Runtime"],
            id="Node",
        ),
        pytest.param(
            "apps",
            "Deployment",
            ["Name", "Ready", "Up-to-date", "Available", "Age"],
            ["Containers", "Images", "Selector"],
            id="Deployment",
        ),
        pytest.param(
            "apps",
            "ReplicaSet",
            ["Name", "Desired", "Current", "Ready", "Age"],
            ["Containers", "Images", "Selector"],
            id="ReplicaSet",
        ),
        pytest.param(
            "apps",
            "DaemonSet",
            [
                *("Name", "Desired", "Current", "Ready", "Up-to-date", "Available"),
                "Node Selector",
                "Age",
            ],
            ["Containers", "Images", "Selector"],
            id="DaemonSet",
        ),
        pytest.param(
            "batch",
            "Job",
            ["Name", "Status", "Completions", "Duration", "Age"],
            ["Containers", "Images", "Selector"],
            id="Job",
        ),
        pytest.param(
            "",
            "Service",
            ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"],
            ["Selector"],
            id="Service",
        ),
        pytest.param("", "Endpoints", ["Name", "Endpoints", "Age"], [], id="Endpoints"),
        pytest.param("", "Namespace", ["Name", "Status", "Age"], [], id="Namespace"),
        pytest.param("", "ConfigMap", ["Name", "Data", "Age"], [], id="ConfigMap"),
        pytest.param("", "Secret", ["Name", "Type", "Data", "Age"], [], id="Secret"),
        pytest.param(
            "",
            "Event",
            ["Last Seen", "Type", "Reason", "Object", "Message"],
            ["Subobject", "Source", "First Seen", "Count", "Name"],
            id="Event",
        ),
        pytest.param("coordination.k8s.io", "Lease", ["Name", "Holder", "Age"], [], id="Lease"),
        pytest.param("metrics.k8s.io", "PodMetrics", ["Name", "Age"], [], id="other-kinds"),
    ],
)
def test_columns_and_which_are_wide(
    group: str, kind: str, normal: list[str], wide: list[str]
) -> None:
    columns = tables.columns(group, kind)
    assert [c.name for c in columns if c.priority == 0] == normal
    assert [c.name for c in columns if c.priority == 1] == wide


@pytest.mark.parametrize(
    ("group", "kind", "types"),
    [
        pytest.param("", "Pod", ["string"] * 9, id="Pod-restarts-is-a-string"),
        pytest.param(
            "apps",
            "ReplicaSet",
            ["string", "integer", "integer", "integer", "string", "string", "string", "string"],
            id="ReplicaSet",
        ),
        pytest.param("apps", "Deployment", ["string"] * 8, id="Deployment-declares-strings"),
    ],
)
def test_column_types_are_the_real_printers(group: str, kind: str, types: list[str]) -> None:
    assert [c.type for c in tables.columns(group, kind)] == types


def test_table_document_shape() -> None:
    web = pod("Running", [running()])
    web["metadata"] |= {"uid": "u-1", "resourceVersion": "105", "labels": {"app": "web"}}
    doc = tables.table("", "Pod", [web], now=NOW, resource_version="111", continue_token="c2")

    assert (doc["kind"], doc["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert doc["metadata"] == {"resourceVersion": "111", "continue": "c2"}
    name, *others = doc["columnDefinitions"]
    assert name["description"].startswith("Name must be unique within a namespace.")
    assert name == {
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": name["description"],
        "priority": 0,
    }
    assert [(c["name"], c["format"], c["priority"]) for c in others] == [
        ("Ready", "", 0),
        ("Status", "", 0),
        ("Restarts", "", 0),
        ("Age", "", 0),
        ("IP", "", 1),
        ("Node", "", 1),
        ("Nominated Node", "", 1),
        ("Readiness Gates", "", 1),
    ]
    [row] = doc["rows"]
    assert row["cells"] == ["web-1", "1/1", "Running", "0", "5m", *["<none>"] * 4]
    assert row["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": web["metadata"],
    }
    assert "conditions" not in row
    assert orjson.loads(orjson.dumps(doc)) == doc


@pytest.mark.parametrize(
    ("include_object", "expected"),
    [
        pytest.param("Metadata", "partial", id="Metadata"),
        pytest.param("", "partial", id="empty-means-Metadata"),
        pytest.param("Object", "whole", id="Object"),
        pytest.param("None", "absent", id="None"),
    ],
)
def test_include_object(include_object: str, expected: str) -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("cfg"), "data": {"k": "v"}}
    doc = tables.table(
        "", "ConfigMap", [obj], now=NOW, resource_version="7", include_object=include_object
    )
    [row] = doc["rows"]
    assert row["cells"] == ["cfg", 1, "5m"]
    partial = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1"}
    match expected:
        case "partial":
            assert row["object"] == partial | {"metadata": obj["metadata"]}
        case "whole":
            assert row["object"] == obj
        case _:
            assert "object" not in row


def test_an_unknown_include_object_is_a_bad_request() -> None:
    with pytest.raises(BadRequest, match='unrecognized includeObject value: "Everything"'):
        tables.table("", "Pod", [], now=NOW, resource_version="1", include_object="Everything")


def test_an_empty_list_keeps_its_columns() -> None:
    doc = tables.table("apps", "Deployment", [], now=NOW, resource_version="")
    assert doc["metadata"] == {}
    assert doc["rows"] == []
    assert len(doc["columnDefinitions"]) == 8


def test_one_object_makes_a_one_row_table_as_a_watch_event_needs() -> None:
    lease = {"metadata": meta("pi-1", resourceVersion="42"), "spec": {"holderIdentity": "pi-1"}}
    doc = tables.table("coordination.k8s.io", "Lease", [lease], now=NOW, resource_version="42")
    assert doc["metadata"] == {"resourceVersion": "42"}
    assert [r["cells"] for r in doc["rows"]] == [["pi-1", "pi-1", "5m"]]


def test_rows_share_one_clock() -> None:
    objects = [{"metadata": {"name": n, "creationTimestamp": ago(seconds=s)}} for n, s in [
        ("a", 1), ("b", 125), ("c", 3 * 3600),
    ]]  # fmt: skip
    doc = tables.table("", "ConfigMap", objects, now=NOW, resource_version="1")
    assert [r["cells"][-1] for r in doc["rows"]] == ["1s", "2m5s", "3h"]


@pytest.mark.parametrize(
    ("phase", "reason", "message"),
    [
        pytest.param("Succeeded", "Succeeded", "The pod has completed successfully.", id="ok"),
        pytest.param("Failed", "Failed", "The pod failed.", id="failed"),
    ],
)
def test_finished_pods_rows_carry_the_completed_condition(
    phase: str, reason: str, message: str
) -> None:
    [row] = tables.table("", "Pod", [pod(phase)], now=NOW, resource_version="1")["rows"]
    condition = {"type": "Completed", "status": "True", "reason": reason, "message": message}
    assert row.get("conditions") == [condition]


def test_printing_never_mutates_the_objects() -> None:
    objects: list[Obj] = [
        pod("Running", [running(restarts=1)], init=[{"name": "p", "restartPolicy": "Always"}]),
        pod("Succeeded", [terminated("Completed")], deleting=True),
    ]
    before = copy.deepcopy(objects)
    for include_object in tables.INCLUDE_OBJECT_VALUES:
        tables.table(
            "", "Pod", objects, now=NOW, resource_version="9", include_object=include_object
        )
    assert objects == before
