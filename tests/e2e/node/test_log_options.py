"""``kubectl logs --timestamps``, ``--since`` and ``--since-time``, through the apiserver
and the agent to Podman, for real; and a clear 400 for a time the API cannot read."""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.node.conftest import Node
from tests.e2e.node.support import apply, kubectl
from tests.e2e.node.test_pods import pod, running
from tests.support.processes import wait_until

pytestmark = pytest.mark.real("podman")

TALKER = "trap 'exit 0' TERM; i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2 & wait; done"


def stamped(node: Node, namespace: str, *flags: str) -> list[tuple[datetime, int]]:
    """The talker's lines with ``--timestamps`` and ``flags``: (time, line number)."""
    out = kubectl(node.server, "logs", "-n", namespace, "talker", "--timestamps", *flags).stdout
    lines = []
    for line in out.splitlines():
        moment, text = line.split(" ", 1)
        assert text.startswith("line "), line
        lines.append((parse(moment), int(text.split()[1])))
    return lines


def parse(moment: str) -> datetime:
    """RFC 3339 with nanoseconds (the kubelet's format): Python keeps microseconds."""
    head, _, rest = moment.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(rest + '000000')[:6]}+00:00")


def test_timestamps_since_and_since_time(node: Node, namespace: str) -> None:
    apply(
        node.server,
        pod(namespace, "talker", node, [{"name": "c", "command": ["sh", "-c", TALKER]}]),
    )
    wait_until(lambda: running(node, namespace, "talker"), timeout=60, what="the pod to run")
    wait_until(
        lambda: len(stamped(node, namespace)) >= 15, timeout=30, what="three seconds of output"
    )
    every = stamped(node, namespace)
    now = datetime.now(UTC)
    assert all(abs(now - moment) < timedelta(minutes=1) for moment, _ in every), every[:3]
    assert [n for _, n in every] == list(range(len(every))), "numbered lines, in order"
    assert [m for m, _ in every] == sorted(m for m, _ in every)

    # --since-time: kubectl sends whole seconds; nothing before that second comes back
    cut = every[len(every) // 2][0].replace(microsecond=0)
    after = stamped(node, namespace, f"--since-time={cut.strftime('%Y-%m-%dT%H:%M:%SZ')}")
    assert after, "lines after the cut"
    assert all(moment >= cut for moment, _ in after), (cut, after[:3])
    assert after[0][1] > 0, "the oldest lines are left out"
    first_after_cut = next(n for m, n in every if m >= cut)
    assert after[0][1] == first_after_cut

    # --since: only the last second or so (the talker writes 5 lines a second)
    recent = stamped(node, namespace, "--since=1s")
    assert 0 < len(recent) <= 10, recent
    assert recent[0][1] >= len(every) - 10, "the older lines are left out"


def test_a_time_the_api_cannot_read_is_a_clear_400(node: Node, namespace: str) -> None:
    apply(
        node.server,
        pod(namespace, "talker", node, [{"name": "c", "command": ["sh", "-c", TALKER]}]),
    )
    wait_until(lambda: running(node, namespace, "talker"), timeout=60, what="the pod to run")
    admin = node.server.admin()
    base = f"/api/v1/namespaces/{namespace}/pods/talker/log"
    for query, says in [
        ({"sinceTime": "yesterday"}, "sinceTime must be an RFC 3339 time"),
        ({"sinceTime": "2026-11-24T10:00:00"}, "sinceTime must be an RFC 3339 time"),
        ({"sinceTime": "2026-11-24T10:00:00Z", "sinceSeconds": "5"}, "at most one of"),
    ]:
        reply = admin.request("GET", f"{base}?{urllib.parse.urlencode(query)}")
        assert reply.status == 400, (query, reply.status)
        status = reply.json()
        assert status["kind"] == "Status"
        assert says in status["message"], status
