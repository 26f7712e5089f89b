"""The in-flight limit (``--max-requests-inflight``): requests beyond it get 429 with
Retry-After and nothing else happens; node heartbeats (Lease renewals, node status) and
the control plane's leader Leases have a pool of their own, so a flood of other requests
cannot make healthy nodes look dead or leaders lose their Lease.

Requests are held in flight by asking for a list at a resourceVersion from the future:
the server waits for its cache to reach it (3 s) before answering 504, as Kubernetes
does. (A request whose body has not all come is not in flight yet: the server reads
bodies before it serves, so slow clients cannot take the in-flight slots.)"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.support.cluster import BrambleServer, HttpsClient

LIMIT = 2


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrambleServer]:
    server = BrambleServer.start(
        tmp_path_factory.mktemp("inflight") / "data",
        "--no-scheduler", "--no-controllers", "--max-requests-inflight", str(LIMIT),
    )  # fmt: skip
    try:
        yield server
    finally:
        server.stop()


def held_request(admin: HttpsClient, path: str) -> ssl.SSLSocket:
    """A list the server holds for 3 s, waiting for a revision from the future."""
    url = urlparse(admin.url)
    raw = socket.create_connection((url.hostname or "127.0.0.1", url.port or 443), timeout=10)
    tls = admin.context.wrap_socket(raw, server_hostname=url.hostname)
    tls.sendall(
        f"GET {path}?resourceVersion=999999999 HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n".encode()
    )
    return tls


def request(
    admin: HttpsClient, method: str, path: str, body: object = None
) -> tuple[int, dict[str, str], bytes]:
    url = urlparse(admin.url)
    conn = http.client.HTTPSConnection(
        url.hostname or "", url.port, context=admin.context, timeout=10
    )
    try:
        headers = {"Content-Type": "application/json"}
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_beyond_the_limit_429_but_heartbeats_pass(limited: BrambleServer, tmp_path: Path) -> None:
    admin = limited.admin()
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "pi-1", "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": "pi-1", "leaseDurationSeconds": 40},
    }
    admin.ok("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease)
    held = [held_request(admin, "/api/v1/namespaces/default/configmaps") for _ in range(LIMIT)]
    try:
        # The held requests are counted once they reach the handler: wait until the
        # server refuses, with a deadline.
        for _ in range(100):
            status, headers, body = request(admin, "GET", "/api/v1/namespaces/default/configmaps")
            if status == 429:
                break
        assert status == 429, (status, body)
        assert headers.get("Retry-After") == "1"
        answer = json.loads(body)
        assert answer["kind"] == "Status"
        assert answer["reason"] == "TooManyRequests"

        # A node renewing its Lease meanwhile is served.
        path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/pi-1"
        status, _, body = request(admin, "GET", path)
        assert status == 200, body
        current = json.loads(body)
        current["spec"]["renewTime"] = "2026-01-01T00:00:00.000000Z"
        status, _, body = request(admin, "PUT", path, current)
        assert status == 200, body

        # So is a scheduler or controller manager renewing its leader Lease.
        leader = {**lease, "metadata": {"name": "bramble-scheduler", "namespace": "kube-system"},
                  "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15}}  # fmt: skip
        leases = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
        status, _, body = request(admin, "POST", leases, leader)
        assert status == 201, body
        status, _, body = request(admin, "GET", f"{leases}/bramble-scheduler")
        assert status == 200, body
    finally:
        for sock in held:
            sock.close()
    # Once they are gone, others are served again.
    for _ in range(100):
        status, _, _ = request(admin, "GET", "/api/v1/namespaces/default/configmaps")
        if status == 200:
            break
    assert status == 200
