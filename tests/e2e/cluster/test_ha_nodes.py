"""Two ``bramble server``s on one real etcd, with real nodes running the pods: the server
holding the scheduler's and the controller manager's Leases is SIGKILLed (children
first: a machine losing power) while a Deployment is scaling up, with creates in flight.

The other server takes both Leases over within the lease duration plus a few seconds,
finishes the scale, and at no moment does the Deployment have more pods than it asks
for (a watch counts them at every event); at the end every pod runs once, on one node,
as real Podman containers: no node runs a duplicate.

The leader is a server of its own on loopback, started first so that it wins both
elections; the cluster's server (the one its agents and kubectl talk to) is the standby
that survives. Agents follow a single ``--server``, so killing the server they use is a
different story (their pods keep running; tests/e2e/node covers that).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from tests.e2e.cluster.conftest import leftovers, require_root
from tests.e2e.cluster.watch import watching
from tests.e2e.cluster.workloads import Obj, deployment, is_active, is_ready, pods_path
from tests.support.cluster import BrambleServer, manifest, unique
from tests.support.etcd import EtcdCluster
from tests.support.leaders import (
    LEASE_DURATION,
    TAKEOVER_SLACK,
    holders,
    identities,
    kill_with_children,
)
from tests.support.multinode import Cluster
from tests.support.processes import wait_until
from tests.support.real import require_binary

pytestmark = pytest.mark.real("multinode")
logger = logging.getLogger(__name__)

BEFORE, AFTER = 3, 10  # replicas before and after the scale the leader dies in


def test_the_standby_takes_over_mid_scale_and_no_node_runs_a_duplicate(tmp_path: Path) -> None:
    require_root()
    for binary, package in [("etcd", "etcd-server"), ("podman", "podman"),
                            ("kubectl", "kubectl"), ("nsenter", "util-linux"),
                            ("ip", "iproute2")]:  # fmt: skip
        require_binary(binary, package=package)
    etcd = EtcdCluster(tmp_path / "etcd", size=1)
    (tmp_path / "etcd").mkdir()
    etcd.start()
    leader: BrambleServer | None = None
    cluster = Cluster(tmp_path / "cluster", server_args=["--store", etcd.url()])
    try:
        leader = BrambleServer.start(tmp_path / "leader", "--store", etcd.url())
        first = leader

        def leading() -> bool:
            held = holders(first.admin())
            return all(held.values()) and set(held.values()) <= identities(first)

        wait_until(leading, timeout=30, what="the first server holding both Leases", every=0.2)
        cluster.start(nodes=2)
        survivor, kubectl = cluster.server, cluster.kubectl
        namespace = unique("ha")
        kubectl.ok("create", "namespace", namespace)
        kubectl.ok(
            "apply", "-n", namespace, "-f", "-", input=manifest(deployment("web", replicas=BEFORE))
        )
        kubectl.ok("rollout", "status", "deployment/web", "-n", namespace, "--timeout=90s",
                   timeout=120)  # fmt: skip

        desired = BEFORE
        too_many: list[tuple[int, int]] = []

        def count(kind: str, obj: Obj, current: dict[str, Obj]) -> None:
            active = sum(1 for p in current.values() if is_active(p))
            if active > desired:
                too_many.append((active, desired))

        with watching(survivor.admin(), pods_path(namespace), on_event=count) as pods:
            desired = AFTER
            kubectl.ok("scale", "deployment/web", "-n", namespace, f"--replicas={AFTER}")
            # the leader's controller manager has begun creating the new pods (in batches
            # of 1, 2, 4...): kill it in the middle, its scheduler with it
            pods.wait(lambda ps: sum(map(is_active, ps)) > BEFORE, timeout=30,
                      what="the leader creating the first new pod")  # fmt: skip
            kill_with_children(leader)
            killed = time.monotonic()
            created_by_leader = sum(map(is_active, pods.objects())) - BEFORE

            def taken_over() -> bool:
                return set(holders(survivor.admin()).values()) <= identities(survivor)

            wait_until(
                taken_over, timeout=LEASE_DURATION + 3 * TAKEOVER_SLACK,
                what="the survivor taking both Leases over", every=0.2,
            )  # fmt: skip
            took = time.monotonic() - killed
            logger.info(
                "Leases taken over %.1fs after the kill; the leader had created %d of %d pods",
                took, created_by_leader, AFTER - BEFORE,
            )  # fmt: skip
            assert took <= LEASE_DURATION + TAKEOVER_SLACK
            kubectl.ok("rollout", "status", "deployment/web", "-n", namespace,
                       "--timeout=120s", timeout=150)  # fmt: skip
            ready = pods.wait(
                lambda ps: [p for p in ps if is_ready(p)] if sum(map(is_ready, ps)) == AFTER
                else None, timeout=60, what=f"{AFTER} ready pods",
            )  # fmt: skip
            active = {p["metadata"]["name"] for p in pods.objects() if is_active(p)}

        assert too_many == [], f"more pods than desired at some point (active, desired): {too_many}"
        assert active == {p["metadata"]["name"] for p in ready}
        running: dict[str, list[str]] = {}  # pod name -> nodes running its web container
        for node in cluster.nodes:
            for c in node.containers(**{"io.bramble.pod.namespace": namespace,
                                        "io.bramble.container.name": "web"}):  # fmt: skip
                if c["State"] == "running":
                    running.setdefault(c["Labels"]["io.bramble.pod.name"], []).append(node.name)
        assert set(running) == active, (running, active)
        assert all(len(nodes) == 1 for nodes in running.values()), running
        rs = kubectl.json("get", "replicasets", "-n", namespace)["items"]
        assert [r["spec"]["replicas"] for r in rs] == [AFTER], rs
    finally:
        cluster.stop()
        if leader is not None:
            leader.stop()
        etcd.stop()
    assert not leftovers(cluster), leftovers(cluster)
