"""Pod validation on create, container by container: names, image, ports, env, probes and
hooks, with Kubernetes' field paths and reasons (and messages where users meet them).
Each row breaks one thing in a valid pod."""

from __future__ import annotations

from typing import Any

import pytest

from tests.controlplane.apiserver.strategies.helpers import (
    Mutation,
    container,
    create,
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


def test_a_valid_rich_pod_passes() -> None:
    rich = pod(
        containers=[
            container(
                ports=[
                    {"name": "http", "containerPort": 8080},
                    {"containerPort": 53, "protocol": "UDP"},
                ],
                env=[
                    {"name": "A", "value": "1"},
                    {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                ],
                envFrom=[{"configMapRef": {"name": "cm"}, "prefix": "CFG_"}],
                volumeMounts=[{"name": "data", "mountPath": "/data"}],
                resources={"requests": {"cpu": "100m"}, "limits": {"cpu": "1", "memory": "1Gi"}},
                livenessProbe={"httpGet": {"port": "http", "path": "/healthz"}},
                readinessProbe={"tcpSocket": {"port": 8080}},
                lifecycle={"preStop": {"sleep": {"seconds": 5}}},
            )
        ],
        initContainers=[container("init", command=["true"])],
        volumes=[{"name": "data", "emptyDir": {}}],
        nodeSelector={"kubernetes.io/arch": "arm64"},
        tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
        affinity={
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {"matchLabels": {"app": "web"}},
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            }
        },
    )
    assert create_causes(rich) == []


CASES = [
    # --- containers, names, image -------------------------------------------------------
    pytest.param(
        lambda p: spec(p).update(containers=[]),
        [("spec.containers", REQ)],
        id="containers-required",
    ),
    pytest.param(lambda p: c0(p).update(name=""), [(f"{C0}.name", REQ)], id="name-required"),
    pytest.param(lambda p: c0(p).update(name="Web_1"), [(f"{C0}.name", INV)], id="name-dns-label"),
    pytest.param(
        lambda p: spec(p)["containers"].append(container()),
        [("spec.containers[1].name", DUP)],
        id="name-duplicate",
    ),
    pytest.param(
        lambda p: spec(p).update(initContainers=[container()]),
        [("spec.initContainers[0].name", DUP)],
        id="init-name-duplicate",
    ),
    pytest.param(lambda p: c0(p).pop("image"), [(f"{C0}.image", REQ)], id="image-required"),
    pytest.param(lambda p: c0(p).update(image=" nginx"), [(f"{C0}.image", INV)], id="image-blanks"),
    pytest.param(
        lambda p: c0(p).update(imagePullPolicy="Sometimes"),
        [(f"{C0}.imagePullPolicy", NSUP)],
        id="pull-policy",
    ),
    pytest.param(
        lambda p: c0(p).update(terminationMessagePolicy="Log"),
        [(f"{C0}.terminationMessagePolicy", NSUP)],
        id="termination-message-policy",
    ),
    pytest.param(
        lambda p: c0(p).update(restartPolicy="Always"),
        [(f"{C0}.restartPolicy", FORB)],
        id="restart-policy-on-regular-container",
    ),
    # --- ports ----------------------------------------------------------------------------
    pytest.param(
        lambda p: c0(p).update(ports=[{"containerPort": 0}]),
        [(f"{C0}.ports[0].containerPort", REQ)],
        id="container-port-required",
    ),
    pytest.param(
        lambda p: c0(p).update(ports=[{"containerPort": 70000}]),
        [(f"{C0}.ports[0].containerPort", INV)],
        id="container-port-range",
    ),
    pytest.param(
        lambda p: c0(p).update(ports=[{"containerPort": 80, "hostPort": -1}]),
        [(f"{C0}.ports[0].hostPort", INV)],
        id="host-port-range",
    ),
    pytest.param(
        lambda p: c0(p).update(ports=[{"containerPort": 80, "protocol": "HTTP"}]),
        [(f"{C0}.ports[0].protocol", NSUP)],
        id="protocol",
    ),
    pytest.param(
        lambda p: c0(p).update(ports=[{"containerPort": 80, "name": "web_http"}]),
        [(f"{C0}.ports[0].name", INV)],
        id="port-name-iana",
    ),
    pytest.param(
        lambda p: c0(p).update(
            ports=[{"containerPort": 80, "name": "a"}, {"containerPort": 81, "name": "a"}]
        ),
        [(f"{C0}.ports[1].name", DUP)],
        id="port-name-duplicate",
    ),
    pytest.param(
        lambda p: spec(p).update(
            containers=[
                container("a", ports=[{"containerPort": 80, "hostPort": 8080}]),
                container("b", ports=[{"containerPort": 81, "hostPort": 8080}]),
            ]
        ),
        [("spec.containers[1].ports[0].hostPort", DUP)],
        id="host-port-conflict",
    ),
    # --- env ------------------------------------------------------------------------------
    pytest.param(
        lambda p: c0(p).update(env=[{"value": "x"}]),
        [(f"{C0}.env[0].name", REQ)],
        id="env-name-required",
    ),
    pytest.param(
        lambda p: c0(p).update(env=[{"name": "A=B"}]),
        [(f"{C0}.env[0].name", INV)],
        id="env-name-equals",
    ),
    pytest.param(
        lambda p: c0(p).update(env=[{"name": "A", "valueFrom": {}}]),
        [(f"{C0}.env[0].valueFrom", INV)],
        id="value-from-no-source",
    ),
    pytest.param(
        lambda p: c0(p).update(
            env=[
                {
                    "name": "A",
                    "valueFrom": {
                        "configMapKeyRef": {"name": "c", "key": "k"},
                        "secretKeyRef": {"name": "s", "key": "k"},
                    },
                }
            ]
        ),
        [(f"{C0}.env[0].valueFrom", INV)],
        id="value-from-two-sources",
    ),
    pytest.param(
        lambda p: c0(p).update(
            env=[
                {
                    "name": "A",
                    "value": "x",
                    "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}},
                }
            ]
        ),
        [(f"{C0}.env[0].valueFrom", INV)],
        id="value-and-value-from",
    ),
    pytest.param(
        lambda p: c0(p).update(
            env=[{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.restartPolicy"}}}]
        ),
        [(f"{C0}.env[0].valueFrom.fieldRef.fieldPath", NSUP)],
        id="field-ref-unsupported",
    ),
    pytest.param(
        lambda p: c0(p).update(envFrom=[{"prefix": "X"}]),
        [(f"{C0}.envFrom", INV)],
        id="env-from-no-source",
    ),
    # --- probes and hooks -----------------------------------------------------------------------
    pytest.param(
        lambda p: c0(p).update(livenessProbe={"periodSeconds": 5}),
        [(f"{C0}.livenessProbe", REQ)],
        id="probe-needs-handler",
    ),
    pytest.param(
        lambda p: c0(p).update(
            livenessProbe={"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}}
        ),
        [(f"{C0}.livenessProbe.tcpSocket", FORB)],
        id="probe-two-handlers",
    ),
    pytest.param(
        lambda p: c0(p).update(livenessProbe={"tcpSocket": {"port": 80}, "periodSeconds": -1}),
        [(f"{C0}.livenessProbe.periodSeconds", INV)],
        id="probe-period-negative",
    ),
    pytest.param(
        lambda p: c0(p).update(livenessProbe={"tcpSocket": {"port": 80}, "successThreshold": 2}),
        [(f"{C0}.livenessProbe.successThreshold", INV)],
        id="liveness-success-threshold",
    ),
    pytest.param(
        lambda p: c0(p).update(readinessProbe={"httpGet": {"port": "web_port"}}),
        [(f"{C0}.readinessProbe.httpGet.port", INV)],
        id="probe-port-name",
    ),
    pytest.param(
        lambda p: spec(p).update(
            initContainers=[container("init", livenessProbe={"exec": {"command": ["true"]}})]
        ),
        [("spec.initContainers[0].livenessProbe", FORB)],
        id="init-container-probe",
    ),
]


@pytest.mark.parametrize(("mutate", "expected"), CASES)
def test_pod_validation(mutate: Mutation, expected: list[tuple[str, str]]) -> None:
    assert fields(create_causes(pod(), mutate)) == expected


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        pytest.param(
            lambda p: spec(p).update(containers=[]),
            "spec.containers",
            "Required value",
            id="containers",
        ),
        pytest.param(
            lambda p: c0(p).update(ports=[{"containerPort": 70000}]),
            f"{C0}.ports[0].containerPort",
            "Invalid value: 70000: must be between 1 and 65535, inclusive",
            id="port",
        ),
        pytest.param(
            lambda p: c0(p).update(ports=[{"containerPort": 80, "protocol": "HTTP"}]),
            f"{C0}.ports[0].protocol",
            'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
            id="protocol",
        ),
        pytest.param(
            lambda p: c0(p).update(volumeMounts=[{"name": "nope", "mountPath": "/x"}]),
            f"{C0}.volumeMounts[0].name",
            'Not found: "nope"',
            id="mount",
        ),
        pytest.param(
            lambda p: c0(p).update(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}),
            f"{C0}.resources.requests",
            'Invalid value: "2": must be less than or equal to cpu limit of 1',
            id="request",
        ),
        pytest.param(
            lambda p: c0(p).update(env=[{"name": "A", "valueFrom": {}}]),
            f"{C0}.env[0].valueFrom",
            'Invalid value: "": must specify one of: `fieldRef`, `resourceFieldRef`, '
            "`configMapKeyRef` or `secretKeyRef`",
            id="value-from",
        ),
        pytest.param(
            lambda p: spec(p).update(
                volumes=[{"name": "v", "emptyDir": {}, "secret": {"secretName": "s"}}]
            ),
            "spec.volumes[0].secret",
            "Forbidden: may not specify more than 1 volume type",
            id="volume-sources",
        ),
        pytest.param(
            lambda p: spec(p).update(
                tolerations=[{"key": "a", "effect": "NoSchedule", "tolerationSeconds": 5}]
            ),
            "spec.tolerations[0].effect",
            "Invalid value: \"NoSchedule\": effect must be 'NoExecute' when "
            "`tolerationSeconds` is set",
            id="toleration-seconds",
        ),
        pytest.param(
            lambda p: spec(p).update(restartPolicy="Sometimes"),
            "spec.restartPolicy",
            'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
            id="restart-policy",
        ),
        pytest.param(
            lambda p: c0(p).update(livenessProbe={"periodSeconds": 5}),
            f"{C0}.livenessProbe",
            "Required value: must specify a handler type",
            id="probe-handler",
        ),
    ],
)
def test_pod_validation_messages(mutate: Mutation, field: str, message: str) -> None:
    found = create_causes(pod(), mutate)
    assert [(c.field, c.message) for c in found] == [(field, message)]


def test_the_422_reads_as_kubectl_prints_it() -> None:
    from api import errors

    broken = pod(containers=[container(image="")])
    with pytest.raises(errors.Invalid) as caught:
        create(broken)
    assert caught.value.message == (
        'Pod "web" is invalid: spec.containers[0].image: Required value'
    )
    assert caught.value.code == 422
