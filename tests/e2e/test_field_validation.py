"""fieldValidation with the real kubectl: a typo in a manifest is an error under kubectl's
default (Strict), a warning when asked to warn, and nothing at all when ignored."""

from __future__ import annotations

import json

from tests.support.cluster import Kubectl


def manifest(namespace: str, name: str) -> str:
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "containers": [
                            {"name": "web", "image": "busybox", "imagePulPolicy": "Always"}
                        ]
                    },
                },
            },
        }
    )


def test_a_typo_is_refused_by_default(kubectl: Kubectl, namespace: str) -> None:
    result = kubectl("apply", "-f", "-", input=manifest(namespace, "typo"))
    assert result.returncode != 0
    assert 'unknown field "spec.template.spec.containers[0].imagePulPolicy"' in result.stderr
    assert kubectl("get", "deployment", "typo", "-n", namespace).returncode != 0  # not stored


def test_a_typo_can_be_a_warning_or_ignored(kubectl: Kubectl, namespace: str) -> None:
    warned = kubectl("apply", "--validate=warn", "-f", "-", input=manifest(namespace, "warned"))
    assert warned.returncode == 0, warned.stderr
    assert "imagePulPolicy" in warned.stderr  # kubectl prints the server's Warning header
    ignored = kubectl("apply", "--validate=false", "-f", "-", input=manifest(namespace, "ignored"))
    assert ignored.returncode == 0, ignored.stderr
    assert "imagePulPolicy" not in ignored.stderr
