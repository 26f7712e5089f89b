"""Strict field validation: unknown and duplicate fields against the schema generated from
the kubernetes client, and the fieldValidation directive's three modes."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from api import errors
from api.resources import by_api_version
from controlplane.apiserver import schema
from tests.controlplane.apiserver.strategies.helpers import resource, workload

ROOT = Path(__file__).resolve().parents[4]
DATA = ROOT / "tests/controlplane/apiserver/data"


def deployment() -> dict[str, Any]:
    manifest = workload("Deployment")
    manifest["metadata"]["labels"] = {"app.kubernetes.io/name": "web", "any key/at all": "x"}
    manifest["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "{}"}
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container.update(
        ports=[{"containerPort": 80, "name": "http"}],
        resources={"limits": {"cpu": "1", "example.com/gpu": "1"}},
        readinessProbe={"httpGet": {"port": "http", "path": "/"}},
    )
    manifest["status"] = {"replicas": 1, "conditions": [{"type": "Available", "status": "True"}]}
    return manifest


@pytest.mark.parametrize(
    ("mutate", "unknown"),
    [
        pytest.param(lambda d: None, [], id="valid-with-free-form-maps-and-status"),
        pytest.param(
            lambda d: d["spec"]["template"]["spec"]["containers"][0].update(
                imagePulPolicy="Always"
            ),
            ["spec.template.spec.containers[0].imagePulPolicy"],
            id="typo-in-container",
        ),
        pytest.param(lambda d: d.update(specs={}), ["specs"], id="top-level"),
        pytest.param(
            lambda d: d["metadata"].update(label={"a": "b"}), ["metadata.label"], id="metadata-typo"
        ),
        pytest.param(
            lambda d: d["spec"]["template"]["spec"]["containers"][0]["ports"][0].update(
                hostport=80
            ),
            ["spec.template.spec.containers[0].ports[0].hostport"],
            id="in-list",
        ),
        pytest.param(
            lambda d: d["status"]["conditions"][0].update(since="now"),
            ["status.conditions[0].since"],
            id="in-status",
        ),
        pytest.param(
            lambda d: d["spec"].update(strategy={"rollingUpdate": {"maxSurge": "25%", "surge": 1}}),
            ["spec.strategy.rollingUpdate.surge"],
            id="next-to-int-or-string",
        ),
    ],
)
def test_unknown_fields(mutate: Any, unknown: list[str]) -> None:
    manifest = deployment()
    mutate(manifest)
    assert schema.unknown_fields(resource("Deployment"), manifest) == unknown


def test_free_form_fields_take_anything() -> None:
    config_map: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"any.key": "v"},
        "binaryData": {"b": "AA=="},
    }
    assert schema.unknown_fields(resource("ConfigMap"), config_map) == []
    managed = [{"manager": "kubectl", "fieldsV1": {"f:spec": {"f:anything": {}}}}]
    config_map["metadata"]["managedFields"] = managed
    assert schema.unknown_fields(resource("ConfigMap"), config_map) == []


@pytest.mark.parametrize(
    "path",
    sorted(
        p for p in DATA.glob("*.json") if "cronjob" not in p.name and "deleteoptions" not in p.name
    ),
    ids=lambda p: p.stem,
)
def test_real_manifests_have_no_unknown_fields(path: Path) -> None:
    manifest = json.loads(path.read_text())
    served = by_api_version(manifest["apiVersion"], manifest["kind"])
    assert served is not None
    assert schema.unknown_fields(served, manifest) == []


def test_kinds_without_a_schema_report_nothing() -> None:
    metrics = by_api_version("metrics.k8s.io/v1beta1", "PodMetrics")
    assert metrics is not None
    assert schema.unknown_fields(metrics, {"anything": 1}) == []


def test_subresource_bodies_have_schemas() -> None:
    scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "spec": {"replica": 3}}
    assert schema.unknown_fields_of("autoscaling/v1", "Scale", scale) == ["spec.replica"]
    validator = schema.field_validation("Strict", verb="update")
    with pytest.raises(errors.BadRequest) as caught:
        validator.check(resource("Deployment"), scale, body_kind=("autoscaling/v1", "Scale"))
    assert caught.value.message == (
        'Scale in version "v1" cannot be handled as a Scale: strict decoding error: '
        'unknown field "spec.replica"'
    )


@pytest.mark.parametrize(
    ("body", "duplicates"),
    [
        pytest.param(b'{"spec": {"replicas": 1, "replicas": 2}}', ["spec.replicas"], id="nested"),
        pytest.param(b'{"a": [{"b": 1, "b": 2}], "a": []}', ["a"], id="outer-wins"),
        pytest.param(b'{"a": [{"b": 1, "b": 2}]}', ["a[0].b"], id="in-list"),
        pytest.param(b'{"a": 1}', [], id="none"),
        pytest.param(b"a: 1\na: 2\n", [], id="yaml-is-not-checked"),
        # What the quick proof of "nothing repeated" must not be fooled by: key ends
        # inside strings (an annotation holding JSON), blanks before the colon.
        pytest.param(
            b'{"metadata": {"annotations": {"x": "{\\"a\\": 1, \\"a\\": 2}"}}}',
            [],
            id="key-ends-inside-a-string",
        ),
        pytest.param(
            b'{"a": "\\":", "b" : 1, "b"\n: 2}', ["b"], id="string-and-blanks-hide-nothing"
        ),
        pytest.param(
            b'{"a": {}, "b": [[], {}], "c": {"d": [1, {"e": 1, "e": 1}]}}', ["c.d[1].e"], id="deep"
        ),
        pytest.param(b'{"a": 1, "a": 1', [], id="not-json"),
    ],
)
def test_duplicate_fields(body: bytes, duplicates: list[str]) -> None:
    assert schema.duplicate_fields(body) == duplicates


TYPO = {"spec": {"template": {"spec": {"containers": [{"name": "a", "imagePulPolicy": "x"}]}}}}


def test_strict_refuses_with_kubernetes_message() -> None:
    validator = schema.field_validation("Strict", verb="create")
    raw = b'{"spec": {"replicas": 1, "replicas": 2}}'
    with pytest.raises(errors.BadRequest) as caught:
        validator.check(resource("Deployment"), TYPO, raw=raw)
    assert caught.value.message == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'duplicate field "spec.replicas", '
        'unknown field "spec.template.spec.containers[0].imagePulPolicy"'
    )
    assert caught.value.code == 400


def test_strict_patch_reports_the_decoding_error_alone() -> None:
    validator = schema.field_validation("Strict", verb="patch")
    with pytest.raises(errors.BadRequest) as caught:
        validator.check(resource("Deployment"), TYPO)
    assert caught.value.message == (
        'strict decoding error: unknown field "spec.template.spec.containers[0].imagePulPolicy"'
    )


@pytest.mark.parametrize("value", [None, "", "Warn"])
def test_warn_returns_warning_headers(value: str | None) -> None:
    validator = schema.field_validation(value)
    assert validator.mode is schema.FieldValidation.WARN
    assert validator.check(resource("Deployment"), TYPO) == [
        '299 - "unknown field \\"spec.template.spec.containers[0].imagePulPolicy\\""'
    ]


def test_ignore_says_nothing() -> None:
    assert schema.field_validation("Ignore").check(resource("Deployment"), TYPO, raw=b"{}") == []


def test_a_clean_body_passes_strict() -> None:
    validator = schema.field_validation("Strict")
    assert validator.check(resource("Deployment"), copy.deepcopy(deployment())) == []


def test_an_unknown_directive_is_an_invalid_options_object() -> None:
    with pytest.raises(errors.Invalid) as caught:
        schema.field_validation("strict", verb="patch")
    assert caught.value.message == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "strict": '
        'supported values: "", "Ignore", "Strict", "Warn"'
    )
    assert caught.value.status()["details"]["kind"] == "PatchOptions"


def test_the_committed_schema_matches_the_installed_client() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts/gen-schema"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_the_control_plane_does_not_import_the_kubernetes_client() -> None:
    code = (
        "import sys\n"
        "from api.resources import by_kind\n"
        "from controlplane.apiserver import schema\n"
        "schema.unknown_fields(by_kind('', 'Pod'), {'spec': {'x': 1}})\n"
        "assert 'kubernetes' not in sys.modules, 'kubernetes was imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
