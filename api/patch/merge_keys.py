"""What a strategic merge patch knows about each kind: one table, keyed by field path.

Kubernetes reads this knowledge from the Go struct tags of k8s.io/api, e.g.::

    Containers []Container `json:"containers" patchStrategy:"merge" patchMergeKey:"name"`

:data:`FIELDS` is those tags, written out: the key is ``"<GoType>.<jsonField>"`` and the
value says whether a list merges (``patchStrategy:"merge"``), by which key
(``patchMergeKey``), and which type its value or items have, so the walk can go on
below it. :data:`KINDS` names the root type of each kind. A field the table does not
list is a plain field: an object merges key by key, a list is replaced whole (atomic),
a scalar is replaced. Only the fields that change that default, or lead to one that
does, are listed.

Deliberately absent, because their Go fields carry no patch strategy (atomic):
``PodSpec.tolerations``, ``PodSpec.readinessGates``, ``Container.envFrom``,
``Container.command``/``args``, ``Container.resizePolicy``, ``NodeSpec.taints``,
``PodStatus.containerStatuses``, ``StatefulSetSpec.volumeClaimTemplates``,
``LabelSelector.matchExpressions``, ``CronJobStatus.active``.

``patchStrategy:"retainKeys"`` (``DeploymentSpec.strategy``, ``PodSpec.volumes``) is not
recorded: the server acts on the ``$retainKeys`` directive a patch carries, never on the
tag (the tag only tells kubectl to send the directive).

Kinds not in :data:`KINDS` (custom resources included) get the root type ``Object``:
their ``metadata`` is the standard ObjectMeta, every other list is atomic. The real
apiserver refuses strategic merge patches on custom resources (415), and kubectl sends
them JSON merge patches instead. bramble accepts both: with no merge keys, a strategic
merge is a JSON merge patch (objects merge, lists are replaced) that also honours the
directives and ObjectMeta's rules (finalizers are a set), which breaks no client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, TypeAlias

GroupKind: TypeAlias = tuple[str, str]
"""``(group, kind)``, e.g. ``("", "Pod")`` or ``("apps", "Deployment")``; ``""`` is core."""


@dataclass(frozen=True, slots=True)
class Field:
    """The patch metadata of one field (its Go struct tags)."""

    type: str | None = None  # Go type of the value, or of a list's items
    merge: bool = False  # patchStrategy:"merge": a list merges instead of being replaced
    key: str | None = None  # patchMergeKey: a merging list of objects matches items by it


def _struct(type_: str) -> Field:
    return Field(type=type_)


def _by(key: str, type_: str | None = None) -> Field:
    return Field(type=type_, merge=True, key=key)


_SET = Field(merge=True)  # a list of scalars that merges as a set (union, then delete list)

FIELDS: Final[Mapping[str, Field]] = {
    # metav1.ObjectMeta, shared by every kind.
    "ObjectMeta.finalizers": _SET,
    "ObjectMeta.ownerReferences": _by("uid"),
    # core/v1 PodTemplateSpec and PodSpec: the pod rules, wherever a pod template sits.
    "PodTemplateSpec.metadata": _struct("ObjectMeta"),
    "PodTemplateSpec.spec": _struct("PodSpec"),
    "PodSpec.volumes": _by("name"),
    "PodSpec.initContainers": _by("name", "Container"),
    "PodSpec.containers": _by("name", "Container"),
    "PodSpec.ephemeralContainers": _by("name", "Container"),
    "PodSpec.imagePullSecrets": _by("name"),
    "PodSpec.hostAliases": _by("ip"),
    "PodSpec.topologySpreadConstraints": _by("topologyKey"),
    "PodSpec.resourceClaims": _by("name"),
    "PodSpec.schedulingGates": _by("name"),
    # core/v1 Container (EphemeralContainerCommon carries the same tags).
    "Container.ports": _by("containerPort"),
    "Container.env": _by("name"),
    "Container.volumeMounts": _by("mountPath"),
    "Container.volumeDevices": _by("devicePath"),
    # core/v1 Pod.
    "Pod.metadata": _struct("ObjectMeta"),
    "Pod.spec": _struct("PodSpec"),
    "Pod.status": _struct("PodStatus"),
    "PodStatus.conditions": _by("type"),
    "PodStatus.podIPs": _by("ip"),
    "PodStatus.hostIPs": _by("ip"),
    "PodStatus.resourceClaimStatuses": _by("name"),
    # core/v1 PodTemplate and ReplicationController.
    "PodTemplate.metadata": _struct("ObjectMeta"),
    "PodTemplate.template": _struct("PodTemplateSpec"),
    "ReplicationController.metadata": _struct("ObjectMeta"),
    "ReplicationController.spec": _struct("ReplicationControllerSpec"),
    "ReplicationController.status": _struct("ReplicationControllerStatus"),
    "ReplicationControllerSpec.template": _struct("PodTemplateSpec"),
    "ReplicationControllerStatus.conditions": _by("type"),
    # core/v1 Node.
    "Node.metadata": _struct("ObjectMeta"),
    "Node.spec": _struct("NodeSpec"),
    "Node.status": _struct("NodeStatus"),
    "NodeSpec.podCIDRs": _SET,
    "NodeStatus.conditions": _by("type"),
    "NodeStatus.addresses": _by("type"),
    # core/v1 Service.
    "Service.metadata": _struct("ObjectMeta"),
    "Service.spec": _struct("ServiceSpec"),
    "Service.status": _struct("ServiceStatus"),
    "ServiceSpec.ports": _by("port"),
    "ServiceStatus.conditions": _by("type"),
    # core/v1 Namespace and PersistentVolumeClaim.
    "Namespace.metadata": _struct("ObjectMeta"),
    "Namespace.status": _struct("NamespaceStatus"),
    "NamespaceStatus.conditions": _by("type"),
    "PersistentVolumeClaim.metadata": _struct("ObjectMeta"),
    "PersistentVolumeClaim.status": _struct("PersistentVolumeClaimStatus"),
    "PersistentVolumeClaimStatus.conditions": _by("type"),
    # apps/v1.
    "Deployment.metadata": _struct("ObjectMeta"),
    "Deployment.spec": _struct("DeploymentSpec"),
    "Deployment.status": _struct("DeploymentStatus"),
    "DeploymentSpec.template": _struct("PodTemplateSpec"),
    "DeploymentStatus.conditions": _by("type"),
    "ReplicaSet.metadata": _struct("ObjectMeta"),
    "ReplicaSet.spec": _struct("ReplicaSetSpec"),
    "ReplicaSet.status": _struct("ReplicaSetStatus"),
    "ReplicaSetSpec.template": _struct("PodTemplateSpec"),
    "ReplicaSetStatus.conditions": _by("type"),
    "DaemonSet.metadata": _struct("ObjectMeta"),
    "DaemonSet.spec": _struct("DaemonSetSpec"),
    "DaemonSet.status": _struct("DaemonSetStatus"),
    "DaemonSetSpec.template": _struct("PodTemplateSpec"),
    "DaemonSetStatus.conditions": _by("type"),
    "StatefulSet.metadata": _struct("ObjectMeta"),
    "StatefulSet.spec": _struct("StatefulSetSpec"),
    "StatefulSet.status": _struct("StatefulSetStatus"),
    "StatefulSetSpec.template": _struct("PodTemplateSpec"),
    "StatefulSetStatus.conditions": _by("type"),
    # batch/v1.
    "Job.metadata": _struct("ObjectMeta"),
    "Job.spec": _struct("JobSpec"),
    "Job.status": _struct("JobStatus"),
    "JobSpec.template": _struct("PodTemplateSpec"),
    "JobStatus.conditions": _by("type"),
    "CronJob.metadata": _struct("ObjectMeta"),
    "CronJob.spec": _struct("CronJobSpec"),
    "CronJobSpec.jobTemplate": _struct("JobTemplateSpec"),
    "JobTemplateSpec.metadata": _struct("ObjectMeta"),
    "JobTemplateSpec.spec": _struct("JobSpec"),
    # Any other kind, custom resources included.
    "Object.metadata": _struct("ObjectMeta"),
}

KINDS: Final[Mapping[GroupKind, str]] = {
    ("", "Pod"): "Pod",
    ("", "PodTemplate"): "PodTemplate",
    ("", "ReplicationController"): "ReplicationController",
    ("", "Node"): "Node",
    ("", "Service"): "Service",
    ("", "Namespace"): "Namespace",
    ("", "PersistentVolumeClaim"): "PersistentVolumeClaim",
    ("apps", "Deployment"): "Deployment",
    ("apps", "ReplicaSet"): "ReplicaSet",
    ("apps", "DaemonSet"): "DaemonSet",
    ("apps", "StatefulSet"): "StatefulSet",
    ("batch", "Job"): "Job",
    ("batch", "CronJob"): "CronJob",
}


def root_type(kind: GroupKind) -> str:
    """The table's type name for the top of an object of ``kind``."""
    return KINDS.get(kind, "Object")


def field(type_: str | None, name: str) -> Field | None:
    """The patch metadata of field ``name`` of ``type_`` (None: a plain field)."""
    if type_ is None:
        return None
    return FIELDS.get(f"{type_}.{name}")
