"""The DaemonSet's revision history as tables (``controllers/daemonset/history.py``):
the revision made for a template, which revision is current, when it is renumbered,
duplicates, and which old revisions the history limit deletes."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from controlplane.controllers.daemonset import history
from controlplane.controllers.daemonset.pods import REVISION_HASH, template_hash

Obj = dict[str, Any]


def daemon_set(image: str = "busybox:1", **status: Any) -> Obj:
    return {
        "metadata": {"name": "agent", "namespace": "lab", "uid": "ds-uid", "generation": 3,
                     "annotations": {"kubernetes.io/change-cause": "set image"}},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent", "tier": "node"}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            "revisionHistoryLimit": 2,
        },
        "status": status,
    }  # fmt: skip


def revision_of(image: str, number: int, *, name: str | None = None) -> Obj:
    made = history.snapshot(daemon_set(image), number)
    if name is not None:
        made["metadata"]["name"] = name
    return made


def test_a_snapshot_is_the_patch_that_restores_the_template() -> None:
    ds = daemon_set()
    made = history.snapshot(ds, 4)
    hashed = template_hash(ds["spec"]["template"])
    assert made["apiVersion"] == "apps/v1"
    assert made["kind"] == "ControllerRevision"
    assert made["metadata"]["name"] == f"agent-{hashed}"
    assert made["metadata"]["namespace"] == "lab"
    assert made["metadata"]["labels"] == {"app": "agent", "tier": "node", REVISION_HASH: hashed}
    assert made["metadata"]["annotations"] == {"kubernetes.io/change-cause": "set image"}
    ref = made["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["uid"], ref["controller"]) == ("DaemonSet", "ds-uid", True)
    assert made["revision"] == 4
    template = ds["spec"]["template"]
    go_metadata = {"creationTimestamp": None, **template["metadata"]}
    assert made["data"] == {
        "spec": {"template": {**template, "metadata": go_metadata, "$patch": "replace"}}
    }
    assert history.matches(ds, made)


def test_the_data_is_the_bytes_go_writes_for_the_typed_template() -> None:
    """kubectl compares them with its own ``json.Marshal`` of the DaemonSet: sorted keys,
    the directive first, ``creationTimestamp: null`` in the template's metadata."""
    data = history.snapshot(daemon_set(), 1)["data"]
    assert orjson.dumps(data) == (
        b'{"spec":{"template":{"$patch":"replace","metadata":{"creationTimestamp":null,'
        b'"labels":{"app":"agent","tier":"node"}},"spec":{"containers":[{"image":"busybox:1",'
        b'"name":"app"}]}}}}'
    )


def test_a_template_restored_by_the_patch_matches_its_revision() -> None:
    """The replace drops the nulls: the template kubectl's undo writes back is the one
    the revision was made of."""
    made = history.snapshot(daemon_set("v1"), 1)
    restored = daemon_set("v1")
    restored["spec"]["template"] = history.template_of(made)
    assert "creationTimestamp" not in restored["spec"]["template"]["metadata"]
    assert restored["spec"]["template"] == daemon_set("v1")["spec"]["template"]
    assert history.matches(restored, made)
    assert not history.matches(daemon_set("v2"), made)


def test_the_data_has_go_key_order_so_kubectl_can_compare_bytes() -> None:
    ds = daemon_set()
    ds["spec"]["template"]["spec"] = {"volumes": [], "containers": [{"name": "a", "image": "b"}]}
    data = history.snapshot(ds, 1)["data"]
    assert orjson.dumps(data) == orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def test_the_hash_follows_the_collision_count() -> None:
    plain = history.snapshot(daemon_set(), 1)
    bumped = history.snapshot(daemon_set(collisionCount=1), 1)
    assert plain["metadata"]["name"] != bumped["metadata"]["name"]
    assert bumped["metadata"]["labels"][REVISION_HASH] == template_hash(
        daemon_set()["spec"]["template"], 1
    )


@pytest.mark.parametrize(
    ("image", "revisions", "current", "next_revision", "renumber", "old"),
    [
        pytest.param("v1", [], None, 1, False, [], id="first-revision"),
        pytest.param("v1", [("v1", 1)], 1, 1, False, [], id="unchanged"),
        pytest.param("v2", [("v1", 1)], None, 2, False, [1], id="template-changed"),
        pytest.param("v3", [("v1", 1), ("v2", 2)], None, 3, False, [1, 2], id="second-change"),
        pytest.param("v1", [("v1", 1), ("v2", 2), ("v3", 3)], 1, 4, True, [2, 3], id="undo"),
        pytest.param("v3", [("v1", 5), ("v3", 3)], 3, 6, True, [5], id="behind-an-old-one"),
        pytest.param("v2", [("v1", 2), ("v2", 2)], 2, 3, True, [2], id="numbers-raced"),
    ],
)
def test_construct(
    image: str,
    revisions: list[tuple[str, int]],
    current: int | None,
    next_revision: int,
    renumber: bool,
    old: list[int],
) -> None:
    plan = history.construct(daemon_set(image), [revision_of(i, n) for i, n in revisions])
    assert (None if plan.current is None else plan.current["revision"]) == current
    assert plan.next_revision == next_revision
    assert plan.renumber is renumber
    assert sorted(history.number(r) for r in plan.old) == old
    assert plan.duplicates == ()


def test_duplicates_of_the_current_template_keep_the_highest_number() -> None:
    low, high = revision_of("v2", 2, name="agent-a"), revision_of("v2", 4, name="agent-b")
    plan = history.construct(daemon_set("v2"), [low, high, revision_of("v1", 3)])
    assert plan.current is high
    assert plan.duplicates == (low,)
    assert plan.renumber is False
    assert [history.number(r) for r in plan.old] == [3]


def test_a_revision_without_a_template_is_old() -> None:
    broken = {**revision_of("v1", 1), "data": {"spec": {}}}
    plan = history.construct(daemon_set("v1"), [broken])
    assert plan.current is None
    assert plan.old == (broken,)


def test_the_revision_hash_falls_back_to_the_name() -> None:
    unlabelled = copy.deepcopy(revision_of("v1", 1))
    del unlabelled["metadata"]["labels"][REVISION_HASH]
    assert history.revision_hash(unlabelled) == unlabelled["metadata"]["name"]


@pytest.mark.parametrize(
    ("numbers", "limit", "live", "deleted"),
    [
        pytest.param([1, 2], 2, set(), [], id="within-the-limit"),
        pytest.param([3, 1, 2, 4], 2, set(), [1, 2], id="oldest-first"),
        pytest.param([1, 2, 3], 1, {"h1"}, [2, 3], id="a-pod-keeps-its-revision"),
        pytest.param([1, 2, 3], 0, {"h1", "h2", "h3"}, [], id="every-one-in-use"),
        pytest.param([1, 2], 0, set(), [1, 2], id="no-history"),
    ],
)
def test_to_delete(numbers: list[int], limit: int, live: set[str], deleted: list[int]) -> None:
    old = []
    for n in numbers:
        revision = revision_of(f"v{n}", n)
        revision["metadata"]["labels"][REVISION_HASH] = f"h{n}"
        old.append(revision)
    doomed = history.to_delete(old, limit=limit, live_hashes=live)
    assert [history.number(r) for r in doomed] == deleted


@pytest.mark.parametrize(
    ("value", "limit"), [(None, 10), (0, 0), (3, 3), (True, 10)]
)  # fmt: skip
def test_history_limit(value: object, limit: int) -> None:
    ds = daemon_set()
    ds["spec"]["revisionHistoryLimit"] = value
    assert history.history_limit(ds) == limit
