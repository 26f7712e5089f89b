"""Deployments, ReplicaSets and DaemonSets: apps/v1 defaults, validation and the immutable
selector, with Kubernetes' messages."""

from __future__ import annotations

from typing import Any

import pytest

from tests.controlplane.apiserver.strategies.helpers import (
    Mutation,
    create,
    create_causes,
    fields,
    update_causes,
    workload,
)

REQ, INV, NSUP, FORB = (
    "FieldValueRequired",
    "FieldValueInvalid",
    "FieldValueNotSupported",
    "FieldValueForbidden",
)


def spec(obj: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = obj["spec"]
    return body


def test_deployment_defaults() -> None:
    stored = create(workload("Deployment"))
    body = stored["spec"]
    assert body["replicas"] == 1
    assert body["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert body["revisionHistoryLimit"] == 10
    assert body["progressDeadlineSeconds"] == 600
    template_spec = body["template"]["spec"]
    assert template_spec["restartPolicy"] == "Always"
    assert template_spec["dnsPolicy"] == "ClusterFirst"
    assert "enableServiceLinks" not in template_spec  # a Pod-only default
    assert "tolerations" not in template_spec  # admission adds them to pods, not templates
    assert stored["status"] == {}


def test_recreate_gets_no_rolling_update() -> None:
    stored = create(workload("Deployment", strategy={"type": "Recreate"}))
    assert stored["spec"]["strategy"] == {"type": "Recreate"}


def test_replica_set_and_daemon_set_defaults() -> None:
    assert create(workload("ReplicaSet"))["spec"]["replicas"] == 1
    daemon = create(workload("DaemonSet"))["spec"]
    assert daemon["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert daemon["revisionHistoryLimit"] == 10


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        pytest.param("Deployment", {}, id="deployment"),
        pytest.param("ReplicaSet", {"replicas": 0}, id="replica-set"),
        pytest.param(
            "DaemonSet",
            {
                "currentNumberScheduled": 0,
                "numberMisscheduled": 0,
                "desiredNumberScheduled": 0,
                "numberReady": 0,
            },
            id="daemon-set",
        ),
    ],
)
def test_a_client_cannot_create_a_workload_with_status(kind: str, status: dict[str, int]) -> None:
    """The status is reset, with the counters Go serializes even when zero."""
    body = {**workload(kind), "status": {"replicas": 3, "numberReady": 3}}
    assert create(body)["status"] == status


def test_a_status_write_gets_the_zero_counters_back() -> None:
    from tests.controlplane.apiserver.strategies.helpers import update

    stored = create(workload("ReplicaSet"))
    result = update({**stored, "status": {"readyReplicas": 1}}, stored, subresource="status")
    assert result["status"] == {"readyReplicas": 1, "replicas": 0}


SELECTOR = 'v1.LabelSelector{MatchLabels:map[string]string{"app":"api"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}'  # noqa: E501


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "DaemonSet"])
@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda w: spec(w)["template"]["metadata"].update(labels={"app": "api"}),
            [
                (
                    "spec.template.metadata.labels",
                    INV,
                    'Invalid value: map[string]string{"app":"api"}: `selector` does not '
                    "match template `labels`",
                )
            ],
            id="selector-mismatch",
        ),
        pytest.param(
            lambda w: spec(w)["template"]["spec"].update(restartPolicy="Never"),
            [
                (
                    "spec.template.spec.restartPolicy",
                    NSUP,
                    'Unsupported value: "Never": supported values: "Always"',
                )
            ],
            id="restart-policy-always",
        ),
        pytest.param(
            lambda w: spec(w).update(minReadySeconds=-1),
            [
                (
                    "spec.minReadySeconds",
                    INV,
                    "Invalid value: -1: must be greater than or equal to 0",
                )
            ],
            id="min-ready",
        ),
        pytest.param(
            lambda w: spec(w)["template"]["spec"]["containers"][0].update(image=""),
            [("spec.template.spec.containers[0].image", REQ, "Required value")],
            id="template-is-a-pod-spec",
        ),
        pytest.param(
            lambda w: spec(w)["template"]["metadata"]["labels"].update({"bad key!": "x"}),
            [("spec.template.labels", INV, None)],
            id="template-labels-path-quirk",
        ),
    ],
)
def test_shared_rules(kind: str, mutate: Mutation, expected: list[Any]) -> None:
    found = create_causes(workload(kind), mutate)
    assert fields(found) == [(f, r) for f, r, _ in expected]
    for cause, (_, _, message) in zip(found, expected, strict=True):
        if message is not None:
            assert cause.message == message


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet"])
@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda w: spec(w).pop("selector"),
            [("spec.selector", REQ), ("spec.template.metadata.labels", INV)],
            id="selector-required",
        ),
        pytest.param(
            lambda w: spec(w).update(selector={}), [("spec.selector", INV)], id="selector-empty"
        ),
        pytest.param(
            lambda w: spec(w).update(replicas=-1), [("spec.replicas", INV)], id="replicas"
        ),
        pytest.param(
            lambda w: spec(w)["template"]["spec"].update(activeDeadlineSeconds=5),
            [("spec.template.spec.activeDeadlineSeconds", FORB)],
            id="active-deadline",
        ),
    ],
)
def test_replicated_rules(kind: str, mutate: Mutation, expected: list[Any]) -> None:
    assert fields(create_causes(workload(kind), mutate)) == expected


def test_an_empty_selector_message_says_deployment_even_for_a_replica_set() -> None:
    found = create_causes(workload("ReplicaSet"), lambda w: spec(w).update(selector={}))
    assert [c.message for c in found] == [
        "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for "
        "deployment"
    ]


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        pytest.param(
            {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}},
            [("spec.strategy.rollingUpdate", FORB)],
            id="recreate-with-rolling",
        ),
        pytest.param({"type": "BlueGreen"}, [("spec.strategy", NSUP)], id="unknown-type"),
        pytest.param(
            {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}},
            [("spec.strategy.rollingUpdate.maxUnavailable", INV)],
            id="both-zero",
        ),
        pytest.param(
            {"rollingUpdate": {"maxSurge": "0%", "maxUnavailable": "0%"}},
            [("spec.strategy.rollingUpdate.maxUnavailable", INV)],
            id="both-zero-percent",
        ),
        pytest.param(
            {"rollingUpdate": {"maxSurge": "lots"}},
            [("spec.strategy.rollingUpdate.maxSurge", INV)],
            id="not-a-percent",
        ),
        pytest.param(
            {"rollingUpdate": {"maxUnavailable": "150%"}},
            [("spec.strategy.rollingUpdate.maxUnavailable", INV)],
            id="over-100",
        ),
        pytest.param(
            {"rollingUpdate": {"maxSurge": -1}},
            [("spec.strategy.rollingUpdate.maxSurge", INV)],
            id="negative",
        ),
        pytest.param({"rollingUpdate": {"maxSurge": 2, "maxUnavailable": "10%"}}, [], id="valid"),
    ],
)
def test_deployment_strategy(strategy: dict[str, Any], expected: list[Any]) -> None:
    assert fields(create_causes(workload("Deployment", strategy=strategy))) == expected


def test_deployment_strategy_messages() -> None:
    found = create_causes(workload("Deployment", strategy={"type": "BlueGreen"}))
    assert [c.message for c in found] == [
        'Unsupported value: apps.DeploymentStrategy{Type:"BlueGreen", '
        "RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: "
        '"Recreate", "RollingUpdate"'
    ]
    zero = {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}
    found = create_causes(workload("Deployment", strategy=zero))
    assert [c.message for c in found] == [
        'Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:""}: may not be 0 when '
        "`maxSurge` is 0"
    ]


@pytest.mark.parametrize(
    ("fields_", "expected"),
    [
        pytest.param(
            {"progressDeadlineSeconds": 10, "minReadySeconds": 10},
            [("spec.progressDeadlineSeconds", INV)],
            id="deadline-not-above-min-ready",
        ),
        pytest.param({"progressDeadlineSeconds": 11, "minReadySeconds": 10}, [], id="deadline-ok"),
        pytest.param(
            {"revisionHistoryLimit": -1}, [("spec.revisionHistoryLimit", INV)], id="history-limit"
        ),
    ],
)
def test_deployment_limits(fields_: dict[str, Any], expected: list[Any]) -> None:
    assert fields(create_causes(workload("Deployment", **fields_))) == expected


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        pytest.param({"type": "OnDelete"}, [], id="on-delete"),
        pytest.param({"type": "Canary"}, [("spec.updateStrategy", NSUP)], id="unknown"),
        pytest.param(
            {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}},
            [("spec.updateStrategy.rollingUpdate.maxUnavailable", REQ)],
            id="both-zero",
        ),
        pytest.param(
            {"rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}},
            [("spec.updateStrategy.rollingUpdate.maxSurge", INV)],
            id="both-set",
        ),
        pytest.param({"rollingUpdate": {"maxUnavailable": 0, "maxSurge": "10%"}}, [], id="surge"),
    ],
)
def test_daemon_set_update_strategy(strategy: dict[str, Any], expected: list[Any]) -> None:
    assert fields(create_causes(workload("DaemonSet", updateStrategy=strategy))) == expected


def test_a_daemon_set_without_selector_does_not_match_its_template() -> None:
    found = create_causes(workload("DaemonSet"), lambda w: spec(w).pop("selector"))
    assert fields(found) == [("spec.template.metadata.labels", INV)]


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "DaemonSet"])
def test_the_selector_is_immutable(kind: str) -> None:
    def change(w: dict[str, Any]) -> None:
        spec(w)["selector"] = {"matchLabels": {"app": "api"}}
        spec(w)["template"]["metadata"]["labels"] = {"app": "api"}

    found = update_causes(workload(kind), change)
    assert [(c.field, c.message) for c in found] == [
        ("spec.selector", f"Invalid value: {SELECTOR}: field is immutable")
    ]


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "DaemonSet"])
def test_the_template_may_change(kind: str) -> None:
    change = lambda w: spec(w)["template"]["spec"]["containers"][0].update(image="nginx:2")  # noqa: E731
    assert update_causes(workload(kind), change) == []


def test_applying_the_same_manifest_again_keeps_the_generation() -> None:
    from tests.controlplane.apiserver.strategies.helpers import update

    manifest = workload("Deployment")
    stored = create(manifest)
    again = update({**manifest, "metadata": dict(stored["metadata"])}, stored)
    assert again["metadata"]["generation"] == 1
    changed = workload("Deployment", replicas=3)
    bumped = update({**changed, "metadata": dict(stored["metadata"])}, stored)
    assert bumped["metadata"]["generation"] == 2
