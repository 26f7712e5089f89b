"""Looking at and breaking leader election between ``bramble server``s on one store:
who holds the scheduler's and the controller manager's Leases, which server a holder
identity belongs to, and killing a server as a machine losing power would."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from tests.support.cluster import BrambleServer, HttpsClient

LEASE_DURATION = 15.0  # controller manager's and scheduler's lease duration (their defaults)
# A candidate looks every retry period (2 s, jittered up to 2.4 s): it may see the last
# renewal up to 2.4 s late, and the expiry up to 2.4 s late; 2 s more for a loaded machine.
TAKEOVER_SLACK = 2 * 2.4 + 2.0
LEASES = ("bramble-controller-manager", "bramble-scheduler")


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with_children = (task / "children").read_text().split()
        found += [int(c) for c in with_children]
    return found


def kill_with_children(server: BrambleServer) -> None:
    """SIGKILL the server's children (scheduler, controller manager), then the server:
    nobody releases a Lease."""
    if server.running():
        for child in children(server.proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        server.proc.kill()
    server.stop()


def identities(server: BrambleServer) -> set[str]:
    """The leader election identities of the server's components, from their log lines
    ("... waiting for lease=... identity=X")."""
    return {
        line.rsplit("identity=", 1)[1].split()[0]
        for line in server.log.text().splitlines()
        if "waiting for lease=" in line and "identity=" in line
    }


def holders(admin: HttpsClient) -> dict[str, str]:
    """Each Lease's holder identity ("" when not created yet or not readable)."""
    found = {}
    for name in LEASES:
        reply = admin.request(
            "GET", f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{name}"
        )
        lease = reply.json() if reply.status == 200 else {"spec": {}}
        found[name] = str(lease["spec"].get("holderIdentity") or "")
    return found
