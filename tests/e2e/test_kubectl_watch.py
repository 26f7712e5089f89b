"""``kubectl get -w``: the list, then one watch from its resourceVersion, each change a
printed row. kubectl runs in the background; the test waits for the line it expects,
with a deadline, before it makes the next change (kubectl-surface.md sections 3 and 8)."""

from __future__ import annotations

import re

import pytest

from tests.e2e import objects as o
from tests.support.cluster import HttpsClient, Kubectl

pytestmark = pytest.mark.real("kubectl")

MERGE = {"Content-Type": "application/merge-patch+json"}


def events_of(lines: list[str], name: str) -> list[str]:
    """The EVENT column of the rows about ``name`` (``--output-watch-events``)."""
    return [line.split()[0] for line in lines if re.match(rf"^\S+\s+{re.escape(name)}\s", line)]


def test_get_w_prints_a_row_per_change(
    kubectl: Kubectl, admin: HttpsClient, namespace: str
) -> None:
    pods = f"/api/v1/namespaces/{namespace}/pods"
    o.create(admin, pods, o.pod("seed"))
    with kubectl.background("-n", namespace, "get", "pods", "-w", "--output-watch-events") as bg:
        # The list is done once kubectl printed it; the watch then starts from its
        # revision, so no change made after this line can be missed. (An empty list
        # prints nothing at all in watch mode, hence the seed.)
        bg.wait_for_line(r"^ADDED\s+seed\s")
        o.create(admin, pods, o.pod("w-1"))
        lines = bg.wait_for_line(r"^ADDED\s+w-1\s+0/1\s+Pending\s+0\s+\d+s$")
        assert re.match(r"^EVENT\s+NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$", lines[0])
        admin.ok("PATCH", f"{pods}/w-1", {"metadata": {"labels": {"x": "1"}}}, headers=MERGE)
        bg.wait_for_line(r"^MODIFIED\s+w-1\s")
        o.create(admin, pods, o.pod("w-2"))
        bg.wait_for_line(r"^ADDED\s+w-2\s")
        admin.ok("DELETE", f"{pods}/w-1")
        lines = bg.wait_for_line(r"^DELETED\s+w-1\s+0/1\s+Pending")
    assert events_of(lines, "w-1") == ["ADDED", "MODIFIED", "DELETED"]
    assert events_of(lines, "w-2") == ["ADDED"]


def test_get_w_applies_the_label_selector_to_changes(
    kubectl: Kubectl, admin: HttpsClient, namespace: str
) -> None:
    pods = f"/api/v1/namespaces/{namespace}/pods"
    o.create(admin, pods, o.pod("sel-1", labels={"app": "a"}))
    args = ("-n", namespace, "get", "pods", "-l", "app=a", "-w", "--output-watch-events")
    with kubectl.background(*args) as bg:
        bg.wait_for_line(r"^ADDED\s+sel-1\s")
        o.create(admin, pods, o.pod("other", labels={"app": "b"}))
        o.create(admin, pods, o.pod("sel-2", labels={"app": "a"}))
        bg.wait_for_line(r"^ADDED\s+sel-2\s")
        # Relabelled away from the selector: the watcher sees it leave.
        admin.ok("PATCH", f"{pods}/sel-1", {"metadata": {"labels": {"app": "b"}}}, headers=MERGE)
        bg.wait_for_line(r"^DELETED\s+sel-1\s")
        admin.ok("PATCH", f"{pods}/other", {"metadata": {"labels": {"app": "a"}}}, headers=MERGE)
        lines = bg.wait_for_line(r"^ADDED\s+other\s")
    assert events_of(lines, "sel-1") == ["ADDED", "DELETED"]
    assert events_of(lines, "other") == ["ADDED"]


def test_get_one_object_w_sees_the_first_change(
    kubectl: Kubectl, admin: HttpsClient, namespace: str
) -> None:
    """kubectl drops the first event of a single-object watch (it printed the object
    already), so the server must send the current object first; otherwise the first
    real change would be swallowed."""
    pods = f"/api/v1/namespaces/{namespace}/pods"
    o.create(admin, pods, o.pod("one"))
    o.create(admin, pods, o.pod("two"))
    with kubectl.background("-n", namespace, "get", "pod", "one", "-w") as bg:
        bg.wait_for_line(r"^one\s+0/1\s+Pending")
        admin.ok("PATCH", f"{pods}/two", {"metadata": {"labels": {"x": "1"}}}, headers=MERGE)
        o.bind(admin, namespace, "one", "e2e-watch-node")
        lines = bg.wait_for_line(r"^one\s+0/1\s+Pending", count=2)
        admin.ok("DELETE", f"{pods}/one?gracePeriodSeconds=0")
        lines = bg.wait_for_line(r"^one\s", count=3)
    assert not any(line.startswith("two") for line in lines), lines
    assert len([line for line in lines if line.startswith("one")]) == 3, lines


def test_get_w_json_streams_objects(kubectl: Kubectl, admin: HttpsClient, namespace: str) -> None:
    maps = f"/api/v1/namespaces/{namespace}/configmaps"
    o.create(admin, maps, {"metadata": {"name": "seed"}, "data": {"k": "v0"}})
    with kubectl.background("-n", namespace, "get", "cm", "-w", "-o", "name") as bg:
        bg.wait_for_line(r"^configmap/seed$")
        admin.ok("PUT", f"{maps}/seed", {"metadata": {"name": "seed"}, "data": {"k": "v1"}})
        lines = bg.wait_for_line(r"^configmap/seed$", count=2)
    assert lines == ["configmap/seed\n", "configmap/seed\n"]
