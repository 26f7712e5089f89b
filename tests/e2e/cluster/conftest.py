"""The multi-node test cluster as a fixture: one real cluster of three nodes per module
(tests/support/multinode.py), with an sshd and a hostname of its own on every node.

Bringing it up first removes what dead runs left behind; taking it down is checked: no
namespace, host veth, guard route, record, process or directory of it may survive.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import netns
from tests.support.multinode import Cluster
from tests.support.real import require_binary


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CI runs the suite as root)")


def leftovers(cluster: Cluster) -> list[str]:
    """What of ``cluster`` still exists on the machine."""
    found = [f"netns {n}" for n in netns.list_netns(cluster.prefix)]
    if Path(f"/sys/class/net/{cluster.prefix}h").exists():
        found.append(f"link {cluster.prefix}h")
    routes = netns.run("ip", "-4", "route", "show", "table", "all")
    found += [f"route {r}" for r in routes.splitlines() if str(cluster.switch.subnet) in r]
    found += [f"record {cluster.record}"] if cluster.record.exists() else []
    found += [f"dir {cluster.dir}"] if cluster.dir.exists() else []
    found += [f"process {p}" for p in netns.pids_mentioning(str(cluster.dir))]
    return found


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_root()
    for binary, package in [
        ("podman", "podman"),
        ("kubectl", "kubectl"),
        ("nsenter", "util-linux"),
        ("ip", "iproute2"),
        ("/usr/sbin/sshd", "openssh-server"),
        ("ssh", "openssh-client"),
    ]:
        require_binary(binary, package=package)
    cluster = Cluster(tmp_path_factory.mktemp("cluster"), sshd=True)
    try:
        cluster.start(nodes=3)
        yield cluster
    finally:
        cluster.stop()
    assert not leftovers(cluster), leftovers(cluster)
