"""A list bigger than one write slice (controlplane/apiserver/respond.py ``large``) arrives
whole, valid and in key order, with its length announced."""

from __future__ import annotations

import threading

from controlplane.apiserver.handlers import MATCH_SLICE
from controlplane.apiserver.respond import LARGE_BODY
from tests.support.cluster import HttpsClient


def test_a_list_larger_than_a_slice_arrives_whole(admin: HttpsClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    value = "x" * 4096
    count = LARGE_BODY * 3 // len(value) + 1  # three slices and a bit
    for i in range(count):
        admin.ok("POST", path, {"metadata": {"name": f"cm-{i:04d}"}, "data": {"v": value}})
    reply = admin.request("GET", path)
    assert reply.status == 200
    assert int(reply.headers["Content-Length"]) == len(reply.body) > 3 * LARGE_BODY
    items = reply.json()["items"]
    assert [i["metadata"]["name"] for i in items] == [f"cm-{i:04d}" for i in range(count)]
    assert all(i["data"]["v"] == value for i in items)


def test_a_filtered_list_is_one_snapshot_while_writes_go_on(
    admin: HttpsClient, namespace: str
) -> None:
    # The server filters a list a slice at a time, letting other requests in between
    # (handlers.MATCH_SLICE): the answer must still be exactly the objects at its
    # resourceVersion, even with creates landing during the filtering.
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    for i in range(2 * MATCH_SLICE + 7):
        labels = {"parity": "even" if i % 2 == 0 else "odd"}
        admin.ok("POST", path, {"metadata": {"name": f"cm-{i:04d}", "labels": labels}})
    stop = threading.Event()

    def create_more() -> None:
        i = 0
        while not stop.is_set():
            meta = {"name": f"late-{i:05d}", "labels": {"parity": "even"}}
            admin.ok("POST", path, {"metadata": meta})
            i += 1

    writer = threading.Thread(target=create_more)
    writer.start()
    try:
        lists = [admin.ok("GET", f"{path}?labelSelector=parity%3Deven") for _ in range(10)]
    finally:
        stop.set()
        writer.join()
    every = admin.ok("GET", path)["items"]
    created_at = {i["metadata"]["name"]: int(i["metadata"]["resourceVersion"]) for i in every}
    for listed in lists:
        revision = int(listed["metadata"]["resourceVersion"])
        expected = sorted(
            name
            for name, at in created_at.items()
            if at <= revision and (name.startswith("late-") or int(name[3:]) % 2 == 0)
        )
        assert [i["metadata"]["name"] for i in listed["items"]] == expected
