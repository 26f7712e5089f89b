"""Containers and init containers, as k8s ``validateContainers``,
``validateInitContainers`` and ``validateContainerCommon``: names, image, ports, env,
mounts, pull and termination-message policies, resources, probes, lifecycle hooks and
the container security context.

Names are DNS labels unique across containers and init containers; an init container
may have lifecycle hooks and probes only as a sidecar (``restartPolicy: Always``).
"""

from __future__ import annotations

from typing import Final

from api import validation as v
from api.errors import Cause
from controlplane.apiserver.strategies import formats
from controlplane.apiserver.strategies.common import (
    Obj,
    expect_list,
    freeze,
    get_list,
    get_map,
    get_str,
    is_int,
    items,
    non_negative,
    one_of,
    optional_one_of,
)
from controlplane.apiserver.strategies.pods.env import validate_env, validate_env_from
from controlplane.apiserver.strategies.pods.resources import validate_resources
from controlplane.apiserver.strategies.pods.volumes import validate_mounts

PROTOCOLS: Final = ("SCTP", "TCP", "UDP")
PULL_POLICIES: Final = ("Always", "IfNotPresent", "Never")
TERMINATION_MESSAGE_POLICIES: Final = ("File", "FallbackToLogsOnError")
HTTP_SCHEMES: Final = ("HTTP", "HTTPS")
_PROBE_HANDLERS: Final = ("exec", "httpGet", "tcpSocket", "grpc")
_HOOK_HANDLERS: Final = ("exec", "httpGet", "tcpSocket", "sleep")
_PROBES: Final = ("livenessProbe", "readinessProbe", "startupProbe")
_NOT_SIDECAR: Final = "may not be set for init containers without restartPolicy=Always"
MAX_ID: Final = 2147483647


def validate_containers(spec: Obj, path: str, volumes: set[str], *, pod: bool) -> list[Cause]:
    containers = spec.get("containers")
    if not containers:
        return [v.required(path)]
    causes = expect_list(spec, "containers", path)
    grace = spec.get("terminationGracePeriodSeconds")
    names: set[object] = set()
    for item_path, container in items(spec, "containers", path):
        causes += _common(container, item_path, volumes, pod=pod)
        name = container.get("name")
        if freeze(name) in names:
            causes.append(v.duplicate(f"{item_path}.name", name))
        names.add(freeze(name))
        causes += _hooks_and_probes(container, item_path, grace)
        if container.get("restartPolicy") is not None:
            detail = "may not be set for non-init containers"
            causes.append(v.forbidden(f"{item_path}.restartPolicy", detail))
    return causes + _host_port_conflicts(get_list(spec, "containers"), path)


def validate_init_containers(spec: Obj, path: str, volumes: set[str], *, pod: bool) -> list[Cause]:
    causes = expect_list(spec, "initContainers", path)
    grace = spec.get("terminationGracePeriodSeconds")
    names = {freeze(c.get("name")) for c in get_list(spec, "containers") if isinstance(c, dict)}
    for i, container in enumerate(get_list(spec, "initContainers")):
        if not isinstance(container, dict):
            continue
        item_path = f"{path}[{i}]"
        causes += _common(container, item_path, volumes, pod=pod)
        policy = container.get("restartPolicy")
        if policy is not None and policy != "Always":
            causes.append(
                v.not_supported(f"{item_path}.restartPolicy", policy, supported=["Always"])
            )
        name = container.get("name")
        if freeze(name) in names:
            causes.append(v.duplicate(f"{item_path}.name", name))
        elif name:
            names.add(freeze(name))
        causes += _host_port_conflicts([container], path)
        if policy == "Always":
            causes += _hooks_and_probes(container, item_path, grace)
        else:
            for key in ("lifecycle", *_PROBES):
                if container.get(key) is not None:
                    causes.append(v.forbidden(f"{item_path}.{key}", _NOT_SIDECAR))
    return causes


def _common(container: Obj, path: str, volumes: set[str], *, pod: bool) -> list[Cause]:
    name = container.get("name")
    causes = [v.required(f"{path}.name")] if not name else v.dns1123_label(name, f"{path}.name")
    image = container.get("image")
    if not image:
        causes.append(v.required(f"{path}.image"))
    elif not isinstance(image, str):
        causes.append(v.type_invalid(f"{path}.image", image, detail="must be a string"))
    elif pod and image != image.strip():
        detail = "must not have leading or trailing whitespace"
        causes.append(v.invalid_value(f"{path}.image", image, detail=detail))
    policies = TERMINATION_MESSAGE_POLICIES
    causes += one_of(
        container, "terminationMessagePolicy", f"{path}.terminationMessagePolicy", policies
    )
    causes += expect_list(container, "command", f"{path}.command", of=str)
    causes += expect_list(container, "args", f"{path}.args", of=str)
    causes += _ports(container, f"{path}.ports")
    causes += validate_env(container, f"{path}.env")
    causes += validate_env_from(container, f"{path}.envFrom")
    causes += validate_mounts(container, volumes, f"{path}.volumeMounts")
    causes += one_of(container, "imagePullPolicy", f"{path}.imagePullPolicy", PULL_POLICIES)
    causes += validate_resources(container, f"{path}.resources")
    return causes + security_context(container, f"{path}.securityContext")


def _ports(container: Obj, path: str) -> list[Cause]:
    """k8s ``validateContainerPorts``."""
    causes = expect_list(container, "ports", path)
    names: set[str] = set()
    for port_path, port in items(container, "ports", path):
        name = port.get("name")
        if name:
            problems = formats.check(name, f"{port_path}.name", formats.is_port_name)
            if problems:
                causes += problems
            elif name in names:
                causes.append(v.duplicate(f"{port_path}.name", name))
            else:
                names.add(name)
        number = port.get("containerPort")
        if number in (None, 0):
            causes.append(v.required(f"{port_path}.containerPort"))
        else:
            causes += v.port_number(number, f"{port_path}.containerPort")
        if port.get("hostPort") not in (None, 0):
            causes += v.port_number(port.get("hostPort"), f"{port_path}.hostPort")
        causes += one_of(port, "protocol", f"{port_path}.protocol", PROTOCOLS)
    return causes


def _host_port_conflicts(containers: list[object], path: str) -> list[Cause]:
    """k8s ``AccumulateUniqueHostPorts``: protocol/hostIP/hostPort unique."""
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, container in enumerate(containers):
        for j, port in enumerate(get_list(container, "ports")):
            host_port = port.get("hostPort") if isinstance(port, dict) else None
            if not is_int(host_port) or host_port == 0:
                continue
            key = f"{get_str(port, 'protocol')}/{get_str(port, 'hostIP')}/{host_port}"
            if key in seen:
                causes.append(v.duplicate(f"{path}[{i}].ports[{j}].hostPort", key))
            seen.add(key)
    return causes


def _hooks_and_probes(container: Obj, path: str, grace: object) -> list[Cause]:
    causes: list[Cause] = []
    lifecycle = container.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            handler = lifecycle.get(hook)
            if isinstance(handler, dict):
                causes += _handler(handler, f"{path}.lifecycle.{hook}", _HOOK_HANDLERS, grace)
    for kind in _PROBES:
        probe = container.get(kind)
        if not isinstance(probe, dict):
            continue
        probe_path = f"{path}.{kind}"
        causes += _handler(probe, probe_path, _PROBE_HANDLERS, grace)
        for key in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds"):
            causes += non_negative(probe, key, f"{probe_path}.{key}")
        for key in ("successThreshold", "failureThreshold"):
            causes += non_negative(probe, key, f"{probe_path}.{key}")
        probe_grace = probe.get("terminationGracePeriodSeconds")
        if probe_grace is not None and (not is_int(probe_grace) or probe_grace <= 0):
            detail = "must be greater than 0"
            causes.append(
                v.invalid_value(
                    f"{probe_path}.terminationGracePeriodSeconds", probe_grace, detail=detail
                )
            )
        threshold = probe.get("successThreshold")
        if kind != "readinessProbe" and threshold not in (None, 1):
            causes.append(
                v.invalid_value(f"{probe_path}.successThreshold", threshold, detail="must be 1")
            )
        if kind == "readinessProbe" and probe_grace is not None:
            detail = "must not be set for readinessProbes"
            causes.append(
                v.invalid_value(
                    f"{probe_path}.terminationGracePeriodSeconds", probe_grace, detail=detail
                )
            )
    return causes


def _handler(handler: Obj, path: str, kinds: tuple[str, ...], grace: object) -> list[Cause]:
    """k8s ``validateHandler``: exactly one handler type, each well formed."""
    causes: list[Cause] = []
    found = 0
    for kind in kinds:
        body = handler.get(kind)
        if body is None:
            continue
        if found:
            causes.append(v.forbidden(f"{path}.{kind}", "may not specify more than 1 handler type"))
            continue
        found += 1
        if isinstance(body, dict):
            causes += _ACTIONS[kind](body, f"{path}.{kind}", grace)
        else:
            causes.append(v.type_invalid(f"{path}.{kind}", body, detail="must be an object"))
    if not found:
        causes.append(v.required(path, "must specify a handler type"))
    return causes


def _exec(body: Obj, path: str, grace: object) -> list[Cause]:
    return [] if body.get("command") else [v.required(f"{path}.command")]


def _http_get(body: Obj, path: str, grace: object) -> list[Cause]:
    causes = [] if body.get("path") else [v.required(f"{path}.path")]
    causes += formats.port_num_or_name(body.get("port", 0), f"{path}.port")
    causes += optional_one_of(body, "scheme", f"{path}.scheme", HTTP_SCHEMES)
    for header in get_list(body, "httpHeaders"):
        name = header.get("name", "") if isinstance(header, dict) else header
        causes += formats.check(name, f"{path}.httpHeaders", formats.is_http_header_name)
    return causes


def _tcp_socket(body: Obj, path: str, grace: object) -> list[Cause]:
    return formats.port_num_or_name(body.get("port", 0), f"{path}.port")


def _grpc(body: Obj, path: str, grace: object) -> list[Cause]:
    port = body.get("port", 0)
    if not is_int(port):
        return [v.type_invalid(f"{path}.port", port, detail="must be an integer")]
    return formats.port_num_or_name(port, f"{path}.port")


def _sleep(body: Obj, path: str, grace: object) -> list[Cause]:
    seconds = body.get("seconds", 0)
    if not is_int(grace):
        return []  # the grace period's own error is reported elsewhere
    if not is_int(seconds) or not 0 < seconds <= grace:
        detail = (
            f"must be greater than 0 and less than terminationGracePeriodSeconds ({grace}). "
            "Enable AllowPodLifecycleSleepActionZeroValue feature gate for zero sleep."
        )
        return [v.invalid_value(path, seconds, detail=detail)]
    return []


_ACTIONS: Final = {
    "exec": _exec,
    "httpGet": _http_get,
    "tcpSocket": _tcp_socket,
    "grpc": _grpc,
    "sleep": _sleep,
}


def ids(obj: Obj, keys: tuple[str, ...], path: str) -> list[Cause]:
    """User and group ids: ``must be between 0 and 2147483647, inclusive``."""
    causes: list[Cause] = []
    for key in keys:
        value = obj.get(key)
        if value is None:
            continue
        if not is_int(value):
            causes.append(v.type_invalid(f"{path}.{key}", value, detail="must be an integer"))
        elif not 0 <= value <= MAX_ID:
            detail = formats.inclusive_range(0, MAX_ID)
            causes.append(v.invalid_value(f"{path}.{key}", value, detail=detail))
    return causes


def seccomp_profile(context: Obj, path: str) -> list[Cause]:
    profile = context.get("seccompProfile")
    if not isinstance(profile, dict):
        return []
    kind = profile.get("type")
    causes: list[Cause] = []
    if not kind:
        causes.append(v.required(f"{path}.type", "type is required when seccompProfile is set"))
    elif kind not in ("Localhost", "RuntimeDefault", "Unconfined"):
        supported = ("Localhost", "RuntimeDefault", "Unconfined")
        causes.append(v.not_supported(f"{path}.type", kind, supported=supported))
    local = profile.get("localhostProfile")
    if kind == "Localhost" and local is None:
        detail = "must be set when seccomp type is Localhost"
        causes.append(v.required(f"{path}.localhostProfile", detail))
    elif kind != "Localhost" and local is not None:
        detail = "can only be set when seccomp type is Localhost"
        causes.append(v.invalid_value(f"{path}.localhostProfile", profile, detail=detail))
    return causes


def security_context(container: Obj, path: str) -> list[Cause]:
    """k8s ``ValidateSecurityContext`` (privileged containers are allowed, as with the
    apiserver's --allow-privileged)."""
    context = container.get("securityContext")
    if not isinstance(context, dict):
        return []
    causes = ids(context, ("runAsUser", "runAsGroup"), path)
    causes += optional_one_of(context, "procMount", f"{path}.procMount", ("Default", "Unmasked"))
    causes += seccomp_profile(context, f"{path}.seccompProfile")
    if context.get("allowPrivilegeEscalation") is False:
        if context.get("privileged") is True:
            detail = "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"
            causes.append(v.invalid_value(path, context, detail=detail))
        if "CAP_SYS_ADMIN" in get_list(get_map(context, "capabilities"), "add"):
            detail = (
                "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` "
                "CAP_SYS_ADMIN"
            )
            causes.append(v.invalid_value(path, context, detail=detail))
    return causes
