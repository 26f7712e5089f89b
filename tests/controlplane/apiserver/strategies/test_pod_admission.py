"""DefaultTolerationSeconds with the apiserver's ``--default-not-ready-toleration-seconds``
and ``--default-unreachable-toleration-seconds``, as a table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from controlplane.apiserver.strategies.pods.admission import (
    DefaultTolerations,
    add_default_tolerations,
    configure_default_tolerations,
)
from tests.controlplane.apiserver.strategies.helpers import create, pod

Obj = dict[str, Any]
NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"


def seconds(spec: Obj) -> dict[str, object]:
    return {t.get("key"): t.get("tolerationSeconds") for t in spec["tolerations"]}


@pytest.mark.parametrize(
    ("given", "defaults", "expected"),
    [
        ([], DefaultTolerations(), {NOT_READY: 30, UNREACHABLE: 30}),
        ([], DefaultTolerations(5, 7), {NOT_READY: 5, UNREACHABLE: 7}),
        ([], DefaultTolerations(0, 0), {NOT_READY: 0, UNREACHABLE: 0}),
        # The pod's own toleration wins; only the missing one is added.
        ([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
           "tolerationSeconds": 600}], DefaultTolerations(5, 7),
         {UNREACHABLE: 600, NOT_READY: 5}),
    ],
)  # fmt: skip
def test_default_toleration_seconds(
    given: list[Obj], defaults: DefaultTolerations, expected: dict[str, int]
) -> None:
    spec: Obj = {"tolerations": given}
    add_default_tolerations(spec, defaults)
    assert seconds(spec) == expected


@pytest.fixture
def configured() -> Iterator[None]:
    configure_default_tolerations(DefaultTolerations(not_ready_seconds=12, unreachable_seconds=7))
    try:
        yield
    finally:
        configure_default_tolerations(DefaultTolerations())


@pytest.mark.usefixtures("configured")
def test_a_created_pod_gets_the_process_s_configured_seconds() -> None:
    assert seconds(create(pod())["spec"]) == {NOT_READY: 12, UNREACHABLE: 7}
