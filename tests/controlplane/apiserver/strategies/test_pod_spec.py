"""Pod validation on create, pod-wide: volumes and mounts, resources, pod-level fields,
tolerations and affinity, with Kubernetes' field paths and reasons. Each row breaks one
thing in a valid pod."""

from __future__ import annotations

from typing import Any

import pytest

from tests.controlplane.apiserver.strategies.helpers import (
    Mutation,
    container,
    create_causes,
    fields,
    pod,
)

REQ, INV, NSUP = "FieldValueRequired", "FieldValueInvalid", "FieldValueNotSupported"
DUP, FORB, NF = "FieldValueDuplicate", "FieldValueForbidden", "FieldValueNotFound"
C0 = "spec.containers[0]"


def c0(obj: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = obj["spec"]["containers"][0]
    return first


def spec(obj: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = obj["spec"]
    return body


CASES = [
    # --- volumes and mounts ------------------------------------------------------------------
    pytest.param(
        lambda p: spec(p).update(
            volumes=[{"name": "v", "emptyDir": {}, "hostPath": {"path": "/srv"}}]
        ),
        [("spec.volumes[0].hostPath", FORB)],
        id="two-volume-sources",
    ),
    pytest.param(
        lambda p: spec(p).update(
            volumes=[{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]
        ),
        [("spec.volumes[1].name", DUP)],
        id="volume-name-duplicate",
    ),
    pytest.param(
        lambda p: spec(p).update(volumes=[{"name": "V", "emptyDir": {}}]),
        [("spec.volumes[0].name", INV)],
        id="volume-name-dns-label",
    ),
    pytest.param(
        lambda p: spec(p).update(volumes=[{"name": "v", "hostPath": {"path": "/a/../b"}}]),
        [("spec.volumes[0].hostPath.path", INV)],
        id="host-path-backsteps",
    ),
    pytest.param(
        lambda p: spec(p).update(volumes=[{"name": "v", "secret": {}}]),
        [("spec.volumes[0].secret.secretName", REQ)],
        id="secret-name-required",
    ),
    pytest.param(
        lambda p: spec(p).update(
            volumes=[{"name": "v", "configMap": {"name": "c", "defaultMode": 512}}]
        ),
        [("spec.volumes[0].configMap.defaultMode", INV)],
        id="file-mode",
    ),
    pytest.param(
        lambda p: spec(p).update(volumes=[{"name": "v", "persistentVolumeClaim": {}}]),
        [("spec.volumes[0].persistentVolumeClaim.claimName", REQ)],
        id="claim-required",
    ),
    pytest.param(
        lambda p: c0(p).update(volumeMounts=[{"name": "nope", "mountPath": "/x"}]),
        [(f"{C0}.volumeMounts[0].name", NF)],
        id="mount-unknown-volume",
    ),
    pytest.param(
        lambda p: (
            spec(p).update(volumes=[{"name": "v", "emptyDir": {}}]),
            c0(p).update(
                volumeMounts=[{"name": "v", "mountPath": "/x"}, {"name": "v", "mountPath": "/x"}]
            ),
        ),
        [(f"{C0}.volumeMounts[1].mountPath", INV)],
        id="mount-path-unique",
    ),
    # --- resources ----------------------------------------------------------------------------
    pytest.param(
        lambda p: c0(p).update(resources={"limits": {"cpu": "-1"}}),
        # SetDefaults_Pod copied the limit into the requests, so both are reported.
        [(f"{C0}.resources.limits[cpu]", INV), (f"{C0}.resources.requests[cpu]", INV)],
        id="negative-quantity",
    ),
    pytest.param(
        lambda p: c0(p).update(resources={"requests": {"memory": "lots"}}),
        [(f"{C0}.resources.requests[memory]", INV)],
        id="bad-quantity",
    ),
    pytest.param(
        lambda p: c0(p).update(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}),
        [(f"{C0}.resources.requests", INV)],
        id="request-over-limit",
    ),
    pytest.param(
        lambda p: c0(p).update(resources={"limits": {"gpu": "1"}}),
        [(f"{C0}.resources.limits[gpu]", INV)] * 2 + [(f"{C0}.resources.requests[gpu]", INV)] * 2,
        id="non-standard-resource",
    ),
    pytest.param(
        lambda p: c0(p).update(resources={"requests": {"example.com/gpu": "1"}}),
        [(f"{C0}.resources.limits", REQ)],
        id="extended-needs-limit",
    ),
    # --- pod-level fields --------------------------------------------------------------------
    pytest.param(
        lambda p: spec(p).update(restartPolicy="Sometimes"),
        [("spec.restartPolicy", NSUP)],
        id="restart-policy",
    ),
    pytest.param(
        lambda p: spec(p).update(dnsPolicy="Google"), [("spec.dnsPolicy", NSUP)], id="dns-policy"
    ),
    pytest.param(
        lambda p: spec(p).update(dnsPolicy="None"),
        [("spec.dnsConfig", REQ)],
        id="dns-none-needs-config",
    ),
    pytest.param(
        lambda p: spec(p).update(activeDeadlineSeconds=0),
        [("spec.activeDeadlineSeconds", INV)],
        id="active-deadline",
    ),
    pytest.param(
        lambda p: spec(p).update(nodeSelector={"bad key!": "x"}),
        [("spec.nodeSelector", INV)],
        id="node-selector-key",
    ),
    pytest.param(
        lambda p: spec(p).update(nodeName="Pi_1"), [("spec.nodeName", INV)], id="node-name"
    ),
    pytest.param(lambda p: spec(p).update(hostname="a.b"), [("spec.hostname", INV)], id="hostname"),
    pytest.param(
        lambda p: spec(p).update(preemptionPolicy="Always"),
        [("spec.preemptionPolicy", NSUP)],
        id="preemption-policy",
    ),
    pytest.param(
        lambda p: spec(p).update(securityContext={"runAsUser": -1}),
        [("spec.securityContext.runAsUser", INV)],
        id="run-as-user",
    ),
    pytest.param(
        lambda p: spec(p).update(
            hostNetwork=True,
            containers=[container(ports=[{"containerPort": 80, "hostPort": 8080}])],
        ),
        [(f"{C0}.ports[0].hostPort", INV)],
        id="host-network-port-mismatch",
    ),
    # --- tolerations --------------------------------------------------------------------------
    pytest.param(
        lambda p: spec(p).update(tolerations=[{"key": "a", "operator": "Maybe"}]),
        [("spec.tolerations[0].operator", NSUP)],
        id="toleration-operator",
    ),
    pytest.param(
        lambda p: spec(p).update(tolerations=[{"key": "a", "effect": "NoRun"}]),
        [("spec.tolerations[0].effect", NSUP)],
        id="toleration-effect",
    ),
    pytest.param(
        lambda p: spec(p).update(
            tolerations=[{"key": "a", "effect": "NoSchedule", "tolerationSeconds": 5}]
        ),
        [("spec.tolerations[0].effect", INV)],
        id="toleration-seconds-needs-noexecute",
    ),
    pytest.param(
        lambda p: spec(p).update(tolerations=[{"operator": "Equal", "value": "x"}]),
        [("spec.tolerations[0].operator", INV)],
        id="toleration-empty-key-needs-exists",
    ),
    pytest.param(
        lambda p: spec(p).update(tolerations=[{"key": "a", "operator": "Exists", "value": "x"}]),
        [("spec.tolerations[0].operator", INV)],
        id="toleration-exists-with-value",
    ),
    # --- affinity ---------------------------------------------------------------------------
    pytest.param(
        lambda p: spec(p).update(
            affinity={
                "podAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": {"a": "b"}}}
                    ]
                }
            }
        ),
        [
            (
                "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey",
                REQ,
            ),
            (
                "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey",
                INV,
            ),
            (
                "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey",
                INV,
            ),
        ],
        id="pod-affinity-topology-key",
    ),
    pytest.param(
        lambda p: spec(p).update(
            affinity={
                "podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 0, "podAffinityTerm": {"topologyKey": "zone"}}
                    ]
                }
            }
        ),
        [
            (
                "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
                INV,
            )
        ],
        id="pod-anti-affinity-weight",
    ),
    pytest.param(
        lambda p: spec(p).update(
            affinity={
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "zone", "operator": "In"}]}
                        ]
                    }
                }
            }
        ),
        [
            (
                "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
                ".nodeSelectorTerms[0].matchExpressions[0].values",
                REQ,
            )
        ],
        id="node-affinity-in-needs-values",
    ),
    pytest.param(
        lambda p: spec(p).update(
            affinity={
                "podAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "labelSelector": {
                                "matchExpressions": [{"key": "a", "operator": "Near"}]
                            },
                            "topologyKey": "zone",
                        }
                    ]
                }
            }
        ),
        [
            (
                "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]"
                ".labelSelector.matchExpressions[0].operator",
                INV,
            )
        ],
        id="affinity-selector-operator",
    ),
    # --- types ------------------------------------------------------------------------------
    pytest.param(
        lambda p: spec(p).update(containers="app"),
        [("spec.containers", "FieldValueTypeInvalid")],
        id="containers-not-a-list",
    ),
]


@pytest.mark.parametrize(("mutate", "expected"), CASES)
def test_pod_validation(mutate: Mutation, expected: list[tuple[str, str]]) -> None:
    assert fields(create_causes(pod(), mutate)) == expected


COST = "controller.kubernetes.io/pod-deletion-cost"


@pytest.mark.parametrize(
    ("value", "valid"),
    [("0", True), ("-100", True), ("2147483647", True), ("-2147483648", True),
     ("2147483648", False), ("1.5", False), ("high", False), ("", False), ("١٢", False),
     ("+-5", False), ("+7", True), ("-", False)],
)  # fmt: skip
def test_pod_deletion_cost_is_a_32bit_integer(value: str, valid: bool) -> None:
    def annotate(p: dict[str, Any]) -> None:
        p["metadata"]["annotations"] = {COST: value}

    found = create_causes(pod(), annotate)
    assert fields(found) == ([] if valid else [(f"metadata.annotations[{COST}]", INV)])
    if not valid:
        assert "must be a 32bit integer" in found[0].message


def test_a_clean_spec_is_remembered_and_any_other_is_checked_again() -> None:
    """Validation remembers the specs that validated clean, by their exact JSON: the
    same spec again costs a digest; any change, and any spec with problems, is checked in
    full (its causes reported every time)."""
    from controlplane.apiserver.strategies.pods import spec as specs

    specs._CLEAN_SPECS.clear()
    assert create_causes(pod()) == []
    assert len(specs._CLEAN_SPECS) == 1
    assert create_causes(pod()) == []
    assert len(specs._CLEAN_SPECS) == 1  # the same spec: found, not added
    for _ in range(2):  # with problems: never remembered, reported each time
        found = create_causes(pod(), lambda p: c0(p).update(name="Bad_Name"))
        assert fields(found) == [(f"{C0}.name", INV)]
    assert len(specs._CLEAN_SPECS) == 1
    assert create_causes(pod(restartPolicy="Never")) == []  # another clean spec
    assert len(specs._CLEAN_SPECS) == 2


def test_a_spec_without_a_json_form_is_validated_every_time() -> None:
    """A YAML body can carry values JSON has none for (a date): no digest, no memory."""
    import datetime

    from controlplane.apiserver.strategies.pods import spec as specs

    specs._CLEAN_SPECS.clear()
    odd = {**pod()["spec"], "terminationGracePeriodSeconds": 30,
           "nodeSelector": {"since": datetime.date(2026, 11, 24)}}  # fmt: skip
    first = specs.validate_pod_spec(odd, "spec", pod=True)
    assert first == specs.validate_pod_spec(odd, "spec", pod=True)
    assert specs._CLEAN_SPECS == {}
