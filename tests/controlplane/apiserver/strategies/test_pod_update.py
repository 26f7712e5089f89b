"""What an update may change in a pod (Kubernetes' ValidatePodUpdate), and what the status
subresource may."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.apiserver.strategies.pods.update import IMMUTABLE_MESSAGE
from tests.controlplane.apiserver.strategies.helpers import (
    Mutation,
    causes,
    container,
    create,
    fields,
    pod,
    update,
    update_causes,
)

FORB, INV, REQ = "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"


def spec(obj: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = obj["spec"]
    return body


def test_the_message_is_kubernetes() -> None:
    assert IMMUTABLE_MESSAGE == (
        "pod updates may not change fields other than `spec.containers[*].image`,"
        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
        "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
        "(allow it to be set to 1 if it was previously negative)"
    )


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda p: spec(p)["containers"][0].update(image="nginx:1.28"), id="image"),
        pytest.param(lambda p: spec(p).update(activeDeadlineSeconds=60), id="deadline-set"),
        pytest.param(
            lambda p: spec(p)["tolerations"].append(
                {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}
            ),
            id="toleration-added",
        ),
        pytest.param(
            lambda p: spec(p)["tolerations"][0].update(tolerationSeconds=5),
            id="toleration-seconds-changed",
        ),
        pytest.param(lambda p: p["metadata"].update(labels={"tier": "web"}), id="labels"),
        pytest.param(lambda p: None, id="nothing"),
    ],
)
def test_allowed_updates(mutate: Mutation) -> None:
    assert update_causes(pod(initContainers=[container("init")]), mutate) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda p: spec(p)["containers"][0].update(ports=[{"containerPort": 80}]),
            [("spec", FORB)],
            id="ports",
        ),
        pytest.param(
            lambda p: spec(p).update(nodeName="pi-2"),
            [("spec", FORB)],
            id="node-name-only-through-binding",
        ),
        pytest.param(
            lambda p: spec(p)["containers"].append(container("b")),
            [("spec.containers", FORB)],
            id="add-container",
        ),
        pytest.param(
            lambda p: spec(p)["containers"][0].update(image=""),
            [("spec.containers[0].image", REQ)],
            id="image-required",
        ),
        pytest.param(
            lambda p: spec(p)["tolerations"].pop(0),
            [("spec.tolerations", FORB)],
            id="toleration-removed",
        ),
        pytest.param(
            lambda p: spec(p).update(terminationGracePeriodSeconds=10),
            [("spec", FORB)],
            id="grace-period",
        ),
        pytest.param(
            lambda p: spec(p).update(restartPolicy="Never"), [("spec", FORB)], id="restart-policy"
        ),
    ],
)
def test_forbidden_updates(mutate: Mutation, expected: list[tuple[str, str]]) -> None:
    gpu = {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}
    assert fields(update_causes(pod(tolerations=[gpu]), mutate)) == expected


def test_default_tolerations_come_back_as_on_kubernetes() -> None:
    """The DefaultTolerationSeconds plugin runs on update too: dropping one of its
    tolerations from a manifest is not a change."""
    assert update_causes(pod(), lambda p: spec(p)["tolerations"].pop()) == []


def test_the_refusal_names_the_changed_field() -> None:
    found = update_causes(pod(nodeName="pi-1"), lambda p: spec(p).update(nodeName="pi-2"))
    assert [c.message for c in found] == [
        f'Forbidden: {IMMUTABLE_MESSAGE}\n- spec.nodeName: "pi-1"\n+ spec.nodeName: "pi-2"'
    ]


def test_node_name_cannot_be_set_by_an_update_either() -> None:
    found = update_causes(pod(), lambda p: spec(p).update(nodeName="pi-1"))
    assert fields(found) == [("spec", FORB)]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(None, 30, [], id="set"),
        pytest.param(60, 30, [], id="lowered"),
        pytest.param(30, 60, [("spec.activeDeadlineSeconds", INV)], id="raised"),
        pytest.param(30, None, [("spec.activeDeadlineSeconds", INV)], id="removed"),
    ],
)
def test_active_deadline_updates(old: int | None, new: int | None, expected: list[Any]) -> None:
    original = pod() if old is None else pod(activeDeadlineSeconds=old)

    def change(p: dict[str, Any]) -> None:
        if new is None:
            spec(p).pop("activeDeadlineSeconds", None)
        else:
            spec(p)["activeDeadlineSeconds"] = new

    assert fields(update_causes(original, change)) == expected


def test_a_negative_grace_period_may_become_one() -> None:
    stored = create(pod(terminationGracePeriodSeconds=-1))
    new = {**stored, "spec": {**stored["spec"], "terminationGracePeriodSeconds": 1}}
    assert causes(lambda: update(new, stored)) == []
    new["spec"]["terminationGracePeriodSeconds"] = 2
    assert fields(causes(lambda: update(new, stored))) == [("spec", FORB)]


def test_a_gated_pod_may_gain_node_selector_labels_and_lose_gates() -> None:
    stored = create(pod(schedulingGates=[{"name": "example.com/wait"}], nodeSelector={"a": "1"}))
    new = {**stored, "spec": {**stored["spec"], "nodeSelector": {"a": "1", "b": "2"}}}
    new["spec"].pop("schedulingGates")
    assert causes(lambda: update(new, stored)) == []
    new["spec"]["nodeSelector"] = {"a": "2"}
    assert fields(causes(lambda: update(new, stored))) == [("spec.nodeSelector", INV)]


def test_status_updates_change_only_status_and_keep_the_qos_class() -> None:
    stored = create(pod())
    new = {**stored, "spec": {"containers": []}, "status": {"phase": "Running"}}
    result = update(new, stored, subresource="status")
    assert result["spec"] == stored["spec"]
    assert result["status"] == {"phase": "Running", "qosClass": "BestEffort"}


def test_the_qos_class_is_immutable() -> None:
    stored = create(pod())
    new = {**stored, "status": {"phase": "Running", "qosClass": "Guaranteed"}}
    found = causes(lambda: update(new, stored, subresource="status"))
    assert [(c.field, c.message) for c in found] == [
        ("status.qosClass", 'Invalid value: "Guaranteed": field is immutable')
    ]


def test_status_ips_are_checked() -> None:
    stored = create(pod())
    new = {**stored, "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.300"}]}}
    found = causes(lambda: update(new, stored, subresource="status"))
    assert fields(found) == [("status.podIPs[0]", INV)]
