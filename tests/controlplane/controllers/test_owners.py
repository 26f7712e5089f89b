"""The controlling ownerReference, as every controller finds it."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.controllers.owners import controller_key, controller_ref, controller_uid


def pod(*refs: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "ns", "ownerReferences": list(refs)}}


RS = {"kind": "ReplicaSet", "name": "web", "uid": "u1", "controller": True}
PLAIN = {"kind": "ConfigMap", "name": "c", "uid": "u2"}


@pytest.mark.parametrize(
    ("obj", "ref"),
    [
        (pod(PLAIN, RS), RS),
        (pod(PLAIN), None),
        (pod({**RS, "controller": False}), None),
        (pod("not a reference", 7, RS), RS),
        ({"metadata": {"ownerReferences": "garbage"}}, None),
        ({"metadata": None}, None),
        ({}, None),
    ],
)
def test_controller_ref(obj: dict[str, Any], ref: dict[str, Any] | None) -> None:
    assert controller_ref(obj) == ref


def test_controller_uid_and_key() -> None:
    assert controller_uid(pod(RS)) == ["u1"]
    assert controller_uid(pod(PLAIN)) == []
    assert controller_uid(pod({**RS, "uid": ""})) == []
    assert controller_key(pod(RS), "ReplicaSet") == "ns/web"
    assert controller_key(pod(RS), "Job") is None
    assert controller_key(pod(PLAIN), "ConfigMap") is None  # not its controller
