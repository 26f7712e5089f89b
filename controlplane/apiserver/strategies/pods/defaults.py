"""Pod defaults, as Kubernetes' v1 defaulting (pkg/apis/core/v1/defaults.go) fills them in.

``default_pod_spec`` is ``SetDefaults_PodSpec`` and everything below it (containers,
ports, probes, volumes, downward API references); it applies to pods and to the pod
templates of workloads alike. ``default_pod`` adds what only a Pod gets
(``SetDefaults_Pod``: requests copied from limits, ``enableServiceLinks``, host ports of a
host-network pod), which Kubernetes keeps out of templates on purpose.

A Go default applies where the field is its zero value, so an explicit ``""`` or JSON
``null`` is defaulted like a missing field, and so is a ``0`` for the int32 fields that
are not pointers (a probe's ``periodSeconds``). Defaults also fill in what Go serializes
for a zero struct (``resources: {}``) so that objects read back as Kubernetes shows them.
"""

from __future__ import annotations

import re
from typing import Any, Final

from controlplane.apiserver.strategies.common import Obj, is_int, mapping

DEFAULT_TERMINATION_GRACE_PERIOD: Final = 30  # v1.DefaultTerminationGracePeriodSeconds
DEFAULT_FILE_MODE: Final = 0o644  # secret, configMap, downwardAPI and projected volumes
DEFAULT_TOKEN_EXPIRATION: Final = 3600
_PROBE_DEFAULTS: Final = (
    ("timeoutSeconds", 1),
    ("periodSeconds", 10),
    ("successThreshold", 1),
    ("failureThreshold", 3),
)
_HANDLERS: Final = ("postStart", "preStop")
# k8s VolumeSource: a volume with none of these gets an emptyDir (SetDefaults_Volume).
VOLUME_SOURCES: Final = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret",
    "nfs", "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder",
    "cephfs", "flocker", "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume",
    "quobyte", "azureDisk", "photonPersistentDisk", "projected", "portworxVolume", "scaleIO",
    "storageos", "csi", "ephemeral", "image",
)  # fmt: skip


def _unset(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value)


def _zero(value: object) -> bool:
    return value is None or (is_int(value) and value == 0)


def _default(obj: Obj, key: str, value: Any) -> None:
    if _unset(obj.get(key)):
        obj[key] = value


def _objects(value: object) -> list[Obj]:
    return [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []


def default_pod_spec(spec: Obj) -> None:
    """``SetDefaults_PodSpec`` and the defaults of everything a PodSpec holds."""
    _default(spec, "dnsPolicy", "ClusterFirst")
    _default(spec, "restartPolicy", "Always")
    if not isinstance(spec.get("securityContext"), dict):
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = DEFAULT_TERMINATION_GRACE_PERIOD
    _default(spec, "schedulerName", "default-scheduler")
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for container in _objects(spec.get(kind)):
            default_container(container)
    for volume in _objects(spec.get("volumes")):
        default_volume(volume)


def default_pod(spec: Obj) -> None:
    """What ``SetDefaults_Pod`` adds for a Pod (never for a template)."""
    for kind in ("initContainers", "containers"):
        for container in _objects(spec.get(kind)):
            resources = container.get("resources")
            limits = resources.get("limits") if isinstance(resources, dict) else None
            if isinstance(limits, dict) and limits:
                assert isinstance(resources, dict)
                requests = mapping(resources, "requests")
                for name, quantity in limits.items():
                    requests.setdefault(name, quantity)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork") is True:
        for kind in ("initContainers", "containers"):
            for container in _objects(spec.get(kind)):
                for port in _objects(container.get("ports")):
                    if _zero(port.get("hostPort")):
                        port["hostPort"] = port.get("containerPort")


def default_container(container: Obj) -> None:
    """``SetDefaults_Container`` plus its ports, env, probes and lifecycle handlers."""
    _default(container, "imagePullPolicy", image_pull_policy(container.get("image")))
    _default(container, "terminationMessagePath", "/dev/termination-log")
    _default(container, "terminationMessagePolicy", "File")
    if not isinstance(container.get("resources"), dict):
        container["resources"] = {}
    for port in _objects(container.get("ports")):
        _default(port, "protocol", "TCP")
    for env in _objects(container.get("env")):
        value_from = env.get("valueFrom")
        if isinstance(value_from, dict):
            _default_field_ref(value_from)
            _default_resource_ref(value_from)
    for probe_kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = container.get(probe_kind)
        if isinstance(probe, dict):
            for key, value in _PROBE_DEFAULTS:
                if _zero(probe.get(key)):
                    probe[key] = value
            _default_handler(probe)
    lifecycle = container.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in _HANDLERS:
            handler = lifecycle.get(hook)
            if isinstance(handler, dict):
                _default_handler(handler)


def _default_handler(handler: Obj) -> None:
    http = handler.get("httpGet")
    if isinstance(http, dict):
        _default(http, "path", "/")
        _default(http, "scheme", "HTTP")
    grpc = handler.get("grpc")
    if isinstance(grpc, dict) and grpc.get("service") is None:
        grpc["service"] = ""


def _default_field_ref(holder: Obj) -> None:
    ref = holder.get("fieldRef")
    if isinstance(ref, dict):
        _default(ref, "apiVersion", "v1")


def _default_resource_ref(holder: Obj) -> None:
    ref = holder.get("resourceFieldRef")
    if isinstance(ref, dict) and ref.get("divisor") is None:
        ref["divisor"] = "0"  # a zero Quantity serializes as "0"


def image_pull_policy(image: object) -> str:
    """``Always`` for ``:latest`` or no tag, else ``IfNotPresent``, as k8s decides from
    ``parsers.ParseImageName``; an image it cannot parse gets ``IfNotPresent``."""
    if not isinstance(image, str) or not _looks_like_reference(image):
        return "IfNotPresent"
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    if tag == "latest" or (not tag and not digest):
        return "Always"
    return "IfNotPresent"


# The shape of a docker reference (repository path, optional tag, optional digest);
# repositories must be lower case, which is the mistake people make.
_REFERENCE: Final = re.compile(
    r"(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@[A-Za-z0-9_+.-]+:[A-Fa-f0-9]+)?"
)


def _looks_like_reference(image: str) -> bool:
    return _REFERENCE.fullmatch(image) is not None


def default_volume(volume: Obj) -> None:
    """``SetDefaults_Volume`` and the defaults of the volume sources."""
    if not any(volume.get(source) is not None for source in VOLUME_SOURCES):
        volume["emptyDir"] = {}
    host_path = volume.get("hostPath")
    if isinstance(host_path, dict) and host_path.get("type") is None:
        host_path["type"] = ""
    for source in ("secret", "configMap", "downwardAPI", "projected"):
        body = volume.get(source)
        if isinstance(body, dict) and body.get("defaultMode") is None:
            body["defaultMode"] = DEFAULT_FILE_MODE
    downward = volume.get("downwardAPI")
    if isinstance(downward, dict):
        for item in _objects(downward.get("items")):
            _default_field_ref(item)
            _default_resource_ref(item)
    projected = volume.get("projected")
    if isinstance(projected, dict):
        for projection in _objects(projected.get("sources")):
            token = projection.get("serviceAccountToken")
            if isinstance(token, dict) and _zero(token.get("expirationSeconds")):
                token["expirationSeconds"] = DEFAULT_TOKEN_EXPIRATION
            part = projection.get("downwardAPI")
            if isinstance(part, dict):
                for item in _objects(part.get("items")):
                    _default_field_ref(item)
                    _default_resource_ref(item)
