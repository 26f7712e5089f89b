"""The scheduler inside a real ``bramble server`` (it runs by default), placing real
pods on hollow nodes made through the API, as ``kubectl`` shows it.

Each test gets its own server, so the node counts in the messages are its own."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from api.client import ApiClient
from tests.controlplane.scheduler.lab import EVENTS, LEASES, PODS, Lab
from tests.support.cluster import BrambleServer, Kubectl, unique
from tests.support.real import require_binary
from tests.support.waiting import new_namespace

ZONE = "topology.kubernetes.io/zone"
CRITICAL = {"priorityClassName": "system-cluster-critical"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[BrambleServer]:
    srv = BrambleServer.start(tmp_path / "data", "--no-controllers")
    try:
        yield srv
    finally:
        code = srv.stop()
    assert code == 0, srv.log.text()[-3000:]
    log = srv.log.text()
    assert "Traceback" not in log, log[-5000:]
    assert " ERROR " not in log, log[-5000:]


@pytest.fixture
def kubectl(server: BrambleServer, tmp_path: Path) -> Kubectl:
    return Kubectl(require_binary("kubectl", package="kubectl"), server.kubeconfig, tmp_path / "kc")


@pytest.fixture
async def lab(server: BrambleServer, kubectl: Kubectl) -> AsyncIterator[Lab]:
    client = await ApiClient.from_kubeconfig(server.kubeconfig)
    try:
        yield Lab(server, client, kubectl)
    finally:
        await client.close()


@pytest.fixture
async def ns(lab: Lab) -> str:
    name = unique("sched")
    await new_namespace(lab.client, name)
    return name


async def test_placements_by_resources_taints_arch_and_voltage(lab: Lab, ns: str) -> None:
    await lab.add_node("big", cpu="8", memory="16Gi")
    await lab.add_node("small", cpu="1", memory="1Gi")
    await lab.add_node(
        "pc", arch="amd64", taints=[{"key": "dedicated", "value": "pc", "effect": "NoSchedule"}]
    )
    await lab.add_node("brownout", cpu="16", memory="32Gi",
                       conditions={"UnderVoltage": ("True", "UnderVoltageNow")})  # fmt: skip
    await lab.create_pod(ns, "heavy", cpu="4", memory="8Gi")
    pc_ok = [{"key": "dedicated", "operator": "Equal", "value": "pc"}]
    sag_ok = [{"key": "bramble.io/under-voltage", "operator": "Exists"}]
    amd64 = {"kubernetes.io/arch": "amd64"}
    await lab.create_pod(ns, "x86", node_selector=amd64, tolerations=pc_ok)
    await lab.create_pod(
        ns, "brave", node_selector={"kubernetes.io/hostname": "brownout"}, tolerations=sag_ok
    )
    await lab.create_pod(ns, "armv7", node_selector={"kubernetes.io/arch": "arm"})
    assert await lab.bound(ns, "heavy") == "big"  # small is too small, pc tainted, brownout sagging
    assert await lab.bound(ns, "x86") == "pc"
    assert await lab.bound(ns, "brave") == "brownout"
    message = await lab.unschedulable(ns, "armv7")
    assert message == (  # the first filter that says no names the node: taints come first
        "0/4 nodes are available: 1 node(s) had untolerated taint {dedicated: pc}, 1 node(s) "
        "were under-voltage, 2 node(s) didn't match Pod's node affinity/selector. preemption: "
        "0/4 nodes are available: 4 Preemption is not helpful for scheduling.."
    )
    scheduled = await lab.event(ns, "heavy", "Scheduled")
    assert scheduled["message"] == f"Successfully assigned {ns}/heavy to big"
    assert scheduled["source"]["component"] == "default-scheduler"


async def test_failed_scheduling_as_kubectl_describe_shows_it(lab: Lab, ns: str) -> None:
    assert lab.kubectl is not None
    await lab.add_node("pi-a", memory="4Gi")
    await lab.add_node("pi-b", labels={"disk": "hdd"})
    await lab.add_node("pi-c", labels={"disk": "hdd"})
    await lab.create_pod(
        ns, "resident", memory="3Gi", node_selector={"kubernetes.io/hostname": "pi-a"}
    )
    assert await lab.bound(ns, "resident") == "pi-a"
    no_disk = {"matchExpressions": [{"key": "disk", "operator": "DoesNotExist"}]}
    no_hdd = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [no_disk]}}}  # fmt: skip
    await lab.create_pod(ns, "waiting", memory="2Gi", affinity=no_hdd)
    expected = (
        "0/3 nodes are available: 1 Insufficient memory, 2 node(s) didn't match Pod's node "
        "affinity/selector. preemption: 0/3 nodes are available: 1 No preemption victims found "
        "for incoming pod, 2 Preemption is not helpful for scheduling.."
    )
    assert await lab.unschedulable(ns, "waiting") == expected
    await lab.event(ns, "waiting", "FailedScheduling")
    described = lab.kubectl.ok("describe", "pod", "waiting", "-n", ns)
    assert re.search(r"^\s+PodScheduled\s+False\s*$", described, re.M), described
    assert re.search(
        r"^\s+Warning\s+FailedScheduling\s+\S+\s+default-scheduler\s+" + re.escape(expected) + "$",
        described, re.M,
    ), described  # fmt: skip
    # A node that fits arrives: the pod leaves the unschedulable set at once.
    await lab.add_node("pi-d", memory="8Gi")
    assert await lab.bound(ns, "waiting") == "pi-d"
    await lab.event(ns, "waiting", "Scheduled")
    described = lab.kubectl.ok("describe", "pod", "waiting", "-n", ns)
    assert re.search(
        r"^\s+Normal\s+Scheduled\s+\S+\s+default-scheduler\s+"
        rf"Successfully assigned {ns}/waiting to pi-d$",
        described, re.M,
    ), described  # fmt: skip
    assert re.search(r"^Node:\s+pi-d/", described, re.M), described


async def test_anti_affinity_and_topology_spread(lab: Lab, ns: str) -> None:
    for name, zone in (("n1", "a"), ("n2", "a"), ("n3", "b")):
        await lab.add_node(name, labels={ZONE: zone})
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}},
         "topologyKey": "kubernetes.io/hostname"}]}}  # fmt: skip
    for i in range(4):
        await lab.create_pod(ns, f"db-{i}", labels={"app": "db"}, affinity=anti)
    placed = {await lab.bound(ns, f"db-{i}") for i in range(3)}
    assert placed == {"n1", "n2", "n3"}
    assert await lab.unschedulable(ns, "db-3") == (
        "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. preemption: "
        "0/3 nodes are available: 3 No preemption victims found for incoming pod.."
    )
    spread = [{"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": {"matchLabels": {"app": "web"}}}]  # fmt: skip
    zones = []
    for i in range(4):
        await lab.create_pod(ns, f"web-{i}", labels={"app": "web"}, spread=spread)
        zones.append("b" if await lab.bound(ns, f"web-{i}") == "n3" else "a")
    assert sorted(zones) == ["a", "a", "b", "b"]
    # required affinity: next to a db pod
    near = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": ZONE}]}}  # fmt: skip
    await lab.create_pod(ns, "near-db", affinity=near)
    assert await lab.bound(ns, "near-db") in {"n1", "n2", "n3"}
    far = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "nothing-like-it"}},
         "topologyKey": ZONE}]}}  # fmt: skip
    await lab.create_pod(ns, "lonely", affinity=far)
    assert (await lab.unschedulable(ns, "lonely")).startswith(
        "0/3 nodes are available: 3 node(s) didn't match pod affinity rules."
    )
    # an unknown topology key in a spread constraint is a clear reason, not a crash
    odd = [{**spread[0], "topologyKey": "example.com/no-such-label"}]
    await lab.create_pod(ns, "odd", labels={"app": "web"}, spread=odd)
    assert (await lab.unschedulable(ns, "odd")).startswith(
        "0/3 nodes are available: 3 node(s) didn't match pod topology spread constraints "
        "(missing required label)."
    )


async def test_preemption(lab: Lab, ns: str) -> None:
    assert lab.kubectl is not None
    await lab.add_node("pi", cpu="2")
    await lab.add_node("pc", cpu="2", memory="1Gi")
    await lab.create_pod(ns, "batch-1", cpu="1", node_selector={"kubernetes.io/hostname": "pi"})
    await lab.create_pod(ns, "batch-2", cpu="1", node_selector={"kubernetes.io/hostname": "pi"})
    await lab.create_pod(ns, "other", cpu="2", node_selector={"kubernetes.io/hostname": "pc"},
                         extra_spec=CRITICAL)  # fmt: skip
    for name in ("batch-1", "batch-2", "other"):
        await lab.bound(ns, name)
    preemptor = await lab.create_pod(ns, "critical", cpu="1500m", extra_spec=CRITICAL)
    nominated = await lab.wait(
        ns, "critical", lambda p: (p.get("status") or {}).get("nominatedNodeName") == "pi",
        what="nominated to pi",
    )  # fmt: skip
    assert not nominated["spec"].get("nodeName")
    # Both batch pods must go (1500m needs more than one), gracefully: they wait for their
    # kubelet, and the preemptor waits for them.
    for name in ("batch-1", "batch-2"):
        victim = await lab.wait(
            ns, name, lambda p: bool(p["metadata"].get("deletionTimestamp")), what="being deleted"
        )
        assert victim["metadata"]["deletionGracePeriodSeconds"] == 30
        disruption = [c for c in victim["status"]["conditions"] if c["type"] == "DisruptionTarget"]
        assert [c["reason"] for c in disruption] == ["PreemptionByScheduler"]
        event = await lab.event(ns, name, "Preempted")
        assert event["message"] == f"Preempted by pod {preemptor['metadata']['uid']} on node pi"
    described = lab.kubectl.ok("describe", "pod", "batch-1", "-n", ns)
    assert "Preempted by pod" in described
    # Play the kubelet: the containers stopped, the pods go.
    for name in ("batch-1", "batch-2"):
        await lab.client.delete(PODS, ns, name, grace_period=0)
    assert await lab.bound(ns, "critical") == "pi"
    assert (await lab.client.get(PODS, ns, "other"))["spec"]["nodeName"] == "pc"  # untouched


async def test_bad_and_foreign_pods_never_block_the_others(lab: Lab, ns: str) -> None:
    await lab.add_node("pi", cpu="4")
    await lab.create_pod(ns, "absurd", cpu="1e15", memory="1Ei")
    await lab.create_pod(ns, "impossible", node_selector={"no-such-label": "anywhere"})
    await lab.create_pod(ns, "gated", gates=["example.com/wait"])
    await lab.create_pod(ns, "foreign", extra_spec={"schedulerName": "someone-else"})
    await lab.create_pod(ns, "normal", cpu="1")
    assert await lab.bound(ns, "normal") == "pi"
    assert (await lab.unschedulable(ns, "absurd")).startswith(
        "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory."
    )
    await lab.unschedulable(ns, "impossible")
    gated = await lab.wait(
        ns, "gated",
        lambda p: any(
            c.get("reason") == "SchedulingGated" for c in p["status"].get("conditions") or []
        ),
        what="SchedulingGated",
    )  # fmt: skip
    assert not gated["spec"].get("nodeName")
    gated["spec"]["schedulingGates"] = []
    await lab.client.update(PODS, ns, "gated", gated)
    assert await lab.bound(ns, "gated") == "pi"
    foreign = await lab.client.get(PODS, ns, "foreign")
    assert not foreign["spec"].get("nodeName")
    assert not foreign["status"].get("conditions")  # not ours: not even looked at
    listed = await lab.client.list(
        EVENTS, ns, params={"fieldSelector": "involvedObject.name=foreign"}
    )
    assert listed["items"] == []


async def test_cordon_and_node_changes_requeue(lab: Lab, ns: str, kubectl: Kubectl) -> None:
    await lab.add_node("pi")
    kubectl.ok("cordon", "pi")
    await lab.create_pod(ns, "p")
    assert (await lab.unschedulable(ns, "p")).startswith(
        "0/1 nodes are available: 1 node(s) were unschedulable."
    )
    kubectl.ok("uncordon", "pi")
    assert await lab.bound(ns, "p") == "pi"
    # a node whose Ready goes False is tainted not-ready: new pods avoid it
    await lab.update_node("pi", conditions={"Ready": "False"})
    await lab.create_pod(ns, "q")
    assert (await lab.unschedulable(ns, "q")).startswith(
        "0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }."
    )
    await lab.update_node("pi")
    assert await lab.bound(ns, "q") == "pi"


async def test_scheduler_config_file_and_no_scheduler(tmp_path: Path) -> None:
    """--scheduler-config changes the profile; a bad file stops the server with its
    reason; --no-scheduler leaves pods pending."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("profiles: [{plugins: {fliter: {}}}]\n")
    with pytest.raises(AssertionError, match=r"profiles\[0\]\.plugins\.fliter: unknown field"):
        BrambleServer.start(tmp_path / "bad", "--scheduler-config", str(bad), timeout=20)
    srv = BrambleServer.start(tmp_path / "off", "--no-scheduler")
    try:
        client = await ApiClient.from_kubeconfig(srv.kubeconfig)
        try:
            lab = Lab(srv, client, None)
            await lab.add_node("pi")
            await lab.create_pod("default", "waits")
            assert (await client.list(LEASES, "kube-system"))["items"] == []
        finally:
            await client.close()
    finally:
        assert srv.stop() == 0
    # A scheduler, had one started, would have logged its campaign for the lease (the
    # first thing it does) long before the server stopped.
    assert "controlplane.scheduler" not in srv.log.text()
    assert "server stopped" in srv.log.text()
