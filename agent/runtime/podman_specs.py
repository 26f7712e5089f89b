"""Pure translations between the runtime interface and Podman's JSON, for podman.py.

Names: a sandbox is the Podman pod ``k8s_POD_<pod>_<namespace>_<uid8>_<n>`` (``n`` counts
sandboxes of the same pod, as the kubelet's sandbox attempt does) and a container is
``k8s_<container>_<pod>_<namespace>_<uid8>_<attempt>``, so a restarted agent, or a human
running ``podman ps``, can tell what each one is. Nothing depends on parsing the names:
the ``io.bramble.*`` labels carry the same facts.

No I/O here: everything is unit-testable with recorded Podman answers.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from agent.runtime.interface import (
    LABEL_CONTAINER_ATTEMPT,
    LABEL_CONTAINER_HASH,
    LABEL_CONTAINER_NAME,
    LABEL_INIT,
    LABEL_MANAGED,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    LABEL_POD_UID,
    ContainerInfo,
    ContainerSpec,
    ContainerState,
    SandboxInfo,
    SandboxSpec,
)

# The image exactly as the pod spec named it (Podman records the resolved name).
LABEL_IMAGE = "io.bramble.container.image"

# Kubernetes' CFS period (100 ms) and its smallest quota (1 ms).
CPU_PERIOD_US = 100_000
MIN_CPU_QUOTA_US = 1_000

# Exit code and reason of a container whose process never started (as containerd reports).
START_ERROR_EXIT_CODE = 128
START_ERROR_REASON = "StartError"

_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")


def _safe(part: str) -> str:
    return _UNSAFE.sub("-", part) or "-"


def uid8(pod_uid: str) -> str:
    return _safe(pod_uid.replace("-", "")[:8])


def sandbox_name(spec: SandboxSpec, n: int) -> str:
    return f"k8s_POD_{_safe(spec.name)}_{_safe(spec.namespace)}_{uid8(spec.pod_uid)}_{n}"


def container_name(pod_labels: Mapping[str, str], spec: ContainerSpec) -> str:
    pod = _safe(pod_labels.get(LABEL_POD_NAME, ""))
    namespace = _safe(pod_labels.get(LABEL_POD_NAMESPACE, ""))
    uid = uid8(pod_labels.get(LABEL_POD_UID, ""))
    return f"k8s_{_safe(spec.name)}_{pod}_{namespace}_{uid}_{spec.attempt}"


def sandbox_labels(spec: SandboxSpec) -> dict[str, str]:
    return {
        **spec.labels,
        LABEL_MANAGED: "true",
        LABEL_POD_UID: spec.pod_uid,
        LABEL_POD_NAMESPACE: spec.namespace,
        LABEL_POD_NAME: spec.name,
    }


def container_labels(pod_labels: Mapping[str, str], spec: ContainerSpec) -> dict[str, str]:
    return {
        LABEL_MANAGED: "true",
        LABEL_POD_UID: pod_labels.get(LABEL_POD_UID, ""),
        LABEL_POD_NAMESPACE: pod_labels.get(LABEL_POD_NAMESPACE, ""),
        LABEL_POD_NAME: pod_labels.get(LABEL_POD_NAME, ""),
        LABEL_CONTAINER_NAME: spec.name,
        LABEL_CONTAINER_ATTEMPT: str(spec.attempt),
        LABEL_CONTAINER_HASH: spec.spec_hash,
        LABEL_INIT: "true" if spec.init else "false",
        LABEL_IMAGE: spec.image,
    }


def pod_create_body(spec: SandboxSpec, n: int) -> dict[str, Any]:
    """The body of ``POST /libpod/pods/create`` (Podman's PodSpecGenerator)."""
    body: dict[str, Any] = {"name": sandbox_name(spec, n), "labels": sandbox_labels(spec)}
    if spec.host_network:
        # The node's network and, as in Kubernetes, its hostname.
        body["netns"] = {"nsmode": "host"}
        body["utsns"] = {"nsmode": "host"}
    else:
        body["hostname"] = spec.hostname
        published = [p for p in spec.ports if p.host_port]
        if published:
            body["portmappings"] = [
                {
                    "container_port": p.container_port,
                    "host_port": p.host_port,
                    "host_ip": p.host_ip or "",
                    "protocol": p.protocol.lower(),
                }
                for p in published
            ]
    if spec.dns_servers:
        body["dns_server"] = list(spec.dns_servers)
    return body


def container_create_kwargs(
    sandbox_id: str, pod_labels: Mapping[str, str], spec: ContainerSpec
) -> dict[str, Any]:
    """Keyword arguments for podman-py's ``containers.create``.

    Kubernetes' command replaces the image's ENTRYPOINT (and then its CMD is not used),
    args replace its CMD: exactly Podman's entrypoint and command.
    """
    kwargs: dict[str, Any] = {
        "image": spec.image,
        "name": container_name(pod_labels, spec),
        "pod": sandbox_id,
        "labels": container_labels(pod_labels, spec),
        "environment": dict(spec.env),
        "tty": spec.tty,
        "stdin_open": spec.stdin,
        # The agent reads logs through Podman; k8s-file keeps timestamps and streams.
        "log_config": {"Type": "k8s-file"},
    }
    if spec.command is not None:
        kwargs["entrypoint"] = list(spec.command)
    if spec.args is not None:
        kwargs["command"] = list(spec.args)
    if spec.working_dir:
        kwargs["working_dir"] = spec.working_dir
    if spec.mounts:
        kwargs["mounts"] = [
            {
                "type": "bind",
                "source": m.host_path,
                "target": m.container_path,
                "read_only": m.read_only,
            }
            for m in spec.mounts
        ]
    if spec.cpu_limit_millis is not None:
        kwargs["cpu_period"] = CPU_PERIOD_US
        kwargs["cpu_quota"] = max(MIN_CPU_QUOTA_US, spec.cpu_limit_millis * CPU_PERIOD_US // 1000)
    if spec.cpu_shares is not None:
        kwargs["cpu_shares"] = spec.cpu_shares
    if spec.memory_limit_bytes is not None:
        # Memory and swap together capped at the limit: a container over it is OOM
        # killed rather than swapped, as in Kubernetes.
        kwargs["mem_limit"] = spec.memory_limit_bytes
        kwargs["memswap_limit"] = spec.memory_limit_bytes
    if spec.stop_signal:
        # Podman's API wants the number (podman-py passes names through unchanged).
        kwargs["stop_signal"] = signal_number(spec.stop_signal)
    return kwargs


def signal_number(name: str) -> int:
    """``SIGUSR1``, ``USR1`` or ``10`` -> 10 (this machine's numbering: Linux)."""
    if name.isdigit():
        return int(name)
    upper = name.upper()
    try:
        return int(signal.Signals[upper if upper.startswith("SIG") else f"SIG{upper}"])
    except KeyError:
        raise ValueError(f"unknown stop signal {name!r}") from None


# --- Podman's answers ---------------------------------------------------------------------

_ZERO_YEAR = 1


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 string or a Unix time in seconds; None for Go's zero time or nothing."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value <= 0:
            return None
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.year <= _ZERO_YEAR:
        return None
    return parsed.astimezone(UTC)


def container_state(status: str) -> ContainerState:
    status = status.lower()
    if status in ("running", "paused", "stopping"):
        return ContainerState.RUNNING
    if status in ("created", "configured", "initialized"):
        return ContainerState.CREATED
    if status in ("exited", "stopped"):
        return ContainerState.EXITED
    return ContainerState.UNKNOWN


def _attempt(labels: Mapping[str, str]) -> int:
    try:
        return int(labels.get(LABEL_CONTAINER_ATTEMPT, "0"))
    except ValueError:
        return 0


def exit_reason(exit_code: int, *, oom_killed: bool) -> str:
    if oom_killed:
        return "OOMKilled"
    return "Completed" if exit_code == 0 else "Error"


def is_bramble_container(entry: Mapping[str, Any]) -> bool:
    """A container the runtime created (an infra container inherits its pod's labels)."""
    labels = entry.get("Labels") or {}
    return not entry.get("IsInfra") and LABEL_CONTAINER_NAME in labels


def container_info_from_list(entry: Mapping[str, Any]) -> ContainerInfo:
    """From one ``GET /libpod/containers/json`` entry (a *sparse* container: quirk 1).
    Enough for created and running containers; exited ones need ``inspect``."""
    labels: dict[str, str] = dict(entry.get("Labels") or {})
    state = container_state(str(entry.get("State", "")))
    exit_code: int | None = None
    reason = ""
    if state is ContainerState.EXITED:
        exit_code = int(entry.get("ExitCode", 0))
        reason = exit_reason(exit_code, oom_killed=False)
    return ContainerInfo(
        id=str(entry["Id"]),
        pod_uid=labels.get(LABEL_POD_UID, ""),
        name=labels.get(LABEL_CONTAINER_NAME, ""),
        attempt=_attempt(labels),
        state=state,
        image=labels.get(LABEL_IMAGE) or str(entry.get("Image", "")),
        image_id=str(entry.get("ImageID", "")),
        created_at=parse_time(entry.get("Created")),
        started_at=parse_time(entry.get("StartedAt")),
        finished_at=parse_time(entry.get("ExitedAt")) if state is ContainerState.EXITED else None,
        exit_code=exit_code,
        reason=reason,
        spec_hash=labels.get(LABEL_CONTAINER_HASH, ""),
        init=labels.get(LABEL_INIT) == "true",
        labels=labels,
    )


def container_info_from_inspect(data: Mapping[str, Any]) -> ContainerInfo:
    """From ``GET /libpod/containers/{id}/json``: exact times, OOMKilled, the error."""
    config = data.get("Config") or {}
    labels: dict[str, str] = dict(config.get("Labels") or {})
    st = data.get("State") or {}
    state = container_state(str(st.get("Status", "")))
    exit_code: int | None = None
    reason = ""
    if state is ContainerState.EXITED:
        exit_code = int(st.get("ExitCode", 0))
        reason = exit_reason(exit_code, oom_killed=bool(st.get("OOMKilled")))
    return ContainerInfo(
        id=str(data["Id"]),
        pod_uid=labels.get(LABEL_POD_UID, ""),
        name=labels.get(LABEL_CONTAINER_NAME, ""),
        attempt=_attempt(labels),
        state=state,
        image=labels.get(LABEL_IMAGE) or str(data.get("ImageName", "")),
        image_id=str(data.get("Image", "")),
        created_at=parse_time(data.get("Created")),
        started_at=parse_time(st.get("StartedAt")),
        finished_at=parse_time(st.get("FinishedAt")) if state is ContainerState.EXITED else None,
        exit_code=exit_code,
        reason=reason,
        message=str(st.get("Error") or ""),
        spec_hash=labels.get(LABEL_CONTAINER_HASH, ""),
        init=labels.get(LABEL_INIT) == "true",
        labels=labels,
    )


def start_failed(info: ContainerInfo, message: str, at: datetime) -> ContainerInfo:
    """A created container whose start failed, shown as Kubernetes shows it: exited
    with code 128, reason StartError and the runtime's message."""
    return replace(
        info,
        state=ContainerState.EXITED,
        exit_code=START_ERROR_EXIT_CODE,
        reason=START_ERROR_REASON,
        message=message,
        finished_at=at,
    )


def sandbox_info(entry: Mapping[str, Any], ip: str | None) -> SandboxInfo:
    """From one ``GET /libpod/pods/json`` entry and its infra container's IP."""
    labels: dict[str, str] = dict(entry.get("Labels") or {})
    return SandboxInfo(
        id=str(entry["Id"]),
        pod_uid=labels.get(LABEL_POD_UID, ""),
        namespace=labels.get(LABEL_POD_NAMESPACE, ""),
        name=labels.get(LABEL_POD_NAME, ""),
        ready=infra_running(entry),
        ip=ip,
        created_at=parse_time(entry.get("Created")),
        labels=labels,
    )


def infra_running(entry: Mapping[str, Any]) -> bool:
    infra = entry.get("InfraId")
    for c in entry.get("Containers") or ():
        if c.get("Id") == infra:
            return str(c.get("Status", "")).lower() == "running"
    return False


def infra_ip(inspect: Mapping[str, Any]) -> str | None:
    """The pod's IP, from its infra container's inspect data."""
    settings = inspect.get("NetworkSettings") or {}
    if settings.get("IPAddress"):
        return str(settings["IPAddress"])
    for net in (settings.get("Networks") or {}).values():
        if net.get("IPAddress"):
            return str(net["IPAddress"])
    return None
