"""The node lifecycle controller: its rules as tables (health, zone states, taints,
eviction times, conditions), then the controller against a real apiserver with hollow
nodes whose leases the test renews as agents would, with grace periods of a second or
two so that the whole module runs in seconds."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from api import errors
from api.client import ApiClient
from controlplane.controllers.nodelifecycle import NodeLifecycleController, NodeLifecycleSettings
from controlplane.controllers.nodelifecycle import health as hl
from controlplane.controllers.nodelifecycle import ratelimit as rl
from controlplane.controllers.nodelifecycle import status as st
from controlplane.controllers.nodelifecycle import taints as tn
from controlplane.controllers.settings import ControllerSettings
from tests.controlplane.controllers.harness import (
    EVENTS,
    LEASES,
    NODES,
    PODS,
    running,
    set_pod_phase,
)
from tests.support.cluster import BrambleServer, Kubectl, unique
from tests.support.real import require_binary
from tests.support.waiting import wait_for

Obj = dict[str, Any]
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
SETTINGS = NodeLifecycleSettings()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- rules, as tables ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "renew", "heartbeat", "probe_at", "renewed"),
    [
        (None, "r1", "", 10, False),  # first sight: a full grace period from now
        (hl.Observation("r1", "h1", at(0)), "r1", "h1", 0, False),  # nothing new
        (hl.Observation("r1", "h1", at(0)), "r2", "h1", 10, True),  # lease renewed
        (hl.Observation("r2", "h1", at(0)), "r1", "h1", 10, True),  # clock went back: renewed
        (hl.Observation("r1", "h1", at(0)), "r1", "h2", 10, True),  # status posted
        (hl.Observation("r1", "h1", at(0)), "", "h1", 0, False),  # lease deleted: no sign
        (hl.Observation("r1", "h1", at(0), renewed=True), "r1", "h1", 0, True),
    ],
)
def test_observe(
    previous: hl.Observation | None, renew: str, heartbeat: str, probe_at: float, renewed: bool
) -> None:
    seen = hl.observe(previous, renew_time=renew, heartbeat=heartbeat, now=at(10))
    assert (seen.probe_at, seen.renewed) == (at(probe_at), renewed)


@pytest.mark.parametrize(
    ("ready", "silent", "health"),
    [
        ("True", 5, hl.Health.READY),
        ("True", 20, hl.Health.READY),  # exactly the grace period: not yet
        ("True", 20.5, hl.Health.UNREACHABLE),
        ("False", 5, hl.Health.NOT_READY),
        ("False", 25, hl.Health.UNREACHABLE),
        ("Unknown", 5, hl.Health.READY),  # our stale mark, lease renewed since
        ("Unknown", 5, hl.Health.UNREACHABLE),  # ... not renewed since we came: it stands
        (None, 50, hl.Health.READY),  # never posted status: startup grace (60 s)
        (None, 61, hl.Health.UNREACHABLE),
    ],
)
def test_node_health(ready: str | None, silent: float, health: hl.Health) -> None:
    condition = None if ready is None else {"type": "Ready", "status": ready}
    renewed = health is hl.Health.READY
    observation = hl.Observation("r", "", at(0), renewed=renewed)
    got = hl.node_health(
        ready=condition, observation=observation, now=at(silent), settings=SETTINGS
    )
    assert got is health


@pytest.mark.parametrize(
    ("ready", "age", "ever_ready", "expected"),
    [
        (None, 10, False, True),  # posted no status yet
        ("False", 10, False, True),  # its runtime not listed yet
        ("Unknown", 10, False, True),
        ("False", 60, False, True),  # the startup grace period (60 s) ...
        ("False", 61, False, False),  # ... is over: a node that does not get Ready counts
        ("True", 10, False, False),
        ("False", 10, True, False),  # it was Ready: NotReady now is news about the zone
    ],
)
def test_registering(ready: str | None, age: float, ever_ready: bool, expected: bool) -> None:
    conditions = [] if ready is None else [{"type": "Ready", "status": ready}]
    joined = {
        "metadata": {"creationTimestamp": tn.stamp(at(0))},
        "status": {"conditions": conditions},
    }
    got = hl.registering(joined, ever_ready=ever_ready, now=at(age), settings=SETTINGS)
    assert got is expected
    assert not hl.registering({"status": {}}, ever_ready=False, now=at(age), settings=SETTINGS)


R, N, U = hl.Health.READY, hl.Health.NOT_READY, hl.Health.UNREACHABLE


@pytest.mark.parametrize(
    ("healths", "state"),
    [
        ([R, R, R], hl.ZoneState.NORMAL),
        ([U, R], hl.ZoneState.NORMAL),  # 50 %
        ([U, U, R], hl.ZoneState.PARTIAL_DISRUPTION),  # 67 % of three: a home lab's switch
        ([U, U, R, R], hl.ZoneState.NORMAL),  # 50 %
        ([U, N, U, R], hl.ZoneState.PARTIAL_DISRUPTION),  # NotReady counts too
        ([U, R, R, R, R], hl.ZoneState.NORMAL),
        ([U, U], hl.ZoneState.FULL_DISRUPTION),
        ([U], hl.ZoneState.FULL_DISRUPTION),
    ],
)
def test_zone_state(healths: list[hl.Health], state: hl.ZoneState) -> None:
    assert hl.zone_state(healths, settings=SETTINGS) is state


NORMAL, PARTIAL, FULL = (
    hl.ZoneState.NORMAL,
    hl.ZoneState.PARTIAL_DISRUPTION,
    hl.ZoneState.FULL_DISRUPTION,
)


@pytest.mark.parametrize(
    ("states", "allowed"),
    [
        ({"": NORMAL}, True),
        ({"": PARTIAL}, False),
        ({"": FULL}, False),  # every node down: the control plane is the one cut off
        ({"a": FULL, "b": NORMAL}, True),  # a zone outage: its pods belong in b
        ({"a": FULL, "b": FULL}, False),
        ({"a": FULL, "b": PARTIAL}, True),
    ],
)
def test_evictions_allowed_in_zone_a(states: dict[str, hl.ZoneState], allowed: bool) -> None:
    zone = "a" if "a" in states else ""
    assert hl.evictions_allowed(zone, states) is allowed


def node(*, taints: list[Obj] | None = None, unschedulable: bool = False, **conditions: str) -> Obj:
    return {
        "metadata": {"name": "pi-1", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"taints": taints or [], **({"unschedulable": True} if unschedulable else {})},
        "status": {"conditions": [{"type": k, "status": v} for k, v in conditions.items()]},
    }


OLD = "2026-01-01T11:00:00Z"


def taint(key: str, effect: str, added: str = OLD) -> Obj:
    return {"key": f"node.kubernetes.io/{key}", "effect": effect, "timeAdded": added}


NOW = tn.stamp(T0)
UNREACH_NE = taint("unreachable", "NoExecute")
NOT_READY_NE = taint("not-ready", "NoExecute")
MINE = {"key": "example.com/gpu", "effect": "NoSchedule"}


def pairs(taints: list[Obj]) -> list[tuple[str, str, str]]:
    return [(t["key"].rsplit("/", 1)[-1], t["effect"], t.get("timeAdded", "")) for t in taints]


@pytest.mark.parametrize(
    ("current", "health", "allowed", "expected"),
    [
        (node(Ready="True"), R, True, []),
        (node(Ready="True", DiskPressure="True"), R, True, [("disk-pressure", "NoSchedule", NOW)]),
        (node(Ready="True", unschedulable=True), R, True, [("unschedulable", "NoSchedule", NOW)]),
        (
            node(Ready="Unknown"), U, True,
            [("unreachable", "NoSchedule", NOW), ("unreachable", "NoExecute", NOW)],
        ),
        (
            node(Ready="False"), N, True,
            [("not-ready", "NoSchedule", NOW), ("not-ready", "NoExecute", NOW)],
        ),
        # Evictions stopped in the zone: no new NoExecute taint...
        (node(Ready="Unknown"), U, False, [("unreachable", "NoSchedule", NOW)]),
        # ... but one from before the outage stays, with its time.
        (
            node(Ready="Unknown", taints=[UNREACH_NE]), U, False,
            [("unreachable", "NoExecute", OLD), ("unreachable", "NoSchedule", NOW)],
        ),
        # Not-ready turning unreachable keeps the time it first went unhealthy.
        (
            node(Ready="Unknown", taints=[NOT_READY_NE]), U, True,
            [("unreachable", "NoSchedule", NOW), ("unreachable", "NoExecute", OLD)],
        ),
        # Healthy again: ours go, a person's stays.
        (node(Ready="True", taints=[MINE, UNREACH_NE, taint("unreachable", "NoSchedule")]), R, True,
         [("gpu", "NoSchedule", "")]),
    ],
)  # fmt: skip
def test_desired_taints(
    current: Obj, health: hl.Health, allowed: bool, expected: list[tuple[str, str, str]]
) -> None:
    assert pairs(tn.desired_taints(current, health, evictions_allowed=allowed, now=T0)) == expected


@pytest.mark.parametrize(
    ("current", "wanted", "starts"),
    [
        ([], [UNREACH_NE], True),  # the first NoExecute taint: paced
        ([], [NOT_READY_NE], True),
        ([], [taint("unreachable", "NoSchedule")], False),
        ([NOT_READY_NE], [UNREACH_NE], False),  # a swap: the clocks run already
        ([UNREACH_NE], [UNREACH_NE], False),
        ([{**MINE, "effect": "NoExecute"}], [{**MINE, "effect": "NoExecute"}, UNREACH_NE], True),
    ],
)
def test_starts_eviction(current: list[Obj], wanted: list[Obj], starts: bool) -> None:
    assert tn.starts_eviction(node(Ready="Unknown", taints=current), wanted) is starts


# (what, zone, node, at second); the answer to a take: None, granted; a number: refused,
# ask again at that second.
Step = tuple[str, str, str, float]


@pytest.mark.parametrize(
    ("rate", "steps", "answers"),
    [
        pytest.param(0.1, [("take", "z", "pi-1", 0)], [None], id="one-dead-node-at-once"),
        pytest.param(
            0.1,
            [("take", "z", "pi-1", 0), ("take", "z", "pi-2", 0), ("take", "z", "pi-2", 4),
             ("take", "z", "pi-2", 10)],
            [None, 10, 10, None],
            id="two-at-once-10s-apart",
        ),
        pytest.param(
            0.1, [("take", "z", "pi-1", 0), ("take", "other", "pi-2", 0)], [None, None],
            id="a-bucket-per-zone",
        ),
        pytest.param(
            0.1,
            [("take", "z", "pi-1", 0), ("take", "z", "pi-1", 1), ("take", "z", "pi-2", 1),
             ("done", "z", "pi-1", 2), ("take", "z", "pi-1", 2)],
            [None, None, 10, None, 10],
            id="a-granted-node-keeps-its-token-until-done",
        ),
        pytest.param(
            0.1,
            [("take", "z", "pi-1", 0), ("take", "z", "pi-2", 100), ("take", "z", "pi-3", 100)],
            [None, None, 110],
            id="burst-1-after-a-quiet-while",
        ),
        pytest.param(
            0.1, [("take", "z", "pi-1", 100), ("take", "z", "pi-2", 50)], [None, 60],
            id="a-clock-stepping-back-refills-nothing",
        ),
        pytest.param(
            0.5, [("take", "z", "pi-1", 0), ("take", "z", "pi-2", 0)], [None, 2], id="rate-0.5",
        ),
    ],
)  # fmt: skip
def test_eviction_limiter(rate: float, steps: list[Step], answers: list[float | None]) -> None:
    limiter = rl.EvictionLimiter(rate)
    got: list[float | None] = []
    for what, zone, name, second in steps:
        if what == "done":
            limiter.done(name)
            got.append(None)
            continue
        retry_at = limiter.take(zone, name, at(second))
        got.append(None if retry_at is None else round((retry_at - T0).total_seconds(), 6))
    assert got == answers


UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
DRAIN = "example.com/drain"
CUSTOM = {"key": DRAIN, "value": "yes", "effect": "NoExecute"}


def toleration(
    key: str = "node.kubernetes.io/unreachable", seconds: int | None = None, **extra: str
) -> Obj:
    t: Obj = {"key": key, "operator": "Exists", "effect": "NoExecute", **extra}
    if seconds is not None:
        t["tolerationSeconds"] = seconds
    return t


NEVER = None
AT_ONCE = datetime.min.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("tolerations", "taints", "expected"),
    [
        ([], [UNREACHABLE], AT_ONCE),
        ([toleration(seconds=30)], [UNREACHABLE], at(30)),
        ([toleration(seconds=-5)], [UNREACHABLE], at(0)),
        ([toleration()], [UNREACHABLE], NEVER),  # no seconds: for good
        ([toleration(), toleration(seconds=30)], [UNREACHABLE], at(30)),  # Kubernetes' min
        ([{"operator": "Exists"}], [UNREACHABLE, CUSTOM], NEVER),  # tolerates everything
        ([toleration(seconds=30)], [UNREACHABLE, CUSTOM], AT_ONCE),  # drain not tolerated
        (
            [toleration(seconds=30), toleration(DRAIN, 10, operator="Equal", value="yes")],
            [UNREACHABLE, CUSTOM], at(10),
        ),
        ([toleration("example.com/drain", 10, operator="Equal", value="no")], [CUSTOM], AT_ONCE),
        ([{**toleration(seconds=5), "effect": "NoSchedule"}], [UNREACHABLE], AT_ONCE),
    ],
)  # fmt: skip
def test_eviction_time(
    tolerations: list[Obj], taints: list[Obj], expected: datetime | None
) -> None:
    assert tn.eviction_time(tolerations, [(t, T0) for t in taints]) == expected


@pytest.mark.parametrize(
    ("time_added", "added_here", "expected"),
    [
        ("2026-01-01T12:00:00Z", at(0.4), at(0.4)),  # ours, made exact
        ("2026-01-01T12:00:00Z", at(3), at(0)),  # someone else's (or an older one)
        ("2026-01-01T12:00:00Z", None, at(0)),  # after a restart
        (None, None, at(7)),  # no timeAdded: from first sight
    ],
)
def test_taint_started(
    time_added: str | None, added_here: datetime | None, expected: datetime
) -> None:
    t = {"key": "k", "effect": "NoExecute", **({"timeAdded": time_added} if time_added else {})}
    assert tn.taint_started(t, added_here=added_here, first_seen=at(7)) == expected


def test_conditions_go_unknown_and_come_back() -> None:
    before = [
        {"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": "h1"},
        {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
    ]
    unknown = st.mark_unknown(node(), before, T0)
    by_type = {c["type"]: c for c in unknown}
    assert by_type["Ready"] == {
        "type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
        "message": "Kubelet stopped posting node status.", "lastHeartbeatTime": "h1",
        "lastTransitionTime": NOW,
    }  # fmt: skip
    assert by_type["MemoryPressure"]["status"] == "Unknown"
    assert by_type["DiskPressure"]["reason"] == "NodeStatusNeverUpdated"
    assert before[0]["status"] == "True"  # the input is not changed
    restored = st.restore(unknown, before, at(30))
    assert [(c["type"], c["status"], c.get("reason")) for c in restored] == [
        ("Ready", "True", "KubeletReady"),
        ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
    ]
    assert restored[0]["lastTransitionTime"] == tn.stamp(at(30))


# --- against the apiserver -----------------------------------------------------------


def controller_settings(**node_lifecycle: Any) -> ControllerSettings:
    return ControllerSettings(node_lifecycle=NodeLifecycleSettings(**node_lifecycle))


FAST = controller_settings(
    node_monitor_grace_period=1.0, node_monitor_period=0.2, node_startup_grace_period=5.0
)
# A grace period long enough for a blip to fit into it, on a loaded machine.
SLOW = controller_settings(
    node_monitor_grace_period=2.0, node_monitor_period=0.2, node_startup_grace_period=5.0
)


def micro(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Lab:
    """Hollow nodes in a zone of their own (so tests never count each other's nodes),
    each with a Lease renewed every 0.2 s, all in the same tick, as their agents would."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.zone = unique("zone")
        self.nodes: list[str] = []
        self.alive: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def add(self, name: str, *, zone: str | None = None, ready: bool = True) -> str:
        name = unique(name)
        now = datetime.now(UTC)
        labels = {"kubernetes.io/hostname": name, hl.ZONE_LABEL: zone or self.zone}
        created = await self.client.create(
            NODES, None, {"metadata": {"name": name, "labels": labels}}
        )
        self.nodes.append(name)
        created["status"] = {
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady",
                 "message": "bramble agent is posting ready status",
                 "lastHeartbeatTime": tn.stamp(now), "lastTransitionTime": tn.stamp(now)}
                if ready else
                {"type": "Ready", "status": "False", "reason": "KubeletNotReady",
                 "message": "container runtime is down: not listed yet",
                 "lastHeartbeatTime": tn.stamp(now), "lastTransitionTime": tn.stamp(now)},
            ],
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        }  # fmt: skip
        await self.client.update(NODES, None, name, created, subresource="status")
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": micro(now)},
        }
        await self.client.create(LEASES, "kube-node-lease", lease)
        self.alive.add(name)
        if self._task is None:
            self._task = asyncio.create_task(self._renew())
        return name

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(0.2)  # the agents' lease interval, scaled down
            patch = {"spec": {"renewTime": micro(datetime.now(UTC))}}
            await asyncio.gather(
                *(
                    self.client.patch(LEASES, "kube-node-lease", n, patch)
                    for n in sorted(self.alive)
                )
            )

    def stop(self, *names: str) -> None:
        self.alive -= set(names)

    def resume(self, *names: str) -> None:
        self.alive |= set(names)

    async def pod(self, namespace: str, name: str, node_name: str, *tolerations: Obj) -> Obj:
        body = {
            "metadata": {"name": name},
            "spec": {
                "nodeName": node_name,
                "terminationGracePeriodSeconds": 1,
                "tolerations": list(tolerations),
                "containers": [{"name": "app", "image": "localhost/busybox"}],
            },
        }
        return await self.client.create(PODS, namespace, body)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, errors.ApiError):
                await self._task
        for name in self.nodes:
            with contextlib.suppress(errors.NotFound):
                await self.client.delete(NODES, None, name)
            with contextlib.suppress(errors.NotFound):
                await self.client.delete(LEASES, "kube-node-lease", name)


@pytest.fixture
async def lab(client: ApiClient) -> AsyncIterator[Lab]:
    hollow = Lab(client)
    try:
        yield hollow
    finally:
        await hollow.close()


@pytest.fixture
def kubectl(server: BrambleServer, tmp_path: Path) -> Kubectl:
    return Kubectl(require_binary("kubectl", package="kubectl"), server.kubeconfig, tmp_path / "kc")


def has_taint(key: str, effect: str) -> Callable[[Obj], bool]:
    def check(n: Obj) -> bool:
        return any(
            t.get("key") == f"node.kubernetes.io/{key}" and t.get("effect") == effect
            for t in (n.get("spec") or {}).get("taints") or []
        )

    return check


def ready_status(n: Obj) -> str:
    return str((hl.condition(n, "Ready") or {}).get("status"))


def deleting(p: Obj) -> bool:
    return bool(p["metadata"].get("deletionTimestamp"))


async def wait_node(client: ApiClient, name: str, check: Callable[[Obj], bool], what: str) -> Obj:
    return await wait_for(client, NODES, None, name, check, what=what, timeout=15)


async def wait_pod(
    client: ApiClient, ns: str, name: str, check: Callable[[Obj], bool], what: str
) -> Obj:
    return await wait_for(client, PODS, ns, name, check, what=what, timeout=15)


async def wait_gone(client: ApiClient, ns: str, name: str) -> None:
    params = {"fieldSelector": f"metadata.name={name}"}
    listed = await client.list(PODS, ns, params=params)
    if not listed["items"]:
        return

    async def watch() -> None:
        query = {**params, "resourceVersion": listed["metadata"]["resourceVersion"]}
        async for change in client.watch(PODS, ns, params=query):
            if change["type"] == "DELETED":
                return

    try:
        await asyncio.wait_for(watch(), 15)
    except TimeoutError:
        raise AssertionError(f"{ns}/{name} still there after 15s") from None


async def event(client: ApiClient, ns: str, name: str, reason: str) -> Obj:
    def found(e: Obj) -> bool:
        return e.get("reason") == reason and e["involvedObject"]["name"] == name

    listed = await client.list(EVENTS, ns)
    for item in listed["items"]:
        if found(item):
            return dict(item)

    async def watch() -> Obj:
        query = {"resourceVersion": listed["metadata"]["resourceVersion"]}
        async for change in client.watch(EVENTS, ns, params=query):
            if change["type"] == "ADDED" and found(change["object"]):
                return dict(change["object"])
        raise AssertionError("the watch ended")

    try:
        return await asyncio.wait_for(watch(), 15)
    except TimeoutError:
        raise AssertionError(f"no {reason} event about {name} in 15s") from None


async def test_unreachable_node_is_tainted_and_its_pods_evicted(
    client: ApiClient, namespace: str, lab: Lab, kubectl: Kubectl
) -> None:
    dead = await lab.add("dead")
    alive = await lab.add("alive")
    ns = namespace
    await lab.pod(ns, "at-once", dead, toleration(seconds=0))
    await lab.pod(ns, "after-1s", dead, toleration(seconds=1))
    default = await lab.pod(ns, "default", dead)  # admission's 30 s
    await set_pod_phase(client, default, "Running", ready=True)
    await lab.pod(ns, "forever", dead, toleration())
    assert any(t.get("tolerationSeconds") == 30 for t in default["spec"]["tolerations"])
    async with running(client, [NodeLifecycleController], settings=FAST):
        lab.stop(dead)
        gone = await wait_node(
            client, dead,
            lambda n: has_taint("unreachable", "NoExecute")(n)
            and has_taint("unreachable", "NoSchedule")(n),
            "tainted unreachable",
        )  # fmt: skip
        ready = hl.condition(gone, "Ready") or {}
        assert (ready["status"], ready["reason"], ready["message"]) == (
            "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.",
        )  # fmt: skip
        assert all(t.get("timeAdded") for t in gone["spec"]["taints"])
        registered = await event(client, "default", dead, "RegisteredNode")
        assert registered["message"] == f"Registered Node {dead} in Controller"
        noticed = await event(client, "default", dead, "NodeNotReady")
        assert (noticed["type"], noticed["message"]) == (
            "Normal", f"Node {dead} status is now: NodeNotReady"
        )  # fmt: skip
        assert noticed["source"]["component"] == "node-controller"
        await wait_pod(client, ns, "at-once", deleting, "evicted")
        first = time.monotonic()
        assert not deleting(await client.get(PODS, ns, "after-1s"))
        await wait_pod(client, ns, "after-1s", deleting, "evicted after its toleration")
        assert time.monotonic() - first > 0.5
        found = await event(client, ns, "at-once", "TaintManagerEviction")
        assert found["message"] == f"Marking for deletion Pod {ns}/at-once"
        # Its agent will never confirm: once its grace period is over it is removed.
        await wait_gone(client, ns, "at-once")
        # The others stay, not ready (Services stop sending to them).
        await wait_pod(client, ns, "default", lambda p: not set_ready(p), "marked not ready")
        marked = await event(client, ns, "default", "NodeNotReady")
        assert (marked["type"], marked["message"]) == ("Warning", "Node is not ready")
        for name in ("default", "forever"):
            assert not deleting(await client.get(PODS, ns, name))
        assert not (await client.get(NODES, None, alive))["spec"].get("taints")
        listed = await asyncio.to_thread(kubectl, "get", "nodes", dead, "--no-headers")
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.split()[1] == "NotReady", listed.stdout

        # The agent comes back: taints go, Ready is what it last posted.
        lab.resume(dead)
        back = await wait_node(client, dead, lambda n: not n["spec"].get("taints"), "untainted")
        assert (hl.condition(back, "Ready") or {}).get("reason") == "KubeletReady"
        assert ready_status(back) == "True"
        await wait_pod(client, ns, "default", set_ready, "ready again")
        assert not deleting(await client.get(PODS, ns, "default"))


def set_ready(p: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (p.get("status") or {}).get("conditions") or []
    )


async def test_blip_shorter_than_the_grace_period_evicts_nothing(
    client: ApiClient, namespace: str, lab: Lab
) -> None:
    blip = await lab.add("blip")
    witness = await lab.add("witness")  # goes dark at the same time and stays dark
    await lab.add("steady")
    await lab.pod(namespace, "on-blip", blip, toleration(seconds=0))
    await lab.pod(namespace, "on-witness", witness, toleration(seconds=0))
    async with running(client, [NodeLifecycleController], settings=SLOW):
        lab.stop(blip, witness)
        await asyncio.sleep(0.5)  # the outage itself (a switch port flapping), not a wait
        lab.resume(blip)
        await wait_pod(client, namespace, "on-witness", deleting, "evicted")
        node = await client.get(NODES, None, blip)
        assert not node["spec"].get("taints")
        assert ready_status(node) == "True"
        assert not deleting(await client.get(PODS, namespace, "on-blip"))


async def test_many_nodes_dark_at_once_taints_but_evicts_nothing(
    client: ApiClient, namespace: str, lab: Lab
) -> None:
    dark = [await lab.add(f"dark{i}") for i in range(3)]
    await lab.add("lit")
    # A node alone in another zone, dark as well: a zone outage, so its pod is evicted
    # (a second later than the others would be): the witness that time has passed.
    witness = await lab.add("witness", zone=unique("zone"))
    for i, name in enumerate(dark):
        await lab.pod(namespace, f"pod{i}", name, toleration(seconds=2))
    await lab.pod(namespace, "witnessed", witness, toleration(seconds=3))
    async with running(client, [NodeLifecycleController], settings=FAST):
        lab.stop(*dark, witness)
        for name in dark:
            await wait_node(client, name, has_taint("unreachable", "NoSchedule"), "tainted")
        stopped = await event(client, "default", dark[0], "EvictionsStopped")
        assert "3 of 4 nodes are not ready" in stopped["message"]
        await wait_pod(client, namespace, "witnessed", deleting, "evicted")
        for i in range(3):
            assert not deleting(await client.get(PODS, namespace, f"pod{i}"))

        lab.resume(*dark)
        for name in dark:
            await wait_node(client, name, lambda n: not n["spec"].get("taints"), "untainted")
        await event(client, "default", dark[0], "EvictionsResumed")
        for i in range(3):
            assert not deleting(await client.get(PODS, namespace, f"pod{i}"))


async def test_not_ready_and_cordoned_nodes(client: ApiClient, namespace: str, lab: Lab) -> None:
    sick = await lab.add("sick")
    await lab.add("fine")
    await lab.pod(namespace, "intolerant", sick, toleration("node.kubernetes.io/not-ready", 0))
    await lab.pod(namespace, "patient", sick)
    async with running(client, [NodeLifecycleController], settings=FAST):
        current = await client.get(NODES, None, sick)
        current["status"]["conditions"][0].update(status="False", reason="KubeletNotReady")
        await client.update(NODES, None, sick, current, subresource="status")
        await wait_node(client, sick, has_taint("not-ready", "NoExecute"), "tainted not-ready")
        await wait_pod(client, namespace, "intolerant", deleting, "evicted")
        assert not deleting(await client.get(PODS, namespace, "patient"))
        current = await client.get(NODES, None, sick)
        current["status"]["conditions"][0].update(status="True", reason="KubeletReady")
        await client.update(NODES, None, sick, current, subresource="status")
        await wait_node(client, sick, lambda n: not n["spec"].get("taints"), "untainted")

        await client.patch(NODES, None, sick, {"spec": {"unschedulable": True}})
        await wait_node(client, sick, has_taint("unschedulable", "NoSchedule"), "cordoned")
        await client.patch(NODES, None, sick, {"spec": {"unschedulable": None}})
        await wait_node(client, sick, lambda n: not n["spec"].get("taints"), "uncordoned")


async def test_a_new_leader_keeps_a_dead_node_tainted(
    client: ApiClient, namespace: str, lab: Lab
) -> None:
    dead = await lab.add("dead")
    await lab.add("alive")
    await lab.pod(namespace, "patient", dead, toleration(seconds=4))
    async with running(client, [NodeLifecycleController], settings=FAST):
        lab.stop(dead)
        await wait_node(client, dead, has_taint("unreachable", "NoExecute"), "tainted")
    # The next term sees the node for the first time: it must not take that for a fresh
    # start (untaint it for a grace period, restart the pods' eviction clocks).
    params = {"fieldSelector": f"metadata.name={dead}"}
    listed = await client.list(NODES, None, params=params)
    versions: list[Obj] = []

    async def record() -> None:
        query = {**params, "resourceVersion": listed["metadata"]["resourceVersion"]}
        async for change in client.watch(NODES, None, params=query):
            versions.append(change["object"])

    watching = asyncio.create_task(record())
    try:
        async with running(client, [NodeLifecycleController], settings=FAST):
            await wait_pod(client, namespace, "patient", deleting, "evicted")
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
    untainted = [v for v in versions if not has_taint("unreachable", "NoExecute")(v)]
    assert not untainted, untainted[0]["spec"]


async def test_a_registering_node_stops_no_evictions_and_its_removal_is_recorded(
    client: ApiClient, lab: Lab
) -> None:
    """The first node of a lab, alone and not Ready yet while its agent starts: no
    EvictionsStopped Warning (its zone is not "fully disrupted", it is being born), its
    not-ready taints come as for any NotReady node; deleting it records RemovingNode."""
    listed = await client.list(NODES, None)
    assert not listed["items"], "this test needs a cluster with no other node"
    newborn = await lab.add("newborn", ready=False)
    async with running(client, [NodeLifecycleController], settings=FAST):
        await event(client, "default", newborn, "RegisteredNode")
        # NoExecute taints are held back while a zone's evictions are stopped.
        await wait_node(client, newborn, has_taint("not-ready", "NoExecute"), "tainted")
        await client.delete(NODES, None, newborn)
        removed = await event(client, "default", newborn, "RemovingNode")
        assert removed["message"] == f"Removing Node {newborn} from Controller"
    # The manager flushed its event recorder when the controllers stopped.
    params = {"fieldSelector": f"involvedObject.name={newborn}"}
    reasons = {e["reason"] for e in (await client.list(EVENTS, "default", params=params))["items"]}
    assert "EvictionsStopped" not in reasons


@pytest.mark.parametrize("grace", [1.0, 2.5])
async def test_the_grace_period_is_the_one_in_the_settings(
    client: ApiClient, lab: Lab, grace: float
) -> None:
    """``Context.settings`` reaches the controller: a node is marked Unknown once the
    configured grace period is over, not before (nor after the default 20 s)."""
    dead = await lab.add("dead")
    await lab.add("alive")
    settings = controller_settings(node_monitor_grace_period=grace, node_monitor_period=0.2)
    async with running(client, [NodeLifecycleController], settings=settings):
        lab.stop(dead)
        stopped = time.monotonic()
        await wait_node(client, dead, lambda n: ready_status(n) == "Unknown", "marked Unknown")
        # Its last renewal came at most one 0.2 s tick before the stop.
        assert time.monotonic() - stopped >= grace - 0.25
        # The taints follow: the controller's last write for the node (the Lab deletes it).
        await wait_node(client, dead, has_taint("unreachable", "NoExecute"), "tainted")


class SpedUp:
    """The controllers' clock (``Context.now``) running ``factor`` times faster than real
    time: production timings (a 20 s grace period, a token every 10 s) against the Lab's
    leases renewed every 0.2 s (1 s on this clock), so that the test takes seconds."""

    def __init__(self, factor: float) -> None:
        self._factor = factor
        self._start = time.monotonic()
        self._origin = datetime.now(UTC)

    def now(self) -> datetime:
        return self._origin + timedelta(seconds=(time.monotonic() - self._start) * self._factor)


# Production's node lifecycle settings, except how often a node is looked at without
# events: a reconcile's requeue delay is in real seconds.
PACED = controller_settings(node_monitor_period=0.2)


def taint_times(node: Obj) -> dict[tuple[str, str], datetime]:
    return {
        (t["key"].rsplit("/", 1)[-1], t["effect"]): datetime.fromisoformat(t["timeAdded"])
        for t in node["spec"]["taints"]
    }


async def test_nodes_dying_together_are_tainted_no_execute_a_token_apart(
    client: ApiClient, lab: Lab
) -> None:
    """2 of 5 nodes die together (the zone is still healthy: evictions go on): the first
    gets its NoExecute taint at once (the bucket starts full: a single dead node is
    handled as fast as without the limit), the second only one token later, 10 s on the
    controller's clock at the default --node-eviction-rate 0.1, tainted NoSchedule in
    between, so their pods' eviction clocks start 10 s apart."""
    names = [await lab.add(f"pi{i}") for i in range(5)]
    dead = names[:2]
    clock = SpedUp(5)
    async with running(client, [NodeLifecycleController], settings=PACED, clock=clock.now):
        lab.stop(*dead)
        tainted = [
            taint_times(await wait_node(client, n, has_taint("unreachable", "NoExecute"), "NE"))
            for n in dead
        ]
    no_execute, no_schedule = ("unreachable", "NoExecute"), ("unreachable", "NoSchedule")
    first, second = sorted(tainted, key=lambda times: times[no_execute])
    assert first[no_execute] == first[no_schedule]  # at once
    # timeAdded has whole seconds: 10 s apart shows as 9 at least.
    assert second[no_execute] - second[no_schedule] >= timedelta(seconds=9)
    assert second[no_execute] - first[no_execute] >= timedelta(seconds=9)
