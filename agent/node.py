"""The node's own objects: its Node (registration and status) and its Lease.

* Registration: the Node is created with its labels, capacity, allocatable, addresses,
  nodeInfo and conditions, or, when it exists (an agent restart), has bramble's labels
  and its status brought up to date; labels a person added are kept.
* Status: the hardware is read every ``status_interval`` (off the event loop); the
  status is written when it changed and at least every ``report_interval``. The live
  figures in condition messages are not a change (``_changed``).
* Lease: ``kube-node-lease/<node>`` is renewed every ``lease_interval`` (10 s, as the
  kubelet) on a fixed schedule: a renewal is due an interval after the previous one
  *started*, so slow writes (an apiserver under load) do not stretch the period past
  the node lifecycle controller's grace; one that took longer than the interval is
  followed by the next at once, never overlapped (one renewal at a time). A renewal is
  one PUT of the Lease the last write returned, with a fresh renewTime; the Lease is
  read (or created) only when none is known, or the PUT met a Conflict or NotFound (then
  written once more). A failed renewal is retried with back-off from 200 ms up to 7 s.

Ready reflects the container runtime: a runtime that cannot be listed makes the node
NotReady with the runtime's error as the message.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from agent import hardware
from agent.pods import PodManager
from agent.runtime import interface as rt
from api import errors
from api.client import ApiClient
from api.resources import resource

logger = logging.getLogger(__name__)

NODES = resource("", "Node")
LEASES = resource("coordination.k8s.io", "Lease")
LEASE_NAMESPACE = "kube-node-lease"
AGENT_VERSION = "v1.32.4-bramble"

Obj = dict[str, Any]


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def primary_address() -> str:
    """The address this machine uses to reach others (the default route's source)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET: nothing is sent by a UDP connect
            return str(s.getsockname()[0])
        except OSError:
            return "127.0.0.1"


@dataclass
class NodeSettings:
    name: str
    endpoint_port: int
    address: str  # InternalIP
    lease_interval: float = 10.0
    lease_duration: int = 40
    status_interval: float = 10.0
    report_interval: float = 60.0
    max_pods: int = 110
    extra_labels: dict[str, str] | None = None


class NodeAgent:
    def __init__(
        self,
        client: ApiClient,
        settings: NodeSettings,
        probe: hardware.HardwareProbe,
        runtime: rt.Runtime,
        manager: PodManager,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``clock``: wall time (timestamps); ``monotonic`` and ``sleep``: the lease
        schedule's time (injected by tests)."""
        self._client = client
        self.settings = settings
        self._probe = probe
        self._runtime = runtime
        self._manager = manager
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._lease: Obj | None = None  # as the last successful write returned it
        self.history = hardware.UsageHistory()
        self.report: hardware.HardwareReport | None = None
        self._runtime_version = "unknown://0"
        self._written: Obj | None = None
        self._written_at: datetime | None = None
        self.uid = ""

    # --- status ---------------------------------------------------------------------------

    async def sample(self) -> hardware.HardwareReport:
        report = await asyncio.to_thread(self._probe.report)
        self.report = report
        self.history.add_report(report)
        return report

    def _conditions(self, report: hardware.HardwareReport, previous: list[Obj]) -> list[Obj]:
        now = _time(self._clock())
        old = {str(c.get("type")): c for c in previous if isinstance(c, dict)}
        result: list[Obj] = []
        if self._manager.runtime_healthy:
            ready = ("True", "KubeletReady", "bramble agent is posting ready status")
        else:
            error = self._manager.runtime_error or "not listed yet"
            ready = ("False", "KubeletNotReady", f"container runtime is down: {error}")
        items = [("Ready", *ready)] + [
            (c.type, c.status, c.reason, c.message) for c in hardware.node_conditions(report)
        ]
        for kind, status, reason, message in items:
            before = old.get(kind)
            since = now
            if before is not None and before.get("status") == status:
                since = before.get("lastTransitionTime", now)
            result.append(
                {
                    "type": kind,
                    "status": status,
                    "reason": reason,
                    "message": message,
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": since,
                }
            )
        return result

    async def status(self, previous: Obj | None = None) -> Obj:
        report = await self.sample()
        cap = hardware.capacity(report, max_pods=self.settings.max_pods)
        images = []
        try:
            images = [
                {"names": [name], "sizeBytes": 0} for name in await self._runtime.list_images()
            ]
        except rt.ContainerRuntimeError:
            images = (previous or {}).get("images", [])
        return {
            "capacity": cap,
            "allocatable": dict(cap),
            "conditions": self._conditions(report, (previous or {}).get("conditions", [])),
            "addresses": [
                {"type": "InternalIP", "address": self.settings.address},
                {"type": "Hostname", "address": report.hostname},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.settings.endpoint_port}},
            "nodeInfo": {
                **hardware.node_info(report),
                "containerRuntimeVersion": self._runtime_version,
                "kubeletVersion": AGENT_VERSION,
                "kubeProxyVersion": "",
                "systemUUID": report.machine_id or "",
            },
            "images": images[:50],
        }

    def _labels(self, report: hardware.HardwareReport) -> dict[str, str]:
        return {**hardware.node_labels(report), **(self.settings.extra_labels or {}),
                "kubernetes.io/hostname": self.settings.name}  # fmt: skip

    async def register(self) -> None:
        try:
            self._runtime_version = str(await self._runtime.version())
        except rt.ContainerRuntimeError as e:
            logger.warning("container runtime version unknown error=%s", e.message)
        status = await self.status()
        assert self.report is not None
        labels = self._labels(self.report)
        try:
            node = await self._client.create(
                NODES, None,
                {"apiVersion": "v1", "kind": "Node",
                 "metadata": {"name": self.settings.name, "labels": labels},
                 "spec": {}, "status": status},
            )  # fmt: skip
            logger.info("node registered name=%s", self.settings.name)
        except errors.AlreadyExists:
            node = await self._client.patch(
                NODES, None, self.settings.name, {"metadata": {"labels": labels}}
            )
            node = await self._client.patch(
                NODES, None, self.settings.name, {"status": status}, subresource="status"
            )
            logger.info("node updated name=%s", self.settings.name)
        self.uid = str(node["metadata"].get("uid", ""))
        self._written, self._written_at = status, self._clock()

    async def run_status(self) -> None:
        while True:
            await asyncio.sleep(self.settings.status_interval)
            await self.report_status()

    async def report_status(self) -> bool:
        """Sample the machine; write the status if it changed or the last write is
        ``report_interval`` old. Whether it was written."""
        try:
            status = await self.status(self._written)
            now = self._clock()
            stale = self._written_at is None or (
                (now - self._written_at).total_seconds() >= self.settings.report_interval
            )
            if not stale and not _changed(status, self._written):
                return False
            await self._client.patch(
                NODES, None, self.settings.name, {"status": status}, subresource="status"
            )
            self._written, self._written_at = status, now
            return True
        except errors.NotFound:
            logger.warning("node object was deleted; registering again")
            await self._reregister()
        except errors.ApiError as e:
            logger.info("node status not written error=%s", e.message)
        return False

    async def _reregister(self) -> None:
        try:
            await self.register()
        except errors.ApiError as e:
            logger.info("node registration failed error=%s", e.message)

    # --- lease ----------------------------------------------------------------------------

    async def run_lease(self) -> None:
        delay = 0.2
        while True:
            started = self._monotonic()
            try:
                # As the kubelet's heartbeat client: a renewal that has not answered within
                # an interval (a connection that went half-open when the Wi-Fi roamed) is
                # abandoned and tried again on a new connection, not waited out.
                async with asyncio.timeout(self.settings.lease_interval):
                    await self.renew()
            except (errors.ApiError, TimeoutError) as e:
                why = (
                    e.message if isinstance(e, errors.ApiError)
                    else f"no answer within {self.settings.lease_interval:g}s"
                )  # fmt: skip
                logger.info("lease renewal failed error=%s; retrying in %.1fs", why, delay)
                await self._sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 7.0)
                continue
            delay = 0.2
            # Due an interval after this renewal started, whatever the write took.
            due = started + self.settings.lease_interval
            await self._sleep(max(0.0, due - self._monotonic()))

    async def renew(self) -> None:
        """Renew the Lease: one PUT of the Lease last written; a GET (or a create) first
        when none is known or that PUT met a Conflict or NotFound."""
        name = self.settings.name
        if self._lease is not None:
            try:
                self._lease = await self._client.update(
                    LEASES, LEASE_NAMESPACE, name, self._renewed(self._lease)
                )
                return
            except (errors.Conflict, errors.NotFound) as e:
                logger.info("lease changed elsewhere error=%s; reading it again", e.message)
                self._lease = None
        try:
            lease = await self._client.get(LEASES, LEASE_NAMESPACE, name)
        except errors.NotFound:
            self._lease = await self._client.create(LEASES, LEASE_NAMESPACE, self._new_lease())
            return
        self._lease = await self._client.update(LEASES, LEASE_NAMESPACE, name, self._renewed(lease))

    def _renewed(self, lease: Obj) -> Obj:
        """A copy of ``lease`` held by this node from now on (the cached one is kept as
        it is: a failed write must not change it)."""
        spec = {
            **(lease.get("spec") or {}),
            "holderIdentity": self.settings.name,
            "leaseDurationSeconds": self.settings.lease_duration,
            "renewTime": _micro(self._clock()),
        }
        return {**lease, "spec": spec}

    def _new_lease(self) -> Obj:
        name = self.settings.name
        body: Obj = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "namespace": LEASE_NAMESPACE},
            "spec": {
                "holderIdentity": name,
                "leaseDurationSeconds": self.settings.lease_duration,
                "renewTime": _micro(self._clock()),
            },
        }
        if self.uid:
            body["metadata"]["ownerReferences"] = [
                {"apiVersion": "v1", "kind": "Node", "name": name, "uid": self.uid}
            ]
        return body

    # --- usage for /stats/summary ---------------------------------------------------------

    async def usage(self) -> Obj:
        report = self.report or await self.sample()
        stamp = _time(self._clock())
        cores = (report.cpu.usage_percent or 0.0) / 100 * (report.cpu.count or 1)
        memory = report.memory
        working = (memory.total_bytes - memory.available_bytes) if memory else 0
        return {
            "nodeName": self.settings.name,
            "cpu": {"time": stamp, "usageNanoCores": int(cores * 1e9)},
            "memory": {"time": stamp, "workingSetBytes": working},
        }


_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _changed(new: Obj, old: Obj | None) -> bool:
    """Whether the status says something new. The live figures in condition messages
    ("612 MiB of 1.0 GiB of memory is available", "345 of 14000 process IDs", "52.1 °C")
    move at almost every sample: compared as they were, a Pi's status would be written
    every ``status_interval`` rather than on change. They are left out of the comparison
    (a condition's status, reason or wording still counts) and reach the API with the
    next write, at the latest ``report_interval`` later."""
    if old is None:
        return True

    def stable(status: Obj) -> bytes:
        copy = orjson.loads(orjson.dumps(status))
        for c in copy.get("conditions") or []:
            c.pop("lastHeartbeatTime", None)
            c["message"] = _NUMBER.sub("#", str(c.get("message") or ""))
        return bytes(orjson.dumps(copy, option=orjson.OPT_SORT_KEYS))

    return stable(new) != stable(old)
