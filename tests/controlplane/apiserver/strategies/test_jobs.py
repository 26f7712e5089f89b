"""Jobs: batch/v1 defaults, the selector generated from the Job's uid, validation and
what an update may change."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from controlplane.apiserver.strategies.jobs import (
    CONTROLLER_UID,
    JOB_NAME,
    LEGACY_CONTROLLER_UID,
    LEGACY_JOB_NAME,
)
from tests.controlplane.apiserver.strategies.helpers import (
    Mutation,
    causes,
    create,
    create_causes,
    fields,
    update,
    update_causes,
    workload,
)

REQ, INV, NSUP = "FieldValueRequired", "FieldValueInvalid", "FieldValueNotSupported"
FORB = "FieldValueForbidden"


def spec(obj: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = obj["spec"]
    return body


def test_job_defaults() -> None:
    stored = create(workload("Job", name="pi"))
    body = stored["spec"]
    assert {
        k: body[k]
        for k in (
            "parallelism",
            "completions",
            "backoffLimit",
            "completionMode",
            "suspend",
            "podReplacementPolicy",
        )
    } == {
        "parallelism": 1,
        "completions": 1,
        "backoffLimit": 6,
        "completionMode": "NonIndexed",
        "suspend": False,
        "podReplacementPolicy": "TerminatingOrFailed",
    }
    assert stored["status"] == {}


def test_parallelism_alone_leaves_completions_unset() -> None:
    body = create(workload("Job", parallelism=3))["spec"]
    assert body["parallelism"] == 3
    assert "completions" not in body


def test_the_selector_is_generated_from_the_uid() -> None:
    stored = create(workload("Job", name="pi"))
    uid = stored["metadata"]["uid"]
    assert stored["spec"]["selector"] == {"matchLabels": {CONTROLLER_UID: uid}}
    expected = {
        "app": "web",
        CONTROLLER_UID: uid,
        JOB_NAME: "pi",
        LEGACY_CONTROLLER_UID: uid,
        LEGACY_JOB_NAME: "pi",
    }
    assert stored["spec"]["template"]["metadata"]["labels"] == expected
    assert stored["metadata"]["labels"] == expected  # a Job without labels gets its template's


def test_a_manual_selector_is_kept() -> None:
    job = workload("Job", manualSelector=True, selector={"matchLabels": {"app": "web"}})
    stored = create(job)
    assert stored["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert CONTROLLER_UID not in stored["spec"]["template"]["metadata"]["labels"]


def test_a_user_selector_without_manual_selector_is_refused() -> None:
    job = workload("Job", selector={"matchLabels": {"app": "web"}})
    found = create_causes(job)
    assert fields(found) == [("spec.selector", INV)]
    assert found[0].message.endswith("`selector` not auto-generated")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda j: spec(j)["template"]["spec"].pop("restartPolicy"),
            [
                (
                    "spec.template.spec.restartPolicy",
                    REQ,
                    'Required value: valid values: "OnFailure", "Never"',
                )
            ],
            id="restart-policy-defaults-to-always-and-is-refused",
        ),
        pytest.param(
            lambda j: spec(j)["template"]["spec"].update(restartPolicy="Sometimes"),
            [
                ("spec.template.spec.restartPolicy", NSUP, None),
                ("spec.template.spec.restartPolicy", NSUP, None),
            ],
            id="restart-policy-unknown",
        ),
        pytest.param(
            lambda j: spec(j).update(completions=-1),
            [("spec.completions", INV, "Invalid value: -1: must be greater than or equal to 0")],
            id="completions",
        ),
        pytest.param(
            lambda j: spec(j).update(parallelism=-1),
            [("spec.parallelism", INV, None)],
            id="parallelism",
        ),
        pytest.param(
            lambda j: spec(j).update(backoffLimit=-1),
            [("spec.backoffLimit", INV, None)],
            id="backoff-limit",
        ),
        pytest.param(
            lambda j: spec(j).update(activeDeadlineSeconds=-1),
            [("spec.activeDeadlineSeconds", INV, None)],
            id="active-deadline",
        ),
        pytest.param(
            lambda j: spec(j).update(ttlSecondsAfterFinished=-1),
            [("spec.ttlSecondsAfterFinished", INV, None)],
            id="ttl",
        ),
        pytest.param(
            lambda j: spec(j).update(completionMode="Random"),
            [("spec.completionMode", NSUP, None)],
            id="completion-mode",
        ),
        pytest.param(
            lambda j: spec(j).update(completionMode="Indexed", completions=None, parallelism=2),
            [("spec.completions", REQ, None), ("spec.completionMode", INV, None)],
            id="indexed-needs-completions",
        ),
        pytest.param(
            lambda j: spec(j).update(backoffLimitPerIndex=1),
            [("spec.backoffLimitPerIndex", INV, None), ("spec.backoffLimitPerIndex", FORB, None)],
            id="per-index-needs-indexed",
        ),
    ],
)
def test_job_validation(mutate: Mutation, expected: list[Any]) -> None:
    found = create_causes(workload("Job"), mutate)
    assert fields(found) == [(f, r) for f, r, _ in expected]
    for cause, (_, _, message) in zip(found, expected, strict=True):
        if message is not None:
            assert cause.message == message


NOT_YET = "not supported by bramble yet"
FAIL_ON_EXIT_42 = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In",
                                                                  "values": [42]}}]}  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda j: spec(j).update(completionMode="Indexed", completions=3, parallelism=3),
            [("spec.completionMode", INV, f'Invalid value: "Indexed": {NOT_YET}')],
            id="indexed",
        ),
        pytest.param(
            lambda j: spec(j).update(podFailurePolicy=FAIL_ON_EXIT_42),
            # the defaulted podReplacementPolicy (Failed, with a failure policy) too
            [
                ("spec.podFailurePolicy", FORB, f"Forbidden: {NOT_YET}"),
                ("spec.podReplacementPolicy", INV, f'Invalid value: "Failed": {NOT_YET}'),
            ],
            id="pod-failure-policy",
        ),
        pytest.param(
            lambda j: spec(j).update(
                completionMode="Indexed",
                completions=2,
                backoffLimitPerIndex=1,
                maxFailedIndexes=1,
            ),
            [
                ("spec.completionMode", INV, None),
                ("spec.backoffLimitPerIndex", FORB, f"Forbidden: {NOT_YET}"),
                ("spec.maxFailedIndexes", FORB, f"Forbidden: {NOT_YET}"),
            ],
            id="backoff-limit-per-index",
        ),
        pytest.param(
            lambda j: spec(j).update(
                completionMode="Indexed",
                completions=2,
                successPolicy={"rules": [{"succeededIndexes": "0"}]},
            ),
            [("spec.completionMode", INV, None), ("spec.successPolicy", FORB, None)],
            id="success-policy",
        ),
        pytest.param(
            lambda j: spec(j).update(podReplacementPolicy="Failed"),
            [("spec.podReplacementPolicy", INV, f'Invalid value: "Failed": {NOT_YET}')],
            id="pod-replacement-failed",
        ),
        pytest.param(
            lambda j: spec(j).update(
                completionMode="NonIndexed", podReplacementPolicy="TerminatingOrFailed"
            ),
            [],
            id="what-bramble-does-is-accepted",
        ),
    ],
)
def test_fields_the_job_controller_does_not_implement_are_refused(
    mutate: Mutation, expected: list[Any]
) -> None:
    found = create_causes(workload("Job"), mutate)
    assert fields(found) == [(f, r) for f, r, _ in expected]
    for cause, (_, _, message) in zip(found, expected, strict=True):
        if message is not None:
            assert cause.message == message


def test_a_job_stored_with_an_unsupported_field_may_still_be_updated() -> None:
    """Written before bramble refused it: an update that leaves the field as it was is
    not refused for it (the field is immutable anyway)."""
    stored = create(workload("Job"))
    stored["spec"].update(completionMode="Indexed", completions=1)
    edited = copy.deepcopy(stored)
    edited["spec"]["parallelism"] = 1
    assert causes(lambda: update(edited, stored)) == []
    edited["spec"]["podReplacementPolicy"] = "Failed"
    assert fields(causes(lambda: update(edited, stored))) == [("spec.podReplacementPolicy", INV)]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda j: spec(j)["template"]["spec"]["containers"][0].update(image="b"),
            [("spec.template", INV)],
            id="template-immutable",
        ),
        pytest.param(
            lambda j: spec(j).update(completions=3),
            [("spec.completions", INV)],
            id="completions-immutable",
        ),
        pytest.param(
            lambda j: spec(j)["selector"]["matchLabels"].update(extra="x"),
            # not auto-generated, no longer selects the template, and immutable
            [
                ("spec.selector", INV),
                ("spec.template.metadata.labels", INV),
                ("spec.selector", INV),
            ],
            id="selector-immutable",
        ),
        pytest.param(lambda j: spec(j).update(parallelism=4), [], id="parallelism-may-change"),
        pytest.param(lambda j: spec(j).update(suspend=True), [], id="suspend-may-change"),
    ],
)
def test_job_updates(mutate: Mutation, expected: list[tuple[str, str]]) -> None:
    assert fields(update_causes(workload("Job"), mutate)) == expected


def test_a_suspended_job_that_never_ran_may_change_where_it_runs() -> None:
    stored = create(workload("Job", suspend=True))
    new = {**stored, "spec": {**stored["spec"]}}
    new["spec"]["template"] = {**stored["spec"]["template"]}
    new["spec"]["template"]["spec"] = {
        **stored["spec"]["template"]["spec"],
        "nodeSelector": {"disk": "ssd"},
    }
    assert causes(lambda: update(new, stored)) == []
    started = {**stored, "status": {"startTime": "2025-06-01T12:00:00Z"}}
    assert fields(causes(lambda: update(new, started))) == [("spec.template", INV)]
