"""The protobuf schema of the kinds bramble decodes, as data: message -> field number -> Field.

Field numbers and names come from k8s.io/api 1.32's ``generated.proto`` files (the protobuf
field name is the JSON name). What the ``.proto`` cannot say is which Go fields are
pointers: gogo-protobuf writes every non-pointer scalar even when it is empty, and the
JSON form omits those (``omitempty``), so a zero is dropped unless the field is marked
``ptr`` (``replicas: 0`` means something; ``hostNetwork: false`` is just the default).

Messages that are embedded Go structs (``LocalObjectReference`` in ``ConfigMapKeySelector``,
``VolumeSource`` in ``Volume``, ``ProbeHandler`` in ``Probe``) are ``embed``-ded: their
fields join the parent's JSON object. ``Quantity``, ``Time`` and ``IntOrString`` are
messages on the wire but scalars in JSON; ``JSON_FORMS`` turns the first into the second.

Status is written by controllers, never by a client creating an object, so status
messages are ``SERVER_OWNED``: their fields are skipped and they decode to ``{}``, which
is what ``kubectl create --dry-run=client -o json`` prints for them too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

STRING, INT, BOOL, BYTES = "string", "int", "bool", "bytes"
SCALARS = frozenset({STRING, INT, BOOL, BYTES})
SERVER_OWNED = "ServerOwned"


@dataclass(frozen=True, slots=True)
class Field:
    """One field: its JSON name and its type, a scalar above or a message's name."""

    json: str
    type: str
    repeated: bool = False
    ptr: bool = False  # a Go pointer: an explicit zero is kept
    map_value: str | None = None  # a map<string, map_value>: repeated {1: key, 2: value}
    embedded: bool = False  # an embedded Go struct: its fields join the parent's


def f(json: str, type: str = STRING) -> Field:
    """A plain field: a scalar's zero is gogo's "not set" and is left out."""
    return Field(json, type)


def p(json: str, type: str = STRING) -> Field:
    """A pointer field: kept even when zero."""
    return Field(json, type, ptr=True)


def many(json: str, type: str = STRING) -> Field:
    return Field(json, type, repeated=True)


def mapping(json: str, value: str = STRING) -> Field:
    return Field(json, "", map_value=value)


def embed(type: str) -> Field:
    return Field("", type, embedded=True)


def _quantity(fields: dict[str, Any]) -> str:
    return str(fields.get("string", "0"))


def _time(fields: dict[str, Any]) -> str | None:
    # metav1.Time marshals to RFC 3339 at second precision, and the zero time to null.
    seconds = int(fields.get("seconds", 0))
    if seconds == 0 and not fields.get("nanos"):
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int_or_string(fields: dict[str, Any]) -> int | str:
    kind = fields.get("type", 0)
    if kind == 0:
        return int(fields.get("intVal", 0))
    if kind == 1:
        return str(fields.get("strVal", ""))
    raise ValueError(f"IntOrString type {kind} is neither 0 (int) nor 1 (string)")


# Messages whose JSON form is a scalar; the function may raise ValueError.
JSON_FORMS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "Quantity": _quantity,
    "Time": _time,
    "IntOrString": _int_or_string,
}

# (apiVersion, kind) in the envelope -> the message its raw bytes hold.
KINDS: dict[tuple[str, str], str] = {
    ("v1", "Namespace"): "Namespace",
    ("v1", "ConfigMap"): "ConfigMap",
    ("v1", "Secret"): "Secret",
    ("v1", "Service"): "Service",
    ("v1", "Pod"): "Pod",
    ("apps/v1", "Deployment"): "Deployment",
    ("apps/v1", "ReplicaSet"): "ReplicaSet",
    ("apps/v1", "DaemonSet"): "DaemonSet",
    ("batch/v1", "Job"): "Job",
    ("batch/v1", "CronJob"): "CronJob",
    # DeleteOptions is registered in every group version; kubectl names the resource's.
    ("v1", "DeleteOptions"): "DeleteOptions",
    ("apps/v1", "DeleteOptions"): "DeleteOptions",
    ("batch/v1", "DeleteOptions"): "DeleteOptions",
    ("meta.k8s.io/v1", "DeleteOptions"): "DeleteOptions",
}


def _object(spec: str, status: str = SERVER_OWNED) -> dict[int, Field]:
    return {1: f("metadata", "ObjectMeta"), 2: f("spec", spec), 3: f("status", status)}


_META: dict[str, dict[int, Field]] = {
    # runtime.TypeMeta, in the envelope (metav1.TypeMeta numbers the two the other way).
    "TypeMeta": {1: f("apiVersion"), 2: f("kind")},
    "Quantity": {1: f("string")},
    "Time": {1: f("seconds", INT), 2: f("nanos", INT)},
    "IntOrString": {1: f("type", INT), 2: f("intVal", INT), 3: f("strVal")},
    "ObjectMeta": {
        1: f("name"),
        2: f("generateName"),
        3: f("namespace"),
        4: f("selfLink"),
        5: f("uid"),
        6: f("resourceVersion"),
        7: f("generation", INT),
        8: f("creationTimestamp", "Time"),
        9: f("deletionTimestamp", "Time"),
        10: p("deletionGracePeriodSeconds", INT),
        11: mapping("labels"),
        12: mapping("annotations"),
        13: many("ownerReferences", "OwnerReference"),
        14: many("finalizers"),
        # 17 managedFields: the apiserver writes them; a client's are skipped.
    },
    "OwnerReference": {
        5: f("apiVersion"),
        1: f("kind"),
        3: f("name"),
        4: f("uid"),
        6: p("controller", BOOL),
        7: p("blockOwnerDeletion", BOOL),
    },
    "LabelSelector": {
        1: mapping("matchLabels"),
        2: many("matchExpressions", "LabelSelectorRequirement"),
    },
    "LabelSelectorRequirement": {1: f("key"), 2: f("operator"), 3: many("values")},
    "DeleteOptions": {
        1: p("gracePeriodSeconds", INT),
        2: p("preconditions", "Preconditions"),
        3: p("orphanDependents", BOOL),
        4: p("propagationPolicy"),
        5: many("dryRun"),
        6: p("ignoreStoreReadErrorWithClusterBreakingPotential", BOOL),
    },
    "Preconditions": {1: p("uid"), 2: p("resourceVersion")},
    SERVER_OWNED: {},
}

_WORKLOADS: dict[str, dict[int, Field]] = {
    "Deployment": _object("DeploymentSpec"),
    "DeploymentSpec": {
        1: p("replicas", INT), 2: f("selector", "LabelSelector"),
        3: f("template", "PodTemplateSpec"), 4: f("strategy", "DeploymentStrategy"),
        5: f("minReadySeconds", INT), 6: p("revisionHistoryLimit", INT),
        7: f("paused", BOOL), 9: p("progressDeadlineSeconds", INT),
    },
    "DeploymentStrategy": {1: f("type"), 2: f("rollingUpdate", "RollingUpdate")},
    # RollingUpdateDeployment and RollingUpdateDaemonSet have the same fields.
    "RollingUpdate": {1: f("maxUnavailable", "IntOrString"), 2: f("maxSurge", "IntOrString")},
    "ReplicaSet": _object("ReplicaSetSpec"),
    "ReplicaSetSpec": {
        1: p("replicas", INT), 4: f("minReadySeconds", INT), 2: f("selector", "LabelSelector"),
        3: f("template", "PodTemplateSpec"),
    },
    "DaemonSet": _object("DaemonSetSpec"),
    "DaemonSetSpec": {
        1: f("selector", "LabelSelector"), 2: f("template", "PodTemplateSpec"),
        3: f("updateStrategy", "DeploymentStrategy"), 4: f("minReadySeconds", INT),
        6: p("revisionHistoryLimit", INT),
    },
    "Job": _object("JobSpec"),
    "JobSpec": {
        1: p("parallelism", INT), 2: p("completions", INT), 3: p("activeDeadlineSeconds", INT),
        7: p("backoffLimit", INT), 12: p("backoffLimitPerIndex", INT),
        13: p("maxFailedIndexes", INT), 4: f("selector", "LabelSelector"),
        5: p("manualSelector", BOOL), 6: f("template", "PodTemplateSpec"),
        8: p("ttlSecondsAfterFinished", INT), 9: p("completionMode"), 10: p("suspend", BOOL),
        14: p("podReplacementPolicy"), 15: p("managedBy"),
        # 11 podFailurePolicy, 16 successPolicy: not decoded (no kubectl generator sets them).
    },
    "CronJob": _object("CronJobSpec"),
    "CronJobSpec": {
        1: f("schedule"), 8: p("timeZone"), 2: p("startingDeadlineSeconds", INT),
        3: f("concurrencyPolicy"), 4: p("suspend", BOOL), 5: f("jobTemplate", "JobTemplateSpec"),
        6: p("successfulJobsHistoryLimit", INT), 7: p("failedJobsHistoryLimit", INT),
    },
    "JobTemplateSpec": {1: f("metadata", "ObjectMeta"), 2: f("spec", "JobSpec")},
}  # fmt: skip

_CORE: dict[str, dict[int, Field]] = {
    "Namespace": _object("NamespaceSpec"),
    "NamespaceSpec": {1: many("finalizers")},
    "ConfigMap": {
        1: f("metadata", "ObjectMeta"), 4: p("immutable", BOOL), 2: mapping("data"),
        3: mapping("binaryData", BYTES),
    },
    "Secret": {
        1: f("metadata", "ObjectMeta"), 5: p("immutable", BOOL), 2: mapping("data", BYTES),
        4: mapping("stringData"), 3: f("type"),
    },
    "Service": _object("ServiceSpec", "ServiceStatus"),
    "ServiceSpec": {
        1: many("ports", "ServicePort"), 2: mapping("selector"), 3: f("clusterIP"),
        18: many("clusterIPs"), 4: f("type"), 5: many("externalIPs"), 7: f("sessionAffinity"),
        8: f("loadBalancerIP"), 9: many("loadBalancerSourceRanges"), 10: f("externalName"),
        11: f("externalTrafficPolicy"), 12: f("healthCheckNodePort", INT),
        13: f("publishNotReadyAddresses", BOOL),
        14: p("sessionAffinityConfig", "SessionAffinityConfig"), 19: many("ipFamilies"),
        17: p("ipFamilyPolicy"), 20: p("allocateLoadBalancerNodePorts", BOOL),
        21: p("loadBalancerClass"), 22: p("internalTrafficPolicy"), 23: p("trafficDistribution"),
    },
    "ServicePort": {
        1: f("name"), 2: f("protocol"), 6: p("appProtocol"), 3: f("port", INT),
        4: f("targetPort", "IntOrString"), 5: f("nodePort", INT),
    },
    "SessionAffinityConfig": {1: p("clientIP", "ClientIPConfig")},
    "ClientIPConfig": {1: p("timeoutSeconds", INT)},
    # The JSON form always carries "loadBalancer": {} (a non-pointer struct).
    "ServiceStatus": {1: f("loadBalancer", SERVER_OWNED)},
    "Pod": _object("PodSpec"),
}  # fmt: skip

_POD: dict[str, dict[int, Field]] = {
    "PodTemplateSpec": {1: f("metadata", "ObjectMeta"), 2: f("spec", "PodSpec")},
    "PodSpec": {
        1: many("volumes", "Volume"), 20: many("initContainers", "Container"),
        2: many("containers", "Container"), 3: f("restartPolicy"),
        4: p("terminationGracePeriodSeconds", INT), 5: p("activeDeadlineSeconds", INT),
        6: f("dnsPolicy"), 7: mapping("nodeSelector"), 8: f("serviceAccountName"),
        9: f("serviceAccount"), 21: p("automountServiceAccountToken", BOOL), 10: f("nodeName"),
        11: f("hostNetwork", BOOL), 12: f("hostPID", BOOL), 13: f("hostIPC", BOOL),
        27: p("shareProcessNamespace", BOOL), 14: p("securityContext", "PodSecurityContext"),
        15: many("imagePullSecrets", "LocalObjectReference"), 16: f("hostname"),
        17: f("subdomain"), 18: p("affinity", "Affinity"), 19: f("schedulerName"),
        22: many("tolerations", "Toleration"), 23: many("hostAliases", "HostAlias"),
        24: f("priorityClassName"), 25: p("priority", INT), 26: p("dnsConfig", "PodDNSConfig"),
        28: many("readinessGates", "PodReadinessGate"), 29: p("runtimeClassName"),
        30: p("enableServiceLinks", BOOL), 31: p("preemptionPolicy"),
        32: mapping("overhead", "Quantity"),
        33: many("topologySpreadConstraints", "TopologySpreadConstraint"),
        35: p("setHostnameAsFQDN", BOOL), 36: p("os", "PodOS"), 37: p("hostUsers", BOOL),
        38: many("schedulingGates", "PodSchedulingGate"),
        40: p("resources", "ResourceRequirements"),
        # 34 ephemeralContainers (a subresource), 39 resourceClaims (DRA): not decoded.
    },
    "Container": {
        1: f("name"), 2: f("image"), 3: many("command"), 4: many("args"), 5: f("workingDir"),
        6: many("ports", "ContainerPort"), 19: many("envFrom", "EnvFromSource"),
        7: many("env", "EnvVar"), 8: f("resources", "ResourceRequirements"),
        23: many("resizePolicy", "ContainerResizePolicy"), 24: p("restartPolicy"),
        9: many("volumeMounts", "VolumeMount"), 10: p("livenessProbe", "Probe"),
        11: p("readinessProbe", "Probe"), 22: p("startupProbe", "Probe"),
        12: p("lifecycle", "Lifecycle"), 13: f("terminationMessagePath"),
        20: f("terminationMessagePolicy"), 14: f("imagePullPolicy"),
        15: p("securityContext", "SecurityContext"), 16: f("stdin", BOOL),
        17: f("stdinOnce", BOOL), 18: f("tty", BOOL),
    },
    "ContainerPort": {
        1: f("name"), 2: f("hostPort", INT), 3: f("containerPort", INT), 4: f("protocol"),
        5: f("hostIP"),
    },
    "ContainerResizePolicy": {1: f("resourceName"), 2: f("restartPolicy")},
    "EnvVar": {1: f("name"), 2: f("value"), 3: p("valueFrom", "EnvVarSource")},
    "EnvVarSource": {
        1: p("fieldRef", "ObjectFieldSelector"), 2: p("resourceFieldRef", "ResourceFieldSelector"),
        3: p("configMapKeyRef", "KeySelector"), 4: p("secretKeyRef", "KeySelector"),
    },
    "ObjectFieldSelector": {1: f("apiVersion"), 2: f("fieldPath")},
    "ResourceFieldSelector": {1: f("containerName"), 2: f("resource"), 3: f("divisor", "Quantity")},
    "LocalObjectReference": {1: f("name")},
    # ConfigMapKeySelector and SecretKeySelector have the same fields.
    "KeySelector": {1: embed("LocalObjectReference"), 2: f("key"), 3: p("optional", BOOL)},
    "EnvFromSource": {
        1: f("prefix"), 2: p("configMapRef", "EnvSource"), 3: p("secretRef", "EnvSource"),
    },
    # ConfigMapEnvSource and SecretEnvSource have the same fields.
    "EnvSource": {1: embed("LocalObjectReference"), 2: p("optional", BOOL)},
    "ResourceRequirements": {
        1: mapping("limits", "Quantity"), 2: mapping("requests", "Quantity"),
        3: many("claims", "ResourceClaim"),
    },
    "ResourceClaim": {1: f("name"), 2: f("request")},
    "VolumeMount": {
        1: f("name"), 2: f("readOnly", BOOL), 7: p("recursiveReadOnly"), 3: f("mountPath"),
        4: f("subPath"), 5: p("mountPropagation"), 6: f("subPathExpr"),
    },
    "Probe": {
        1: embed("ProbeHandler"), 2: f("initialDelaySeconds", INT), 3: f("timeoutSeconds", INT),
        4: f("periodSeconds", INT), 5: f("successThreshold", INT), 6: f("failureThreshold", INT),
        7: p("terminationGracePeriodSeconds", INT),
    },
    "ProbeHandler": {
        1: p("exec", "ExecAction"), 2: p("httpGet", "HTTPGetAction"),
        3: p("tcpSocket", "TCPSocketAction"), 4: p("grpc", "GRPCAction"),
    },
    "ExecAction": {1: many("command")},
    "HTTPGetAction": {
        1: f("path"), 2: f("port", "IntOrString"), 3: f("host"), 4: f("scheme"),
        5: many("httpHeaders", "HTTPHeader"),
    },
    "HTTPHeader": {1: f("name"), 2: f("value")},
    "TCPSocketAction": {1: f("port", "IntOrString"), 2: f("host")},
    "GRPCAction": {1: f("port", INT), 2: p("service")},
    "Lifecycle": {1: p("postStart", "LifecycleHandler"), 2: p("preStop", "LifecycleHandler")},
    "LifecycleHandler": {
        1: p("exec", "ExecAction"), 2: p("httpGet", "HTTPGetAction"),
        3: p("tcpSocket", "TCPSocketAction"), 4: p("sleep", "SleepAction"),
    },
    "SleepAction": {1: f("seconds", INT)},
}  # fmt: skip

_POD_MORE: dict[str, dict[int, Field]] = {
    "SecurityContext": {
        1: p("capabilities", "Capabilities"), 2: p("privileged", BOOL),
        3: p("seLinuxOptions", "SELinuxOptions"),
        10: p("windowsOptions", "WindowsSecurityContextOptions"), 4: p("runAsUser", INT),
        8: p("runAsGroup", INT), 5: p("runAsNonRoot", BOOL), 6: p("readOnlyRootFilesystem", BOOL),
        7: p("allowPrivilegeEscalation", BOOL), 9: p("procMount"),
        11: p("seccompProfile", "SeccompProfile"), 12: p("appArmorProfile", "SeccompProfile"),
    },
    "PodSecurityContext": {
        1: p("seLinuxOptions", "SELinuxOptions"),
        8: p("windowsOptions", "WindowsSecurityContextOptions"), 2: p("runAsUser", INT),
        6: p("runAsGroup", INT), 3: p("runAsNonRoot", BOOL), 4: many("supplementalGroups", INT),
        12: p("supplementalGroupsPolicy"), 5: p("fsGroup", INT), 7: many("sysctls", "Sysctl"),
        9: p("fsGroupChangePolicy"), 10: p("seccompProfile", "SeccompProfile"),
        11: p("appArmorProfile", "SeccompProfile"), 13: p("seLinuxChangePolicy"),
    },
    "Capabilities": {1: many("add"), 2: many("drop")},
    "SELinuxOptions": {1: f("user"), 2: f("role"), 3: f("type"), 4: f("level")},
    # SeccompProfile and AppArmorProfile have the same fields.
    "SeccompProfile": {1: f("type"), 2: p("localhostProfile")},
    "WindowsSecurityContextOptions": {
        1: p("gmsaCredentialSpecName"), 2: p("gmsaCredentialSpec"), 3: p("runAsUserName"),
        4: p("hostProcess", BOOL),
    },
    "Sysctl": {1: f("name"), 2: f("value")},
    "Volume": {1: f("name"), 2: embed("VolumeSource")},
    "VolumeSource": {
        # The volume types a home lab uses; cloud and legacy plugins (3-5, 7-9, 11-15,
        # 17, 18, 20-25, 27-30) are skipped, so such a volume decodes with no source.
        1: p("hostPath", "HostPathVolumeSource"), 2: p("emptyDir", "EmptyDirVolumeSource"),
        6: p("secret", "SecretVolumeSource"),
        10: p("persistentVolumeClaim", "PersistentVolumeClaimVolumeSource"),
        16: p("downwardAPI", "DownwardAPIVolumeSource"),
        19: p("configMap", "ConfigMapVolumeSource"), 26: p("projected", "ProjectedVolumeSource"),
    },
    "HostPathVolumeSource": {1: f("path"), 2: p("type")},
    "EmptyDirVolumeSource": {1: f("medium"), 2: p("sizeLimit", "Quantity")},
    "SecretVolumeSource": {
        1: f("secretName"), 2: many("items", "KeyToPath"), 3: p("defaultMode", INT),
        4: p("optional", BOOL),
    },
    "ConfigMapVolumeSource": {
        1: embed("LocalObjectReference"), 2: many("items", "KeyToPath"),
        3: p("defaultMode", INT), 4: p("optional", BOOL),
    },
    "KeyToPath": {1: f("key"), 2: f("path"), 3: p("mode", INT)},
    "ProjectedVolumeSource": {
        1: many("sources", "VolumeProjection"), 2: p("defaultMode", INT),
    },
    "VolumeProjection": {
        1: p("secret", "KeyProjection"), 2: p("downwardAPI", "DownwardAPIProjection"),
        3: p("configMap", "KeyProjection"),
        4: p("serviceAccountToken", "ServiceAccountTokenProjection"),
        # 5 clusterTrustBundle (alpha): not decoded.
    },
    # SecretProjection and ConfigMapProjection have the same fields.
    "KeyProjection": {
        1: embed("LocalObjectReference"), 2: many("items", "KeyToPath"), 4: p("optional", BOOL),
    },
    "DownwardAPIProjection": {1: many("items", "DownwardAPIVolumeFile")},
    "ServiceAccountTokenProjection": {
        1: f("audience"), 2: p("expirationSeconds", INT), 3: f("path"),
    },
    "PersistentVolumeClaimVolumeSource": {1: f("claimName"), 2: f("readOnly", BOOL)},
    "DownwardAPIVolumeSource": {
        1: many("items", "DownwardAPIVolumeFile"), 2: p("defaultMode", INT),
    },
    "DownwardAPIVolumeFile": {
        1: f("path"), 2: p("fieldRef", "ObjectFieldSelector"),
        3: p("resourceFieldRef", "ResourceFieldSelector"), 4: p("mode", INT),
    },
    "Toleration": {
        1: f("key"), 2: f("operator"), 3: f("value"), 4: f("effect"),
        5: p("tolerationSeconds", INT),
    },
    "Affinity": {
        1: p("nodeAffinity", "NodeAffinity"), 2: p("podAffinity", "PodAffinity"),
        3: p("podAntiAffinity", "PodAffinity"),
    },
    "NodeAffinity": {
        1: p("requiredDuringSchedulingIgnoredDuringExecution", "NodeSelector"),
        2: many("preferredDuringSchedulingIgnoredDuringExecution", "PreferredSchedulingTerm"),
    },
    "NodeSelector": {1: many("nodeSelectorTerms", "NodeSelectorTerm")},
    # NodeSelectorRequirement has LabelSelectorRequirement's fields.
    "NodeSelectorTerm": {
        1: many("matchExpressions", "LabelSelectorRequirement"),
        2: many("matchFields", "LabelSelectorRequirement"),
    },
    "PreferredSchedulingTerm": {1: f("weight", INT), 2: f("preference", "NodeSelectorTerm")},
    # PodAffinity and PodAntiAffinity have the same fields.
    "PodAffinity": {
        1: many("requiredDuringSchedulingIgnoredDuringExecution", "PodAffinityTerm"),
        2: many("preferredDuringSchedulingIgnoredDuringExecution", "WeightedPodAffinityTerm"),
    },
    "PodAffinityTerm": {
        1: p("labelSelector", "LabelSelector"), 2: many("namespaces"), 3: f("topologyKey"),
        4: p("namespaceSelector", "LabelSelector"), 5: many("matchLabelKeys"),
        6: many("mismatchLabelKeys"),
    },
    "WeightedPodAffinityTerm": {1: f("weight", INT), 2: f("podAffinityTerm", "PodAffinityTerm")},
    "HostAlias": {1: f("ip"), 2: many("hostnames")},
    "PodDNSConfig": {
        1: many("nameservers"), 2: many("searches"), 3: many("options", "PodDNSConfigOption"),
    },
    "PodDNSConfigOption": {1: f("name"), 2: p("value")},
    "TopologySpreadConstraint": {
        1: f("maxSkew", INT), 2: f("topologyKey"), 3: f("whenUnsatisfiable"),
        4: p("labelSelector", "LabelSelector"), 5: p("minDomains", INT),
        6: p("nodeAffinityPolicy"), 7: p("nodeTaintsPolicy"), 8: many("matchLabelKeys"),
    },
    "PodOS": {1: f("name")},
    "PodReadinessGate": {1: f("conditionType")},
    "PodSchedulingGate": {1: f("name")},
}  # fmt: skip

MESSAGES: dict[str, dict[int, Field]] = {**_META, **_WORKLOADS, **_CORE, **_POD, **_POD_MORE}
