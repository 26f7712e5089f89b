"""The protobuf decoder against bodies the real kubectl 1.32 sends, captured live.

A fake apiserver (aiohttp, loopback) answers ``/version`` as v1.32.4, so the gcloud
dispatcher at /usr/bin/kubectl runs kubectl 1.32; it records every request. Each
``kubectl create`` case runs for real and with ``--dry-run=client -o json``, and the
decoded body must equal the JSON. kubectl debug --copy-to and create job --from=cronjob
copy a rich pod spec that the server serves as JSON, so those bodies must decode back to
that JSON; drain's DELETE carries a DeleteOptions.

``BRAMBLE_WRITE_PROTOBUF_FIXTURES=1`` saves each body and its JSON under data/, where
test_protobuf.py reads them without kubectl.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from controlplane.apiserver.protobuf import CONTENT_TYPE, decode
from tests.support.real import require_binary

pytestmark = pytest.mark.real("kubectl")

DATA = Path(__file__).parent / "data"
WRITE_FIXTURES = os.environ.get("BRAMBLE_WRITE_PROTOBUF_FIXTURES") == "1"

# A pod spec in the form the apiserver prints it (no empty non-pointer scalars, every
# non-pointer struct present), using most of what the decoder's tables know, with
# explicit zeros in pointer fields (terminationGracePeriodSeconds, optional, ...).
RICH_POD_SPEC: dict[str, Any] = {
    "volumes": [
        {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        {"name": "logs", "hostPath": {"path": "/var/log", "type": "Directory"}},
        {"name": "conf", "configMap": {"name": "app-conf", "defaultMode": 420, "optional": True,
                                       "items": [{"key": "a", "path": "a.conf", "mode": 256}]}},
        {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0}},
        {"name": "data", "persistentVolumeClaim": {"claimName": "data", "readOnly": True}},
        {"name": "info", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels"}},
        ]}},
        {"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt",
                           "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"secret": {"name": "extra", "optional": False}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ]}},
    ],
    "initContainers": [{"name": "init", "image": "busybox:1", "command": ["true"],
                        "resources": {}}],
    "containers": [{
        "name": "app",
        "image": "registry.lan/app:2",
        "command": ["/app"],
        "args": ["--port", "8080", ""],
        "workingDir": "/srv",
        "ports": [
            {"name": "http", "containerPort": 8080, "protocol": "TCP"},
            {"containerPort": 53, "hostPort": 5353, "protocol": "UDP", "hostIP": "127.0.0.1"},
        ],
        "envFrom": [
            {"prefix": "CFG_", "configMapRef": {"name": "app-env"}},
            {"secretRef": {"name": "app-secret", "optional": False}},
        ],
        "env": [
            {"name": "PLAIN", "value": "1"},
            {"name": "EMPTY"},
            {"name": "FROM_CM",
             "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k", "optional": False}}},
            {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
            {"name": "POD_IP",
             "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {
                "containerName": "app", "resource": "limits.memory", "divisor": "1Mi"}}},
        ],
        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"},
                      "requests": {"cpu": "100m", "memory": "64Mi"}},
        "volumeMounts": [
            {"name": "scratch", "mountPath": "/tmp"},
            {"name": "conf", "mountPath": "/etc/app", "readOnly": True, "subPath": "a.conf"},
        ],
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP",
                        "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
            "initialDelaySeconds": 5, "periodSeconds": 10, "failureThreshold": 3,
            "terminationGracePeriodSeconds": 0,
        },
        "readinessProbe": {"tcpSocket": {"port": 8080}, "timeoutSeconds": 2,
                           "successThreshold": 1},
        "startupProbe": {"exec": {"command": ["cat", "/tmp/ready"]}},
        "lifecycle": {"postStart": {"exec": {"command": ["true"]}},
                      "preStop": {"sleep": {"seconds": 5}}},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "imagePullPolicy": "Always",
        "securityContext": {
            "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
            "privileged": False, "runAsUser": 0, "runAsNonRoot": False,
            "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "stdin": True,
        "tty": True,
    }],
    "restartPolicy": "Always",
    "terminationGracePeriodSeconds": 0,
    "activeDeadlineSeconds": 600,
    "dnsPolicy": "ClusterFirstWithHostNet",
    "nodeSelector": {"kubernetes.io/arch": "arm64"},
    "serviceAccountName": "builder",
    "automountServiceAccountToken": False,
    "nodeName": "pi-5",
    "hostNetwork": True,
    "securityContext": {
        "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 2000,
        "supplementalGroups": [3000, 4000],
        "sysctls": [{"name": "net.ipv4.ip_local_port_range", "value": "1024 65535"}],
    },
    "imagePullSecrets": [{"name": "regcred"}],
    "hostname": "app",
    "subdomain": "apps",
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [
                    {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]},
            ]},
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10,
                 "preference": {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}},
            ],
        },
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {
                "labelSelector": {"matchLabels": {"app": "web"}},
                "topologyKey": "kubernetes.io/hostname"}},
        ]},
    },
    "schedulerName": "bramble-scheduler",
    "tolerations": [
        {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
         "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 0},
    ],
    "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["nas"]}],
    "priorityClassName": "high",
    "priority": 0,
    "dnsConfig": {"nameservers": ["1.1.1.1"],
                  "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]},
    "enableServiceLinks": False,
    "preemptionPolicy": "Never",
    "topologySpreadConstraints": [{
        "maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchExpressions": [
            {"key": "app", "operator": "NotIn", "values": ["x"]}]},
    }],
}  # fmt: skip

POD: dict[str, Any] = {
    "kind": "Pod",
    "apiVersion": "v1",
    "metadata": {"name": "rich", "namespace": "default", "labels": {"app": "rich"}},
    "spec": RICH_POD_SPEC,
}
CRONJOB: dict[str, Any] = {
    "kind": "CronJob",
    "apiVersion": "batch/v1",
    "metadata": {
        "name": "nightly",
        "namespace": "default",
        "uid": "c0ffee00-0000-4000-8000-000000000001",
    },
    "spec": {
        "schedule": "0 3 * * *",
        "jobTemplate": {
            "metadata": {"labels": {"job": "nightly"}},
            "spec": {
                "backoffLimit": 0,
                "completions": 1,
                "ttlSecondsAfterFinished": 3600,
                "template": {"metadata": {"labels": {"job": "nightly"}}, "spec": RICH_POD_SPEC},
            },
        },
    },
}
NODE = {"kind": "Node", "apiVersion": "v1", "metadata": {"name": "pi-3"}, "spec": {}}
DRAINED_POD: dict[str, Any] = {
    "kind": "Pod",
    "apiVersion": "v1",
    "metadata": {
        "name": "web-1",
        "namespace": "default",
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web",
                "uid": "1",
                "controller": True,
            }
        ],
    },
    "spec": {"nodeName": "pi-3", "containers": [{"name": "web", "image": "nginx"}]},
}


@dataclass
class FakeApiserver:
    """Just enough of an apiserver for kubectl 1.32: /version, legacy discovery, a few
    objects to GET (DELETE takes them away), and a 201 echo of a minimal object for every
    POST. It records every request: (method, path, content type, body)."""

    objects: dict[str, dict[str, Any]]
    requests: list[tuple[str, str, str, bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        path = request.path
        self.requests.append((request.method, path, request.content_type, body))
        if request.method == "POST":
            return web.json_response({"metadata": {"name": "created"}}, status=201)
        if path in _DISCOVERY:
            return web.json_response(_DISCOVERY[path])
        if path == "/api/v1/pods":  # drain lists the node's pods
            node = request.query.get("fieldSelector", "").removeprefix("spec.nodeName=")
            pods = [o for o in self.objects.values() if o["spec"].get("nodeName") == node]
            return web.json_response({"kind": "PodList", "apiVersion": "v1", "items": pods})
        obj = self.objects.pop(path, None) if request.method == "DELETE" else self.objects.get(path)
        if obj is None:
            status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}
            return web.json_response({**status, "reason": "NotFound"}, status=404)
        return web.json_response(obj)


def _resources(group_version: str, *kinds: tuple[str, str, bool]) -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "groupVersion": group_version,
        "resources": [
            {"name": plural, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind,
             "verbs": ["create", "delete", "get", "list", "patch"]}
            for plural, kind, namespaced in kinds
        ],
    }  # fmt: skip


_DISCOVERY: dict[str, dict[str, Any]] = {
    "/version": {"major": "1", "minor": "32", "gitVersion": "v1.32.4", "platform": "linux/amd64"},
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": g,
                "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"},
            }
            for g in ("apps", "batch")
        ],
    },
    # No pods/eviction: drain then falls back to DELETE with a protobuf DeleteOptions.
    "/api/v1": _resources("v1", ("nodes", "Node", False), ("pods", "Pod", True)),
    "/apis/apps/v1": _resources("apps/v1", ("deployments", "Deployment", True)),
    "/apis/batch/v1": _resources("batch/v1", ("jobs", "Job", True), ("cronjobs", "CronJob", True)),
}


@dataclass
class Kubectl:
    binary: str
    server: FakeApiserver
    env: dict[str, str]

    async def run(self, *args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            self.binary, *args, env=self.env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout=60)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        assert process.returncode == 0, f"kubectl {' '.join(args)}: {err.decode()}"
        return out.decode()

    async def dry_run_json(self, *args: str) -> dict[str, Any]:
        """What the command prints with --dry-run=client -o json (flags go before --)."""
        cut = args.index("--") if "--" in args else len(args)
        flags = ("--dry-run=client", "-o", "json")
        printed = await self.run(*args[:cut], *flags, *args[cut:])
        printed_object: dict[str, Any] = without_nulls(json.loads(printed))
        return printed_object

    async def body_of(self, *args: str) -> bytes:
        """The body of the one protobuf write the command makes."""
        before = len(self.server.requests)
        await self.run(*args)
        sent = self.server.requests[before:]
        bodies = [body for _, _, content_type, body in sent if content_type == CONTENT_TYPE]
        assert len(bodies) == 1, sent
        return bodies[0]


@pytest.fixture
async def kubectl(tmp_path: Path) -> AsyncIterator[Kubectl]:
    binary = require_binary("kubectl", package="kubectl")
    server = FakeApiserver(
        {
            "/api/v1/namespaces/default/pods/rich": POD,
            "/api/v1/namespaces/default/pods/web-1": DRAINED_POD,
            "/apis/batch/v1/namespaces/default/cronjobs/nightly": CRONJOB,
            "/api/v1/nodes/pi-3": NODE,
        }
    )
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
        f"clusters: [{{name: t, cluster: {{server: 'http://{host}:{port}'}}}}]\n"
        "users: [{name: t, user: {token: dummy}}]\n"
        "contexts: [{name: t, context: {cluster: t, user: t, namespace: default}}]\n"
    )
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "KUBECONFIG": str(kubeconfig),
        "KUBECACHEDIR": str(tmp_path / "cache"),  # discovery and /version caches
    }
    yield Kubectl(binary, server, env)
    await runner.cleanup()


# name -> the command; each is run for real and with --dry-run=client -o json.
GENERATORS: dict[str, list[str]] = {
    "deployment": ["create", "deployment", "web", "--image=busybox:1", "--replicas=3",
                   "--port=8080", "--", "sh", "-c", "sleep 1"],
    "deployment-zero": ["create", "deployment", "idle", "--image=nginx", "--replicas=0",
                        "-n", "team"],
    "namespace": ["create", "namespace", "x"],
    "configmap": ["create", "configmap", "c", "--from-literal=a=b", "--from-literal=empty="],
    "secret": ["create", "secret", "generic", "s", "--from-literal=p=q", "--type=Opaque"],
    "secret-registry": ["create", "secret", "docker-registry", "r", "--docker-server=reg.lan",
                        "--docker-username=u", "--docker-password=p"],
    "job": ["create", "job", "j", "--image=busybox", "--", "echo", "hi"],
    "job-from-cronjob": ["create", "job", "manual", "--from=cronjob/nightly"],
    "cronjob": ["create", "cronjob", "cj", "--image=busybox", "--schedule=*/5 * * * *",
                "--restart=OnFailure", "--", "date"],
    "service": ["create", "service", "clusterip", "svc", "--tcp=80:8080", "--tcp=443"],
    "service-headless": ["create", "service", "clusterip", "hl", "--clusterip=None"],
    "service-nodeport": ["create", "service", "nodeport", "np", "--tcp=80:8080",
                         "--node-port=30080"],
    "service-loadbalancer": ["create", "service", "loadbalancer", "lb", "--tcp=5678:8080"],
    "service-externalname": ["create", "service", "externalname", "ext",
                             "--external-name=db.example.com"],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(GENERATORS))
async def test_a_generator_body_decodes_to_its_dry_run_json(kubectl: Kubectl, name: str) -> None:
    args = GENERATORS[name]
    body = await kubectl.body_of(*args)
    expected = await kubectl.dry_run_json(*args)
    save_fixture(name, body, expected)
    assert decode(body) == expected


async def test_a_binary_configmap_decodes_to_base64(kubectl: Kubectl, tmp_path: Path) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\x00\xff\xfe binary")
    args = ["create", "configmap", "bin", f"--from-file={blob}", "--from-literal=text=ok"]
    body = await kubectl.body_of(*args)
    expected = await kubectl.dry_run_json(*args)
    save_fixture("configmap-binary", body, expected)
    assert decode(body)["binaryData"] == {"blob.bin": "AP/+IGJpbmFyeQ=="}
    assert decode(body) == expected


async def test_a_copied_pod_decodes_back_to_the_rich_spec_it_was_copied_from(
    kubectl: Kubectl,
) -> None:
    keep_probes = ("--keep-liveness", "--keep-readiness", "--keep-startup")
    body = await kubectl.body_of("debug", "rich", "--copy-to=rich-copy", "--set-image=app=app:3",
                                 *keep_probes)  # fmt: skip
    # debug --copy-to renames the pod, takes it off its node and sets the image.
    expected = copy.deepcopy(POD)
    expected["metadata"]["name"] = "rich-copy"
    expected["spec"].pop("nodeName")
    expected["spec"]["containers"][0]["image"] = "app:3"
    expected["status"] = {}
    save_fixture("pod-rich", body, expected)
    assert decode(body) == expected


async def test_drain_sends_delete_options(kubectl: Kubectl) -> None:
    await kubectl.run("drain", "pi-3", "--force", "--grace-period=0", "--timeout=30s")
    deletes = [r for r in kubectl.server.requests if r[0] == "DELETE"]
    assert [(w[1], w[2]) for w in deletes] == [
        ("/api/v1/namespaces/default/pods/web-1", CONTENT_TYPE)
    ]
    expected = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0}
    save_fixture("deleteoptions", deletes[0][3], expected)
    assert decode(deletes[0][3]) == expected


def without_nulls(value: Any) -> Any:
    """The JSON minus its nulls: Go prints a zero Time as null (``creationTimestamp``),
    which the decoder leaves out."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def save_fixture(name: str, body: bytes, expected: dict[str, Any]) -> None:
    if WRITE_FIXTURES:
        (DATA / f"{name}.pb").write_bytes(body)
        (DATA / f"{name}.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")


async def test_a_job_from_a_cronjob_keeps_the_rich_pod_spec(kubectl: Kubectl) -> None:
    body = await kubectl.body_of("create", "job", "manual", "--from=cronjob/nightly")
    assert decode(body)["spec"]["template"]["spec"] == RICH_POD_SPEC
