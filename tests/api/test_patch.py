"""The four patch types, as tables: the RFCs' examples, the patches kubectl was seen
sending (kubectl-surface.md, sections 3 and 7), apimachinery's own strategic-merge
fixtures, every error with its status code, and properties over random documents.

Documents in the tables are YAML flow text (``{spec: {replicas: 3}}``): short, and
exactly JSON once parsed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from api import errors
from api.patch import apply, apply_patch, json_merge_patch, json_patch, strategic_merge_patch
from api.patch import merge_keys as mk
from api.patch.strategic import is_directive

P = pytest.param
POD, NODE, SERVICE = ("", "Pod"), ("", "Node"), ("", "Service")
DEPLOYMENT, JOB = ("apps", "Deployment"), ("batch", "Job")
WIDGET = ("example.com", "Widget")  # a custom resource: no merge keys known
SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSONP = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"


def y(text: str) -> Any:
    return yaml.safe_load(text)


def directives_in(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [k for k in value if is_directive(k)]
        return found + [d for v in value.values() for d in directives_in(v)]
    if isinstance(value, list):
        return [d for v in value for d in directives_in(v)]
    return []


# --- RFC 7386 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [  # Appendix A, in order, then the example of section 3
        P('{a: b}', '{a: c}', '{a: c}', id="A.1"),
        P('{a: b}', '{b: c}', '{a: b, b: c}', id="A.2"),
        P('{a: b}', '{a: null}', '{}', id="A.3"),
        P('{a: b, b: c}', '{a: null}', '{b: c}', id="A.4"),
        P('{a: [b]}', '{a: c}', '{a: c}', id="A.5"),
        P('{a: c}', '{a: [b]}', '{a: [b]}', id="A.6"),
        P('{a: {b: c}}', '{a: {b: d, c: null}}', '{a: {b: d}}', id="A.7"),
        P('{a: [{b: c}]}', '{a: [1]}', '{a: [1]}', id="A.8"),
        P('[a, b]', '[c, d]', '[c, d]', id="A.9"),
        P('{a: b}', '[c]', '[c]', id="A.10"),
        P('{a: foo}', 'null', 'null', id="A.11"),
        P('{a: foo}', 'bar', 'bar', id="A.12"),
        P('{e: null}', '{a: 1}', '{e: null, a: 1}', id="A.13"),
        P('[1, 2]', '{a: b, c: null}', '{a: b}', id="A.14"),
        P('{}', '{a: {bb: {ccc: null}}}', '{a: {bb: {}}}', id="A.15"),
        P('{title: Goodbye!, author: {givenName: John, familyName: Doe},'
          ' tags: [example, sample], content: This will be unchanged}',
          '{title: Hello!, phoneNumber: +01-123-456-7890, author: {familyName: null},'
          ' tags: [example]}',
          '{title: Hello!, author: {givenName: John}, tags: [example],'
          ' content: This will be unchanged, phoneNumber: +01-123-456-7890}', id="section-3"),
    ],
)  # fmt: skip
def test_json_merge_patch_follows_rfc7386(target: str, patch: str, expected: str) -> None:
    assert json_merge_patch(y(target), y(patch)) == y(expected)


# --- RFC 6902 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "ops", "expected"),
    [  # Appendix A, then what kubectl patch --type=json sends
        P('{foo: bar}', '[{op: add, path: /baz, value: qux}]', '{baz: qux, foo: bar}',
          id="A.1-add-member"),
        P('{foo: [bar, baz]}', '[{op: add, path: /foo/1, value: qux}]', '{foo: [bar, qux, baz]}',
          id="A.2-add-element"),
        P('{baz: qux, foo: bar}', '[{op: remove, path: /baz}]', '{foo: bar}', id="A.3-remove"),
        P('{foo: [bar, qux, baz]}', '[{op: remove, path: /foo/1}]', '{foo: [bar, baz]}',
          id="A.4-remove-element"),
        P('{baz: qux, foo: bar}', '[{op: replace, path: /baz, value: boo}]',
          '{baz: boo, foo: bar}', id="A.5-replace"),
        P('{foo: {bar: baz, waldo: fred}, qux: {corge: grault}}',
          '[{op: move, from: /foo/waldo, path: /qux/thud}]',
          '{foo: {bar: baz}, qux: {corge: grault, thud: fred}}', id="A.6-move"),
        P('{foo: [all, grass, cows, eat]}', '[{op: move, from: /foo/1, path: /foo/3}]',
          '{foo: [all, cows, eat, grass]}', id="A.7-move-element"),
        P('{baz: qux, foo: [a, 2, c]}',
          '[{op: test, path: /baz, value: qux}, {op: test, path: /foo/1, value: 2}]',
          '{baz: qux, foo: [a, 2, c]}', id="A.8-test"),
        P('{foo: bar}', '[{op: add, path: /child, value: {grandchild: {}}}]',
          '{foo: bar, child: {grandchild: {}}}', id="A.10-add-nested"),
        P('{foo: bar}', '[{op: add, path: /baz, value: qux, xyz: 123}]', '{foo: bar, baz: qux}',
          id="A.11-unknown-members-ignored"),
        P('{"/": 9, "~1": 10}', '[{op: test, path: /~01, value: 10}]', '{"/": 9, "~1": 10}',
          id="A.14-escapes"),
        P('{foo: [bar]}', '[{op: add, path: /foo/-, value: [abc, def]}]',
          '{foo: [bar, [abc, def]]}', id="A.16-append-array"),
        P('{a: {b: 1}}', '[{op: copy, from: /a, path: /c}]', '{a: {b: 1}, c: {b: 1}}', id="copy"),
        P('{spec: {replicas: 1}}', '[{op: replace, path: /spec/replicas, value: 3}]',
          '{spec: {replicas: 3}}', id="kubectl-patch-type-json"),
    ],
)  # fmt: skip
def test_json_patch_follows_rfc6902(target: str, ops: str, expected: str) -> None:
    assert json_patch(y(target), y(ops)) == y(expected)


@pytest.mark.parametrize(
    ("ops", "error"),
    [
        P('[{op: test, path: /baz, value: bar}]', errors.Invalid, id="A.9-test-fails"),
        P('[{op: add, path: /baz/bat, value: qux}]', errors.Invalid, id="A.12-no-parent"),
        P('[{op: test, path: /n, value: "1"}]', errors.Invalid, id="A.15-string-is-no-number"),
        P('[{op: test, path: /n, value: true}]', errors.Invalid, id="true-is-not-1"),
        P('[{op: remove, path: /nope}]', errors.Invalid, id="remove-missing"),
        P('[{op: replace, path: /nope, value: 1}]', errors.Invalid, id="replace-missing"),
        P('[{op: frobnicate, path: /baz}]', errors.Invalid, id="unknown-op"),
        P('[{path: /baz}]', errors.Invalid, id="no-op"),
        P('[{op: add, value: 1}]', errors.Invalid, id="no-path"),
        P('[{op: add, path: /x}]', errors.Invalid, id="no-value"),
        P('[{op: add, path: x, value: 1}]', errors.Invalid, id="pointer-without-slash"),
        P('[{op: move, from: /baz, path: /baz/x}]', errors.Invalid, id="move-into-itself"),
        P('[{op: add, path: /baz, value: 1}, {op: test, path: /baz, value: 2}]', errors.Invalid,
          id="second-op-fails"),
        P('{op: add, path: /a, value: 1}', errors.BadRequest, id="not-an-array"),
        P('["add /a 1"]', errors.BadRequest, id="operation-not-an-object"),
        P([{"op": "test", "path": "", "value": None}] * 10_001, errors.RequestEntityTooLarge,
          id="over-10000-operations"),
    ],
)  # fmt: skip
def test_json_patch_errors(ops: str | list[Any], error: type[errors.ApiError]) -> None:
    target: dict[str, Any] = {"baz": "qux", "n": 1}
    with pytest.raises(error) as caught:
        json_patch(target, y(ops) if isinstance(ops, str) else ops)
    assert type(caught.value) is error
    assert target == {"baz": "qux", "n": 1}


def test_json_patch_copies_cannot_blow_up_memory() -> None:
    # Each copy doubles the document: 13 of them would make 8 MiB from 1 KiB (and 40,
    # a terabyte). The limit (3 MiB of copies) stops the twelfth.
    ops: Any = [{"op": "copy", "from": "", "path": f"/c{i}"} for i in range(13)]
    with pytest.raises(errors.Invalid, match="copies add more than"):
        json_patch({"a": "x" * 1024}, ops)


# --- Strategic merge patch: what kubectl and the Python client send --------------------

NGINX = "{name: nginx, image: 'nginx:1.27', ports: [{containerPort: 80}]}"
NGINX_128 = "{name: nginx, image: 'nginx:1.28', ports: [{containerPort: 80}]}"
SIDE = "{name: side, image: busybox}"


def deployment(containers: str, labels: str = "{app: nginx}", extra: str = "") -> str:
    return (
        f"{{apiVersion: apps/v1, kind: Deployment, metadata: {{name: nginx, labels: {labels}"
        f"{extra}}}, spec: {{replicas: 2, template: {{metadata: {{labels: {{app: nginx}}}},"
        f" spec: {{containers: [{containers}]}}}}}}}}"
    )


@pytest.mark.parametrize(
    ("kind", "original", "patch", "expected"),
    [
        P(DEPLOYMENT, deployment(NGINX),
          '{metadata: {annotations: {kubectl.kubernetes.io/last-applied-configuration: "{}"}},'
          ' spec: {replicas: 3, template: {spec: {$setElementOrder/containers: [{name: nginx}],'
          ' containers: [{image: "nginx:1.28", name: nginx}]}}}}',
          deployment(NGINX_128, extra=', annotations: '
                     '{kubectl.kubernetes.io/last-applied-configuration: "{}"}').replace(
                         "replicas: 2", "replicas: 3"),
          id="apply-new-image-keeps-ports"),
        P(DEPLOYMENT, deployment(f"{NGINX}, {SIDE}", labels="{app: nginx, tier: web}"),
          '{metadata: {labels: {app: null, tier: web}}, spec: {template: {spec:'
          ' {$setElementOrder/containers: [{name: nginx}],'
          ' containers: [{$patch: delete, name: side}]}}}}',
          deployment(NGINX, labels="{tier: web}"), id="apply-removes-container-and-label"),
        P(DEPLOYMENT, deployment(f"{NGINX}, {SIDE}"),
          '{spec: {template: {spec: {containers: [{name: nginx, image: "nginx:1.28"}]}}}}',
          deployment(f"{NGINX_128}, {SIDE}"), id="set-image"),
        P(DEPLOYMENT, deployment(NGINX),
          '{spec: {template: {metadata: {annotations: {restartedAt: T}}}}}',
          deployment(NGINX).replace("template: {metadata: {labels: {app: nginx}}",
                                    "template: {metadata: {labels: {app: nginx},"
                                    " annotations: {restartedAt: T}}"), id="rollout-restart"),
        P(NODE, '{metadata: {name: pi-1}, spec: {podCIDR: 10.0.1.0/24}}',
          '{spec: {unschedulable: true}}',
          '{metadata: {name: pi-1}, spec: {podCIDR: 10.0.1.0/24, unschedulable: true}}',
          id="cordon"),
        P(NODE, '{metadata: {name: pi-1}, spec: {unschedulable: true}}',
          '{spec: {unschedulable: null}}', '{metadata: {name: pi-1}, spec: {}}', id="uncordon"),
        P(("autoscaling", "Scale"), '{spec: {replicas: 2}, status: {replicas: 2}}',
          '{spec: {replicas: 3}}', '{spec: {replicas: 3}, status: {replicas: 2}}',
          id="python-client-scale"),
    ],
)  # fmt: skip
def test_strategic_merge_patch_as_kubectl_sends_it(
    kind: tuple[str, str], original: str, patch: str, expected: str
) -> None:
    result = strategic_merge_patch(y(original), y(patch), kind=kind)
    assert result == y(expected)
    assert directives_in(result) == []


def ctr(fields: str) -> str:
    """A pod whose one container ``app`` has ``fields``."""
    return f"{{spec: {{containers: [{{name: app, {fields}}}]}}}}"


@pytest.mark.parametrize(
    ("kind", "original", "patch", "expected"),
    [
        P(POD, ctr("image: a1, ports: [{containerPort: 80}]"), ctr("image: a2"),
          ctr("image: a2, ports: [{containerPort: 80}]"), id="image-only-keeps-ports"),
        P(POD, ctr("env: [{name: A, value: '1'}, {name: B, value: '2'}]"),
          ctr("env: [{name: B, value: '3'}]"),
          ctr("env: [{name: A, value: '1'}, {name: B, value: '3'}]"), id="env-by-name"),
        P(POD, ctr("env: [{name: A}]"), ctr("env: [{name: C}]"), ctr("env: [{name: C}, {name: A}]"),
          id="new-item-goes-first-as-the-apiserver-orders-it"),
        P(POD, ctr("ports: [{containerPort: 80, name: http}]"),
          ctr("ports: [{containerPort: 80, protocol: TCP}, {containerPort: 443}]"),
          ctr("ports: [{containerPort: 80, name: http, protocol: TCP}, {containerPort: 443}]"),
          id="ports-by-containerPort"),
        P(POD, ctr("volumeMounts: [{mountPath: /a, name: v}]"),
          ctr("volumeMounts: [{mountPath: /a, readOnly: true}]"),
          ctr("volumeMounts: [{mountPath: /a, name: v, readOnly: true}]"),
          id="volumeMounts-by-mountPath"),
        P(POD, ctr("volumeDevices: [{devicePath: /dev/x, name: a}]"),
          ctr("volumeDevices: [{devicePath: /dev/x, name: b}]"),
          ctr("volumeDevices: [{devicePath: /dev/x, name: b}]"), id="volumeDevices-by-devicePath"),
        P(POD, ctr("envFrom: [{configMapRef: {name: a}}]"),
          ctr("envFrom: [{secretRef: {name: b}}]"),
          ctr("envFrom: [{secretRef: {name: b}}]"), id="envFrom-atomic"),
        P(POD, '{spec: {initContainers: [{name: i, image: x}], volumes: [{name: v, emptyDir: {}}],'
               ' imagePullSecrets: [{name: r}]}}',
          '{spec: {initContainers: [{name: i, args: [a]}], volumes: [{name: v, readOnly: true}],'
          ' imagePullSecrets: [{name: r}]}}',
          '{spec: {initContainers: [{name: i, image: x, args: [a]}],'
          ' volumes: [{name: v, emptyDir: {}, readOnly: true}], imagePullSecrets: [{name: r}]}}',
          id="initContainers-volumes-pullSecrets-by-name"),
        P(POD, '{spec: {hostAliases: [{ip: 10.0.0.1, hostnames: [a]}],'
               ' topologySpreadConstraints: [{topologyKey: zone, maxSkew: 1}]}}',
          '{spec: {hostAliases: [{ip: 10.0.0.1, hostnames: [b]}],'
          ' topologySpreadConstraints: [{topologyKey: zone, maxSkew: 2}]}}',
          '{spec: {hostAliases: [{ip: 10.0.0.1, hostnames: [b]}],'
          ' topologySpreadConstraints: [{topologyKey: zone, maxSkew: 2}]}}',
          id="hostAliases-by-ip-spread-by-topologyKey"),
        P(POD, '{spec: {tolerations: [{key: a, operator: Exists}]}}',
          '{spec: {tolerations: [{key: b, operator: Exists}]}}',
          '{spec: {tolerations: [{key: b, operator: Exists}]}}', id="tolerations-atomic"),
        P(POD, '{status: {conditions: [{type: Ready, status: "False"},'
               ' {type: Initialized, status: "True"}]}}',
          '{status: {conditions: [{type: Ready, status: "True"}]}}',
          '{status: {conditions: [{type: Ready, status: "True"},'
          ' {type: Initialized, status: "True"}]}}', id="pod-conditions-by-type"),
        P(NODE, '{spec: {taints: [{key: a}]}, status: {addresses: [{type: InternalIP}]}}',
          '{spec: {taints: [{key: b}]}, status: {addresses: [{type: Hostname}]}}',
          '{spec: {taints: [{key: b}]},'
          ' status: {addresses: [{type: Hostname}, {type: InternalIP}]}}',
          id="taints-atomic-addresses-by-type"),
        P(SERVICE, '{spec: {ports: [{port: 80, targetPort: 8080}]}}',
          '{spec: {ports: [{port: 80, name: http}]}}',
          '{spec: {ports: [{port: 80, targetPort: 8080, name: http}]}}',
          id="service-ports-by-port"),
        P(JOB, '{status: {conditions: [{type: Complete, status: "False"}]}}',
          '{status: {conditions: [{type: Complete, status: "True"}]}}',
          '{status: {conditions: [{type: Complete, status: "True"}]}}',
          id="job-conditions-by-type"),
        P(JOB, f"{{spec: {{template: {ctr('image: a')}}}}}",
          f"{{spec: {{template: {ctr('args: [x]')}}}}}",
          f"{{spec: {{template: {ctr('image: a, args: [x]')}}}}}", id="job-pod-template"),
        P(POD, '{metadata: {ownerReferences: [{uid: "1", kind: ReplicaSet}]}}',
          '{metadata: {ownerReferences: [{uid: "1", controller: true}]}}',
          '{metadata: {ownerReferences: [{uid: "1", kind: ReplicaSet, controller: true}]}}',
          id="ownerReferences-by-uid"),
        P(POD, '{metadata: {finalizers: [a, b]}}', '{metadata: {finalizers: [b, c]}}',
          '{metadata: {finalizers: [a, b, c]}}', id="finalizers-union"),
        P(POD, '{metadata: {finalizers: [a, b, c]}}',
          '{metadata: {$deleteFromPrimitiveList/finalizers: [b]}}',
          '{metadata: {finalizers: [a, c]}}', id="deleteFromPrimitiveList"),
        P(POD, '{metadata: {finalizers: ["1"]}}', '{metadata: {finalizers: [1, true, "1"]}}',
          '{metadata: {finalizers: [1, true, "1"]}}', id="a-set-tells-1-true-and-'1'-apart"),
        P(WIDGET, '{metadata: {finalizers: [a]}, spec: {items: [{name: x, v: 1}]}}',
          '{metadata: {finalizers: [b]}, spec: {items: [{name: x}]}}',
          '{metadata: {finalizers: [b, a]}, spec: {items: [{name: x}]}}',
          id="custom-resource-lists-atomic-metadata-standard"),
        P(POD, '{metadata: {labels: {a: "1", b: "2"}}}', '{metadata: {labels: {a: null}}}',
          '{metadata: {labels: {b: "2"}}}', id="null-deletes-label"),
        P(POD, '{spec: {containers: [{name: a}, {name: b}]}}',
          '{spec: {containers: [{name: c, image: x}, {$patch: replace}]}}',
          '{spec: {containers: [{name: c, image: x}]}}', id="patch-replace-list"),
        P(POD, '{spec: {nodeSelector: {a: "1", b: "2"}}}',
          '{spec: {nodeSelector: {$patch: replace, c: "3"}}}',
          '{spec: {nodeSelector: {c: "3"}}}', id="patch-replace-map"),
        P(POD, '{spec: {affinity: {nodeAffinity: {}}}}', '{spec: {affinity: {$patch: delete}}}',
          '{spec: {affinity: {}}}', id="patch-delete-map"),
        P(POD, '{spec: {volumes: [{name: a}, {name: b}]}}',
          '{spec: {volumes: [{name: a, $patch: delete}]}}', '{spec: {volumes: [{name: b}]}}',
          id="patch-delete-list-item"),
        P(POD, '{spec: {nodeSelector: {a: "1"}}}',
          '{spec: {nodeSelector: {$patch: merge, b: "2"}}}',
          '{spec: {nodeSelector: {a: "1", b: "2"}}}', id="patch-merge-is-the-default"),
        P(DEPLOYMENT, '{spec: {strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1}}}}',
          '{spec: {strategy: {$retainKeys: [type], type: Recreate}}}',
          '{spec: {strategy: {type: Recreate}}}', id="retainKeys"),
        P(POD, '{spec: {volumes: [{name: v, emptyDir: {}}]}}',
          '{spec: {volumes: [{$retainKeys: [name, hostPath], name: v, hostPath: {path: /d}}]}}',
          '{spec: {volumes: [{name: v, hostPath: {path: /d}}]}}', id="retainKeys-in-a-volume"),
        P(POD, '{spec: {containers: [{name: a}, {name: b}]}}',
          '{spec: {$setElementOrder/containers: [{name: b}, {name: a}]}}',
          '{spec: {containers: [{name: b}, {name: a}]}}', id="setElementOrder-reorders"),
        P(POD, '{spec: {}}', '{spec: {tolerations: [{key: a}, {$patch: replace}]}}',
          '{spec: {tolerations: [{key: a}]}}', id="directive-dropped-from-an-atomic-list"),
        P(DEPLOYMENT, '{spec: {}}',
          '{spec: {template: {spec: {$setElementOrder/containers: [{name: a}],'
          ' containers: [{name: a, env: [{name: X, $patch: delete}]}],'
          ' nodeSelector: {$patch: replace, k: v, gone: null}}}}}',
          '{spec: {template: {spec: {containers: [{name: a, env: []}], nodeSelector: {k: v}}}}}',
          id="a-new-value-obeys-then-drops-its-directives"),
        P(POD, '{spec: {schema: {$ref: "#/x"}}}', '{spec: {schema: {$schema: s}}}',
          '{spec: {schema: {$ref: "#/x", $schema: s}}}', id="dollar-keys-that-are-data-stay"),
    ],
)  # fmt: skip
def test_strategic_merge_patch_rules(
    kind: tuple[str, str], original: str, patch: str, expected: str
) -> None:
    result = strategic_merge_patch(y(original), y(patch), kind=kind)
    assert result == y(expected)
    assert directives_in(result) == []


# apimachinery's own fixtures (strategicpatch/patch_test.go, raw cases, order-sensitive):
# its test type MergeItem, its Current object, its ThreeWay patch and its Result.


@pytest.fixture
def merge_item(monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """apimachinery's test struct ``MergeItem``, registered as a kind."""
    fields = {
        "mergingList": mk.Field(merge=True, key="name", type="MergeItem"),
        "mergeItemPtr": mk.Field(merge=True, key="name", type="MergeItem"),
        "mergingIntList": mk.Field(merge=True),
    }
    for name, rule in fields.items():
        monkeypatch.setitem(mk.FIELDS, f"MergeItem.{name}", rule)
    monkeypatch.setitem(mk.KINDS, ("test", "MergeItem"), "MergeItem")
    return ("test", "MergeItem")


@pytest.mark.parametrize(
    ("current", "patch", "result"),
    [
        P('{name: hi, mergingList: [{name: hello2}]}',
          '{$setElementOrder/mergingList: [{name: hello}, {name: doesntexist}],'
          ' mergingList: [{name: hello}]}',
          '{name: hi, mergingList: [{name: hello}, {name: hello2}]}',
          id="nested patch merge with empty list"),
        P('{mergingIntList: [1, 2, 3, 3, 4]}',
          '{$setElementOrder/mergingIntList: [1, 2], $deleteFromPrimitiveList/mergingIntList: [3]}',
          '{mergingIntList: [1, 2, 4]}', id="delete all duplicate items in lists of scalars"),
        P('{mergingList: [{name: 1, other: a}, {name: 2, value: 2, other: b}]}',
          '{$setElementOrder/mergingList: [{name: 4}, {name: 1}, {name: 2}, {name: 3}],'
          ' mergingList: [{name: 4, value: 4}, {name: 3, value: 3}]}',
          '{mergingList: [{name: 4, value: 4}, {name: 1, other: a},'
          ' {name: 2, value: 2, other: b}, {name: 3, value: 3}]}', id="merge lists of maps"),
        P('{mergingList: [{name: 1, other: a}, {name: 3, value: 2, other: b}]}',
          '{$setElementOrder/mergingList: [{name: 1}, {name: 2}],'
          ' mergingList: [{name: 1, value: 1}, {name: 2, value: 2}]}',
          '{mergingList: [{name: 1, value: 1, other: a}, {name: 2, value: 2},'
          ' {name: 3, value: 2, other: b}]}', id="add field to map in merging list with conflict"),
        P('{mergingList: [{name: 1}, {name: 2, other: b}, {name: 4, other: c}]}',
          '{$setElementOrder/mergingList: [{name: 2}, {name: 3}],'
          ' mergingList: [{name: 3}, {name: 1, $patch: delete}]}',
          '{mergingList: [{name: 2, other: b}, {name: 4, other: c}, {name: 3}]}',
          id="add map and delete map from merging list"),
        P('{mergingList: [{name: 1, other: a}, {name: 4, other: c}]}',
          '{$setElementOrder/mergingList: [{name: 2}, {name: 3}],'
          ' mergingList: [{name: 2}, {name: 3}, {name: 1, $patch: delete}]}',
          '{mergingList: [{name: 4, other: c}, {name: 2}, {name: 3}]}',
          id="add map and delete map from merging list with conflict"),
        P('{mergingList: [{name: 3, other: a}]}',
          '{$setElementOrder/mergingList: [{name: 2}],'
          ' mergingList: [{name: 2}, {name: 1, $patch: delete}]}',
          '{mergingList: [{name: 2}, {name: 3, other: a}]}',
          id="delete missing map from merging list with conflict"),
        P('{mergingList: [{name: 1, other: a, mergingList: [{name: 2, value: 2, other: d}]},'
          ' {name: 2}]}',
          '{$setElementOrder/mergingList: [{name: 1}, {name: 2}], mergingList: [{name: 1,'
          ' $setElementOrder/mergingList: [{name: 2}, {name: 1}],'
          ' mergingList: [{name: 1, value: 1}]}]}',
          '{mergingList: [{name: 1, other: a, mergingList: [{name: 2, value: 2, other: d},'
          ' {name: 1, value: 1}]}, {name: 2}]}',
          id="add field to map in merging list nested in merging list with deletion conflict"),
        P('{mergeItemPtr: [{name: 1, other: a}, {name: 3}]}',
          '{$setElementOrder/mergeItemPtr: [{name: 1}, {name: 2}], mergeItemPtr: [{name: 2}]}',
          '{mergeItemPtr: [{name: 1, other: a}, {name: 2}, {name: 3}]}',
          id="add map to merging list by pointer"),
        P('{mergingIntList: [1, 4, 2]}',
          '{$setElementOrder/mergingIntList: [3, 1, 2], mergingIntList: [3]}',
          '{mergingIntList: [3, 1, 4, 2]}',
          id="add an item in a list of primitives and preserve order"),
        P('{mergingList: [{name: 1, other: a}, {name: 2, value: 2}, {name: 7}, {name: 9},'
          ' {name: 8}, {name: 3, value: 3}, {name: 4, value: 4}]}',
          '{$setElementOrder/mergingList: [{name: 2}, {name: 1}, {name: 4}, {name: 3}]}',
          '{mergingList: [{name: 2, value: 2}, {name: 1, other: a}, {name: 7}, {name: 9},'
          ' {name: 8}, {name: 4, value: 4}, {name: 3, value: 3}]}',
          id="set elements order in a list with server-only items 3"),
        P('{mergingList: [{name: 1, other: a}, {name: 2, value: 2, other: b},'
          ' {name: 3, value: 3}]}',
          '{$setElementOrder/mergingList: [{name: 4}, {name: 2}, {name: 1}],'
          ' mergingList: [{name: 4, value: 4}, {name: 3, $patch: delete}]}',
          '{mergingList: [{name: 4, value: 4}, {name: 2, value: 2, other: b},'
          ' {name: 1, other: a}]}', id="add and delete an item in a list and preserve order"),
    ],
)  # fmt: skip
def test_strategic_merge_patch_matches_apimachinery_fixtures(
    merge_item: tuple[str, str], current: str, patch: str, result: str
) -> None:
    assert strategic_merge_patch(y(current), y(patch), kind=merge_item) == y(result)


@pytest.mark.parametrize(
    ("patch", "error", "message"),
    [
        P('{spec: {$patch: explode}}', errors.BadRequest, "unknown directive", id="bad-directive"),
        P('{spec: {containers: [{$patch: explode, name: a}]}}', errors.BadRequest,
          "unknown directive", id="bad-list-directive"),
        P('{spec: {containers: [{$patch: delete}]}}', errors.BadRequest, 'merge key "name"',
          id="delete-without-merge-key"),
        P('{spec: {containers: [{image: x}]}}', errors.BadRequest, 'merge key "name"',
          id="item-without-merge-key"),
        P('{spec: {containers: [{name: a}, b]}}', errors.BadRequest, "mixes", id="mixed-items"),
        P('{spec: {containers: [[a]]}}', errors.Invalid, "lists of lists", id="list-of-lists"),
        P('{metadata: {finalizers: [{a: 1}]}}', errors.BadRequest, "no merge key",
          id="objects-into-a-set"),
        P('{spec: {$retainKeys: name}}', errors.BadRequest, "retainKeys", id="retainKeys-not-list"),
        P('{spec: {$retainKeys: [a], b: 1}}', errors.BadRequest, '"b"', id="retainKeys-omits"),
        P('{spec: {$setElementOrder/containers: {name: a}}}', errors.BadRequest, "must be a list",
          id="setElementOrder-not-list"),
        P('{spec: {$setElementOrder/containers: [{name: a}], containers: [{name: b}]}}',
          errors.BadRequest, "setElementOrder", id="setElementOrder-mismatch"),
        P('{spec: {$setElementOrder/containers: [a]}}', errors.BadRequest, 'merge key "name"',
          id="setElementOrder-items-without-key"),
        P('{metadata: {$deleteFromPrimitiveList/finalizers: a}}', errors.BadRequest,
          "must be a list", id="deleteFromPrimitiveList-not-list"),
        P('[not, an, object]', errors.BadRequest, "must be a JSON object", id="not-an-object"),
    ],
)  # fmt: skip
def test_strategic_merge_patch_errors(
    patch: str, error: type[errors.ApiError], message: str
) -> None:
    original = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}}
    with pytest.raises(error, match=message) as caught:
        strategic_merge_patch(original, y(patch), kind=POD)
    assert type(caught.value) is error


def test_the_merge_key_table_is_consistent() -> None:
    """Every type the table points to is described (a typo would silently make lists
    atomic), every kind's root type describes its metadata, and keys imply merging."""
    described = {path.split(".", 1)[0] for path in mk.FIELDS}
    assert {f.type for f in mk.FIELDS.values() if f.type is not None} <= described
    assert all(f"{root}.metadata" in mk.FIELDS for root in mk.KINDS.values())
    assert all(f.merge for f in mk.FIELDS.values() if f.key is not None)


# --- Server-side apply ----------------------------------------------------------------


def test_apply_patch_creates_when_missing_and_drops_nulls() -> None:
    applied = y("{apiVersion: v1, kind: Pod, metadata: {name: p, labels: null}, spec: {}}")
    assert apply_patch(None, applied) == y(
        "{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {}}"
    )


def test_apply_patch_merges_onto_the_live_object() -> None:
    live = y(deployment(f"{NGINX}, {SIDE}"))
    live["status"] = {"replicas": 2}
    applied = y(
        deployment("{name: nginx, image: 'nginx:1.28'}").replace("replicas: 2", "replicas: 5")
    )
    result = apply_patch(live, applied)
    assert result["spec"]["replicas"] == 5
    assert result["status"] == {"replicas": 2}  # absent from the configuration: kept
    assert result["spec"]["template"]["spec"]["containers"] == y(f"[{NGINX_128}, {SIDE}]")


@pytest.mark.parametrize(
    ("live", "applied", "message"),
    [
        P(None, '{metadata: {name: x}}', "apiVersion and kind", id="no-kind"),
        P(deployment(NGINX), '{apiVersion: v1, kind: Service}', "is a Deployment.apps",
          id="other-kind"),
        P(None, '{apiVersion: v1, kind: Pod, spec: {$patch: replace}}', "directive",
          id="directive"),
        P(None, '[a]', "must be an object", id="not-an-object"),
    ],
)  # fmt: skip
def test_apply_patch_errors(live: str | None, applied: str, message: str) -> None:
    with pytest.raises(errors.BadRequest, match=message):
        apply_patch(y(live) if live else None, y(applied))


# --- apply(): bodies and content types --------------------------------------------------

LIVE = (
    "{apiVersion: v1, kind: Pod, metadata: {name: p, labels: {a: b}},"
    " spec: {containers: [{name: app, image: x1, ports: [{containerPort: 80}]}]}}"
)
PATCHED = "{containers: [{name: app, image: x2, ports: [{containerPort: 80}]}]}"


@pytest.mark.parametrize(
    ("content_type", "body", "expected_spec"),
    [
        P(SMP, b'{"spec":{"containers":[{"name":"app","image":"x2"}]}}', PATCHED, id="strategic"),
        P(MERGE + "; charset=utf-8", b'{"spec":{"containers":[{"name":"app","image":"x2"}]}}',
          "{containers: [{name: app, image: x2}]}", id="merge-replaces-lists"),
        P(JSONP, b'[{"op":"replace","path":"/spec/containers/0/image","value":"x2"}]', PATCHED,
          id="json"),
        P(APPLY, b"apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: app\n    image: x2\n",
          PATCHED, id="apply-yaml"),
        P(APPLY.upper(), b'{"apiVersion":"v1","kind":"Pod",'
          b'"spec":{"containers":[{"name":"app","image":"x2"}]}}', PATCHED, id="apply-json"),
    ],
)  # fmt: skip
def test_apply_dispatches_by_content_type(
    content_type: str, body: bytes, expected_spec: str
) -> None:
    assert apply(content_type, y(LIVE), body, kind=POD)["spec"] == y(expected_spec)


def test_apply_yaml_creates_and_keeps_timestamps_as_strings() -> None:
    body = (
        b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: p  # a comment\n"
        b"  annotations:\n    at: 2024-05-01T10:00:00Z\n"
    )
    assert apply(APPLY, None, body, kind=POD) == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "annotations": {"at": "2024-05-01T10:00:00Z"}},
    }


BOMB = b"".join(  # "billion laughs": 9**5 values in 200 bytes
    b"%s: &%s [%s]\n" % (name, name, b", ".join([ref] * 9))
    for name, ref in [(b"a", b"x"), (b"b", b"*a"), (b"c", b"*b"), (b"d", b"*c"), (b"e", b"*d")]
)


@pytest.mark.parametrize(
    ("content_type", "body", "error", "message"),
    [
        P("application/json", b"{}", errors.UnsupportedMediaType,
          "include: application/json-patch\\+json, application/merge-patch\\+json, "
          "application/apply-patch\\+yaml, application/strategic-merge-patch\\+json", id="415"),
        P(SMP, b"\xff\xfe{}", errors.BadRequest, "not valid UTF-8", id="not-utf8"),
        P(SMP, b"{spec:", errors.BadRequest, "not valid JSON", id="not-json"),
        P(SMP, b"  ", errors.BadRequest, "empty", id="empty"),
        P(SMP, b"[1]", errors.BadRequest, "must be a JSON object", id="smp-array"),
        P(MERGE, b"null", errors.BadRequest, "must be a JSON object", id="merge-null"),
        P(JSONP, b'{"op":"add"}', errors.BadRequest, "JSON array", id="json-patch-object"),
        P(JSONP, b'[{"op":"replace","path":"","value":[1]}]', errors.Invalid, "something else",
          id="json-patch-replaces-the-root"),
        P(SMP, b"[" * 150 + b"]" * 150, errors.BadRequest, "nested", id="json-too-deep"),
        P(APPLY, b"a: " + b"[" * 3000 + b"]" * 3000, errors.BadRequest, "nested",
          id="yaml-too-deep"),
        P(APPLY, BOMB, errors.BadRequest, "aliases", id="billion-laughs"),
        P(APPLY, b"a: !!binary aGk=\n", errors.BadRequest, "JSON cannot hold", id="yaml-binary"),
        P(APPLY, b"kind: Pod\n---\nkind: Pod\n", errors.BadRequest, "YAML", id="two-documents"),
        P(APPLY, b"apiVersion: apps/v1\nkind: Deployment\n", errors.BadRequest, "do not match",
          id="apply-another-kind"),
    ],
)  # fmt: skip
def test_apply_errors(
    content_type: str, body: bytes, error: type[errors.ApiError], message: str
) -> None:
    with pytest.raises(error, match=message) as caught:
        apply(content_type, y(LIVE), body, kind=POD)
    assert type(caught.value) is error


def test_only_server_side_apply_creates() -> None:
    with pytest.raises(errors.NotFound, match="only server-side apply"):
        apply(MERGE, None, b"{}", kind=POD)


# --- Nothing is modified, nothing is shared --------------------------------------------


@pytest.mark.parametrize(
    ("run", "patch"),
    [
        P(json_merge_patch, "{metadata: {labels: {b: c}}}", id="merge"),
        P(json_patch, "[{op: add, path: /metadata/labels/b, value: c}]", id="json"),
        P(lambda o, p: strategic_merge_patch(o, p, kind=POD),
          "{spec: {$setElementOrder/containers: [{name: app}],"
          " containers: [{name: app, image: x2}]}}",
          id="strategic"),
        P(apply_patch, "{apiVersion: v1, kind: Pod, spec: {}}", id="apply"),
    ],
)  # fmt: skip
def test_inputs_are_never_modified_nor_shared(run: Callable[[Any, Any], Any], patch: str) -> None:
    original, patch_value = y(LIVE), y(patch)
    result = run(original, patch_value)
    assert (original, patch_value) == (y(LIVE), y(patch))
    result["metadata"]["labels"]["mutated"] = "yes"
    result["spec"]["containers"][0]["ports"].append({"containerPort": 1})
    assert (original, patch_value) == (y(LIVE), y(patch))


# --- Properties over random documents ---------------------------------------------------

_SCALARS = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=4)
    | st.sampled_from(["replace", "delete", "merge", "name"])
)  # fmt: skip
_PLAIN_KEYS = st.sampled_from(
    ["a", "b", "name", "spec", "metadata", "containers", "env", "ports", "containerPort",
     "finalizers", "template", "image", "type"]
)  # fmt: skip
_PATCH_KEYS = _PLAIN_KEYS | st.sampled_from(
    ["$patch", "$retainKeys", "$setElementOrder/containers", "$setElementOrder/finalizers",
     "$setElementOrder/env", "$deleteFromPrimitiveList/finalizers", "$ref"]
)  # fmt: skip


def _documents(keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        _SCALARS,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=25,
    )


_OBJECTS = st.dictionaries(_PLAIN_KEYS | st.text(max_size=3), _documents(_PLAIN_KEYS), max_size=5)
_PATCHES = st.dictionaries(_PATCH_KEYS, _documents(_PATCH_KEYS), max_size=5)
_KINDS = st.sampled_from([POD, DEPLOYMENT, NODE, WIDGET])
_OPS = st.lists(
    st.fixed_dictionaries(
        {"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "bad", 1])},
        optional={
            "path": st.sampled_from(["", "/a", "/a/0", "/a/-", "/name", "/a/b/c", "x", 3]),
            "from": st.sampled_from(["", "/a", "/b", "/a/0"]),
            "value": _documents(_PLAIN_KEYS),
        },
    ),
    max_size=6,
)


def _yaml_bytes(document: Any) -> bytes:
    return yaml.safe_dump(document).encode()


@given(document=_OBJECTS)
def test_an_empty_merge_patch_changes_nothing(document: dict[str, Any]) -> None:
    # RFC 7386 makes this true of objects only: any other target becomes {}.
    assert json_merge_patch(document, {}) == document


@settings(deadline=None)
@given(original=_OBJECTS, patch=_PATCHES, ops=_OPS | _documents(_PLAIN_KEYS))
def test_rfc_patches_raise_only_api_errors(original: Any, patch: Any, ops: Any) -> None:
    for target in (original, patch):  # the RFCs accept any document as the target
        with contextlib.suppress(errors.ApiError):
            json_merge_patch(target, patch)
        with contextlib.suppress(errors.ApiError):
            json_patch(target, ops)


@settings(deadline=None)
@given(original=_OBJECTS, patch=_PATCHES, kind=_KINDS)
def test_strategic_patches_raise_only_api_errors_and_store_no_directive(
    original: Any, patch: Any, kind: Any
) -> None:
    assert strategic_merge_patch(original, {}, kind=kind) == original
    applied = {**patch, "apiVersion": "v1", "kind": "Pod"}
    runs: list[Callable[[], Any]] = [
        lambda: strategic_merge_patch(original, patch, kind=kind),
        lambda: apply_patch(original, applied),
        lambda: apply_patch(None, applied),
    ]
    for run in runs:
        try:
            result = run()
        except errors.ApiError:
            continue
        assert directives_in(result) == []


@settings(deadline=None)
@given(
    content_type=st.sampled_from([SMP, MERGE, JSONP, APPLY, "text/plain", ""]),
    body=st.binary(max_size=64) | _PATCHES.map(_yaml_bytes),
)
def test_apply_raises_only_api_errors_on_any_body(content_type: str, body: bytes) -> None:
    with contextlib.suppress(errors.ApiError):
        assert isinstance(apply(content_type, y(LIVE), body, kind=POD), dict)
