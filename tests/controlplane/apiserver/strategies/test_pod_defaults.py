"""A pod's defaults on create and update: v1 defaulting, the admission plugins (default
tolerations, priority) and the initial status, as Kubernetes sets them."""

from __future__ import annotations

from typing import Any

import pytest

from api import errors
from controlplane.apiserver.strategies.pods import DEFAULT_TOLERATION_SECONDS
from controlplane.apiserver.strategies.pods.defaults import image_pull_policy
from tests.controlplane.apiserver.strategies.helpers import container, create, pod, update

NOT_READY = {
    "key": "node.kubernetes.io/not-ready",
    "operator": "Exists",
    "effect": "NoExecute",
    "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
}
UNREACHABLE = {**NOT_READY, "key": "node.kubernetes.io/unreachable"}


def test_a_minimal_pod_gets_kubernetes_defaults() -> None:
    stored = create(pod())
    spec = stored["spec"]
    assert {k: x for k, x in spec.items() if k != "containers"} == {
        "dnsPolicy": "ClusterFirst",
        "restartPolicy": "Always",
        "securityContext": {},
        "terminationGracePeriodSeconds": 30,
        "schedulerName": "default-scheduler",
        "enableServiceLinks": True,
        "tolerations": [NOT_READY, UNREACHABLE],
        "priority": 0,
        "preemptionPolicy": "PreemptLowerPriority",
    }
    assert spec["containers"] == [
        {
            "name": "app",
            "image": "nginx:1.27",
            "imagePullPolicy": "IfNotPresent",
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "resources": {},
        }
    ]
    assert stored["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


def test_the_default_toleration_seconds_is_bramble_s_home_lab_value() -> None:
    assert DEFAULT_TOLERATION_SECONDS == 30


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        pytest.param("nginx", "Always", id="no-tag"),
        pytest.param("nginx:latest", "Always", id="latest"),
        pytest.param("nginx:1.27", "IfNotPresent", id="tag"),
        pytest.param("registry.lan:5000/nginx", "Always", id="registry-port-no-tag"),
        pytest.param("registry.lan:5000/nginx:1", "IfNotPresent", id="registry-port-tag"),
        pytest.param("nginx@sha256:" + "a" * 64, "IfNotPresent", id="digest"),
        pytest.param("nginx:latest@sha256:" + "a" * 64, "Always", id="latest-and-digest"),
        pytest.param("Nginx", "IfNotPresent", id="unparsable"),
        pytest.param("", "IfNotPresent", id="empty"),
    ],
)
def test_image_pull_policy(image: str, policy: str) -> None:
    assert image_pull_policy(image) == policy


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(
            {"ports": [{"containerPort": 80}]},
            {"ports": [{"containerPort": 80, "protocol": "TCP"}]},
            id="port-protocol",
        ),
        pytest.param(
            {"livenessProbe": {"httpGet": {"port": 80}}},
            {
                "livenessProbe": {
                    "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
                    "timeoutSeconds": 1,
                    "periodSeconds": 10,
                    "successThreshold": 1,
                    "failureThreshold": 3,
                }
            },
            id="probe",
        ),
        pytest.param(
            {"env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]},
            {
                "env": [
                    {
                        "name": "NODE",
                        "valueFrom": {
                            "fieldRef": {"fieldPath": "spec.nodeName", "apiVersion": "v1"}
                        },
                    }
                ]
            },
            id="field-ref-api-version",
        ),
        pytest.param(
            {"imagePullPolicy": "Never", "terminationMessagePolicy": "FallbackToLogsOnError"},
            {"imagePullPolicy": "Never", "terminationMessagePolicy": "FallbackToLogsOnError"},
            id="given-values-stay",
        ),
        pytest.param(
            {"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
            {
                "resources": {
                    "limits": {"cpu": "1", "memory": "1Gi"},
                    "requests": {"cpu": "1", "memory": "1Gi"},
                }
            },
            id="requests-from-limits",
        ),
    ],
)
def test_container_defaults(given: dict[str, Any], expected: dict[str, Any]) -> None:
    stored = create(pod(containers=[container(**given)]))
    got = stored["spec"]["containers"][0]
    assert {k: got[k] for k in expected} == expected


@pytest.mark.parametrize(
    ("volume", "expected"),
    [
        pytest.param({"name": "v"}, {"name": "v", "emptyDir": {}}, id="no-source-is-emptydir"),
        pytest.param(
            {"name": "v", "secret": {"secretName": "s"}},
            {"name": "v", "secret": {"secretName": "s", "defaultMode": 420}},
            id="secret-mode",
        ),
        pytest.param(
            {"name": "v", "configMap": {"name": "c"}},
            {"name": "v", "configMap": {"name": "c", "defaultMode": 420}},
            id="configmap-mode",
        ),
        pytest.param(
            {"name": "v", "hostPath": {"path": "/srv"}},
            {"name": "v", "hostPath": {"path": "/srv", "type": ""}},
            id="hostpath-type",
        ),
    ],
)
def test_volume_defaults(volume: dict[str, Any], expected: dict[str, Any]) -> None:
    assert create(pod(volumes=[volume]))["spec"]["volumes"] == [expected]


def test_host_network_ports_default_to_the_container_port() -> None:
    stored = create(pod(hostNetwork=True, containers=[container(ports=[{"containerPort": 53}])]))
    assert stored["spec"]["containers"][0]["ports"] == [
        {"containerPort": 53, "hostPort": 53, "protocol": "TCP"}
    ]


@pytest.mark.parametrize(
    ("tolerations", "added"),
    [
        pytest.param([], [NOT_READY, UNREACHABLE], id="none"),
        pytest.param([{"operator": "Exists"}], [], id="tolerates-everything"),
        pytest.param(
            [
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 5,
                }
            ],
            [NOT_READY],
            id="own-unreachable-kept",
        ),
        pytest.param(
            [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoSchedule"}],
            [NOT_READY, UNREACHABLE],
            id="other-effect-does-not-count",
        ),
    ],
)
def test_default_tolerations(
    tolerations: list[dict[str, Any]], added: list[dict[str, Any]]
) -> None:
    stored = create(pod(tolerations=tolerations))
    assert stored["spec"]["tolerations"] == tolerations + added


@pytest.mark.parametrize(
    ("spec", "qos"),
    [
        pytest.param({}, "BestEffort", id="best-effort"),
        pytest.param({"limits": {"cpu": "1", "memory": "1Gi"}}, "Guaranteed", id="limits-only"),
        pytest.param(
            {
                "requests": {"cpu": "500m", "memory": "1Gi"},
                "limits": {"cpu": "0.5", "memory": "1Gi"},
            },
            "Guaranteed",
            id="equal",
        ),
        pytest.param({"requests": {"cpu": "100m"}}, "Burstable", id="request-only"),
        pytest.param(
            {"requests": {"cpu": "100m"}, "limits": {"cpu": "1", "memory": "1Gi"}},
            "Burstable",
            id="below-limit",
        ),
        pytest.param({"limits": {"cpu": "1"}}, "Burstable", id="cpu-limit-only"),
        pytest.param({"requests": {"cpu": "0"}}, "BestEffort", id="zero-request"),
    ],
)
def test_qos_class(spec: dict[str, Any], qos: str) -> None:
    stored = create(pod(containers=[container(resources=spec)]))
    assert stored["status"]["qosClass"] == qos


def test_a_client_cannot_create_a_pod_with_its_own_status() -> None:
    body = {**pod(), "status": {"phase": "Running", "podIP": "10.0.0.9"}}
    assert create(body)["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


@pytest.mark.parametrize(
    ("spec", "priority"),
    [
        pytest.param({"priorityClassName": "system-node-critical"}, 2000001000, id="node-critical"),
        pytest.param(
            {"priorityClassName": "system-cluster-critical"}, 2000000000, id="cluster-critical"
        ),
        pytest.param({"priority": 0}, 0, id="zero-given"),
    ],
)
def test_priority(spec: dict[str, Any], priority: int) -> None:
    assert create(pod(**spec))["spec"]["priority"] == priority


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(
            {"priorityClassName": "high"},
            'pods "web" is forbidden: no PriorityClass with name high was found',
            id="unknown-class",
        ),
        pytest.param(
            {"priority": 5},
            'pods "web" is forbidden: the integer value of priority (5) must not be '
            "provided in pod spec; priority admission controller computed 0 from the "
            "given PriorityClass name",
            id="priority-given",
        ),
    ],
)
def test_priority_admission_refuses(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.Forbidden) as caught:
        create(pod(**spec))
    assert caught.value.message == message


def test_an_update_keeps_priority_status_and_defaults() -> None:
    stored = create(pod())
    new = pod()  # a client's manifest, without anything the server filled in
    new["metadata"] = {"name": "web"}
    result = update(new, stored)
    assert result["spec"] == stored["spec"]
    assert result["status"] == stored["status"]
