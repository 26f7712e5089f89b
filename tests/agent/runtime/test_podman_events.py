"""Which lines of Podman's event stream wake the relister (pure; the stream itself is tested
against a real Podman in test_podman.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.runtime.interface import LABEL_MANAGED, LABEL_POD_UID, RuntimeEvent
from agent.runtime.podman_events import parse_event

OURS = {LABEL_MANAGED: "true", LABEL_POD_UID: "u-1", "name": "k8s_app_p_default_u1_0"}


def line(action: str, *, kind: str = "container", attributes: dict[str, str] = OURS) -> bytes:
    event: dict[str, Any] = {
        "Type": kind,
        "Action": action,
        "Actor": {"ID": "c0ffee", "Attributes": attributes},
        "time": 1_790_000_000,
    }
    return json.dumps(event).encode() + b"\n"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(line("start"), RuntimeEvent("start", "c0ffee", "u-1"), id="start"),
        pytest.param(line("died"), RuntimeEvent("died", "c0ffee", "u-1"), id="died"),
        pytest.param(line("remove"), RuntimeEvent("remove", "c0ffee", "u-1"), id="remove"),
        pytest.param(line("exec"), None, id="an-exec-probe"),
        pytest.param(line("exec_died"), None, id="an-exec-probe-ending"),
        pytest.param(line("health_status"), None, id="a-podman-healthcheck"),
        pytest.param(line("start", attributes={"name": "other"}), None, id="not-bramble's"),
        pytest.param(line("create", kind="pod"), None, id="a-pod-event"),
        pytest.param(line("pull", kind="image"), None, id="an-image-event"),
        pytest.param(b"not json\n", None, id="garbage"),
        pytest.param(b"[]\n", None, id="not-an-object"),
    ],
)
def test_parse_event(raw: bytes, expected: RuntimeEvent | None) -> None:
    assert parse_event(raw) == expected


def test_a_container_without_a_pod_label_still_counts() -> None:
    event = parse_event(line("died", attributes={LABEL_MANAGED: "true"}))
    assert event == RuntimeEvent("died", "c0ffee", "")
