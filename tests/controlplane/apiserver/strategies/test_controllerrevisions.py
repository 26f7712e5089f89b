"""ControllerRevisions: ``data`` required and immutable, ``revision`` a non-negative
number that may change (a controller renumbers on undo), as Kubernetes validates them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.controlplane.apiserver.strategies.helpers import (
    Mutation,
    create,
    create_causes,
    fields,
    update,
    update_causes,
)

REQ, INV, TYPE = "FieldValueRequired", "FieldValueInvalid", "FieldValueTypeInvalid"
DATA = {"spec": {"template": {"$patch": "replace", "spec": {"containers": []}}}}


def revision(**fields: Any) -> dict[str, Any]:
    body = {"data": DATA, "revision": 1, **fields}
    meta = {"name": "agent-5d8f", "labels": {"app": "agent"}}
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": meta, **body}


def test_a_valid_revision_is_stored_as_sent() -> None:
    stored = create(revision())
    assert stored["data"] == DATA
    assert stored["revision"] == 1
    assert "status" not in stored


def test_a_revision_without_a_number_is_revision_0_as_in_go() -> None:
    body = revision()
    del body["revision"]
    assert create(body)["revision"] == 0


@pytest.mark.parametrize(
    ("mutate", "expected", "message"),
    [
        pytest.param(lambda r: r.pop("data"), [("data", REQ)], "data is mandatory", id="no-data"),
        pytest.param(
            lambda r: r.update(data=None), [("data", REQ)], "data is mandatory", id="null-data"
        ),
        pytest.param(
            lambda r: r.update(revision=-1),
            [("revision", INV)],
            "greater than or equal to 0",
            id="negative",
        ),
        pytest.param(
            lambda r: r.update(revision="2"),
            [("revision", TYPE)],
            "must be an integer",
            id="not-a-number",
        ),
        pytest.param(
            lambda r: r["metadata"].update(name="Agent_1"),
            [("metadata.name", INV)],
            "RFC 1123",
            id="name",
        ),
    ],
)
def test_create_is_refused(mutate: Mutation, expected: list[tuple[str, str]], message: str) -> None:
    found = create_causes(revision(), mutate)
    assert fields(found) == expected
    assert message in found[0].message


def test_data_is_immutable() -> None:
    other = {"spec": {"template": {"$patch": "replace", "spec": {"containers": [{"name": "x"}]}}}}
    found = update_causes(revision(), lambda r: r.update(data=other))
    assert fields(found) == [("data", INV)]
    assert found[0].message.endswith("field is immutable")


def test_data_may_not_even_lose_an_empty_field() -> None:
    """Raw bytes are kept: an empty list dropped is a change, unlike in a spec."""
    found = update_causes(revision(data={"a": []}), lambda r: r.update(data={}))
    assert fields(found) == [("data", INV)]


def test_the_revision_number_may_change_so_an_undo_can_renumber() -> None:
    stored = create(revision())
    renumbered = update({**stored, "revision": 4}, stored)
    assert renumbered["revision"] == 4
    labelled = update({**stored, "metadata": {**stored["metadata"], "labels": {"a": "b"}}}, stored)
    assert labelled["metadata"]["labels"] == {"a": "b"}
