"""Joining a machine as a node the way the issue writes it: ``bramble token create --role
node`` on the control plane prints a join token, and ``bramble agent --server URL --token
TOKEN`` (nothing else about the cluster) verifies the control plane with the CA hash the
token carries and registers. A token for another cluster is refused in one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e.node.conftest import Node
from tests.e2e.node.support import ca_hash, get_json, make_agent
from tests.support.cluster import unique

pytestmark = pytest.mark.real("podman")


def token_create(node: Node, name: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "bramble", "token", "create", "--role", "node", "--node", name,
         "--ttl", "1h", "--kubeconfig", str(node.server.kubeconfig)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return result.stdout.strip()


def test_a_join_token_is_all_an_agent_needs(node: Node) -> None:
    name = unique("joined")
    token = token_create(node, name)
    assert token.startswith(f"K10{ca_hash(node.server).removeprefix('sha256:')}::"), token
    agent = make_agent(node.server, node.workdir, name=name, podman_socket=node.podman.socket,
                       extra=["--runtime", "fake"], join_token=token)  # fmt: skip
    assert "--ca-cert-hash" not in agent.command
    try:
        agent.start()  # waits for "node registered"
        registered = get_json(node.server, "node", name)
        assert registered["metadata"]["name"] == name
    finally:
        assert agent.stop() == 0
        node.server.admin().request("DELETE", f"/api/v1/nodes/{name}")


def test_a_join_token_of_another_cluster_is_refused(node: Node) -> None:
    name = unique("stranger")
    good = token_create(node, name)
    forged = "K10" + "0" * 64 + "::" + good.split("::", 1)[1]  # the same secret, another CA
    agent = make_agent(node.server, node.workdir, name=name, podman_socket=node.podman.socket,
                       extra=["--runtime", "fake"], join_token=forged)  # fmt: skip
    agent.start(wait=False)
    assert agent.proc is not None
    try:
        assert agent.proc.wait(timeout=60) != 0
    finally:
        agent.stop()  # ended already: closes its log
    said = agent.text()
    assert "refusing to join" in said, said
    assert "Traceback" not in said, said
