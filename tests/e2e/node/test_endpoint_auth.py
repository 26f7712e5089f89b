"""The agent's endpoint (:10250: logs, exec, metrics of the node's pods) answers the
apiserver only: its client certificate (CN ``bramble:apiserver``) from the cluster CA.
Anyone else on the LAN is refused: without a certificate, with another cluster member's
certificate (403), or with a certificate naming the apiserver but from another CA."""

from __future__ import annotations

import http.client
import ssl
from pathlib import Path

import pytest

from controlplane.apiserver.auth import pki as pkis
from tests.e2e.node.conftest import Node

pytestmark = pytest.mark.real("podman")


def endpoint(node: Node) -> tuple[str, int]:
    obj = node.server.admin().ok("GET", f"/api/v1/nodes/{node.name}")
    port = int(obj["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"])
    addresses = {a["type"]: a["address"] for a in obj["status"]["addresses"]}
    return addresses["InternalIP"], port


def get(node: Node, path: str, cert: tuple[Path, Path] | None) -> tuple[int, str]:
    """GET over TLS, trusting the cluster CA, showing ``cert`` (paths) if given."""
    ctx = ssl.create_default_context(cafile=str(node.server.data_dir / "pki" / "ca.crt"))
    ctx.check_hostname = False  # the agent's serving certificate names its node, not the IP
    if cert is not None:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    host, port = endpoint(node)
    conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=10)
    try:
        conn.request("GET", path)
        reply = conn.getresponse()
        return reply.status, reply.read().decode(errors="replace")
    finally:
        conn.close()


def pair(pki_dir: Path, which: str) -> tuple[Path, Path]:
    return pki_dir / f"{which}.crt", pki_dir / f"{which}.key"


def test_the_apiservers_certificate_is_answered(node: Node) -> None:
    status, body = get(
        node, "/healthz", pair(node.server.data_dir / "pki", "apiserver-agent-client")
    )
    assert (status, body.strip()) == (200, "ok")


def test_a_cluster_admins_certificate_is_refused(node: Node, tmp_path: Path) -> None:
    cert, key = node.server.issue_certificate("someone", ["system:masters"])
    (tmp_path / "c.crt").write_bytes(cert)
    (tmp_path / "c.key").write_bytes(key)
    status, body = get(node, "/metrics", (tmp_path / "c.crt", tmp_path / "c.key"))
    assert status == 403
    assert "only the apiserver" in body


def test_no_certificate_is_refused(node: Node) -> None:
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.RemoteDisconnected)):
        get(node, "/healthz", None)


def test_the_apiservers_name_from_another_ca_is_refused(node: Node, tmp_path: Path) -> None:
    # another cluster's PKI: its apiserver client certificate has the very same CN
    other = pkis.ensure_cluster_pki(tmp_path / "other", hostnames=["elsewhere"], ips=[])
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.RemoteDisconnected)):
        get(node, "/healthz", pair(other.client_cert_path.parent, "apiserver-agent-client"))
