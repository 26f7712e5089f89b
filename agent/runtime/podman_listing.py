"""Relisting for the Podman runtime: what ``list_sandboxes``, ``list_containers`` and
``container_stats`` ask Podman, in a bridge worker thread.

The agent relists often (a PLEG-like loop), so a steady state costs one request per
list: the list endpoints' JSON is read directly (podman-py's ``containers.list()`` gives
sparse objects: quirk 1), and only what the list lacks is inspected: an exited
container's exit details (once: an exited container does not change until it is started
again) and a running sandbox's IP (once per infra container, once it has one).

CPU rates: Podman reports cumulative CPU time; nano-cores are the difference between two
samples over the time between them. The first sample of a container has no predecessor,
so it uses Podman's CPU percentage, the average since the container started.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from agent.runtime.interface import LABEL_MANAGED, ContainerInfo, ContainerState, ContainerStats
from agent.runtime.podman_api import check, is_gone
from agent.runtime.podman_specs import (
    container_info_from_inspect,
    container_info_from_list,
    container_state,
    infra_ip,
    infra_running,
    is_bramble_container,
)

# Sent as JSON by hand: podman-py's prepare_filters turns a list into its repr (quirk 6).
MANAGED_FILTER = json.dumps({"label": [f"{LABEL_MANAGED}=true"]})

ExitedCache = dict[str, tuple[tuple[Any, ...], ContainerInfo]]


def list_pods(client: Any, known_ips: Mapping[str, str]) -> tuple[list[Any], dict[str, str]]:
    """bramble's pods, and the IPs of their running infra containers (by infra id; ""
    for one in the host's network, which has none of its own).

    Only what was found is returned (and so remembered): an infra container can be
    running before its IP shows in its inspect data (its network still being set up),
    and one inspected then is inspected again at the next relist, not left without an
    IP for good.
    """
    pods = check(client.api.get("/pods/json", params={"filters": MANAGED_FILTER})).json()
    ips: dict[str, str] = {}
    for pod in pods or ():
        infra = str(pod.get("InfraId", ""))
        if not infra or not infra_running(pod):
            continue
        if infra in known_ips:
            ips[infra] = known_ips[infra]
            continue
        response = client.api.get(f"/containers/{infra}/json")
        if not response.ok:
            continue
        inspect = check(response).json()
        ip = infra_ip(inspect)
        if ip is not None:
            ips[infra] = ip
        elif (inspect.get("HostConfig") or {}).get("NetworkMode") == "host":
            ips[infra] = ""
    return list(pods or ()), ips


def list_containers(client: Any, cache: ExitedCache) -> tuple[list[ContainerInfo], ExitedCache]:
    """bramble's containers in every state, and the new cache of exited ones."""
    entries = check(
        client.api.get("/containers/json", params={"all": True, "filters": MANAGED_FILTER})
    ).json()
    infos: list[ContainerInfo] = []
    exited: ExitedCache = {}
    for entry in entries or ():
        if not is_bramble_container(entry):
            continue
        if container_state(str(entry.get("State", ""))) is not ContainerState.EXITED:
            infos.append(container_info_from_list(entry))
            continue
        cid = str(entry["Id"])
        key = (entry.get("StartedAt"), entry.get("ExitedAt"), entry.get("ExitCode"))
        if cid in cache and cache[cid][0] == key:
            exited[cid] = cache[cid]
        else:
            response = client.api.get(f"/containers/{cid}/json")
            if is_gone(response):  # removed since the list
                continue
            exited[cid] = (key, container_info_from_inspect(check(response).json()))
        infos.append(exited[cid][1])
    return infos, exited


def stats_samples(client: Any) -> list[Any]:
    """Podman's stats of bramble's running containers."""
    running = check(client.api.get("/containers/json", params={"filters": MANAGED_FILTER}))
    ours = {str(e["Id"]) for e in running.json() or () if is_bramble_container(e)}
    if not ours:
        return []
    samples = _stats(client, sorted(ours))
    if samples is not None:
        return samples
    # One container Podman cannot sample (one that stopped since the list, or one
    # whose processes were killed behind conmon's back, which Podman still calls
    # running) fails the whole request: ask for each, and go without that one's sample.
    return [s for cid in sorted(ours) for s in _stats(client, [cid]) or ()]


def _stats(client: Any, ids: list[str]) -> list[Any] | None:
    """Podman's samples of ``ids``, or None when Podman could not sample one of them."""
    response = client.api.get("/containers/stats", params={"stream": False, "containers": ids})
    if is_gone(response):
        return None
    body = check(response).json()
    if body.get("Error") is not None or body.get("Stats") is None:
        return None
    return [s for s in body["Stats"] if s.get("ContainerID") in ids]


class CpuRates:
    """Turns Podman's cumulative samples into ContainerStats (keeps the last sample)."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, int]] = {}  # id -> (cpu ns, sampled at ns)

    def stats(self, samples: list[Any]) -> list[ContainerStats]:
        previous, self._last = self._last, {}
        result = []
        for s in samples:
            cid = str(s["ContainerID"])
            cpu_ns = int(s.get("CPUNano") or 0)
            at_ns = int(s.get("SystemNano") or 0)  # wall-clock nanoseconds of the sample
            self._last[cid] = (cpu_ns, at_ns)
            before = previous.get(cid)
            if before is not None and at_ns > before[1] and cpu_ns >= before[0]:
                nano_cores = (cpu_ns - before[0]) * 1_000_000_000 // (at_ns - before[1])
            else:
                nano_cores = int(float(s.get("CPU") or 0.0) * 10_000_000)  # % of one core
            result.append(
                ContainerStats(
                    id=cid,
                    cpu_usage_nano_cores=nano_cores,
                    cpu_usage_core_nano_seconds=cpu_ns,
                    # cgroup v1 usage, page cache included: Podman gives no inactive_file
                    # to subtract, so this is an upper bound of the working set.
                    memory_working_set_bytes=int(s.get("MemUsage") or 0),
                    timestamp=datetime.fromtimestamp(at_ns / 1e9, UTC)
                    if at_ns
                    else datetime.now(UTC),
                )
            )
        return result
