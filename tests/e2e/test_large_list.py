"""A list bigger than one write slice (controlplane/apiserver/respond.py ``large``) arrives
whole, valid and in key order, with its length announced."""

from __future__ import annotations

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
