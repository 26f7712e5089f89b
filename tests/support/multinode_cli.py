"""``scripts/cluster``: the multi-node test cluster for a person at a terminal.

``up`` brings up ``Cluster`` (tests/support/multinode.py) and prints how to reach it:
first the ``export KUBECONFIG=...`` line to paste into another shell, then the apiserver's
URL and each node's address, namespace, log directory and how to run its podman (and ssh
to it, with ``--sshd``). It stays up until Ctrl-C or SIGTERM, then takes everything down.
Its nodes renew their Lease every 10 s, as a real node does (``--lease-interval``).

While it runs, the failure drills of the tests are one command each, from another shell:
``kill``, ``freeze``, ``thaw``, ``cut``, ``restore`` and ``start-agent`` a node, or
``add-node``. They reach ``up`` through a Unix socket in its work directory (``up``
holds the processes and the switch), and print its one-line answer.

``down`` removes what clusters whose owner died left behind (cleanup.cleanup_leftovers);
clusters whose owner is alive are listed, not touched.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import socketserver
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from tests.support import netns
from tests.support.cleanup import PREFIX, cleanup_leftovers
from tests.support.multinode import Cluster, ClusterNode

DEFAULT_DIR = Path("/tmp/bramble-cluster")
CONTROL = "control.sock"  # in the work directory
ANSWER_TIMEOUT = 300.0  # add-node pulls nothing but starts Podman and an agent

# name: (what it does to the node, what it says it did)
NODE_DRILLS: dict[str, tuple[Callable[[ClusterNode], None], str]] = {
    "kill": (ClusterNode.kill, "agent SIGKILLed (its containers live on)"),
    "freeze": (ClusterNode.freeze, "agent frozen (SIGSTOP)"),
    "thaw": (ClusterNode.thaw, "agent thawed (SIGCONT)"),
    "cut": (ClusterNode.cut_off, "switch port down: cut off from the network"),
    "restore": (ClusterNode.restore, "switch port up: back on the network"),
    "start-agent": (ClusterNode.start_agent, "agent started and registered"),
}


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def describe(cluster: Cluster, node: ClusterNode) -> list[str]:
    lines = [
        f"# {node.name}  {node.address}  netns={node.netns}  logs in {node.dir}",
        f"#   nsenter --net=/run/netns/{node.netns} env"
        f" CONTAINERS_CONF={node.dir}/containers.conf"
        f" CONTAINERS_STORAGE_CONF={node.dir}/storage.conf podman ps",
    ]
    if cluster.sshd:
        lines.append(f"#   ssh -i {cluster.dir}/ssh/client root@{node.address} (host {node.name})")
    return lines


def answer(cluster: Cluster, request: str) -> str:
    """Carry out one drill (``"cut node2"``, ``"add-node"``); the line to print."""
    words = request.split()
    if words == ["add-node"]:
        added = cluster.add_node()
        return "ok: " + " ".join(describe(cluster, added)[0].split()[1:])
    if len(words) != 2 or words[0] not in NODE_DRILLS:
        return f"error: unknown request {request!r}"
    drill, said = NODE_DRILLS[words[0]]
    node = next((n for n in cluster.nodes if n.name == words[1]), None)
    if node is None:
        known = ", ".join(n.name for n in cluster.nodes)
        return f"error: no node {words[1]!r} in this cluster (its nodes: {known})"
    drill(node)
    pid = node.agent.pid if node.agent is not None and node.agent.proc is not None else "-"
    return f"ok: {node.name}: {said}; agent pid {pid}"


@contextlib.contextmanager
def control(cluster: Cluster, path: Path) -> Iterator[None]:
    """Serve drills on ``path`` (one request per connection, one at a time) while the
    block runs."""
    lock = threading.Lock()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            request = self.rfile.readline(200).decode(errors="replace").strip()
            with lock:
                try:
                    line = answer(cluster, request)
                except Exception as e:  # a drill that failed is an answer, not a crash
                    line = f"error: {request}: {type(e).__name__}: {e}".splitlines()[0]
            self.wfile.write(line.encode() + b"\n")

    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a socket left by an ``up`` that was killed
    server = socketserver.UnixStreamServer(str(path), Handler)
    thread = threading.Thread(target=server.serve_forever, name="drills", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def up(*, nodes: int, workdir: Path, sshd: bool, lease_interval: float) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    stop = False

    def interrupted(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    # Until the cluster is up, Ctrl-C raises KeyboardInterrupt: Cluster.running's
    # ``finally`` takes down what was started so far.
    with (
        Cluster.running(workdir, nodes=nodes, sshd=sshd, lease_interval=lease_interval) as cluster,
        control(cluster, workdir / CONTROL),
    ):
        signal.signal(signal.SIGINT, interrupted)
        signal.signal(signal.SIGTERM, interrupted)
        say(f"export KUBECONFIG={cluster.kubeconfig}")
        say(f"# apiserver {cluster.server.url}  (cluster {cluster.prefix} in {cluster.dir})")
        for node in cluster.nodes:
            for line in describe(cluster, node):
                say(line)
        say(f"# drills from another shell: scripts/cluster kill|freeze|thaw|cut|restore"
            f"|start-agent NODE, scripts/cluster add-node (--dir {workdir})")  # fmt: skip
        say("# Ctrl-C takes it all down")
        while not stop:
            signal.pause()
        say("# stopping")


def ask(workdir: Path, request: str) -> int:
    """Send one drill to the ``up`` running in ``workdir``; print its answer."""
    path = workdir / CONTROL
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(ANSWER_TIMEOUT)
            conn.connect(str(path))
            conn.sendall(request.encode() + b"\n")
            reply = conn.makefile("rb").readline().decode(errors="replace").strip()
    except (FileNotFoundError, ConnectionRefusedError):
        say(f"cluster: no cluster is up in {workdir}: start one with scripts/cluster up")
        return 1
    except TimeoutError:
        say(f"cluster: no answer from the cluster in {workdir} within {ANSWER_TIMEOUT:.0f} s")
        return 1
    say(reply or "error: the cluster closed the connection without an answer")
    return 0 if reply.startswith("ok") else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/cluster", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="a cluster that runs until Ctrl-C")
    up_parser.add_argument("--nodes", type=int, default=3)
    up_parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="work directory")
    up_parser.add_argument("--sshd", action="store_true", help="an sshd on every node")
    up_parser.add_argument(
        "--lease-interval", type=float, default=10.0,
        help="seconds between the agents' Lease renewals (default 10, as a real node)",
    )  # fmt: skip
    for name, (_, said) in NODE_DRILLS.items():
        drill = commands.add_parser(name, help=f"the node's {said}")
        drill.add_argument("node", help="node1, node2, ...")
        drill.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the up's work directory")
    add = commands.add_parser("add-node", help="join one more node")
    add.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the up's work directory")
    commands.add_parser("down", help="remove what dead clusters left behind")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("network namespaces need root")
    if args.command == "up":
        if not 0.1 <= args.lease_interval <= 60:
            parser.error("--lease-interval: between 0.1 and 60 seconds")
        up(nodes=args.nodes, workdir=args.dir, sshd=args.sshd, lease_interval=args.lease_interval)
        return 0
    if args.command in NODE_DRILLS:
        return ask(args.dir, f"{args.command} {args.node}")
    if args.command == "add-node":
        return ask(args.dir, "add-node")
    cleaned = cleanup_leftovers()
    say("removed: " + (", ".join(cleaned) if cleaned else "nothing"))
    for record in sorted(netns.STATE_DIR.glob(f"{PREFIX}*.json")):
        say(f"still running (its owner is alive): {record.stem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
