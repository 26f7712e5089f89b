"""Two ``bramble server``s on one real etcd: a control plane that survives losing a server.

Both serve the API from the same store; each runs a scheduler and a controller manager,
and of each only the holder of its Lease (``kube-system/bramble-scheduler``,
``kube-system/bramble-controller-manager``) acts. The second server is started with
nothing copied: it adopts the cluster CA the first one keeps in the store
(controlplane/apiserver/auth/bootstrap.py) and issues its own serving and client
certificates from it, so one kubeconfig works against both.

The test SIGKILLs the server holding the Leases, children first (a machine that loses
power: nobody releases a Lease), checks that the other takes both over within the lease
duration plus a few seconds, and that a Deployment scaled from 5 to 8 meanwhile never has
more pods than it asks for (a watch counts them at every event) and ends with exactly 8.
No node is needed here: the pods stay Pending (tests/e2e/cluster/test_ha_nodes.py
has real nodes run them while the servers hand over).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster.watch import watching
from tests.e2e.cluster.workloads import Obj, deployment, is_active, pods_path
from tests.support.cluster import BrambleServer, HttpsClient, Kubectl, manifest
from tests.support.etcd import EtcdCluster
from tests.support.leaders import (
    LEASE_DURATION,
    TAKEOVER_SLACK,
    holders,
    identities,
    kill_with_children,
)
from tests.support.processes import wait_until
from tests.support.real import require_binary

pytestmark = pytest.mark.real("etcd")
logger = logging.getLogger(__name__)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[BrambleServer]]:
    require_binary("etcd", package="etcd-server")
    require_binary("kubectl", package="kubectl")
    etcd = EtcdCluster(tmp_path / "etcd", size=1)
    (tmp_path / "etcd").mkdir()
    started: list[BrambleServer] = []
    try:
        etcd.start()
        first = BrambleServer.start(tmp_path / "a", "--store", etcd.url())
        started.append(first)
        started.append(BrambleServer.start(tmp_path / "b", "--store", etcd.url()))
        yield started
    finally:
        for server in started:
            server.stop()  # SIGTERM: it stops its children; a killed one is gone already
        etcd.stop()


def test_the_other_server_takes_over_and_a_scale_makes_no_duplicates(
    servers: list[BrambleServer], tmp_path: Path
) -> None:
    kubectls = [
        Kubectl("kubectl", s.kubeconfig, tmp_path / f"kc{i}") for i, s in enumerate(servers)
    ]
    wait_until(
        lambda: all(holders(servers[1].admin()).values()),
        timeout=30,
        what="both Leases held",
        every=0.2,
    )
    # One cluster CA: the first server's admin credential and CA work against the second.
    first = servers[0].admin()
    cross = HttpsClient(servers[1].url, ca_pem=first.ca_pem, cert=first.cert)
    assert cross.ok("GET", "/api/v1/namespaces/default")["metadata"]["name"] == "default"
    mine = [identities(s) for s in servers]
    held = holders(servers[1].admin())
    owner = [i for i, ids in enumerate(mine) if set(held.values()) <= ids]
    assert len(owner) == 1, f"holders {held}; identities {mine}"
    leader, survivor = servers[owner[0]], servers[1 - owner[0]]
    kubectl = kubectls[1 - owner[0]]
    admin = survivor.admin()

    kubectl.ok("create", "namespace", "ha")
    kubectl.ok("apply", "-n", "ha", "-f", "-", input=manifest(deployment("web", replicas=5)))
    desired = 5
    too_many: list[tuple[int, int]] = []

    def count(kind: str, obj: Obj, current: dict[str, Obj]) -> None:
        active = sum(1 for p in current.values() if is_active(p))
        if active > desired:
            too_many.append((active, desired))

    with watching(survivor.admin(), pods_path("ha"), on_event=count) as pods:
        pods.wait(lambda ps: len(ps) == 5, timeout=30, what="5 pods")
        kill_with_children(leader)
        killed = time.monotonic()

        def taken_over() -> bool:
            return set(holders(admin).values()) <= identities(survivor)

        wait_until(
            taken_over,
            timeout=LEASE_DURATION + 3 * TAKEOVER_SLACK,
            what="Leases taken over",
            every=0.2,
        )
        took = time.monotonic() - killed
        logger.info("both Leases taken over %.1fs after the leader was killed", took)
        assert took <= LEASE_DURATION + TAKEOVER_SLACK

        kubectl.ok("scale", "deployment/web", "-n", "ha", "--replicas=8")
        desired = 8
        pods.wait(lambda ps: len(ps) == 8, timeout=30, what="8 pods")

        def settled() -> bool:
            d = kubectl.json("get", "deployment", "web", "-n", "ha")
            status = d.get("status", {})
            return bool(
                status.get("observedGeneration") == d["metadata"]["generation"]
                and status.get("replicas") == 8
            )

        wait_until(settled, timeout=30, what="the Deployment's status at 8 replicas", every=0.2)
        final = [p for p in pods.objects() if is_active(p)]
    assert too_many == [], f"more pods than desired at some point (active, desired): {too_many}"
    assert len(final) == 8, [p["metadata"]["name"] for p in final]
    rs = kubectl.json("get", "replicasets", "-n", "ha")["items"]
    assert [r["spec"]["replicas"] for r in rs] == [8], rs
