"""Event rows: the real printer's column order, and its fallbacks for newer-style events."""

from __future__ import annotations

import pytest

from controlplane.apiserver import tables
from tests.controlplane.apiserver.builders import NOW, Obj, ago, meta

POD = {"kind": "Pod", "name": "web-1", "namespace": "default"}


@pytest.mark.parametrize(
    ("event", "cells"),
    [
        pytest.param(
            {
                "firstTimestamp": ago(minutes=10),
                "lastTimestamp": ago(minutes=1),
                "count": 5,
                "type": "Warning",
                "reason": "BackOff",
                "involvedObject": POD | {"fieldPath": "spec.containers{app}"},
                "source": {"component": "kubelet", "host": "pi-1"},
                "message": "Back-off restarting failed container app\n",
            },
            [
                *("60s", "Warning", "BackOff", "pod/web-1", "spec.containers{app}"),
                *("kubelet, pi-1", "Back-off restarting failed container app", "10m", 5),
            ],
            id="kubelet-event",
        ),
        pytest.param(
            {
                "eventTime": "2025-06-01T11:59:30.000000Z",
                "type": "Normal",
                "reason": "Scheduled",
                "involvedObject": POD,
                "reportingController": "bramble-scheduler",
                "reportingInstance": "",
                "message": "Successfully assigned default/web-1 to pi-1",
            },
            [
                *("30s", "Normal", "Scheduled", "pod/web-1", "", "bramble-scheduler"),
                *("Successfully assigned default/web-1 to pi-1", "30s", 1),
            ],
            id="event-time-only-count-1",
        ),
        pytest.param(
            {
                "firstTimestamp": ago(minutes=3),
                "count": 2,
                "involvedObject": {"kind": "Deployment", "name": "web"},
                "source": {"component": "deployment-controller"},
            },
            ["3m", "", "", "deployment/web", "", "deployment-controller", "", "3m", 2],
            id="last-seen-falls-back-to-first-seen",
        ),
        pytest.param(
            {
                "eventTime": ago(hours=1),
                "series": {"count": 7, "lastObservedTime": ago(seconds=5)},
                "type": "Warning",
                "reason": "Unhealthy",
                "involvedObject": {"kind": "Node"},
                "reportingController": "kubelet",
                "reportingInstance": "pi-1",
            },
            ["5s", "Warning", "Unhealthy", "node", "", "kubelet, pi-1", "", "60m", 7],
            id="series",
        ),
        pytest.param({}, ["<unknown>", "", "", "", "", "", "", "<unknown>", 1], id="empty"),
    ],
)
def test_event_cells(event: Obj, cells: list[tables.Cell]) -> None:
    obj = {"metadata": meta("web-1.1842"), **event}
    assert tables.row("", "Event", obj, now=NOW) == [*cells, "web-1.1842"]


def test_columns_follow_the_real_printer_order() -> None:
    assert [(c.name, c.priority) for c in tables.columns("", "Event")] == [
        ("Last Seen", 0),
        ("Type", 0),
        ("Reason", 0),
        ("Object", 0),
        ("Subobject", 1),
        ("Source", 1),
        ("Message", 0),
        ("First Seen", 1),
        ("Count", 1),
        ("Name", 1),
    ]
