"""A PodSpec as a whole, as k8s ``ValidatePodSpec``, and a pod template, as
``ValidatePodTemplateSpec`` (which names the template's labels ``<path>.labels``, not
``<path>.metadata.labels``: a Kubernetes quirk kept here).

``pod=True`` adds what Kubernetes checks only for a Pod, never for a template: an image
with surrounding blanks, host ports that must equal container ports on the host network,
ephemeral containers on create and service account tokens without a service account.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from typing import Final

import orjson

from api import validation as v
from api.errors import Cause
from controlplane.apiserver.strategies import formats
from controlplane.apiserver.strategies.common import (
    Obj,
    expect_map,
    get_list,
    get_map,
    get_str,
    is_int,
    items,
    one_of,
    optional_one_of,
)
from controlplane.apiserver.strategies.pods.containers import (
    MAX_ID,
    ids,
    seccomp_profile,
    validate_containers,
    validate_init_containers,
)
from controlplane.apiserver.strategies.pods.scheduling import (
    validate_affinity,
    validate_tolerations,
    validate_topology_spread,
)
from controlplane.apiserver.strategies.pods.volumes import validate_volumes

RESTART_POLICIES: Final = ("Always", "OnFailure", "Never")
DNS_POLICIES: Final = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PREEMPTION_POLICIES: Final = ("PreemptLowerPriority", "Never")
_SYSCTL: Final = r"^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$"


# Pod specs that validated clean, remembered by a digest of their exact JSON (key order
# included): the pods of one template bring the same spec again and again, and so does
# every status update of a pod, which validates the whole pod. Validation is a pure
# function of the spec (42 µs for a one-container pod, against 2 µs for the digest), and
# only a clean result is remembered, so a spec with problems is checked, and its causes
# reported, every time.
_CLEAN_SPECS: OrderedDict[bytes, None] = OrderedDict()
_CLEAN_SPECS_KEPT: Final = 4096


def validate_pod_spec(spec: object, path: str, *, pod: bool) -> list[Cause]:
    if not isinstance(spec, dict):
        return (
            [v.required(path)]
            if spec is None
            else [v.type_invalid(path, spec, detail="must be an object")]
        )
    digest = _digest(spec, path, pod=pod)
    if digest is not None and digest in _CLEAN_SPECS:
        _CLEAN_SPECS.move_to_end(digest)
        return []
    causes = _validate_pod_spec(spec, path, pod=pod)
    if digest is not None and not causes:
        _CLEAN_SPECS[digest] = None
        if len(_CLEAN_SPECS) > _CLEAN_SPECS_KEPT:
            _CLEAN_SPECS.popitem(last=False)
    return causes


def _digest(spec: Obj, path: str, *, pod: bool) -> bytes | None:
    """What identifies a validation: the spec's JSON, the path, pod or template. None
    for a spec with values JSON has no form for (a YAML date): validated every time."""
    try:
        data = orjson.dumps(spec)
    except TypeError:
        return None
    hasher = hashlib.blake2b(data, digest_size=16)
    hasher.update(f"\0{path}\0{pod}".encode())
    return hasher.digest()


def _validate_pod_spec(spec: Obj, path: str, *, pod: bool) -> list[Cause]:
    causes: list[Cause] = []
    grace = spec.get("terminationGracePeriodSeconds")
    if grace is None:
        causes.append(v.required(f"{path}.terminationGracePeriodSeconds"))
    elif not is_int(grace):
        detail = "must be an integer"
        causes.append(v.type_invalid(f"{path}.terminationGracePeriodSeconds", grace, detail=detail))
    volumes, volume_causes = validate_volumes(spec, f"{path}.volumes")
    causes += volume_causes
    causes += validate_containers(spec, f"{path}.containers", volumes, pod=pod)
    causes += validate_init_containers(spec, f"{path}.initContainers", volumes, pod=pod)
    causes += _host_network(spec, path, pod=pod)
    causes += one_of(spec, "restartPolicy", f"{path}.restartPolicy", RESTART_POLICIES)
    causes += one_of(spec, "dnsPolicy", f"{path}.dnsPolicy", DNS_POLICIES)
    causes += v.labels(spec.get("nodeSelector"), f"{path}.nodeSelector")
    causes += _security_context(spec, path)
    causes += _pull_secrets(spec, f"{path}.imagePullSecrets")
    causes += validate_affinity(spec, f"{path}.affinity")
    causes += _dns_config(spec, f"{path}.dnsConfig")
    for i, gate in enumerate(get_list(spec, "readinessGates")):
        causes += v.qualified_name(
            get_str(gate, "conditionType"), f"{path}.readinessGates[{i}].conditionType"
        )
    causes += _scheduling_gates(spec, f"{path}.schedulingGates")
    causes += validate_topology_spread(spec, f"{path}.topologySpreadConstraints")
    for key in ("serviceAccountName", "nodeName", "priorityClassName", "runtimeClassName"):
        if spec.get(key):
            causes += v.dns1123_subdomain(spec[key], f"{path}.{key}")
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and (not is_int(deadline) or not 1 <= deadline <= MAX_ID):
        detail = formats.inclusive_range(1, MAX_ID)
        causes.append(v.invalid_value(f"{path}.activeDeadlineSeconds", deadline, detail=detail))
    for key in ("hostname", "subdomain"):
        if spec.get(key):
            causes += v.dns1123_label(spec[key], f"{path}.{key}")
    causes += validate_tolerations(spec, f"{path}.tolerations")
    for alias_path, alias in items(spec, "hostAliases", f"{path}.hostAliases"):
        causes += formats.ip(alias.get("ip", ""), f"{alias_path}.ip")
        for j, host in enumerate(get_list(alias, "hostnames")):
            causes += v.dns1123_subdomain(host, f"{alias_path}.hostnames[{j}]")
    causes += optional_one_of(
        spec, "preemptionPolicy", f"{path}.preemptionPolicy", PREEMPTION_POLICIES
    )
    causes += expect_map(spec, "os", f"{path}.os")
    if isinstance(spec.get("os"), dict):
        name = spec["os"].get("name")
        if not name:
            causes.append(v.required(f"{path}.os.name", "cannot be empty"))
        elif name not in ("linux", "windows"):
            causes.append(v.not_supported(f"{path}.os", name, supported=("linux", "windows")))
    if pod:
        causes += _pod_only(spec, path)
    return causes


def _host_network(spec: Obj, path: str, *, pod: bool) -> list[Cause]:
    """On the host network a container port is a host port: k8s
    ``validatePodHostNetworkDeps`` (a template may leave hostPort 0 for defaulting)."""
    if spec.get("hostNetwork") is not True:
        return []
    causes: list[Cause] = []
    for container_path, container in items(spec, "containers", f"{path}.containers"):
        for port_path, port in items(container, "ports", f"{container_path}.ports"):
            host, target = port.get("hostPort", 0) or 0, port.get("containerPort")
            if (pod or host != 0) and host != target:
                detail = "must match `containerPort` when `hostNetwork` is true"
                causes.append(v.invalid_value(f"{port_path}.hostPort", host, detail=detail))
    return causes


def _security_context(spec: Obj, path: str) -> list[Cause]:
    """k8s ``validatePodSpecSecurityContext`` (v1 keeps hostPID and
    shareProcessNamespace in the spec; Kubernetes reports them under securityContext)."""
    context_path = f"{path}.securityContext"
    causes = expect_map(spec, "securityContext", context_path)
    context = get_map(spec, "securityContext")
    causes += ids(context, ("fsGroup", "runAsUser", "runAsGroup"), context_path)
    for i, gid in enumerate(get_list(context, "supplementalGroups")):
        if not is_int(gid) or not 0 <= gid <= MAX_ID:
            detail = formats.inclusive_range(0, MAX_ID)
            causes.append(
                v.invalid_value(f"{context_path}.supplementalGroups[{i}]", gid, detail=detail)
            )
    if spec.get("shareProcessNamespace") is True and spec.get("hostPID") is True:
        detail = "ShareProcessNamespace and HostPID cannot both be enabled"
        causes.append(v.invalid_value(f"{context_path}.shareProcessNamespace", True, detail=detail))
    names: set[str] = set()
    for sysctl_path, sysctl in items(context, "sysctls", f"{context_path}.sysctls"):
        name = get_str(sysctl, "name")
        if not name:
            causes.append(v.required(f"{sysctl_path}.name"))
        elif len(name) > 253 or re.fullmatch(_SYSCTL, name) is None:
            detail = f"must have at most 253 characters and match regex {_SYSCTL}"
            causes.append(v.invalid_value(f"{sysctl_path}.name", name, detail=detail))
        elif name in names:
            causes.append(v.duplicate(f"{sysctl_path}.name", name))
        names.add(name)
    policy_path = f"{context_path}.fsGroupChangePolicy"
    causes += optional_one_of(
        context, "fsGroupChangePolicy", policy_path, ("Always", "OnRootMismatch")
    )
    return causes + seccomp_profile(context, f"{context_path}.seccompProfile")


def _pull_secrets(spec: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for item_path, secret in items(spec, "imagePullSecrets", path):
        if set(secret) - {"name"}:
            causes.append(v.invalid_value(item_path, secret, detail="only name may be set"))
    return causes


def _dns_config(spec: Obj, path: str) -> list[Cause]:
    config = spec.get("dnsConfig")
    if spec.get("dnsPolicy") == "None":
        if not isinstance(config, dict):
            return [v.required(path, "must provide `dnsConfig` when `dnsPolicy` is None")]
        if not get_list(config, "nameservers"):
            detail = "must provide at least one DNS nameserver when `dnsPolicy` is None"
            return [v.required(f"{path}.nameservers", detail)]
    if not isinstance(config, dict):
        return []
    causes: list[Cause] = []
    servers = get_list(config, "nameservers")
    if len(servers) > 3:
        detail = "must not have more than 3 nameservers"
        causes.append(v.invalid_value(f"{path}.nameservers", servers, detail=detail))
    for i, server in enumerate(servers):
        causes += formats.ip(server, f"{path}.nameservers[{i}]")
    searches = get_list(config, "searches")
    if len(searches) > 32:
        detail = "must not have more than 32 search paths"
        causes.append(v.invalid_value(f"{path}.searches", searches, detail=detail))
    if len(" ".join(str(s) for s in searches)) > 2048:
        detail = "must not have more than 2048 characters (including spaces) in the search list"
        causes.append(v.invalid_value(f"{path}.searches", searches, detail=detail))
    for i, search in enumerate(searches):
        # Kubernetes 1.32 checks the name without its trailing dot (RelaxedDNSSearch,
        # which would allow "." and underscores, is off there).
        name = str(search).removesuffix(".")
        causes += v.dns1123_subdomain(name, f"{path}.searches[{i}]")
    for option_path, option in items(config, "options", f"{path}.options"):
        if not option.get("name"):
            causes.append(v.required(option_path, "must not be empty"))
    return causes


def _scheduling_gates(spec: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[str] = set()
    for gate_path, gate in items(spec, "schedulingGates", path):
        name = get_str(gate, "name")
        causes += v.qualified_name(name, gate_path)
        if name in seen:
            causes.append(v.duplicate(gate_path, name))
        seen.add(name)
    return causes


def _pod_only(spec: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if not spec.get("serviceAccountName"):
        for volume_path, volume in items(spec, "volumes", f"{path}.volumes"):
            projected = get_map(volume, "projected")
            for source_path, source in items(
                projected, "sources", f"{volume_path}.projected.sources"
            ):
                if source.get("serviceAccountToken") is not None:
                    detail = "must not be specified when serviceAccountName is not set"
                    causes.append(v.forbidden(f"{source_path}.serviceAccountToken", detail))
    if spec.get("nodeName") and get_list(spec, "schedulingGates"):
        detail = "cannot be set until all schedulingGates have been cleared"
        causes.append(v.forbidden(f"{path}.nodeName", detail))
    return causes


def validate_template(template: object, path: str) -> list[Cause]:
    """k8s ``ValidatePodTemplateSpec``."""
    if not isinstance(template, dict):
        return [v.required(path)]
    meta = get_map(template, "metadata")
    causes = v.labels(meta.get("labels"), f"{path}.labels")
    causes += v.annotations(meta.get("annotations"), f"{path}.annotations")
    spec = template.get("spec")
    causes += validate_pod_spec(spec if spec is not None else {}, f"{path}.spec", pod=False)
    if get_list(spec, "ephemeralContainers"):
        detail = "ephemeral containers not allowed in pod template"
        causes.append(v.forbidden(f"{path}.spec.ephemeralContainers", detail))
    return causes
